"""Benchmark: a naive training/attack loop against the package's, in one run.

    python -m tsrobust.bench [--n 256] [--batch-size 128] [--pgd-steps 40] [--json out.json]

Three measurements, each on the same models (the pruned teacher 45-32-32-20 and the student
50-35-35-22 of source A §5.1, randomly initialized: speed does not depend on the weights), the
same data (synthetic images by default, ``--data cifar`` for a CIFAR-10 subset) and the same
amount of work:

1. **standard-training epoch** (logit target, §5.1);
2. **adversarial-training epoch**: every batch replaced by oracle-adversarial examples from
   ℓ∞ PGD-``--pgd-steps`` (Eq. 3; §5.1: 40 steps, ε = 10/255, α = 0.01), then a training step;
3. **PGD step**: one attack on one batch, in image-steps per second (the inner loop of 2 and of
   every robust-accuracy evaluation).

The *naive* baseline is how such loops are commonly written: batches assembled on the host from a
list of per-image tensors (like a ``DataLoader`` without workers) and copied to the device, fp32
NCHW, the attack calling ``loss.backward()`` (which also computes and accumulates every parameter
gradient of student and teacher), a ``loss.item()`` per batch. The *package* path is
:func:`tsrobust.training.train_student` and :func:`tsrobust.attacks.pgd`: device-resident data and
index batches, input-only gradients (``torch.autograd.grad``) with frozen parameters, optional
``channels_last`` and bf16 autocast (the perturbation stays fp32), no host synchronisation inside
an epoch; on a CPU the attack takes its gradients ``attacks.CPU_CHUNK`` images at a time. The PGD
step is also timed in variants that show what each part buys: NCHW in one pass does exactly the
naive attack's arithmetic (same adversarial examples), so its ratio is what input-only gradients
alone buy; channels-last in one pass adds the memory format; ``--chunk-sweep`` adds other chunk
sizes. The reported row is the package's own path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

ADV_EPS = 10 / 255
"""§5.1: ℓ∞ budget of the adversarial training."""
ADV_ALPHA = 0.01
"""§5.1: PGD step size."""
LR = 0.01
"""SGD learning rate of both loops (the value does not change the speed)."""
MOMENTUM = 0.9
SAME_TOL = 1e-6
"""Adversarial coordinates closer than this to the naive attack's count as the same."""


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    """Wall time of one run of ``fn`` (the device queue drained before and after)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _paired(fns: dict, device, repeats: int) -> dict[str, list[float]]:
    """Times of each of ``fns``, run in turn ``repeats`` times (naive, package, naive, ...).

    Interleaving puts every pair under the same machine load: on a shared machine the load
    drifts, and timing all naive runs before all package runs would put the drift into the ratio.
    """
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn, device))
    return times


def _ratios(t_naive: list[float], t_pkg: list[float]) -> dict:
    """Per-repeat speed-ups naive/package: their median (the reported ratio) and range."""
    r = sorted(a / b for a, b in zip(t_naive, t_pkg))
    return {"ratio": statistics.median(r), "ratio_min": r[0], "ratio_max": r[-1]}


def _models(device, generator_seed: int = 0):
    from tsrobust.models import PRUNED_WIDTHS, STUDENT_WIDTHS, ConvNet

    teacher = ConvNet(PRUNED_WIDTHS, generator=torch.Generator().manual_seed(generator_seed))
    student = ConvNet(STUDENT_WIDTHS, generator=torch.Generator().manual_seed(generator_seed + 1))
    return student.to(device).eval(), teacher.to(device).eval()


def _data(n: int, source: str, seed: int) -> torch.Tensor:
    if source == "synthetic":
        return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    from tsrobust.data import load_cifar10

    return load_cifar10(n_train=n, n_test=1, generator=torch.Generator().manual_seed(seed)).x_train


# -- the naive baseline -----------------------------------------------------------------------

def naive_pgd(student, teacher, x, *, eps, alpha, steps, generator):
    """ℓ∞ PGD on ‖f(x′) − f*(x′)‖₂ as commonly written: ``.backward()`` on the loss (parameter
    gradients of both nets computed and accumulated), gradient read from ``x′.grad``."""
    if generator is None:
        x_adv = x.clone()
    else:
        noise = 2 * torch.rand(x.shape, generator=generator, device=x.device) - 1
        x_adv = (x + noise * eps).clamp(0, 1).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = (student(x_adv) - teacher(x_adv)).pow(2).sum(1).clamp_min(1e-12).sqrt().sum()
        loss.backward()
        with torch.no_grad():
            x_adv = x_adv + alpha * x_adv.grad.sign()
            x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)
        student.zero_grad()
        teacher.zero_grad()
    return x_adv.detach()


def naive_epoch(student, teacher, images: list[torch.Tensor], *, batch_size, device, generator,
                adversarial: bool, steps: int):
    """One epoch of the naive loop: host-side batches, NCHW fp32, ``.backward()`` attacks."""
    opt = torch.optim.SGD(student.parameters(), lr=LR, momentum=MOMENTUM)
    order = torch.randperm(len(images), generator=generator).tolist()
    attack_gen = torch.Generator(device=device).manual_seed(int(generator.initial_seed()))
    losses = []
    for start in range(0, len(order), batch_size):
        xb = torch.stack([images[i] for i in order[start:start + batch_size]]).to(device)
        if adversarial:
            student.eval()
            xb = naive_pgd(student, teacher, xb, eps=ADV_EPS, alpha=ADV_ALPHA, steps=steps,
                           generator=attack_gen)
        student.train()
        with torch.no_grad():
            target = teacher(xb)
        loss = (student(xb) - target).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    student.eval()
    return losses


# -- the benchmark ----------------------------------------------------------------------------

def _pgd_package(student, teacher, x, *, steps, channels_last, bf16, generator, chunk_size):
    from tsrobust import attacks

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    student.to(memory_format=fmt), teacher.to(memory_format=fmt)
    xs = x.contiguous(memory_format=fmt)
    with attacks.frozen(student, teacher):
        return attacks.pgd(attacks.oracle_objective(student, teacher), xs, eps=ADV_EPS,
                           alpha=ADV_ALPHA, steps=steps, norm="linf", random_start=False,
                           generator=generator, amp_dtype=torch.bfloat16 if bf16 else None,
                           chunk_size=chunk_size)


def run(*, n: int = 256, batch_size: int = 128, pgd_steps: int = 40, device="cpu",
        data: str = "synthetic", bf16: bool = False, channels_last: bool = True,
        pgd_batch: int | None = None, pgd_chunk: int | None = None,
        chunk_sweep: tuple[int, ...] = (), repeats: int = 5, seed: int = 0, log=print) -> dict:
    """Run the three measurements; return images/s of each path and the package/naive ratios.

    ``channels_last``: memory format of the package's training epochs (the package default: on).
    ``bf16``: autocast the package path (PGD and training) to bfloat16.
    ``pgd_chunk``: images per gradient pass in the package's PGD step (default
    ``attacks.cpu_chunk``: ``attacks.CPU_CHUNK`` on a CPU, the whole batch on an accelerator);
    ``chunk_sweep``: further chunk sizes to time alongside.
    ``repeats``: naive and package runs alternate this many times; rates are from the median
    times, the ratio is the median of the per-repeat ratios (with its range). Every repeat starts
    from the same weights and seeds.
    """
    from tsrobust.training import train_student

    device = torch.device(device)
    x_cpu = _data(n, data, seed)
    images = list(x_cpu.unbind(0))  # the naive loop's "dataset": a list of per-image tensors
    x_dev = x_cpu.to(device)
    out = {"device": str(device), "n": n, "batch_size": batch_size, "pgd_steps": pgd_steps,
           "bf16": bf16, "threads": torch.get_num_threads(), "data": data, "repeats": repeats}

    def package_epoch(adversarial):
        adv = (dict(norm="linf", eps=ADV_EPS, alpha=ADV_ALPHA, steps=pgd_steps)
               if adversarial else None)

        def once():
            student, teacher = _models(device)
            gen = torch.Generator(device=device).manual_seed(seed)
            train_student(student, teacher, x_dev, target="logit", epochs=1, lr=LR,
                          optimizer="sgd", batch_size=batch_size, adversarial=adv,
                          generator=gen, device=device, progress=False, bf16=bf16,
                          channels_last=channels_last)

        return once

    def naive_epoch_fn(adversarial):
        def once():
            student, teacher = _models(device)
            naive_epoch(student, teacher, images, batch_size=batch_size, device=device,
                        generator=torch.Generator().manual_seed(seed), adversarial=adversarial,
                        steps=pgd_steps)

        return once

    # warm-up: first calls pay one-time costs (imports, kernel selection) in both paths
    warm = min(n, batch_size)
    s, t = _models(device)
    naive_epoch(s, t, images[:warm], batch_size=warm, device=device,
                generator=torch.Generator().manual_seed(0), adversarial=True, steps=1)
    train_student(s, t, x_dev[:warm], epochs=1, lr=LR, optimizer="sgd", batch_size=warm,
                  adversarial=dict(norm="linf", eps=ADV_EPS, alpha=ADV_ALPHA, steps=1),
                  generator=torch.Generator(device=device).manual_seed(0), device=device,
                  progress=False, bf16=bf16, channels_last=channels_last)

    rows = []
    for name, adversarial in (("standard-training epoch", False),
                              (f"adversarial-training epoch (PGD-{pgd_steps})", True)):
        times = _paired({"naive": naive_epoch_fn(adversarial),
                         "package": package_epoch(adversarial)}, device, repeats)
        rows.append({"measurement": name,
                     "naive_per_s": n / statistics.median(times["naive"]),
                     "package_per_s": n / statistics.median(times["package"]),
                     **_ratios(times["naive"], times["package"])})

    # the PGD step alone, on one batch: the package's path (channels-last, gradients taken in
    # chunks on a CPU) and, to show what each part buys, NCHW and channels-last in one pass
    from tsrobust.attacks import cpu_chunk

    pb = min(n, pgd_batch or batch_size)
    xb = x_dev[:pb]
    chunk = cpu_chunk(xb) if pgd_chunk is None else pgd_chunk
    variants = {"NCHW, one pass": (False, None), "channels_last, one pass": (True, None)}
    if chunk is not None and chunk < pb:
        variants[f"channels_last, chunks of {chunk}"] = (True, chunk)
    for c in chunk_sweep:
        if c < pb and c != chunk:
            variants[f"channels_last, chunks of {c}"] = (True, c)
    package = f"channels_last, chunks of {chunk}" if chunk is not None and chunk < pb else \
        "channels_last, one pass"
    nets = {name: _models(device) for name in ("naive", *variants)}

    def pgd_fn(name, steps=pgd_steps):
        s, t = nets[name]
        if name == "naive":
            return lambda: naive_pgd(s, t, xb, eps=ADV_EPS, alpha=ADV_ALPHA, steps=steps,
                                     generator=None)
        cl, c = variants[name]
        return lambda: _pgd_package(s, t, xb, steps=steps, channels_last=cl, bf16=bf16,
                                    generator=None, chunk_size=c)

    for name in nets:
        pgd_fn(name, 1)()  # warm-up
    times = _paired({name: pgd_fn(name) for name in nets}, device, repeats)
    ref = pgd_fn("naive", min(pgd_steps, 3))()
    pgd_rows = {}
    for name in variants:
        same = pgd_fn(name, min(pgd_steps, 3))()
        pgd_rows[name] = {"per_s": pb * pgd_steps / statistics.median(times[name]),
                          **_ratios(times["naive"], times[name]),
                          "max_abs_diff_vs_naive_3_steps": float((same - ref).abs().amax()),
                          "frac_differing_vs_naive_3_steps": float(
                              ((same - ref).abs() > SAME_TOL).float().mean())}
    rows.append({"measurement": f"PGD step (image-steps/s, package: {package})",
                 "naive_per_s": pb * pgd_steps / statistics.median(times["naive"]),
                 "package_per_s": pgd_rows[package]["per_s"],
                 **{k: pgd_rows[package][k] for k in ("ratio", "ratio_min", "ratio_max")}})

    out["rows"] = rows
    out["pgd_package"] = pgd_rows
    log(f"device {out['device']}, {out['threads']} threads, n={n}, batch {batch_size}, "
        f"PGD-{pgd_steps}, bf16={bf16}, data={data}, {repeats} interleaved repeats (medians)")
    log(f"{'measurement':52s} {'naive/s':>9s} {'package/s':>9s} {'ratio':>7s}  range")
    for r in rows:
        log(f"{r['measurement']:52s} {r['naive_per_s']:9.1f} {r['package_per_s']:9.1f} "
            f"{r['ratio']:6.2f}×  {r['ratio_min']:.2f}–{r['ratio_max']:.2f}")
    for k, v in pgd_rows.items():
        log(f"  package PGD, {k:26s}: {v['per_s']:9.1f} image-steps/s ({v['ratio']:.2f}× naive); "
            f"after 3 steps max |x′ − x′_naive| = {v['max_abs_diff_vs_naive_3_steps']:.2e} on "
            f"{100 * v['frac_differing_vs_naive_3_steps']:.3f} % of coordinates")
    log("(coordinates differ where a gradient ≈ 0 changes sign under another summation order"
        + (", and by bf16 rounding)" if bf16 else ")"))
    return out


def main(argv=None):
    from tsrobust.attacks import CPU_CHUNK

    p = argparse.ArgumentParser(prog="python -m tsrobust.bench", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=None,
                   help="images per epoch (default 256 on CPU, 8192 on CUDA)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--pgd-steps", type=int, default=40, help="PGD steps (§5.1: 40)")
    p.add_argument("--pgd-batch", type=int, default=None,
                   help="images in the PGD-step measurement (default: the batch size)")
    p.add_argument("--pgd-chunk", type=int, default=None,
                   help="images per gradient pass in the package's PGD step "
                        f"(default: {CPU_CHUNK} on a CPU, the whole batch on a GPU)")
    p.add_argument("--chunk-sweep", type=int, nargs="+", default=(),
                   help="further chunk sizes to time in the PGD-step measurement")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data", choices=("synthetic", "cifar"), default="synthetic",
                   help="synthetic uniform images, or a CIFAR-10 subset from the data root")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast in the package path")
    p.add_argument("--channels-last", choices=("on", "off"), default="on",
                   help="memory format of the package's training epochs (default: on)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--repeats", type=int, default=5,
                   help="naive and package runs alternate this many times (default 5)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.n is None:
        args.n = 8192 if torch.device(args.device).type == "cuda" else 256
    chunks = (*args.chunk_sweep, *([] if args.pgd_chunk is None else [args.pgd_chunk]))
    if min(args.n, args.batch_size, args.pgd_steps, args.repeats, *chunks) < 1:
        p.error("--n, --batch-size, --pgd-steps, --repeats and chunk sizes must be ≥ 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    cl = args.channels_last == "on"
    out = run(n=args.n, batch_size=args.batch_size, pgd_steps=args.pgd_steps, device=args.device,
              data=args.data, bf16=args.bf16, channels_last=cl, pgd_batch=args.pgd_batch,
              pgd_chunk=args.pgd_chunk, chunk_sweep=tuple(args.chunk_sweep),
              repeats=args.repeats)
    if args.json:
        from tsrobust.io import atomic_write

        with atomic_write(args.json) as tmp:
            tmp.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
