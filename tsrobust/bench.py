"""Benchmark: a naive training/attack loop against the package's, in one run.

    python -m tsrobust.bench [--quick] [--n 256] [--batch-size 128] [--pgd-steps 10]
                             [--threads T] [--json] [--json-file out.json]

Three measurements, each on the same models (the pruned teacher 45-32-32-20 and the student
50-35-35-22 of source A §5.1, randomly initialized: speed does not depend on the weights), the
same data (synthetic images by default, ``--data cifar`` for a CIFAR-10 subset) and the same
amount of work:

1. **ST epoch**: one standard-training epoch (logit target, §5.1);
2. **AT epoch**: one adversarial-training epoch, every batch replaced by oracle-adversarial
   examples from ℓ∞ PGD-``--pgd-steps`` (Eq. 3; ε = 10/255, α = 0.01 as in §5.1), then a
   training step;
3. **PGD step**: one attack on one batch, in image-steps per second (the inner loop of 2 and of
   every robust-accuracy evaluation).

Each is timed for three paths, run in turn (naive, package fp32, package auto, naive, ...):

- *naive*: how such loops are commonly written: batches assembled on the host from a list of
  per-image tensors (like a ``DataLoader`` without workers), fp32, NCHW, the attack calling
  ``loss.backward()`` on the whole batch at once (which also computes and accumulates every
  parameter gradient of student and teacher), a ``loss.item()`` per batch;
- *package fp32* and *package auto*: :func:`tsrobust.training.train_student` and
  :func:`tsrobust.attacks.pgd` with ``precision="fp32"`` and ``precision="auto"``
  (:func:`tsrobust.runtime.resolve_precision`: bf16 autocast where the device has native bf16
  units): device-resident data and index batches, channels-last, input-only gradients
  (``torch.autograd.grad``) with frozen parameters, no host synchronisation inside an epoch; on a
  CPU the attack takes its gradients ``attacks.cpu_chunk`` images at a time.

The reported ratio is naive time ÷ package time, the median of the per-repeat ratios (with their
range); the CPU-time ratio beside it (process CPU seconds) is less sensitive to other processes
on a shared machine (on one thread; on several it also counts threads waiting for each other).
The PGD step is also timed in variants that show what each part buys: NCHW fp32 in one pass
does exactly the naive attack's arithmetic (same adversarial examples), so its ratio is what
input-only gradients alone buy; ``--chunk-sweep`` adds other chunk sizes. Every
package variant reports the share of coordinates in which its adversarial examples (3 steps, no
random start) differ from the naive attack's.

**Achieved GFLOP/s** count the useful arithmetic of each measurement analytically
(:func:`layer_macs`, :func:`net_flops`): 2 FLOPs per multiply-accumulate of every conv and linear
layer; a forward pass once; a backward pass once more per gradient taken — w.r.t. each layer's
input (all layers for an attack, which differentiates the image; all but the first for a training
step) and w.r.t. the weights (training steps only). Biases, ReLUs, losses, optimizer and PGD
updates are not counted, nor the parameter gradients the naive attack computes without needing
them: all paths are credited with the same work. The **peak** beside them is derived from the
hardware (:func:`peak_flops`): on a CPU cores × clock × FLOP/cycle for the instruction set found,
on a GPU SMs × clock × FLOP/clock/SM of its compute capability; "unknown" where it cannot be told.

``--json`` makes the last line of the output one JSON object with the results, among them
``st_epoch_ratio``, ``at_epoch_ratio``, ``pgd_step_ratio`` (package at ``auto`` ÷ naive) and
``precision`` (what ``auto`` resolved to); ``--json-file PATH`` writes the same object to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn

from tsrobust import attacks, runtime
from tsrobust.io import atomic_write
from tsrobust.models import PRUNED_WIDTHS, STUDENT_WIDTHS, ConvNet
from tsrobust.data import load_cifar10
from tsrobust.training import MOMENTUM, train_student

ADV_EPS = 10 / 255
"""§5.1: ℓ∞ budget of the adversarial training."""
ADV_ALPHA = 0.01
"""§5.1: PGD step size."""
PGD_STEPS = 10
"""PGD steps of the AT epoch and of the PGD-step measurement (PGD-10, a common AT budget; §5.1's
evaluation attack uses 40 — ``--pgd-steps 40``)."""
LR = 0.01
"""SGD learning rate of both loops (the value does not change the speed)."""
SAME_TOL = 1e-6
"""Adversarial coordinates closer than this to the naive attack's count as the same."""
DIFF_STEPS = 3
"""PGD steps (no random start) after which adversarial examples are compared with the naive
attack's."""
QUICK = {"n": 32, "batch_size": 32, "repeats": 3, "pgd_step_steps": 4}
"""``--quick``: sizes for a run of a minute or two (explicit options override them)."""
PATHS = ("naive", "fp32", "auto")
"""The timed paths: the naive loop, the package at ``precision="fp32"`` and at ``"auto"``."""


