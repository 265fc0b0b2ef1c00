"""Deliberate bugs the tests must catch: ``python tests/mutants.py [NAME ...] [--list]``.

Each mutant below is one plausible bug where the book's conclusions rest — a resumed run that
silently restarts, adversarial training on the clean batch, a claim whose direction is reversed,
a flag or a generator that is ignored, an attack that draws from the global RNG. For each, the
script copies the working tree to a temporary folder, plants the bug in the copy (an exact text
replacement that must match once), runs the tests named for it against the copy (the copy first
on ``sys.path`` and on ``PYTHONPATH``, so subprocesses import it too) and prints whether they
caught it and with which test. The unchanged copy is run first: its tests must pass, or a catch
proves nothing. It exits 0 only when every mutant is caught; a mutant whose text no longer
matches the package is reported as stale (fix the list, not the package). It is a script for
whoever changes the joins it covers, not a CI step (it takes minutes); ``NAME`` arguments run
only the mutants whose name contains one of them.

Why a hand-written list rather than a mutation library (mutmut, cosmic-ray): those plant every
syntactic change of every line (thousands here: operators, constants, strings), each one a run of
the suite — hours on two cores — and most of the survivors say nothing (a changed error message,
an equivalent rewrite). The bugs that matter here are semantic and span lines ("feed the clean
batch", "ignore the checkpoint"); the ones listed were found surviving by an audit or are the
claim logic the chapters' verdicts rest on, and each comes with the tests that must catch it, so
the whole list runs in minutes and a survivor names the join that is unguarded. Add a mutant
with every bug of that kind you fix.

Not a test module: pytest collects only ``test_*.py`` (and ``__test__`` says so again).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__test__ = False

ROOT = Path(__file__).resolve().parents[1]
SKIP = (".git", ".venv", "_build", ".data", ".whl", "__pycache__", ".pytest_cache",
        "checkpoints", "*.egg-info", ".ipynb_checkpoints")
"""Not copied: version control, environments, builds, data, caches, checkpoints."""
PYTEST = ("-x", "-q", "-p", "no:cacheprovider")

TRAINING = "tsrobust/training.py"
ATTACKS = "tsrobust/attacks.py"
CH05 = "tsrobust/chapters/ch05_adversarial_training.py"
CH07 = "tsrobust/chapters/ch07_ccat_robust_features.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    """pytest arguments: the tests that must catch it."""
    more: tuple[tuple[str, str], ...] = ()
    """Further (old, new) replacements in the same file, for a bug that spans lines."""


MUTANTS = [
    # -- resume ------------------------------------------------------------------------------
    Mutant("resume: _fit ignores its checkpoint and retrains from scratch", TRAINING,
           "    if folder is not None and (folder / STATE_FILE).exists():",
           "    if False:",
           ("tests/test_training.py", "-k", "resume or sigkill")),
    Mutant("resume: a killed write's temporary is left in the checkpoint folder", TRAINING,
           "        remove_temporaries(folder)  # half-written files of a run killed inside a write",
           "        pass",
           ("tests/test_training.py", "-k", "sigkill")),
    Mutant("io: remove_temporaries removes nothing", "tsrobust/io.py",
           "    for p in stale:\n        p.unlink(missing_ok=True)\n",
           "",
           ("tests/test_io.py",)),
    # -- adversarial training ----------------------------------------------------------------
    Mutant("AT: PGD examples computed, the clean batch trained on", TRAINING,
           "            xb = attacks.pgd(attacks.oracle_objective(student, teacher), xb,",
           "            _ = attacks.pgd(attacks.oracle_objective(student, teacher), xb,",
           ("tests/test_training.py", "-k", "adversarial")),
    Mutant("AT: the teacher's target taken on the clean batch", TRAINING,
           "        if adversarial is not None:\n            student.eval()\n",
           "        x_clean = xb\n        if adversarial is not None:\n            student.eval()\n",
           ("tests/test_training.py", "-k", "adversarial"),
           more=(("                    t = teacher(xb).float()",
                  "                    t = teacher(x_clean).float()"),)),
    # -- claim logic (chapter 5, §5.4) -------------------------------------------------------
    Mutant("ch05: ε curve direction reversed", CH05,
           "results.direction_verdict(mean(b) - mean(a), m), results.margin_text(m)))",
           "results.direction_verdict(mean(a) - mean(b), m), results.margin_text(m)))",
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "claim")),
    Mutant("ch05: MBNC per layer — every layer → any layer", CH05,
           '"direction holds" if held == len(verdicts) else "differs")\n    return verdict, f"{held}',
           '"direction holds" if held else "differs")\n    return verdict, f"{held}',
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "claim")),
    Mutant("ch05: augmentation verdict inverted", CH05,
           "verdicts.append(results.direction_verdict(x - mean(y), m))",
           "verdicts.append(results.direction_verdict(mean(y) - x, m))",
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "claim")),
    Mutant("ch05: the transfer row attacks with the student (white-box), not the surrogate", CH05,
           "attacks.transfer_attack(\n            surrogate, teacher, xb,",
           "attacks.transfer_attack(\n            student, teacher, xb,",
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "transfer_row")),
    # -- claim logic (other chapters, the verdict functions) ---------------------------------
    Mutant("ch01: weak-teacher correlation direction reversed",
           "tsrobust/chapters/ch01_specialization_toys.py",
           "results.exceeds(-rho, 0.0, m)", "results.exceeds(rho, 0.0, m)",
           ("tests/chapters/test_ch01_specialization_toys.py", "-k", "claim")),
    Mutant("ch02: adversarial training's ε_out direction reversed",
           "tsrobust/chapters/ch02_low_rank_specialization.py",
           "    diffs = np.log10(a) - np.log10(b) if log else a - b\n",
           "    diffs = np.log10(b) - np.log10(a) if log else b - a\n",
           ("tests/chapters/test_ch02_low_rank_specialization.py", "-k", "claim")),
    Mutant("ch03: the eigenvalue spread's direction reversed",
           "tsrobust/chapters/ch03_oracle_teacher.py",
           "_direction(spread > SPREAD_RATIO),", "_direction(spread < SPREAD_RATIO),",
           ("tests/chapters/test_ch03_oracle_teacher.py", "-k", "claims")),
    Mutant("ch08: sign of the sparse student's α1 reversed",
           "tsrobust/chapters/ch08_active_teacher.py",
           'direction_holds=e["sparse_alpha_1"] < 0),',
           'direction_holds=e["sparse_alpha_1"] > 0),',
           ("tests/chapters/test_ch08_active_teacher.py", "-k", "example41")),
    Mutant("results: a tie counts as a direction (exceeds ≥)", "tsrobust/results.py",
           "return float(a) > float(b) + float(margin)",
           "return float(a) >= float(b) + float(margin)",
           ("tests/test_results.py", "tests/chapters/test_ch05_adversarial_training.py",
            "-k", "verdict or claim")),
    Mutant("results: a run too noisy to resolve the tolerance reproduces",
           "tsrobust/results.py",
           "if paper_scale and abs(float(ours) - float(paper)) <= tol and float(noise) <= tol:",
           "if paper_scale and abs(float(ours) - float(paper)) <= tol:",
           ("tests/test_results.py", "tests/chapters/test_ch05_adversarial_training.py",
            "-k", "verdict or claim")),
    # -- flags and generators that may be ignored --------------------------------------------
    Mutant("precision: the teacher's forward pass ignores it", TRAINING,
           "        with _autocast(device, precision):\n            logits = model(xb)",
           '        with _autocast(device, "fp32"):\n            logits = model(xb)',
           ("tests/test_training.py", "-k", "precision")),
    Mutant("precision: fgsm checks it, then ignores it", ATTACKS,
           "grad = _input_grad(objective, x, runtime.resolve_precision(precision, x.device), "
           "chunk_size)",
           "grad = _input_grad(objective, x, runtime.resolve_precision(precision, x.device) "
           "and \"fp32\", chunk_size)",  # still checked, then ignored
           ("tests/test_attacks.py", "-k", "precision")),
    Mutant("channels_last: the student's flag ignored", TRAINING,
           "    adversarial = _check_adversarial(adversarial)\n    device = choose_device(device)\n"
           "    precision = runtime.resolve_precision(precision, device)\n"
           "    fmt = _memory_format(channels_last)",
           "    adversarial = _check_adversarial(adversarial)\n    device = choose_device(device)\n"
           "    precision = runtime.resolve_precision(precision, device)\n"
           "    fmt = _memory_format(True)",
           ("tests/test_training.py", "-k", "channels_last")),
    Mutant("channels_last: the student's augmented batch left NCHW", TRAINING,
           "                                noise_std=noise_std, resample=resample\n"
           "                                ).contiguous(memory_format=fmt)",
           "                                noise_std=noise_std, resample=resample\n"
           "                                )",
           ("tests/test_training.py", "-k", "channels_last")),
    Mutant("channels_last: the teacher's weights left NCHW beside a channels-last student",
           TRAINING, "    teacher.to(device=device, memory_format=fmt)",
           "    teacher.to(device=device)",
           ("tests/test_training.py", "-k", "channels_last")),
    Mutant("data: a random subset ignores the generator", "tsrobust/data.py",
           "    if generator is None:\n        idx = np.arange(n)",
           "    if True:\n        idx = np.arange(n)",
           ("tests/test_data.py", "-k", "subset")),
    Mutant("transfer: examples made by the teacher against itself, not the surrogate", ATTACKS,
           "        return pgd(oracle_objective(surrogate, teacher), x,",
           "        return pgd(oracle_objective(teacher, teacher), x,",
           ("tests/test_attacks.py", "-k", "transfer")),
    # -- CCAT, robust features, specialization counts (chapter 7) -----------------------------
    Mutant("ccat: λ(δ) ignores ρ", "tsrobust/ccat.py",
           "    return (1 - (norm / eps).clamp(max=1.0)).pow(rho)",
           "    return (1 - (norm / eps).clamp(max=1.0))",
           ("tests/test_ccat.py", "-k", "transition or calibrated")),
    Mutant("ccat: ỹ mixes λ the wrong way round", "tsrobust/ccat.py",
           "    return lam * onehot + (1 - lam) / num_classes",
           "    return (1 - lam) * onehot + lam / num_classes",
           ("tests/test_ccat.py", "-k", "calibrated or ccat_batch")),
    Mutant("ccat: the CCAT images computed, the clean batch trained on", TRAINING,
           "            xb, soft = ccat_lib.ccat_batch(student, teacher, xb, generator=generator,",
           "            _, soft = ccat_lib.ccat_batch(student, teacher, xb, generator=generator,",
           ("tests/test_ccat.py", "-k", "train_student")),
    Mutant("robust features: x_r not projected onto [0, 1]", "tsrobust/robust_features.py",
           "                x_r.clamp_(0, 1)", "                pass",
           ("tests/test_robust_features.py",)),
    Mutant("specialization: NC = 0.9 counts as specialized", "tsrobust/specialization.py",
           "    return (torch.as_tensor(nc) > threshold).sum(0)",
           "    return (torch.as_tensor(nc) >= threshold).sum(0)",
           ("tests/test_specialization.py", "-k", "specialized_counts")),
    Mutant("ch07: the rank correlation's direction reversed", CH07,
           "                 results.direction_verdict(rho, m),",
           "                 results.direction_verdict(-rho, m),",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "rank")),
    Mutant("ch07: Table 5's order read backwards", CH07,
           "    for a, b in zip(TABLE5_ORDER, TABLE5_ORDER[1:]):",
           "    for a, b in zip(TABLE5_ORDER[1:], TABLE5_ORDER):",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "table5")),
    Mutant("ch07: uniformity rejected when p is large", CH07,
           "    rejected = [t for t in testable if t[\"p\"] < UNIFORMITY_P]",
           "    rejected = [t for t in testable if t[\"p\"] > UNIFORMITY_P]",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "uniformity")),
    # -- the global RNG ----------------------------------------------------------------------
    Mutant("RNG: the ℓ2 start's direction from the global RNG", ATTACKS,
           "    if norm == \"l2\":  # a Gaussian direction scaled to a uniform radius, as "
           "torchattacks' PGDL2\n",
           "    if norm == \"l2\":  # a Gaussian direction scaled to a uniform radius, as "
           "torchattacks' PGDL2\n        d = torch.randn_like(d)\n",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: the ℓ1 start's Laplace draw from the global RNG", ATTACKS,
           "torch.log1p(-torch.rand(x.shape, generator=generator, device=x.device,",
           "torch.log1p(-torch.rand(x.shape, device=x.device,",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: CW reseeds the global RNG", ATTACKS,
           "    _check_budget(0.0, lr, steps)\n",
           "    _check_budget(0.0, lr, steps)\n    torch.manual_seed(0)\n",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: robust accuracy attacks with the global generator", ATTACKS,
           "                x_adv = make_adversarial(xb, generator)",
           "                x_adv = make_adversarial(xb, torch.default_generator)",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: adversarial training's starts from the global generator", TRAINING,
           "random_start=True, generator=generator, precision=precision,",
           "random_start=True, generator=torch.default_generator, precision=precision,",
           ("tests/test_training.py", "-k", "rng")),
]

def _copy(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*SKIP), symlinks=True)
    return dest


def _pytest(tree: Path, args) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *PYTEST, *args], cwd=tree, env=env,
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].split(" ", 1)[1]
    return "?"


def _plant(tree: Path, m: Mutant) -> str | None:
    """Apply the mutant to the copy; the reason it cannot be applied, or None."""
    path = tree / m.file
    text = path.read_text()
    for old, new in ((m.old, m.new), *m.more):
        if text.count(old) != 1:
            return f"stale: the text to replace occurs {text.count(old)} times in {m.file}"
        text = text.replace(old, new)
    path.write_text(text)
    return None


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for m in MUTANTS:
            print(f"{m.name}\n    {m.file}; pytest {shlex.join(m.tests)}")
        return 0
    chosen = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    if not chosen:
        print(f"no mutant's name contains any of {argv}; --list shows them")
        return 1
    with tempfile.TemporaryDirectory(prefix="tsrobust-mutants-") as tmp:
        tmp = Path(tmp)
        base = _copy(tmp / "base")
        files = sorted({a for m in chosen for a in m.tests if a.startswith("tests/")})
        rc, out, secs = _pytest(base, files)
        print(f"unchanged copy: pytest {' '.join(files)} → exit {rc} ({secs:.0f} s)")
        if rc != 0:
            print(out[-3000:])
            print("the unchanged copy fails its tests: fix that first; no mutant was run")
            return 1
        shutil.rmtree(base)
        failed = []
        for i, m in enumerate(chosen, 1):
            tree = _copy(tmp / f"m{i}")
            problem = _plant(tree, m)
            if problem is None:
                rc, out, secs = _pytest(tree, m.tests)
                if rc == 1:
                    status = f"caught    ({secs:4.0f} s) by {_first_failure(out)}"
                elif rc == 0:
                    status = f"SURVIVED  ({secs:4.0f} s) pytest {shlex.join(m.tests)} passed"
                else:
                    status = f"ERROR     pytest exit {rc}: {out.strip().splitlines()[-1:]}"
            else:
                status = problem.upper()[:5] + problem[5:]
            if not status.startswith("caught"):
                failed.append(m.name)
            print(f"[{i:2}/{len(chosen)}] {m.name}\n        {status}", flush=True)
            shutil.rmtree(tree)
    print(f"\n{len(chosen) - len(failed)} of {len(chosen)} mutants caught"
          + (": every one." if not failed else "; not caught: " + "; ".join(failed)))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