# -- timing -----------------------------------------------------------------------------------

def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> tuple[float, float]:
    """Wall and process CPU seconds of one run of ``fn`` (the device queue drained before and
    after)."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def _paired(fns: dict, device, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU times of each of ``fns``, run in turn ``repeats`` times (naive, package, naive,
    ...).

    Interleaving puts every pair under the same machine load: on a shared machine the load
    drifts, and timing all naive runs before all package runs would put the drift into the ratio.
    """
    times = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = _timed(fn, device)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def _ratios(t_naive: list[float], t_pkg: list[float]) -> dict:
    """Per-repeat speed-ups naive/package: their median (the reported ratio) and range."""
    r = sorted(a / b for a, b in zip(t_naive, t_pkg))
    return {"ratio": statistics.median(r), "ratio_min": r[0], "ratio_max": r[-1]}


# -- FLOPs and peak -----------------------------------------------------------------------------

def layer_macs(model: nn.Module, image_shape=(3, 32, 32)) -> list[int]:
    """Multiply-accumulates per image of each ``Conv2d`` and ``Linear`` layer of ``model``, in the
    order a forward pass runs them (found by running one image through it)."""
    macs, hooks = [], []

    def count(layer, inputs, out):
        if isinstance(layer, nn.Conv2d):
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * \
                layer.kernel_size[1]
            macs.append(out[0].numel() * per_output)
        else:
            macs.append(layer.in_features * layer.out_features)

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(count))
    p = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros(1, *image_shape, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
    return macs


def net_flops(macs: list[int], *, input_grad: bool = False, train: bool = False) -> int:
    """FLOPs per image of one pass over a net with per-layer ``macs`` (:func:`layer_macs`).

    Forward: 2 FLOPs per MAC. ``input_grad`` (an attack): + the backward pass to the image, 2
    FLOPs per MAC of every layer. ``train`` (a training step): + the weight gradients of every
    layer and the gradients w.r.t. the inputs of all layers but the first (the data need none),
    2 FLOPs per MAC each.
    """
    total = sum(macs)
    flops = 2 * total
    if input_grad:
        flops += 2 * total
    if train:
        flops += 2 * total + 2 * (total - macs[0])
    return flops


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (empty where there is none)."""
    out = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def _cpu_clock_ghz() -> tuple[float | None, str]:
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(max_freq.read_text()) / 1e6, "maximum clock (cpufreq)"
    except (OSError, ValueError):
        pass
    try:
        return float(_cpuinfo()["cpu MHz"]) / 1e3, "clock reported by /proc/cpuinfo"
    except (KeyError, ValueError):
        return None, "clock unknown"


def _cpu_fp32_per_cycle(flags, info) -> tuple[int | None, str]:
    """fp32 FLOPs per cycle and core: FMA pipes × vector lanes × 2."""
    vendor, family = info.get("vendor_id", ""), info.get("cpu family", "")
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family == "25":
            return 32, "AVX-512 on Zen 4: 2 FMA pipes × 8 fp32 lanes (512-bit ops split in two) × 2"
        if vendor == "AuthenticAMD" and family.isdigit() and int(family) >= 26:
            return 64, "AVX-512 on Zen 5: 2 FMA pipes × 16 fp32 lanes × 2"
        if vendor == "GenuineIntel":
            return 64, "AVX-512: 2 FMA units × 16 fp32 lanes × 2 (parts with one unit: half)"
        return None, "AVX-512 on an unknown core"
    if "avx2" in flags and "fma" in flags:
        return 32, "AVX2: 2 FMA pipes × 8 fp32 lanes × 2"
    return None, "instruction set without a known FMA rate"


CUDA_BF16_PER_CLOCK_SM = {(8, 0): 2048, (8, 6): 1024, (8, 9): 1024, (9, 0): 4096, (10, 0): 8192}
"""Dense bf16 tensor-core FLOPs per clock and SM, by compute capability (NVIDIA's architecture
white papers: A100, GA10x, AD10x, H100, B200)."""
CUDA_FP32_PER_CLOCK_SM = {7: 128, 8: 256, 9: 256, 10: 256}
"""FP32 FMA FLOPs per clock and SM of the CUDA cores (64 fp32 cores per SM on sm_70–80, 128 from
sm_86 on), by major compute capability; sm_80 is the exception, handled in :func:`peak_flops`."""


def peak_flops(device, precision: str, threads: int | None = None) -> tuple[float | None, str]:
    """The device's peak FLOP/s for matrix arithmetic in ``precision`` (``"fp32"``/``"bf16"``)
    and how it was derived, or ``(None, reason)`` where it cannot be told.

    CPU: cores used (``threads``, at most the physical cores) × clock × FLOP/cycle of the
    instruction set found (fp32 FMA vectors; bf16: ×2 with AVX512-BF16's paired products, 1024
    FLOP/cycle with AMX tiles, the fp32 figure where bf16 is emulated). CUDA: SMs × clock × the
    FLOP/clock/SM of its compute capability (bf16 tensor cores; fp32 convolutions use TF32 tensor
    cores, half the bf16 rate, when cuDNN is allowed TF32, else the CUDA cores).
    """
    device = runtime.choose_device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        cc = (props.major, props.minor)
        clock = getattr(props, "clock_rate", 0) / 1e6  # kHz → GHz
        if not clock:
            return None, f"{props.name}: clock unknown"
        bf16 = CUDA_BF16_PER_CLOCK_SM.get(cc)
        if precision == "bf16":
            per, what = bf16, "bf16 tensor cores"
        elif bf16 is not None and torch.backends.cudnn.allow_tf32:
            per, what = bf16 // 2, "TF32 tensor cores (cuDNN allow_tf32)"
        else:
            per = 128 if cc == (8, 0) else CUDA_FP32_PER_CLOCK_SM.get(props.major)
            what = "fp32 CUDA cores"
        if per is None:
            return None, f"{props.name} (sm_{cc[0]}{cc[1]}): FLOP/clock not tabulated"
        sms = props.multi_processor_count
        return (sms * clock * 1e9 * per,
                f"{sms} SMs × {clock:.2f} GHz × {per} FLOP/clock/SM ({what}, sm_{cc[0]}{cc[1]})")
    if device.type != "cpu":
        return None, f"no peak known for {device.type}"
    info = _cpuinfo()
    flags = runtime.cpu_flags()
    caps = getattr(torch.cpu, "get_capabilities", lambda: {})()
    physical = caps.get("num_physical_cores") or os.cpu_count() or 1
    cores = min(threads or torch.get_num_threads(), physical)
    clock, clock_how = _cpu_clock_ghz()
    per, isa = _cpu_fp32_per_cycle(flags, info)
    if per is not None and precision == "bf16":
        if "amx_bf16" in flags:
            per, isa = 1024, "AMX-BF16 tiles: 1024 bf16 FLOP/cycle"
        elif "avx512_bf16" in flags:
            per, isa = 2 * per, f"AVX512-BF16: 2 products per fp32 lane, 2 × ({isa})"
        else:
            isa = f"bf16 emulated: the fp32 rate, {isa}"
    if per is None or clock is None:
        return None, f"{isa}; {clock_how}"
    return (cores * clock * 1e9 * per,
            f"{cores} core{'s' if cores != 1 else ''} × {clock:.2f} GHz ({clock_how}) × {per} "
            f"FLOP/cycle ({isa})")


# -- models and data ----------------------------------------------------------------------------

def _models(device, generator_seed: int = 0):
    teacher = ConvNet(PRUNED_WIDTHS, generator=torch.Generator().manual_seed(generator_seed))
    student = ConvNet(STUDENT_WIDTHS, generator=torch.Generator().manual_seed(generator_seed + 1))
    return student.to(device).eval(), teacher.to(device).eval()


def _data(n: int, source: str, seed: int) -> torch.Tensor:
    if source == "synthetic":
        return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
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


# -- the package paths --------------------------------------------------------------------------

def _pgd_package(student, teacher, x, *, steps, channels_last, precision, chunk_size):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    student.to(memory_format=fmt), teacher.to(memory_format=fmt)
    xs = x.contiguous(memory_format=fmt)
    with attacks.frozen(student, teacher):
        return attacks.pgd(attacks.oracle_objective(student, teacher), xs, eps=ADV_EPS,
                           alpha=ADV_ALPHA, steps=steps, norm="linf", random_start=False,
                           precision=precision, chunk_size=chunk_size)


def _package_epoch(x, *, batch_size, steps, adversarial, precision, channels_last, device, seed):
    adv = (dict(norm="linf", eps=ADV_EPS, alpha=ADV_ALPHA, steps=steps) if adversarial else None)

    def once():
        student, teacher = _models(device)
        gen = torch.Generator(device=device).manual_seed(seed)
        train_student(student, teacher, x, target="logit", epochs=1, lr=LR, optimizer="sgd",
                      batch_size=batch_size, adversarial=adv, generator=gen, device=device,
                      progress=False, precision=precision, channels_last=channels_last)

    return once


# -- the benchmark ----------------------------------------------------------------------------

def run(*, n: int = 256, batch_size: int = 128, pgd_steps: int = PGD_STEPS, device="cpu",
        data: str = "synthetic", channels_last: bool = True, pgd_batch: int | None = None,
        pgd_step_steps: int | None = None,
        pgd_chunk: int | None = None, chunk_sweep: tuple[int, ...] = (), repeats: int = 5,
        seed: int = 0, log=print) -> dict:
    """Run the three measurements; return rates, GFLOP/s and package/naive ratios of each path.

    ``channels_last``: memory format of the package paths (the package default: on).
    ``pgd_batch``, ``pgd_step_steps``: images and steps of the PGD-step measurement (default: the
    batch size and ``pgd_steps``).
    ``pgd_chunk``: images per gradient pass in the package's PGD step (default
    ``attacks.cpu_chunk``: ``attacks.CPU_CHUNK`` on a CPU, the whole batch on an accelerator);
    ``chunk_sweep``: further chunk sizes to time alongside (at ``auto`` precision).
    ``repeats``: the paths alternate this many times; rates are from the median times, the
    ratio is the median of the per-repeat ratios (with its range). Every repeat starts from the
    same weights and seeds.
    """
    device = runtime.choose_device(device)
    auto = runtime.resolve_precision("auto", device)
    precisions = {"fp32": "fp32", "auto": auto}
    x_cpu = _data(n, data, seed)
    images = list(x_cpu.unbind(0))  # the naive loop's "dataset": a list of per-image tensors
    x_dev = x_cpu.to(device)
    threads = torch.get_num_threads()
    student, teacher = _models(device)
    macs_s, macs_t = layer_macs(student), layer_macs(teacher)
    pgd_flops = net_flops(macs_s, input_grad=True) + net_flops(macs_t, input_grad=True)
    st_flops = net_flops(macs_t) + net_flops(macs_s, train=True)
    peaks = {p: peak_flops(device, p, threads) for p in ("fp32", auto)}
    out = {"device": str(device), "cpu": _cpuinfo().get("model name") if device.type == "cpu"
           else torch.cuda.get_device_name(device), "threads": threads, "n": n,
           "batch_size": batch_size, "pgd_steps": pgd_steps, "data": data, "repeats": repeats,
           "channels_last": channels_last, "precision": auto, "load_average": _load(),
           "peak_gflops": {p: (v / 1e9 if v else None) for p, (v, _) in peaks.items()},
           "peak_how": {p: how for p, (_, how) in peaks.items()},
           "flops_per_image": {"pgd_step": pgd_flops, "st_epoch": st_flops,
                               "at_epoch": pgd_steps * pgd_flops + st_flops}}

    def epoch_fns(adversarial):
        fns = {"naive": lambda: naive_epoch(
            *_models(device), images, batch_size=batch_size, device=device,
            generator=torch.Generator().manual_seed(seed), adversarial=adversarial,
            steps=pgd_steps)}
        for path, prec in precisions.items():
            fns[path] = _package_epoch(x_dev, batch_size=batch_size, steps=pgd_steps,
                                       adversarial=adversarial, precision=prec,
                                       channels_last=channels_last, device=device, seed=seed)
        return fns

    # warm-up: first calls pay one-time costs (imports, kernel selection) in every path
    warm = min(n, batch_size)
    naive_epoch(*_models(device), images[:warm], batch_size=warm, device=device,
                generator=torch.Generator().manual_seed(0), adversarial=True, steps=1)
    for prec in precisions.values():
        _package_epoch(x_dev[:warm], batch_size=warm, steps=1, adversarial=True, precision=prec,
                       channels_last=channels_last, device=device, seed=0)()

    rows = []
    for key, name, adversarial in (("st_epoch", "ST epoch", False),
                                   ("at_epoch", f"AT epoch (PGD-{pgd_steps})", True)):
        times = _paired(epoch_fns(adversarial), device, repeats)
        rows.append(_row(name, key, times, n, "images/s", out, precisions))

    # the PGD step alone, on one batch: naive, the package at fp32 and auto (channels-last,
    # gradients in chunks on a CPU) and, to show what each part buys, NCHW fp32 in one pass
    pb = min(n, pgd_batch or batch_size)
    xb = x_dev[:pb]

    def chunked(prec, c=None):
        c = attacks.cpu_chunk(xb, prec) if c is None else c
        return c if c is not None and c < pb else None

    variants = {"package fp32": (channels_last, "fp32", chunked("fp32", pgd_chunk)),
                "package auto": (channels_last, auto, chunked(auto, pgd_chunk)),
                "NCHW fp32, one pass": (False, "fp32", None)}
    for c in chunk_sweep:
        if c < pb and c != variants["package auto"][2]:
            variants[f"package auto, chunks of {c}"] = (channels_last, auto, c)
    nets = {name: _models(device) for name in ("naive", *variants)}

    timed_steps = pgd_step_steps or pgd_steps

    def pgd_fn(name, steps=timed_steps):
        s, t = nets[name]
        if name == "naive":
            return lambda: naive_pgd(s, t, xb, eps=ADV_EPS, alpha=ADV_ALPHA, steps=steps,
                                     generator=None)
        cl, prec, c = variants[name]
        return lambda: _pgd_package(s, t, xb, steps=steps, channels_last=cl, precision=prec,
                                    chunk_size=c)

    for name in nets:
        pgd_fn(name, 1)()  # warm-up
    times = _paired({name: pgd_fn(name) for name in nets}, device, repeats)
    times["fp32"], times["auto"] = times["package fp32"], times["package auto"]
    rows.append(_row("PGD step", "pgd_step", times, pb * timed_steps, "image-steps/s", out,
                     precisions))
    ref = pgd_fn("naive", DIFF_STEPS)()
    variant_rows = {}
    for name, (cl, prec, c) in variants.items():
        same = pgd_fn(name, DIFF_STEPS)()
        wall = statistics.median(times[name]["wall"])
        variant_rows[name] = {
            "channels_last": cl, "precision": prec, "chunk_size": c,
            "per_s": pb * timed_steps / wall,
            "gflops": pb * timed_steps * pgd_flops / wall / 1e9,
            **_ratios(times["naive"]["wall"], times[name]["wall"]),
            "cpu_ratio": _ratios(times["naive"]["cpu"], times[name]["cpu"])["ratio"],
            "max_abs_diff_vs_naive": float((same - ref).abs().amax()),
            "frac_differing_vs_naive": float(((same - ref).abs() > SAME_TOL).float().mean())}
    out["rows"] = rows
    out["pgd_variants"] = variant_rows
    for r in rows:
        out[f"{r['key']}_ratio"] = r["auto"]["ratio"]
        out[f"{r['key']}_ratio_fp32"] = r["fp32"]["ratio"]
    out["pgd_batch"], out["pgd_step_steps"] = pb, timed_steps
    out["load_average_after"] = _load()
    _report(out, log)
    return out


def _row(name, key, times, work, unit, out, precisions) -> dict:
    """One measurement: per path its rate (``work`` per median wall time), achieved GFLOP/s and
    share of the peak; per package path its wall- and CPU-time ratios to the naive path."""
    per_item = out["flops_per_image"][key]  # per image (epochs) or per image-step (PGD)
    r = {"measurement": name, "key": key, "unit": unit}
    for path in PATHS:
        wall = statistics.median(times[path]["wall"])
        gflops = work * per_item / wall / 1e9
        peak = out["peak_gflops"][precisions.get(path, "fp32")]
        r[path] = {"per_s": work / wall, "wall_s": wall,
                   "cpu_s": statistics.median(times[path]["cpu"]), "gflops": gflops,
                   "share_of_peak": gflops / peak if peak else None}
        if path != "naive":
            r[path].update(_ratios(times["naive"]["wall"], times[path]["wall"]))
            r[path]["cpu_ratio"] = _ratios(times["naive"]["cpu"], times[path]["cpu"])["ratio"]
    return r


def _load() -> float | None:
    """The 1-minute load average (None where the system does not tell)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _report(out: dict, log):
    auto = out["precision"]
    log(f"device {out['device']} ({out['cpu']}), {out['threads']} threads, n={out['n']}, "
        f"batch {out['batch_size']}, PGD-{out['pgd_steps']} (PGD step: {out['pgd_batch']} "
        f"images × {out['pgd_step_steps']} steps), data={out['data']}, {out['repeats']} "
        f"interleaved repeats (medians); auto = {auto}")
    load = [v for v in (out["load_average"], out["load_average_after"]) if v is not None]
    cores = os.cpu_count() or 1
    if out["device"] == "cpu" and load and max(load) > cores:
        log(f"load average {max(load):.1f} on {cores} CPUs: other processes compete for them; "
            f"absolute rates are low and noisy, and with several threads every parallel step "
            f"waits for its slowest thread (compare --threads 1)")
    for p, how in out["peak_how"].items():
        g = out["peak_gflops"][p]
        log(f"peak {p}: " + (f"{g:.0f} GFLOP/s = {how}" if g else f"unknown ({how})"))
    log("GFLOP/s: 2 per multiply-accumulate of each conv/linear layer; forward once, backward "
        "once per gradient taken (input: every layer for an attack, all but the first for a "
        "training step; weights: training only); the same work credited to every path")
    log(f"{'measurement':20s} {'path':14s} {'rate':>10s} {'GFLOP/s':>8s} {'of peak':>7s} "
        f"{'ratio':>7s} {'range':>11s} {'CPU-time ratio':>14s}")
    for r in out["rows"]:
        for path in PATHS:
            v = r[path]
            label = {"naive": "naive", "fp32": "package fp32", "auto": f"package {auto}"}[path]
            share = f"{100 * v['share_of_peak']:6.1f}%" if v["share_of_peak"] else "      ?"
            ratio = (f"{v['ratio']:6.2f}× {v['ratio_min']:5.2f}–{v['ratio_max']:<5.2f} "
                     f"{v['cpu_ratio']:13.2f}×" if path != "naive" else "")
            log(f"{r['measurement'] if path == 'naive' else '':20s} {label:14s} "
                f"{v['per_s']:10.1f} {v['gflops']:8.1f} {share} {ratio}")
        log(f"{'':20s} ({r['unit']})")
    for name, v in out["pgd_variants"].items():
        what = (f"{name} ({v['precision']}, "
                f"{'channels-last' if v['channels_last'] else 'NCHW'}, "
                f"{'chunks of ' + str(v['chunk_size']) if v['chunk_size'] else 'one pass'})")
        log(f"  PGD {what:45s}: {v['per_s']:7.1f} image-steps/s ({v['ratio']:.2f}× naive); "
            f"after {DIFF_STEPS} steps max |x′ − x′_naive| = {v['max_abs_diff_vs_naive']:.2e}, "
            f"on {100 * v['frac_differing_vs_naive']:.3f} % of coordinates")
    log("(coordinates differ where a gradient ≈ 0 changes sign under another summation order, "
        "and by bf16 rounding)")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tsrobust.bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"small sizes for a run of about a minute ({QUICK}); explicit options win")
    p.add_argument("--n", type=int, default=None,
                   help="images per epoch (default 256 on CPU, 8192 on CUDA)")
    p.add_argument("--batch-size", type=int, default=None, help="default 128")
    p.add_argument("--pgd-steps", type=int, default=PGD_STEPS,
                   help=f"PGD steps of the AT epoch and the PGD-step measurement "
                        f"(default {PGD_STEPS})")
    p.add_argument("--pgd-batch", type=int, default=None,
                   help="images in the PGD-step measurement (default: the batch size)")
    p.add_argument("--pgd-step-steps", type=int, default=None,
                   help="steps timed in the PGD-step measurement (default: --pgd-steps)")
    p.add_argument("--pgd-chunk", type=int, default=None,
                   help="images per gradient pass in the package's PGD step "
                        f"(default: {attacks.CPU_CHUNK} on a CPU, the whole batch on a GPU)")
    p.add_argument("--chunk-sweep", type=int, nargs="+", default=(),
                   help="further chunk sizes to time in the PGD-step measurement")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--data", choices=("synthetic", "cifar"), default="synthetic",
                   help="synthetic uniform images, or a CIFAR-10 subset from the data root")
    p.add_argument("--channels-last", choices=("on", "off"), default="on",
                   help="memory format of the package paths (default: on)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--repeats", type=int, default=None,
                   help="the paths alternate this many times (default 5)")
    p.add_argument("--json", action="store_true",
                   help="print the results as one JSON object on the last line")
    p.add_argument("--json-file", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    device = runtime.choose_device(args.device)
    defaults = {"n": 8192 if device.type == "cuda" else 256, "batch_size": 128, "repeats": 5}
    for key, value in [*(QUICK.items() if args.quick else ()), *defaults.items()]:
        if getattr(args, key) is None:  # explicit options first, then --quick's, then defaults
            setattr(args, key, value)
    chunks = (*args.chunk_sweep, *([] if args.pgd_chunk is None else [args.pgd_chunk]))
    sizes = (args.pgd_batch, args.pgd_step_steps)
    if min(args.n, args.batch_size, args.pgd_steps, args.repeats, *chunks,
           *(s for s in sizes if s is not None)) < 1:
        p.error("--n, --batch-size, --pgd-steps, --pgd-batch, --pgd-step-steps, --repeats and "
                "chunk sizes must be ≥ 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = run(n=args.n, batch_size=args.batch_size, pgd_steps=args.pgd_steps, device=device,
              data=args.data, channels_last=args.channels_last == "on",
              pgd_batch=args.pgd_batch, pgd_step_steps=args.pgd_step_steps,
              pgd_chunk=args.pgd_chunk,
              chunk_sweep=tuple(args.chunk_sweep), repeats=args.repeats)
    if args.json_file:
        with atomic_write(args.json_file) as tmp:
            tmp.write_text(json.dumps(out, indent=1) + "\n")
    if args.json:
        print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()


# -- how long a profile takes: FLOP estimates ----------------------------------------------------

REFERENCE_GPU = "an A100-class GPU in bf16 (312 TFLOP/s dense tensor-core peak)"
"""The GPU the ``gpu`` profiles are sized for: one modern data-centre GPU (A100; an H100 is
faster, an L4 about 40 % of it, a T4 has no bf16 tensor cores and takes many times longer)."""
REFERENCE_PEAK_FLOPS = 312e12
"""Its dense bf16 peak, FLOP/s (NVIDIA A100 datasheet)."""
T4_PEAK_FLOPS = 8.1e12
"""A T4's fp32 peak, FLOP/s (NVIDIA T4 datasheet): a free Colab GPU, compute capability 7.5, no
bf16 tensor cores, so ``precision="auto"`` runs fp32 there."""
REFERENCE_UTILIZATION = 0.3
"""The share of peak assumed for these small conv nets (batches of 128–2000 CIFAR images): an
assumption, not a measurement; ``python -m tsrobust.bench --device cuda`` measures it."""


def run_flops(student_macs: list[int], teacher_macs: list[int], *, images: int, epochs: int,
              pgd_steps: int = 0) -> int:
    """FLOPs of training a student from a frozen teacher (:func:`net_flops`): per image and
    epoch one teacher forward pass and one student training step, plus ``pgd_steps`` attack
    steps (a forward and an input-gradient pass of both nets each; Eq. 3 of source A)."""
    per_image = net_flops(teacher_macs) + net_flops(student_macs, train=True)
    attack = net_flops(student_macs, input_grad=True) + net_flops(teacher_macs, input_grad=True)
    return epochs * images * (per_image + pgd_steps * attack)


def teacher_flops(teacher_macs: list[int], *, images: int, epochs: int) -> int:
    """FLOPs of training a net on labels: one training step per image and epoch."""
    return epochs * images * net_flops(teacher_macs, train=True)


def attack_flops(student_macs: list[int], teacher_macs: list[int], *, images: int,
                 steps: int) -> int:
    """FLOPs of attacking ``images`` with ``steps`` gradient steps on the student-teacher logit
    distance (an evaluation attack)."""
    return images * steps * (net_flops(student_macs, input_grad=True)
                             + net_flops(teacher_macs, input_grad=True))


def reference_minutes(flops: float, peak: float = REFERENCE_PEAK_FLOPS) -> float:
    """Minutes that ``flops`` take at :data:`REFERENCE_UTILIZATION` of ``peak`` FLOP/s (default:
    :data:`REFERENCE_GPU`)."""
    return flops / (peak * REFERENCE_UTILIZATION) / 60


def estimate_markdown(flops: float, what: str) -> str:
    """One sentence: ``flops`` of ``what`` and the minutes they take on the reference GPU."""
    return (f"{what} is about {flops:.1e} FLOP, counted from the settings (2 FLOP per "
            f"multiply-accumulate of every layer, forward and backward passes): "
            f"**about {reference_minutes(flops):.0f} minutes** on {REFERENCE_GPU} at an assumed "
            f"{REFERENCE_UTILIZATION:.0%} of its peak; about "
            f"{reference_minutes(flops, T4_PEAK_FLOPS):.0f} minutes on a T4 (fp32 only, "
            f"{T4_PEAK_FLOPS / 1e12:.1f} TFLOP/s) at the same share.")
