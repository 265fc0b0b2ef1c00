"""Chapter 5: adversarial training of the student, robustness and specialization (source A §5.4).

Everything the chapter computes, checks and draws lives here; the notebook calls these
functions and shows what they return.

- :func:`run_table1`: a surrogate student, a standard-trained (ST, logit) student and an
  adversarially trained (AT, oracle-adversarial ℓ∞ PGD, Eq. 3, teacher-target) student; at each
  checkpoint of AT and at the end of ST, the robust accuracy (§5.4: student-teacher argmax
  agreement on adversarial examples) under ℓ∞/ℓ2/ℓ1 PGD, FGSM, CW-ℓ2 and black-box transfer from
  the surrogate, repeated for μ and σ² (Table 1), and the specialization snapshot: NC per layer,
  sorted BNC (Fig. 3), ε_in/ε_out curves of the first layer (Fig. 4), MBNC and the
  unspecialized/specialized ratio (Fig. 6). :func:`record_seeds` records it for every seed (the
  first with every attack, the others with ℓ∞ PGD, :func:`seed_attacks`).
- :func:`run_augmentation`: AT and ST again with data augmentation (Fig. 6).
- :func:`run_deep`: the 5-layer teacher and students (Fig. 5).
- :func:`leading_runs`, :func:`shown_extra`: the book leads with the largest recorded run; this
  build's own run is the pipeline check (:func:`pipeline_markdown`).
- :func:`table1_rows`, :func:`claim_rows`: our numbers beside the paper's and the claims of
  §5.4, judged by the spread across seeds; the figures 5.1–5.4 (:func:`plot_sorted_bnc`,
  :func:`plot_eps_curves`, :func:`plot_fig6`, :func:`plot_deep`) with their seed spread.

Where source A is silent (ℓ1/ℓ2 budgets, CW settings, the surrogate, how the repeats differ)
the choices are settings of :data:`SETTINGS`, stated in the chapter. The students are trained
and attacked like chapter 4's (:mod:`tsrobust.chapters.cifar`), so that the standard-trained ones
compare.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch

from tsrobust import attacks, bench, results
from tsrobust.chapters.cifar import (
    ATTACK_ALPHA, ATTACK_EPS, ATTACK_STEPS, EVAL_SEED_OFFSET, MEASURES, N_PCA, N_TRAIN,
    PAPER_CHECKPOINTS, PCA_RANK, PRECISION, STUDENT_BATCH_SIZE, STUDENT_IMAGES_DOC, STUDENT_LR,
    STUDENT_OPTIMIZER, larger_profiles_sentence, notebook_inputs,
    oracle_teacher, paper_epoch, record_for, scaled_checkpoints, seed_config, seed_name,
    shown_run_markdown, teacher_run,
)
from tsrobust.data import CIFAR10, RESAMPLE_MODES
from tsrobust.models import (
    DEEP_PRUNED_WIDTHS,
    DEEP_TEACHER_WIDTHS,
    PRUNED_WIDTHS,
    ConvNet,
    build_student,
)
from tsrobust.params import Setting, resolve_notebook
from tsrobust.plotting import seed_band
from tsrobust.runtime import resolve_precision
from tsrobust.specialization import patch_basis, specialization_at
from tsrobust.training import (
    OPTIMIZERS,
    checkpoint_folder,
    discard_checkpoints,
    model_digest,
    train_student,
)

CHAPTER = "05_adversarial_training"
"""Record key of this chapter."""

ATTACKS = ("clean", "linf_pgd", "l2_pgd", "l1_pgd", "fgsm", "cw", "transfer")
"""Rows of Table 1 (plus "clean": agreement without attack, for reference)."""
ATTACK_LABELS = {
    "clean": "no attack (clean agreement)",
    "linf_pgd": "ℓ∞ PGD",
    "l2_pgd": "ℓ2 PGD",
    "l1_pgd": "ℓ1 PGD",
    "fgsm": "FGSM",
    "cw": "CW (ℓ2)",
    "transfer": "Blackbox-transfer",
}

PAPER_TABLE1 = {
    # Source A, Table 1: robust accuracy μ (%) and σ² of students trained T epochs.
    # Columns: AT (50), AT (100), AT (150), AT (200), AT (300), ST (300).
    "linf_pgd": [(78.79, 1.1e-4), (84.02, 4.2e-5), (87.57, 2.8e-5), (88.01, 8.2e-6),
                 (88.20, 2.9e-5), (74.39, 4.2e-5)],
    "l2_pgd": [(91.85, 7.3e-6), (95.98, 7.0e-6), (96.21, 4.7e-6), (95.95, 4.8e-6),
               (96.31, 5.4e-6), (94.01, 1.0e-5)],
    "l1_pgd": [(92.30, 9.9e-6), (96.18, 6.5e-6), (96.56, 3.1e-6), (96.36, 3.0e-6),
               (96.59, 3.7e-6), (94.51, 4.8e-6)],
    "fgsm": [(90.65, 7.7e-6), (95.18, 4.7e-6), (95.55, 6.8e-6), (94.87, 5.3e-6),
             (95.28, 4.9e-6), (91.12, 2.1e-5)],
    "cw": [(78.89, 1.0e-4), (91.50, 4.9e-5), (91.96, 4.3e-5), (94.52, 2.2e-5),
           (92.63, 1.3e-5), (86.19, 2.7e-5)],
    "transfer": [(43.14, 2.6e-5), (45.31, 4.7e-5), (46.06, 4.2e-5), (46.68, 3.7e-5),
                 (46.99, 2.1e-5), (43.48, 3.2e-5)],
}
PAPER_TABLE1_COLUMNS = ("AT (50)", "AT (100)", "AT (150)", "AT (200)", "AT (300)", "ST (300)")
"""The paper's Table 1 columns, in the order of :data:`PAPER_TABLE1`'s lists."""

SURROGATE_SEED_OFFSET = 1000
"""The surrogate student's initialization and batches use ``seed + 1000``: trained independently."""

SETTINGS = {
    "n_train": N_TRAIN,  # chapter 3's: the recorded teacher is reused
    "n_test": Setting(int, smoke=1000, cpu=10_000, gpu=10_000, paper=10_000, min=1, max=10_000,
                      doc="CIFAR-10 test images (the pool robust accuracy is measured on)"),
    "n_student": Setting(int, smoke=1000, cpu=20_000, gpu=50_000, paper=50_000, min=1,
                         max=50_000, doc=STUDENT_IMAGES_DOC),
    "seeds": Setting(int, smoke=1, cpu=3, gpu=3, paper=3, min=1,
                     doc="AT and ST students trained from seeds seed, seed + 1, …: their spread "
                         "is the noise the verdicts judge by (the first seed is attacked by "
                         "every attack, the others by ℓ∞ PGD)"),
    "epochs": Setting(int, smoke=2, cpu=3, gpu=20, paper=300, min=1,
                      doc="student training epochs (§5.4: AT up to 300, ST 300)"),
    "checkpoints": Setting(tuple, smoke=(1, 2), cpu=(1, 2, 3), gpu=scaled_checkpoints(20),
                           paper=PAPER_CHECKPOINTS, min=1,
                           doc="AT epochs evaluated for Table 1 (§5.4: 50…300)"),
    "surrogate_epochs": Setting(int, smoke=2, cpu=3, gpu=20, paper=300, min=1,
                                doc="epochs of the transfer attack's surrogate student (ST)"),
    "optimizer": STUDENT_OPTIMIZER,  # as chapter 4, so ST students are comparable
    "lr": STUDENT_LR,
    "batch_size": STUDENT_BATCH_SIZE,
    "at_eps": Setting(float, smoke=10 / 255, cpu=10 / 255, gpu=10 / 255, paper=10 / 255,
                      min=0.0, doc="ℓ∞ budget of adversarial training (§5.1: 10/255)"),
    "at_alpha": Setting(float, smoke=0.01, cpu=0.01, gpu=0.01, paper=0.01, min=0.0,
                        doc="PGD step size of adversarial training (§5.1: 0.01)"),
    "at_steps": Setting(int, smoke=2, cpu=10, gpu=40, paper=40, min=1,
                        doc="PGD steps of adversarial training (§5.1: 40; the cpu profile "
                            "trains with PGD-10)"),
    "n_eval": Setting(int, smoke=50, cpu=1000, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images attacked per evaluation (drawn afresh from n_test "
                          "for each repeat)"),
    "repeats": Setting(int, smoke=2, cpu=1, gpu=3, paper=5, min=1,
                       doc="repeated evaluations for μ and σ² (§5.4)"),
    "eval_steps": ATTACK_STEPS,  # chapter 4's attack, so that the ST numbers compare
    "linf_eps": ATTACK_EPS,
    "linf_alpha": ATTACK_ALPHA,
    "l2_eps": Setting(float, smoke=0.5, cpu=0.5, gpu=0.5, paper=0.5, min=0.0,
                      doc="ℓ2 budget (not in the source; 0.5, the common CIFAR-10 ℓ2 budget)"),
    "l2_alpha": Setting(float, smoke=0.25, cpu=0.03125, gpu=0.03125, paper=0.03125, min=0.0,
                        doc="ℓ2 PGD step (2.5·ε/steps)"),
    "l1_eps": Setting(float, smoke=10.0, cpu=10.0, gpu=10.0, paper=10.0, min=0.0,
                      doc="ℓ1 budget (not in the source; 10, of the order used for CIFAR-10)"),
    "l1_alpha": Setting(float, smoke=5.0, cpu=0.625, gpu=0.625, paper=0.625, min=0.0,
                        doc="ℓ1 PGD step, the ℓ1 size of one sparse step (2.5·ε/steps)"),
    "l1_sparsity": Setting(float, smoke=attacks.L1_SPARSITY, cpu=attacks.L1_SPARSITY,
                           gpu=attacks.L1_SPARSITY, paper=attacks.L1_SPARSITY, min=0.0,
                           max=0.999,
                           doc="ℓ1 PGD moves the top (1 − sparsity) gradient coordinates"),
    "fgsm_eps": Setting(float, smoke=10 / 255, cpu=10 / 255, gpu=10 / 255, paper=10 / 255,
                        min=0.0, doc="FGSM step (ℓ∞ budget; as training)"),
    "cw_c": Setting(float, smoke=attacks.CW_C, cpu=attacks.CW_C, gpu=attacks.CW_C,
                    paper=attacks.CW_C, min=0.0,
                    doc="CW weight of the margin term (not in the source)"),
    "cw_steps": Setting(int, smoke=5, cpu=50, gpu=50, paper=100, min=1, doc="CW Adam steps"),
    "cw_lr": Setting(float, smoke=attacks.CW_LR, cpu=attacks.CW_LR, gpu=attacks.CW_LR,
                     paper=attacks.CW_LR, min=0.0, doc="CW Adam learning rate"),
    "cw_max_l2": Setting(float, smoke=0.5, cpu=0.5, gpu=0.5, paper=0.5, min=0.0,
                         doc="CW examples count only within this ℓ2 distance (as l2_eps)"),
    "n_spec": Setting(int, smoke=100, cpu=500, gpu=500, paper=1000, min=2, max=10_000,
                      doc="test images whose activations give the NC of §5.2"),
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
    "augmentation": Setting(bool, smoke=True, cpu=False, gpu=True, paper=True,
                            doc="train AT and ST with data augmentation too (Fig. 6; off in the "
                                "cpu profile, whose time goes to the seeds)"),
    "aug_resample": Setting(str, smoke="nearest", cpu="nearest", gpu="nearest",
                            paper="nearest", choices=RESAMPLE_MODES,
                            doc="how augmentation reads rotated images off the pixel grid: "
                                "'nearest' (torchvision's default) moves pixels, 'bilinear' "
                                "averages neighbours, a low-pass filter on the patches §5.3 "
                                "studies"),
    "deep": Setting(bool, smoke=True, cpu=False, gpu=True, paper=True,
                    doc="run the 5-layer teacher and students (Fig. 5; off in the cpu profile)"),
    "deep_n_train": Setting(int, smoke=1000, cpu=50_000, gpu=50_000, paper=50_000, min=1,
                            max=50_000,
                            doc="training images of the 5-layer teacher and its students"),
    "deep_teacher_epochs": Setting(int, smoke=4, cpu=12, gpu=60, paper=200, min=1,
                                   doc="epochs of the 5-layer teacher (as chapter 3's teacher "
                                       "in cpu/gpu/paper; fewer in smoke)"),
    "deep_teacher_optimizer": Setting(str, smoke="adam", cpu="adam", gpu="adam", paper="adam",
                                      choices=OPTIMIZERS,
                                      doc="optimizer of the 5-layer teacher (not chapter 3's SGD: "
                                          "with it this teacher stays at chance)"),
    "deep_teacher_lr": Setting(float, smoke=1e-3, cpu=1e-3, gpu=1e-3, paper=1e-3, min=0.0,
                               doc="learning rate of the 5-layer teacher, cosine-annealed to 0"),
    "precision": PRECISION,
}
"""Chapter 5's parameters (``tsrobust.params`` API).

The ``cpu`` profile keeps the floors of a run that can test §5.4's directions on two CPU cores —
students on 20 000 images, AT with PGD-10, the paper's PGD-40 evaluation on 1 000 test images,
3 seeds of AT and ST — and spends nothing else: 3 epochs (AT measured at epochs 1, 2 and 3),
the full attack suite on the first seed only, no augmentation or 5-layer runs. Its work, in units
of one forward and backward pass of student and teacher on one image: AT 3 seeds × 3 epochs ×
20 000 images × (10 PGD steps + 1 training step) = 1.98 M; ST and surrogate 4 × 3 × 20 000 =
0.24 M; ℓ∞ PGD-40 of 4 columns × 3 seeds × 1 000 images × 40 steps = 0.48 M; the other attacks
of the first seed (ℓ2, ℓ1, transfer PGD-40, FGSM, CW-50 at about half a pass per step) 4 columns
× 1 000 × 146 = 0.58 M: about 3.3 M passes."""

HEADLINE_ATTACKS = ("clean", "linf_pgd")
"""The attacks every seed is evaluated with: the clean agreement and §5.1's ℓ∞ PGD, the attack of
the headline comparison (AT vs ST); the other attacks of Table 1 run on the first seed."""


def check_settings(cfg):
    """Cross-parameter checks (single values are checked by ``resolve``)."""
    if cfg.n_student > cfg.n_train:
        raise ValueError(f"n_student = {cfg.n_student} must be ≤ n_train = {cfg.n_train}")
    if cfg.n_eval > cfg.n_test or cfg.n_spec > cfg.n_test:
        raise ValueError(f"n_eval = {cfg.n_eval} and n_spec = {cfg.n_spec} must be ≤ n_test = "
                         f"{cfg.n_test} (they are drawn from the test images)")
    if cfg.n_pca > cfg.n_train:
        raise ValueError(f"n_pca = {cfg.n_pca} must be ≤ n_train = {cfg.n_train}")
    bad = [e for e in cfg.checkpoints if e > cfg.epochs]
    if bad or len(set(cfg.checkpoints)) != len(cfg.checkpoints):
        raise ValueError(
            f"checkpoints {cfg.checkpoints} must be distinct epochs in 1..{cfg.epochs}")
    if cfg.deep_n_train > cfg.n_train:
        raise ValueError(f"deep_n_train = {cfg.deep_n_train} must be ≤ n_train = {cfg.n_train}")


# -- evaluation -------------------------------------------------------------------------------

def eval_subsets(n_pool: int, cfg, generator: torch.Generator) -> list[torch.Tensor]:
    """The image subsets of the ``cfg.repeats`` evaluations: ``cfg.n_eval`` indices into a pool
    of ``n_pool`` test images each, drawn afresh per repeat. Every student and every attack is
    evaluated on these same subsets, so all comparisons are paired."""
    if not 1 <= cfg.n_eval <= n_pool:
        raise ValueError(f"n_eval = {cfg.n_eval} must be in 1..{n_pool} (the test pool)")
    return [torch.randperm(n_pool, generator=generator, device=generator.device)[: cfg.n_eval]
            for _ in range(cfg.repeats)]


def attack_suite(student, teacher, surrogate, x_pool: torch.Tensor, cfg,
                 generator: torch.Generator, subsets: list[torch.Tensor] | None = None,
                 names=ATTACKS) -> dict[str, tuple[float, float]]:
    """Table 1 for one student: ``{attack: (μ, σ²)}`` of the robust accuracy (fractions), for
    the attacks ``names`` (all of :data:`ATTACKS` by default; ``surrogate`` may be ``None``
    without "transfer"). Attacks and the agreement checks run in ``cfg.precision``.

    Each of the ``cfg.repeats`` evaluations attacks one subset of ``cfg.n_eval`` images of
    ``x_pool`` (``subsets``, else drawn by :func:`eval_subsets`); every attack and the clean
    agreement use the same subsets, so the rows are paired, and so are students evaluated on the
    same ``subsets``. σ² (sample variance over the evaluations) covers both the choice of images
    and the attacks' random starts.
    """
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attacks {unknown}; choose from {ATTACKS}")
    if subsets is None:
        subsets = eval_subsets(len(x_pool), cfg, generator)
    prec = cfg.precision
    teacher_label = lambda z: teacher(z).argmax(1)  # noqa: E731 - the oracle label at x′
    makers = {
        "clean": lambda xb, g: xb,
        "linf_pgd": lambda xb, g: attacks.pgd(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.linf_eps,
            alpha=cfg.linf_alpha, steps=cfg.eval_steps, norm="linf", generator=g,
            precision=prec),
        "l2_pgd": lambda xb, g: attacks.pgd(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.l2_eps, alpha=cfg.l2_alpha,
            steps=cfg.eval_steps, norm="l2", generator=g, precision=prec),
        "l1_pgd": lambda xb, g: attacks.pgd(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.l1_eps, alpha=cfg.l1_alpha,
            steps=cfg.eval_steps, norm="l1", generator=g, l1_sparsity=cfg.l1_sparsity,
            precision=prec),
        "fgsm": lambda xb, g: attacks.fgsm(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.fgsm_eps, precision=prec),
        "cw": lambda xb, g: attacks.cw_l2(
            student, xb, teacher_label, c=cfg.cw_c, steps=cfg.cw_steps, lr=cfg.cw_lr,
            max_l2=cfg.cw_max_l2, precision=prec),
        "transfer": lambda xb, g: attacks.transfer_attack(
            surrogate, teacher, xb, eps=cfg.linf_eps, alpha=cfg.linf_alpha,
            steps=cfg.eval_steps, norm="linf", generator=g, precision=prec),
    }
    return {name: attacks.robust_accuracy_of(student, teacher, x_pool, makers[name],
                                             generator=generator, subsets=subsets,
                                             precision=prec)
            for name in ATTACKS if name in names}


def specialization_snapshot(student, teacher, x_spec: torch.Tensor, basis: torch.Tensor) -> dict:
    """NC of every layer and the §5.2–5.3 summaries
    (:func:`tsrobust.specialization.specialization_at`, dead teacher nodes left out), as lists
    for a record: per layer MBNC, sorted BNC, the unspecialized/specialized ratio and the
    dead-node counts; for the first layer the ε_in/ε_out curves and the Pearson score of
    (ρ, ε_in)."""
    m = specialization_at(student, teacher, x_spec, basis)
    return {
        "mbnc": m["mbnc"],
        "ratio": m["ratio"],
        "sorted_bnc": [c.tolist() for c in m["sorted_bnc"]],
        "eps_in_curve": m["eps_in_curve"].tolist(),
        "eps_out_curve": m["eps_out_curve"].tolist(),
        "rho_eps_in_pearson": m["rho_eps_in_pearson"],
        "dead_teacher": m["dead_teacher"],
        "dead_student": m["dead_student"],
    }


# -- training ---------------------------------------------------------------------------------

def _run_folder(cfg, name: str):
    digest = hashlib.sha1(json.dumps(cfg.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
    return checkpoint_folder(cfg.profile, CHAPTER, f"{name}-{digest}")


INIT = "init"
"""Array-name prefix of the untrained student's specialization snapshot."""


def _initial_student(cfg, *, kind: str = "student", seed_offset: int = 0, device="cpu"):
    """The student before training: built from ``seed + seed_offset`` (AT and ST share it)."""
    init = torch.Generator().manual_seed(cfg.seed + seed_offset)
    return build_student(kind, generator=init).to(device).eval()


def train(name: str, teacher, x: torch.Tensor, cfg, *, kind: str = "student",
          adversarial: bool, augment: bool, seed_offset: int = 0, checkpoint_epochs=(),
          on_checkpoint=None, epochs: int | None = None, device="cpu", progress: bool = True):
    """Train one student of this chapter with ``tsrobust.training.train_student`` (logit target,
    teacher-target AT when ``adversarial``; augmentation resampled by ``cfg.aug_resample``;
    arithmetic in ``cfg.precision``), resumable in a checkpoint folder that is removed when the
    run ends. Returns the student (eval mode)."""
    student = _initial_student(cfg, kind=kind, seed_offset=seed_offset, device=device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + seed_offset)
    adv = (dict(norm="linf", eps=cfg.at_eps, alpha=cfg.at_alpha, steps=cfg.at_steps)
           if adversarial else None)
    folder = _run_folder(cfg, name)
    train_student(student, teacher, x, target="logit", epochs=epochs or cfg.epochs, lr=cfg.lr,
                  batch_size=cfg.batch_size, optimizer=cfg.optimizer, augment=augment,
                  resample=cfg.aug_resample, adversarial=adv,
                  checkpoint_dir=folder, checkpoint_epochs=checkpoint_epochs,
                  on_checkpoint=on_checkpoint, generator=gen, device=device,
                  precision=cfg.precision, progress=progress)
    discard_checkpoints(folder)
    return student.eval()


def _snapshot_arrays(prefix: str, snap: dict) -> dict[str, np.ndarray]:
    out = {}
    for l, curve in enumerate(snap["sorted_bnc"]):
        out[f"{prefix}__sorted_bnc_{l}"] = np.asarray(curve)
    out[f"{prefix}__eps_in"] = np.asarray(snap["eps_in_curve"])
    out[f"{prefix}__eps_out"] = np.asarray(snap["eps_out_curve"])
    return out


def _scalars(snap: dict) -> dict:
    out = {k: snap[k] for k in ("mbnc", "ratio", "rho_eps_in_pearson", "dead_teacher",
                                "dead_student")}
    out["eps_in_mean"] = float(np.mean(snap["eps_in_curve"]))
    out["eps_out_mean"] = float(np.mean(snap["eps_out_curve"]))
    return out


def run_table1(cfg, data, teacher, *, device="cpu", progress: bool = True, names=ATTACKS):
    """Surrogate, ST and AT students; Table 1 and the specialization snapshots (Figs. 3, 4, 6).

    ``names``: the attacks evaluated (the surrogate is trained only for "transfer"). Returns
    ``(values, arrays)`` for ``results.record``: ``values["table"][column][attack] = [μ, σ²]``
    with columns ``"AT (e)"`` for each checkpoint e and ``"ST (epochs)"``;
    ``values["spec"][column]`` the MBNC/ratio per layer and the (ρ, ε_in) Pearson score;
    arrays ``<column>__sorted_bnc_<layer>``, ``<column>__eps_in``, ``<column>__eps_out``.
    """
    check_settings(cfg)
    x_train = data.x_train[: cfg.n_student].to(device)
    x_pool = data.x_test.to(device)
    x_spec = data.x_test[: cfg.n_spec].to(device)
    eigvals, basis = patch_basis(data.x_train[: cfg.n_pca], cfg.pca_rank)
    evaluator = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
    subsets = eval_subsets(len(x_pool), cfg, evaluator)
    table, spec, arrays = {}, {}, {"pca_eigenvalues": eigvals.numpy()}
    # the untrained student (AT and ST start from it): the baseline of every specialization curve
    init = specialization_snapshot(_initial_student(cfg, device=device), teacher, x_spec, basis)
    arrays.update(_snapshot_arrays(INIT, init))

    surrogate = (train("surrogate", teacher, x_train, cfg, adversarial=False, augment=False,
                       seed_offset=SURROGATE_SEED_OFFSET, epochs=cfg.surrogate_epochs,
                       device=device, progress=progress) if "transfer" in names else None)

    def measure(column):
        def on_checkpoint(epoch, student):
            col = column(epoch)
            table[col] = {k: list(v) for k, v in attack_suite(
                student, teacher, surrogate, x_pool, cfg, evaluator, subsets, names).items()}
            snap = specialization_snapshot(student, teacher, x_spec, basis)
            spec[col] = _scalars(snap)
            arrays.update(_snapshot_arrays(col, snap))
        return on_checkpoint

    train("st", teacher, x_train, cfg, adversarial=False, augment=False,
          checkpoint_epochs=(cfg.epochs,), on_checkpoint=measure(lambda e: f"ST ({e})"),
          device=device, progress=progress)
    train("at", teacher, x_train, cfg, adversarial=True, augment=False,
          checkpoint_epochs=cfg.checkpoints, on_checkpoint=measure(lambda e: f"AT ({e})"),
          device=device, progress=progress)
    at_cols = [f"AT ({e})" for e in sorted(cfg.checkpoints)]
    values = {"columns": at_cols + [f"ST ({cfg.epochs})"],
              "attacks": [a for a in ATTACKS if a in names],
              "table": table, "spec": spec, "init_spec": _scalars(init), "epochs": cfg.epochs,
              "checkpoints": sorted(cfg.checkpoints), "repeats": cfg.repeats,
              "n_eval": cfg.n_eval, "seed": cfg.seed, "teacher_widths": list(teacher.widths),
              "precision": resolve_precision(cfg.precision, device),
              "surrogate_clean_agreement": None if surrogate is None else float(
                  attacks.agreement(surrogate.eval(), teacher.eval(), x_spec).float().mean())}
    return values, arrays


def run_augmentation(cfg, data, teacher, *, device="cpu", progress: bool = True):
    """AT and ST with data augmentation (crop, flip, rotation; §5.4, Fig. 6): their final
    specialization snapshots. Returns ``(values, arrays)`` like :func:`run_table1`."""
    check_settings(cfg)
    x_train = data.x_train[: cfg.n_student].to(device)
    x_spec = data.x_test[: cfg.n_spec].to(device)
    _, basis = patch_basis(data.x_train[: cfg.n_pca], cfg.pca_rank)
    spec, arrays = {}, {}
    for name, adversarial in (("AT", True), ("ST", False)):
        col = f"{name} + aug ({cfg.epochs})"
        student = train(f"{name.lower()}_aug", teacher, x_train, cfg, adversarial=adversarial,
                        augment=True, device=device, progress=progress)
        snap = specialization_snapshot(student, teacher, x_spec, basis)
        spec[col] = _scalars(snap)
        arrays.update(_snapshot_arrays(col, snap))
    return {"columns": list(spec), "spec": spec}, arrays


def run_deep(cfg, data, *, device="cpu", progress: bool = True):
    """Fig. 5: the 5-layer teacher (pruned 45-32-32-20-64) and 5-layer students (50-35-35-22-64),
    AT and ST, on the first ``deep_n_train`` training images: specialization snapshots and the
    ℓ∞ robust accuracy. Returns ``(values, arrays)``; the teacher's own record is chapter 3's
    ``teacher_deep``."""
    check_settings(cfg)
    sub = CIFAR10(data.x_train[: cfg.deep_n_train], data.y_train[: cfg.deep_n_train],
                  data.x_test, data.y_test, data.copy)
    _, teacher, teacher_res = oracle_teacher(cfg.profile, cfg.seed, sub, device=device,
                                             deep=True, progress=progress,
                                             teacher_epochs=cfg.deep_teacher_epochs,
                                             teacher_optimizer=cfg.deep_teacher_optimizer,
                                             teacher_lr=cfg.deep_teacher_lr,
                                             precision=cfg.precision)
    x_train = sub.x_train[: cfg.n_student].to(device)
    x_pool = data.x_test.to(device)
    x_spec = data.x_test[: cfg.n_spec].to(device)
    _, basis = patch_basis(data.x_train[: cfg.n_pca], cfg.pca_rank)
    evaluator = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
    subsets = eval_subsets(len(x_pool), cfg, evaluator)
    spec, robust, arrays = {}, {}, {}
    for name, adversarial in (("AT", True), ("ST", False)):
        col = f"{name} deep ({cfg.epochs})"
        student = train(f"{name.lower()}_deep", teacher, x_train, cfg, kind="deep",
                        adversarial=adversarial, augment=False, device=device, progress=progress)
        snap = specialization_snapshot(student, teacher, x_spec, basis)
        spec[col] = _scalars(snap)
        arrays.update(_snapshot_arrays(col, snap))
        linf = lambda xb, g, s=student: attacks.pgd(  # noqa: E731
            attacks.oracle_objective(s, teacher), xb, eps=cfg.linf_eps, alpha=cfg.linf_alpha,
            steps=cfg.eval_steps, norm="linf", generator=g, precision=cfg.precision)
        robust[col] = list(attacks.robust_accuracy_of(student, teacher, x_pool, linf,
                                                      generator=evaluator, subsets=subsets,
                                                      precision=cfg.precision))
    values = {"columns": list(spec), "spec": spec, "linf_robust": robust,
              "teacher_test_accuracy": teacher_res.values["test_accuracy_pruned"],
              "teacher_widths": list(teacher.widths)}
    return values, arrays


# -- recorded runs ----------------------------------------------------------------------------

def teacher_fingerprint(teacher) -> dict:
    """What a record of this chapter depends on besides its parameters: the teacher's weights
    (by digest) and the definition of the measurements (:data:`tsrobust.chapters.cifar.MEASURES`);
    a record made with another teacher is recomputed."""
    return {"teacher_digest": model_digest(teacher), "measures": MEASURES}


def seed_attacks(k: int) -> tuple[str, ...]:
    """The attacks of the ``k``-th seed: all of Table 1 for the first, :data:`HEADLINE_ATTACKS`
    for the others."""
    return ATTACKS if k == 0 else HEADLINE_ATTACKS


def record_names(cfg) -> dict:
    """The Table 1 records a run with ``cfg`` makes, ``{k: (chapter, name, config)}``: one per
    seed ``k`` (:func:`tsrobust.chapters.cifar.seed_config`), ``table1`` for the first,
    ``table1_seed<s>`` for the others."""
    return {k: (CHAPTER, seed_name("table1", cfg, k), seed_config(cfg, SETTINGS, k))
            for k in range(cfg.seeds)}


def record_table1(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True,
                  name: str = "table1", names=ATTACKS):
    """:func:`run_table1` recorded as ``name`` (loaded when recorded with this teacher)."""
    return record_for(CHAPTER, name, cfg, lambda: run_table1(
        cfg, data, teacher, device=device, progress=progress, names=names), data=data,
        fingerprint=teacher_fingerprint(teacher), device=device)


def record_seed(cfg, data: CIFAR10, teacher, k: int, *, device="cpu", progress: bool = True):
    """The Table 1 run of the ``k``-th seed of a run with ``cfg`` (:func:`record_names`; the
    attacks of :func:`seed_attacks`), recorded."""
    _, name, seed_cfg = record_names(cfg)[k]
    return record_table1(seed_cfg, data, teacher, device=device, progress=progress, name=name,
                         names=seed_attacks(k))


def record_seeds(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True) -> list:
    """The Table 1 run of every seed (:func:`record_seed`), recorded: a list of Results, first
    seed first."""
    return [record_seed(cfg, data, teacher, k, device=device, progress=progress)
            for k in record_names(cfg)]


def record_augmentation(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True):
    """:func:`run_augmentation` recorded as ``augmentation``."""
    return record_for(CHAPTER, "augmentation", cfg, lambda: run_augmentation(
        cfg, data, teacher, device=device, progress=progress), data=data,
        fingerprint=teacher_fingerprint(teacher), device=device)


def record_deep(cfg, data: CIFAR10, *, device="cpu", progress: bool = True):
    """:func:`run_deep` recorded as ``deep`` (its teacher is recorded by chapter 3's key)."""
    return record_for(CHAPTER, "deep", cfg, lambda: run_deep(
        cfg, data, device=device, progress=progress), data=data,
        fingerprint={"measures": MEASURES}, device=device)


def _run(profile: str, params: dict, what: str, k: int = 0):
    cfg = resolve_notebook(SETTINGS, profile, params)
    device, data, teacher = notebook_inputs(cfg, cuda_mode=params.get("cuda_mode", "default"),
                                            data_on_device=False)
    if what == "seed":
        return record_seed(cfg, data, teacher, k, device=device)
    if what == "augmentation":
        return record_augmentation(cfg, data, teacher, device=device)
    return record_deep(cfg, data, device=device)


def independent_runs(profile: str, **params) -> list[results.Run]:
    """The chapter's recorded runs as runs of their own (cluster jobs), with the notebook's
    settings for ``params``: the Table 1 run of each seed (:func:`record_seed`), the augmented
    students and the deep network when the profile has them; all after chapter 3's teacher
    (the deep network trains its own teacher inside its run)."""
    cfg = resolve_notebook(SETTINGS, profile, params)
    check_settings(cfg)
    teacher = teacher_run(cfg, cuda_mode=params.get("cuda_mode", "default"),
                          data_on_device=False)
    runs = [results.Run(f"{CHAPTER}/{name}", partial(_run, profile, params, "seed", k),
                        settings=seed_cfg.as_dict(), needs=(teacher,))
            for k, (_, name, seed_cfg) in record_names(cfg).items()]
    for what, on in (("augmentation", cfg.augmentation), ("deep", cfg.deep)):
        if on:
            runs.append(results.Run(f"{CHAPTER}/{what}", partial(_run, profile, params, what),
                                    settings=cfg.as_dict(), needs=(teacher,)))
    return runs


def leading_runs(cfg, own: list) -> tuple:
    """What the chapter shows: the book leads with the largest recorded run.

    ``(config, t1s, own_run)``: the Table 1 records of every seed of the largest profile above
    ``cfg``'s for which all are present (:func:`tsrobust.results.largest_recorded_set`), else
    this build's own ``own``; ``own_run`` says which."""
    big, found = results.largest_recorded_set(cfg, SETTINGS, record_names)
    if found is None:
        return cfg, own, True
    return big, [found[k] for k in sorted(found)], False


def recorded_run(name: str, cfg):
    """The record ``name`` (``augmentation``, ``deep``) of a run with ``cfg``, if it was made
    (``None`` when switched off or not recorded)."""
    return results.recorded_with(CHAPTER, name, cfg)


# -- presenting the results --------------------------------------------------------------------

VERDICT_ABS_TOL = 3.0
"""A robust accuracy counts as reproduced within ±3 percentage points of the paper's (and only in
a run at the paper's settings)."""

TALK_AT_TABLE = {"AT (50)": 81.18, "AT (100)": 82.57, "AT (150)": 84.07, "AT (200)": 85.35,
                 "AT (300)": 86.81, "ST (300)": 62.77}
"""Source D (the talk) shows one robust-accuracy row for the same students: its AT numbers are
none of Table 1's ℓ∞ PGD row (78.79 … 88.20), and its ST (300) is Table 3's 62.77, not
Table 1's 74.39."""


def table1_markdown(values: dict) -> str:
    """Our Table 1 as markdown: μ (%) and σ² (of the accuracy as a fraction) per attack/column,
    for one seed's run."""
    cols = values["columns"]
    head = "| attack | " + " | ".join(f"{c} μ (%) | {c} σ²" for c in cols) + " |"
    rule = "|---|" + "---|---|" * len(cols)
    lines = [head, rule]
    for a in values["attacks"]:
        cells = []
        for c in cols:
            mu, var = values["table"][c][a]
            cells += [f"{100 * mu:.2f}", f"{var:.1e}"]
        lines.append(f"| {ATTACK_LABELS[a]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_markdown(t1s: list[dict]) -> str:
    """The ℓ∞ PGD row and the clean agreement of every seed, and their mean ± sd: the spread the
    verdicts judge by."""
    cols = t1s[0]["columns"]
    lines = ["| seed | " + " | ".join(f"{c}: ℓ∞ PGD (%)" for c in cols)
             + " | clean agreement, " + cols[-1] + " (%) |",
             "|---|" + "---|" * (len(cols) + 1)]
    for v in t1s:
        lines.append(f"| {v['seed']} | " + " | ".join(f"{_mu(v, c, 'linf_pgd'):.2f}" for c in cols)
                     + f" | {_mu(v, cols[-1], 'clean'):.2f} |")
    if len(t1s) > 1:
        lines.append("| mean ± sd | " + " | ".join(
            results.mean_pm(_mus(t1s, c, "linf_pgd"), ".2f") for c in cols)
            + f" | {results.mean_pm(_mus(t1s, cols[-1], 'clean'), '.2f')} |")
    return "\n".join(lines)


def paper_table1_markdown() -> str:
    """Source A's Table 1 (the paper's numbers, for reading beside ours), and the talk's row."""
    head = "| attack | " + " | ".join(f"{c} μ (%) | {c} σ²" for c in PAPER_TABLE1_COLUMNS) + " |"
    lines = [head, "|---|" + "---|---|" * len(PAPER_TABLE1_COLUMNS)]
    for a, row in PAPER_TABLE1.items():
        lines.append(f"| {ATTACK_LABELS[a]} | " + " | ".join(
            f"{mu:.2f} | {var:.1e}" for mu, var in row) + " |")
    lines.append("| robust accuracy (talk, source D) | " + " | ".join(
        f"{TALK_AT_TABLE[c]:.2f} | —" for c in PAPER_TABLE1_COLUMNS) + " |")
    return "\n".join(lines)


DEEP_TEACHER_MIN_ACCURACY = 0.15
"""The 5-layer comparison (Fig. 5) is only read when its teacher's test accuracy is at least 15 %
(chance is 10 %): students that copy a teacher at chance copy a near-constant function, and
their robustness says nothing about the claim."""


def _mu(values, col, attack) -> float:
    return 100 * values["table"][col][attack][0]


def _mus(t1s: list[dict], col: str, attack: str) -> list[float]:
    """The per-seed μ (points) of ``attack`` at ``col``, over the seeds that evaluated it."""
    return [_mu(v, col, attack) for v in t1s if attack in v["table"][col]]


def table1_se(values: dict, col: str, attack: str) -> float:
    """Standard error (a fraction) of one μ of one seed's Table 1 (:func:`_se`)."""
    return _se(values, values["table"][col][attack])


def _se(values: dict, mu_var) -> float:
    """``results.accuracy_se`` of a robust accuracy ``(μ, σ²)`` evaluated like ``values``'s
    Table 1: ``n_eval`` images drawn afresh for each of its ``repeats``."""
    mu, var = mu_var
    return results.accuracy_se(mu, var, values["n_eval"], values["repeats"], fresh_images=True)


def accuracy_margin(t1s: list[dict], col_a: str, col_b: str, attack: str) -> float | None:
    """Margin (points) that the seed-mean μ of ``attack`` at ``col_a`` must exceed that at
    ``col_b`` by to count as a direction (``results.seed_margin``): the spread across the seeds
    that evaluated the attack, floored by the largest standard error of one run's measurement
    (binomial on ``n_eval`` fresh images, and the repeats)."""
    floor = max((100 * table1_se(v, c, attack)) ** 2 for v in t1s for c in (col_a, col_b)
                if attack in v["table"][c])
    return results.seed_margin(_mus(t1s, col_a, attack), _mus(t1s, col_b, attack),
                               floor_var=floor)


def _mean_se(t1s: list[dict], col: str, attack: str) -> float:
    """Standard error (points) of the seed-mean μ: the spread across seeds, floored by one run's
    measurement error, over √seeds."""
    xs = _mus(t1s, col, attack)
    _, sd, n = results.seed_stats(xs)
    floor = max(100 * table1_se(v, col, attack) for v in t1s if attack in v["table"][col])
    return float(np.sqrt(max(0.0 if n == 1 else sd ** 2, floor ** 2) / n))


def paper_column(column: str) -> int:
    """Index into :data:`PAPER_TABLE1`'s lists of the paper column that ``column`` ("AT (e)" or
    "ST (e)") is compared with: for AT the checkpoint nearest in epochs
    (:func:`tsrobust.chapters.cifar.paper_epoch`), for ST the paper's only one, ST (300)."""
    if column.startswith("ST"):
        return PAPER_TABLE1_COLUMNS.index("ST (300)")
    return PAPER_TABLE1_COLUMNS.index(f"AT ({paper_epoch(_epoch(column))})")


def _epoch(column: str) -> int:
    return int(column.split("(")[1].rstrip(")"))


def _columns_note(*columns: str) -> str:
    """Where our columns' epochs differ from the paper's they are compared with."""
    notes = []
    for c in columns:
        paper = PAPER_TABLE1_COLUMNS[paper_column(c)]
        if _epoch(c) != _epoch(paper):
            notes.append(f"our {c} vs the paper's {paper}")
    return ("the epochs differ: " + ", ".join(notes)) if notes else ""


def scale_note(cfg) -> str:
    """The run's scale, as every row states it ("paper settings" only when they are)."""
    if results.at_paper_scale(cfg, SETTINGS):
        return f"{cfg.profile} profile, paper settings, {cfg.seeds} seeds"
    return (f"{cfg.profile} profile: {cfg.epochs} epochs on {cfg.n_student} images, "
            f"PGD-{cfg.at_steps} training, {cfg.seeds} seed{'s' if cfg.seeds > 1 else ''}, "
            f"PGD-{cfg.eval_steps} evaluation on {cfg.n_eval} test images (paper: 300 epochs on "
            f"50000, PGD-40 training and evaluation)")


def _seeds_note(t1s: list[dict], attack: str) -> str:
    n = sum(attack in v["table"][v["columns"][-1]] for v in t1s)
    return f"{n} seed{'s' if n > 1 else ''}"


def _note(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def table1_rows(t1s: list[dict], cfg) -> list[results.Row]:
    """Table 1, one row per attack: our last AT checkpoint and our ST student (means over the
    seeds that ran the attack) beside the paper's columns nearest in epochs
    (:func:`paper_column`; the note says where the epochs differ).

    The row's claim is the paper's reading of Table 1 for that attack: the AT student is more
    robust than the ST student. "reproduced" needs a run at the paper's settings with both means
    within :data:`VERDICT_ABS_TOL` points of the paper's and standard errors of at most that;
    otherwise "direction holds" when AT exceeds ST by :func:`accuracy_margin`."""
    at_last, st = t1s[0]["columns"][-2], t1s[0]["columns"][-1]
    paper_scale = results.at_paper_scale(cfg, SETTINGS)
    ja, js = paper_column(at_last), paper_column(st)
    rows = []
    for a, paper in PAPER_TABLE1.items():
        if a not in t1s[0]["table"][st]:
            continue
        at, stv = _mus(t1s, at_last, a), _mus(t1s, st, a)
        margin = accuracy_margin(t1s, at_last, st, a)
        reproduced = all(
            results.verdict(results.seed_stats(xs)[0], paper[j][0], abs_tol=VERDICT_ABS_TOL,
                            noise=_mean_se(t1s, col, a), paper_scale=paper_scale)
            == "reproduced" for xs, j, col in ((at, ja, at_last), (stv, js, st)))
        verdict = ("reproduced" if reproduced else results.direction_verdict(
            results.seed_stats(at)[0] - results.seed_stats(stv)[0], margin))
        rows.append(results.Row(
            f"{ATTACK_LABELS[a]}: {at_last} above {st}, robust acc. (%)",
            f"{results.mean_pm(at, '.1f')} vs {results.mean_pm(stv, '.1f')}",
            f"{paper[ja][0]} vs {paper[js][0]} ({PAPER_TABLE1_COLUMNS[ja]} vs "
            f"{PAPER_TABLE1_COLUMNS[js]})", "Table 1", verdict,
            _note(results.margin_text(margin, ".1f", " points"), _seeds_note(t1s, a),
                  _columns_note(at_last, st), scale_note(cfg))))
    return rows


def deep_testable(deep: dict) -> bool:
    """Whether the 5-layer run can test Fig. 5's claims (its teacher learned something)."""
    return deep["teacher_test_accuracy"] >= DEEP_TEACHER_MIN_ACCURACY


def _paper_gap_note(a: float, b: float) -> str:
    """The paper's own difference of two numbers, in points."""
    return f"paper: {a - b:+.2f} points"


def _spec(t1s: list[dict], col: str, key: str, l: int | None = None) -> list[float]:
    """The per-seed specialization summary ``key`` of ``col`` (layer ``l`` of a per-layer one)."""
    return [float(v["spec"][col][key] if l is None else v["spec"][col][key][l]) for v in t1s]


def _layers(a: list[list[float]], b: list[list[float]], higher: bool = True) -> tuple[str, str]:
    """Per layer, per-seed values ``a[l]`` above (``higher``) or below ``b[l]`` beyond their
    margin across seeds: the verdict (``results.combined_verdict``: a direction only when every
    layer clears it, differs when one reverses beyond it) and the text "k of n layers: a ± s vs
    b ± s, …"."""
    verdicts, cells = [], []
    for x, y in zip(a, b):
        diff = results.seed_stats(x)[0] - results.seed_stats(y)[0]
        m = results.seed_margin(x, y)
        verdicts.append(results.direction_verdict(diff if higher else -diff, m))
        cells.append(f"{results.mean_pm(x)} vs {results.mean_pm(y)}")
    held = sum(v == "direction holds" for v in verdicts)
    return (results.combined_verdict(verdicts),
            f"{held} of {len(verdicts)} layers: " + ", ".join(cells))


def unspecialized_share(ratio) -> float:
    """The unspecialized/specialized ratio r of Fig. 6 as the bounded share r / (1 + r) of
    unspecialized among the classified nodes: the same order, ∞ (no specialized node) → 1, so
    that seeds average and spread; NaN stays NaN (no node classified)."""
    r = float(ratio)
    if np.isnan(r):
        return float("nan")
    return 1.0 if np.isinf(r) else r / (1 + r)


def _fmt_ratio(r) -> str:
    r = float(r)
    return "∞" if np.isinf(r) else "—" if np.isnan(r) else f"{r:.2f}"


def claim_rows(t1s: list[dict], cfg, aug: dict | None = None, deep: dict | None = None):
    """The qualitative claims of §5.4 checked on our numbers (each row says what was compared).

    ``t1s``: the Table 1 values of every seed. A direction holds only by more than a margin from
    the measured noise: the spread across seeds (``results.seed_margin``), for robust accuracies
    floored by one run's binomial noise (:func:`accuracy_margin`); without a spread (one seed) a
    specialization row is inconclusive. MBNC and the unspecialized share must move in *every*
    layer. The paper's numbers quoted are those of its checkpoints nearest ours in epochs. The
    augmentation rows (one run each) compare with the seeds of ``t1s``, whose spread stands for
    theirs; the 5-layer rows are left out when its teacher is at chance
    (:func:`deep_testable`). Every row states the run's scale (:func:`scale_note`)."""
    cols = t1s[0]["columns"]
    at_cols, st = cols[:-1], cols[-1]
    first, last = at_cols[0], at_cols[-1]
    pf, ps = paper_column(first), paper_column(st)
    paper_linf = PAPER_TABLE1["linf_pgd"]
    mean = lambda xs: results.seed_stats(xs)[0]  # noqa: E731
    rows = []  # (claim, ours, paper, source, verdict, note)
    mu = {c: _mus(t1s, c, "linf_pgd") for c in cols}
    if len(at_cols) > 1:
        m = accuracy_margin(t1s, last, first, "linf_pgd")
        p0, p1 = PAPER_TABLE1_COLUMNS.index("AT (50)"), PAPER_TABLE1_COLUMNS.index("AT (300)")
        rows.append(("AT ℓ∞ robustness grows with epochs",
                     f"{first}: {results.mean_pm(mu[first], '.1f')} → {last}: "
                     f"{results.mean_pm(mu[last], '.1f')}",
                     f"{PAPER_TABLE1_COLUMNS[p0]}: {paper_linf[p0][0]} → "
                     f"{PAPER_TABLE1_COLUMNS[p1]}: {paper_linf[p1][0]}", "Table 1",
                     results.direction_verdict(mean(mu[last]) - mean(mu[first]), m),
                     _note(results.margin_text(m, ".1f", " points"),
                           _paper_gap_note(paper_linf[p1][0], paper_linf[p0][0]),
                           "" if (first, last) == ("AT (50)", "AT (300)") else
                           f"the paper's change over AT (50) → AT (300), ours over {first} → "
                           f"{last}: the epochs differ")))
        rows.append(_grows_everywhere(t1s, at_cols))
    m = accuracy_margin(t1s, first, st, "linf_pgd")
    rows.append(("AT at the first checkpoint beats ST (ℓ∞ PGD)",
                 f"{results.mean_pm(mu[first], '.1f')} vs {results.mean_pm(mu[st], '.1f')}",
                 f"{paper_linf[pf][0]} vs {paper_linf[ps][0]} "
                 f"({PAPER_TABLE1_COLUMNS[pf]} vs {PAPER_TABLE1_COLUMNS[ps]})",
                 "Table 1, §5.4", results.direction_verdict(mean(mu[first]) - mean(mu[st]), m),
                 _note(results.margin_text(m, ".1f", " points"),
                       _paper_gap_note(paper_linf[pf][0], paper_linf[ps][0]),
                       _columns_note(first, st))))
    layers = len(t1s[0]["spec"][st]["mbnc"])
    verdict, text = _layers([_spec(t1s, last, "mbnc", l) for l in range(layers)],
                            [_spec(t1s, st, "mbnc", l) for l in range(layers)])
    rows.append(("AT has higher MBNC than ST, per layer", text, "all layers (figure only)",
                 "Fig. 3, Fig. 6 left", verdict, results.layers_note(verdict)))
    share = [[[unspecialized_share(v["spec"][c]["ratio"][l]) for v in t1s] for l in range(layers)]
             for c in (last, st)]
    verdict, _ = _layers(*share, higher=False)
    if any(np.isnan(x) for s in share for layer in s for x in layer):
        verdict = "differs"  # a layer with no classified node: nothing lowered
    rows.append(("AT has a lower unspecialized/specialized ratio than ST, per layer",
                 f"{sum(mean(a) < mean(b) for a, b in zip(*share))} of {layers} layers lower: "
                 + ", ".join(f"{_fmt_ratio(t1s[0]['spec'][last]['ratio'][l])} vs "
                             f"{_fmt_ratio(t1s[0]['spec'][st]['ratio'][l])}"
                             for l in range(layers)) + " (first seed)",
                 "all layers (figure only)", "Fig. 6 right", verdict,
                 "the share r/(1 + r) of unspecialized nodes lower in every layer beyond its "
                 "margin across seeds (differs: one higher beyond it, or a layer with no "
                 "classified node)" + ("; a layer within its margin, or no spread measured (one seed)"
                                       if verdict == "inconclusive" else "")))
    for eps in ("eps_in", "eps_out"):
        a, b = _spec(t1s, last, f"{eps}_mean"), _spec(t1s, st, f"{eps}_mean")
        m = results.seed_margin(b, a)
        rows.append((f"AT has a lower ε_{eps[4:]} curve than ST (mean over teacher nodes, first "
                     "layer)", f"{results.mean_pm(a)} vs {results.mean_pm(b)}",
                     "lower (figure only)", "Fig. 4",
                     results.direction_verdict(mean(b) - mean(a), m), results.margin_text(m)))
    if aug is not None:
        for name in ("AT", "ST"):
            base = last if name == "AT" else st
            col = next(c for c in aug["columns"] if c.startswith(name))
            a = aug["spec"][col]["mbnc"]
            b = [_spec(t1s, base, "mbnc", l) for l in range(layers)]
            verdicts, cells = [], []
            for x, y in zip(a, b):
                # one augmented run: the spread of the seeds without augmentation stands for its
                m = results.seed_margin([x], y)
                verdicts.append(results.direction_verdict(x - mean(y), m))
                cells.append(f"{x:.3f} vs {results.mean_pm(y)}")
            held = sum(v == "direction holds" for v in verdicts)
            verdict = results.combined_verdict(verdicts)
            rows.append((f"augmentation raises the MBNC of {name}",
                         f"{held} of {len(a)} layers: " + ", ".join(cells),
                         "higher (figure only)", "Fig. 6 left", verdict,
                         results.layers_note(verdict) + "; one augmented run, judged by the "
                                                        "spread of the seeds without augmentation"))
    if deep is not None and deep_testable(deep):
        at_col = next(c for c in deep["columns"] if c.startswith("AT"))
        st_col = next(c for c in deep["columns"] if c.startswith("ST"))
        verdict, text = _layers([[x] for x in deep["spec"][at_col]["mbnc"]],
                                [[x] for x in deep["spec"][st_col]["mbnc"]])
        rows.append(("deeper net: AT has higher MBNC than ST", text, "similar to 4 layers",
                     "Fig. 5", verdict, results.layers_note(verdict) + " (one 5-layer run)"))
        ra, rs = deep["linf_robust"][at_col], deep["linf_robust"][st_col]
        m = results.seed_margin([100 * ra[0]], [100 * rs[0]],
                                floor_var=max((100 * _se(t1s[0], r)) ** 2 for r in (ra, rs)))
        rows.append(("deeper net: AT more robust than ST (ℓ∞ PGD)",
                     f"{100 * ra[0]:.1f} vs {100 * rs[0]:.1f}", "(not reported)", "Fig. 5",
                     results.direction_verdict(100 * (ra[0] - rs[0]), m),
                     results.margin_text(m, ".1f", " points") + " (one 5-layer run: its "
                                                                "binomial noise)"))
    return [results.Row(q, ours, paper, src, verdict, _note(note, scale_note(cfg)))
            for q, ours, paper, src, verdict, note in rows]


def _grows_everywhere(t1s: list[dict], at_cols: list[str]) -> tuple:
    """The claim row "AT robustness grows with epochs across all checkpoints and attacks" (§5.4:
    "AT model's robustness increases with epochs"): for every attack the last checkpoint above
    the first beyond its margin, and no step between consecutive checkpoints falling beyond
    its margin. The paper's own Table 1 is quoted with its dips."""
    names = [a for a in PAPER_TABLE1 if a in t1s[0]["table"][at_cols[-1]]]
    mean = lambda xs: results.seed_stats(xs)[0]  # noqa: E731
    rise, drops, verdicts = [], [], []
    for a in names:
        first, last = _mus(t1s, at_cols[0], a), _mus(t1s, at_cols[-1], a)
        v = results.direction_verdict(mean(last) - mean(first),
                                      accuracy_margin(t1s, at_cols[-1], at_cols[0], a))
        verdicts.append(v)
        rise.append(v == "direction holds")
        for c0, c1 in zip(at_cols, at_cols[1:]):
            fall = results.direction_verdict(mean(_mus(t1s, c0, a)) - mean(_mus(t1s, c1, a)),
                                             accuracy_margin(t1s, c0, c1, a))
            if fall == "direction holds":
                drops.append(f"{ATTACK_LABELS[a]} {c0} → {c1}")
    at_paper = [i for i, c in enumerate(PAPER_TABLE1_COLUMNS) if c.startswith("AT")]
    paper_dips = [f"{ATTACK_LABELS[a]} {PAPER_TABLE1_COLUMNS[i]} → {PAPER_TABLE1_COLUMNS[j]}"
                  for a, row in PAPER_TABLE1.items() for i, j in zip(at_paper, at_paper[1:])
                  if row[j][0] < row[i][0]]
    verdict = "differs" if drops else results.combined_verdict(verdicts)
    return ("AT robustness grows with epochs across all checkpoints and attacks",
            f"{sum(rise)} of {len(names)} attacks rise {at_cols[0]} → {at_cols[-1]}; "
            + (f"falls: {', '.join(drops)}" if drops else "no fall between checkpoints"),
            f"all 6 rise AT (50) → AT (300); {len(paper_dips)} dips: " + ", ".join(paper_dips),
            "Table 1, §5.4", verdict,
            "each attack's rise and every step judged by its margin (spread across the seeds "
            "that ran it, floored by the binomial noise); " + _seeds_note(t1s, "linf_pgd")
            + " for ℓ∞ PGD, " + _seeds_note(t1s, "fgsm") + " for the others")


# -- what the notebook shows besides the tables -------------------------------------------------

def surrogate_markdown(t1: dict, n_spec: int) -> str:
    """How close the transfer attack's surrogate is to the teacher (clean agreement)."""
    agree = t1["surrogate_clean_agreement"]
    if agree is None:
        return "No transfer attack in this run, so no surrogate."
    return (f"The surrogate of the transfer attack agrees with the teacher on {100 * agree:.1f} % "
            f"of the first {n_spec} clean test images: the transfer attack can only be as strong "
            f"as that copy of the teacher is close"
            + (". Below 50 %, as here, the transfer row says little about robustness."
               if agree < 0.5 else "."))


def _curve(ax, curve, *args, **kw):
    ax.plot(np.arange(1, len(curve) + 1), curve, *args, **kw)


def _at_shades(n: int):
    return plt.cm.Blues(np.linspace(0.4, 1.0, n))


def plot_sorted_bnc(t1s):
    """Figure 5.1 (source A, Fig. 3): every layer's sorted BNC curve of the AT checkpoints (blue,
    darker = later), the ST student (red) and the untrained student (dotted gray), each the mean
    over seeds with ± sd shaded. ``t1s``: the ``table1`` records of every seed."""
    cols = t1s[0].values["columns"]
    at_cols, st_col = cols[:-1], cols[-1]
    n_layers = len(t1s[0].values["spec"][st_col]["mbnc"])
    fig, axes = plt.subplots(1, n_layers, figsize=(3.2 * n_layers, 3.4), sharey=True)
    for l, ax in enumerate(axes):
        for col, color in zip(at_cols, _at_shades(len(at_cols))):
            seed_band(ax, [t.arrays[f"{col}__sorted_bnc_{l}"] for t in t1s], color=color, label=col)
        seed_band(ax, [t.arrays[f"{st_col}__sorted_bnc_{l}"] for t in t1s], "--", color="r",
              label=st_col)
        seed_band(ax, [t.arrays[f"{INIT}__sorted_bnc_{l}"] for t in t1s], ":", color="gray",
              label="untrained")
        ax.set_title(f"layer {l}")
        ax.set_xlabel("teacher node (sorted)")
    axes[0].set_ylabel("best normalized correlation")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"Sorted BNC curves, AT (blue, darker = later) vs ST (red); {len(t1s)} seed"
                 + ("s, ± sd shaded" if len(t1s) > 1 else ""))
    fig.tight_layout()
    return fig


def dead_nodes_markdown(t1: dict, n_spec: int) -> str:
    """Dead teacher nodes (left out) and dead student nodes (kept, NC 0) of every column of one
    seed's run."""
    st_spec = t1["spec"][t1["columns"][-1]]
    return (f"Dead teacher nodes on the {n_spec} NC images, per layer (left out): "
            f"{', '.join(map(str, st_spec['dead_teacher']))} of "
            f"{', '.join(map(str, t1['teacher_widths']))}. Dead student nodes (kept, NC 0; "
            f"seed {t1['seed']}): "
            + "; ".join(f"{c}: {', '.join(map(str, s['dead_student']))}"
                        for c, s in t1["spec"].items()) + ".")


def plot_eps_curves(t1s):
    """Figure 5.2 (source A, Fig. 4): the first layer's ε_in (left) and ε_out (right) curves of
    the AT checkpoints, the ST student and the untrained student (means over seeds, ± sd
    shaded)."""
    cols = t1s[0].values["columns"]
    at_cols, st_col = cols[:-1], cols[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, eps in zip(axes, ("eps_in", "eps_out")):
        seed_band(ax, [t.arrays[f"{INIT}__{eps}"] for t in t1s], ":", color="gray",
              label="untrained")
        for col, color in zip(at_cols, _at_shades(len(at_cols))):
            seed_band(ax, [t.arrays[f"{col}__{eps}"] for t in t1s], color=color, label=col)
        seed_band(ax, [t.arrays[f"{st_col}__{eps}"] for t in t1s], "--", color="r", label=st_col)
        ax.set_title(f"$\\epsilon_{{{eps[4:]}}}$ of each teacher node's best student")
        ax.set_xlabel("teacher node (sorted by the value)")
    axes[0].set_ylabel("ε (normalized filters)")
    axes[1].legend(fontsize=8)
    fig.suptitle("First-layer ε_in / ε_out curves (lower = better specialized)")
    fig.tight_layout()
    return fig


def pearson_markdown(t1s: list[dict]) -> str:
    """The Pearson score of (ρ, ε_in) and the mean ε_in, ε_out of every student (mean ± sd over
    seeds)."""
    cols = {"untrained": [v["init_spec"] for v in t1s],
            **{c: [v["spec"][c] for v in t1s] for c in t1s[0]["columns"]}}
    return ("| student | Pearson (ρ, ε_in) | mean ε_in | mean ε_out |\n|---|---|---|---|\n"
            + "\n".join(f"| {c} | " + " | ".join(results.mean_pm([s[k] for s in specs])
                                                 for k in ("rho_eps_in_pearson", "eps_in_mean",
                                                           "eps_out_mean")) + " |"
                        for c, specs in cols.items()))


def fig6_groups(t1s: list[dict], aug: dict | None = None) -> dict:
    """The students of Fig. 6: the last AT checkpoint, ST (every seed), and (with ``aug``) AT
    and ST trained with augmentation, each as a list of specialization summaries (one per
    seed)."""
    at_last, st = t1s[0]["columns"][-2], t1s[0]["columns"][-1]
    groups = {at_last: [v["spec"][at_last] for v in t1s], st: [v["spec"][st] for v in t1s]}
    if aug is not None:
        groups.update({c: [s] for c, s in aug["spec"].items()})
    return groups


def plot_fig6(t1s: list[dict], aug: dict | None = None):
    """Figure 5.3 (source A, Fig. 6): per layer, the MBNC (left, ± sd over seeds) and the
    unspecialized/specialized ratio (right; mean over seeds, ∞ bars left out) of
    :func:`fig6_groups`."""
    groups = fig6_groups(t1s, aug)
    n_layers = len(t1s[0]["spec"][t1s[0]["columns"][-1]]["mbnc"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(groups)
    layers = np.arange(n_layers)
    for i, (name, specs) in enumerate(groups.items()):
        mbnc = np.array([s["mbnc"] for s in specs], dtype=float)
        sd = mbnc.std(0, ddof=1) if len(specs) > 1 else None
        axes[0].bar(layers + i * width, mbnc.mean(0), width, yerr=sd, capsize=2, label=name)
        ratio = np.array([s["ratio"] for s in specs], dtype=float).mean(0)
        axes[1].bar(layers + i * width, np.nan_to_num(ratio, posinf=np.nan), width, label=name)
    for ax, label in zip(axes, ("MBNC", "#unspecialized / #specialized")):
        ax.set_xticks(layers + 0.4 - width / 2, [f"layer {l}" for l in layers])
        ax.set_ylabel(label)
    axes[0].set_title("Mean best normalized correlation")
    axes[1].set_title("Unspecialized/specialized ratio (NC < 0.8 / > 0.9)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(groups),
               fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def infinite_ratio_markdown(t1s: list[dict], aug: dict | None = None) -> str:
    """The layers of Fig. 6 with no specialized student node in some seed (ratio ∞, bar left
    out); "" if none."""
    inf_layers = {n: sorted({l for s in specs for l, r in enumerate(s["ratio"])
                             if r == float("inf") or r == "inf"})
                  for n, specs in fig6_groups(t1s, aug).items()}
    if not any(inf_layers.values()):
        return ""
    return ("Layers with no specialized student node at all (ratio ∞, bar left out): "
            + "; ".join(f"{n}: {v}" for n, v in inf_layers.items() if v) + ".")


def shown_markdown(shown_cfg, own_run: bool, build_profile: str) -> str:
    """Which run the chapter shows (:func:`tsrobust.chapters.cifar.shown_run_markdown`)."""
    return shown_run_markdown(shown_cfg, own_run, build_profile, scale_note(shown_cfg))


def shown_extra(name: str, own, shown_cfg, own_run: bool) -> tuple:
    """The ``augmentation`` or ``deep`` record that goes with the shown run, and a sentence when
    there is none: ``(result or None, note)``. With the build's own run shown it is ``own``;
    with a larger recorded run shown, that run's record — never one of another scale, so a
    figure or row mixes no two runs."""
    what = {"augmentation": "augmentation runs (Fig. 6)", "deep": "5-layer runs (Fig. 5)"}[name]
    if own_run:
        res = own
        note = "" if res is not None else f"The {what} are switched off in this run."
    else:
        res = recorded_run(name, shown_cfg)
        note = "" if res is not None else (
            f"The `{shown_cfg.profile}` run has no {what} (switched off in that profile)"
            + (f"; this build's `{own.provenance['profile']}` run has them: see the pipeline "
               f"check at the end." if own is not None else "."))
    return res, note


def reading_markdown(shown_cfg, own_run: bool) -> str:
    """How far the shown run can test §5.4, from its settings."""
    if results.at_paper_scale(shown_cfg, SETTINGS):
        return ("This run has the paper's settings: its numbers can reproduce Table 1's, and "
                "its directions are judged by the spread of its seeds.")
    text = (f"This `{shown_cfg.profile}` run trains for {shown_cfg.epochs} epochs on "
            f"{shown_cfg.n_student} images with PGD-{shown_cfg.at_steps} adversarial training "
            f"(the paper: up to 300 epochs on 50,000 with PGD-40): it cannot reproduce Table 1's "
            f"numbers, only test whether §5.4's directions already show at this scale, "
            + (f"judged by the spread of its {shown_cfg.seeds} seeds." if shown_cfg.seeds > 1
               else "judged by its measurement noise alone: with one seed the specialization "
                    "rows have no spread to judge by, and are inconclusive."))
    if own_run and shown_cfg.profile == "smoke":
        text += (" At the smoke scale the students have only begun to specialize and the "
                 "differences between AT and ST are of the order of the evaluation noise: the "
                 "run shows that the pipeline works end to end, not whether the claims hold.")
    return text + larger_profiles_sentence(shown_cfg.profile)


def pipeline_markdown(own: list[dict], cfg) -> str:
    """This build's own run, compactly: the pipeline check beside the run the chapter shows.
    Per column the ℓ∞ robust accuracy and the clean agreement (mean ± sd over its seeds) and the
    first layer's MBNC; then the verdicts its rows would get."""
    cols = own[0]["columns"]
    lines = ["| student | seeds | clean agreement (%) | ℓ∞ PGD (%) | MBNC, layer 0 |",
             "|---|---|---|---|---|"]
    for c in cols:
        lines.append(f"| {c} | {len(own)} | {results.mean_pm(_mus(own, c, 'clean'), '.1f')} | "
                     f"{results.mean_pm(_mus(own, c, 'linf_pgd'), '.1f')} | "
                     f"{results.mean_pm(_spec(own, c, 'mbnc', 0))} |")
    rows = table1_rows(own, cfg) + claim_rows(own, cfg)
    return ("\n".join(lines) + f"\n\nThis build's `{cfg.profile}` run ({scale_note(cfg)}) — "
            f"its Table 1 and claim rows would read: {results.verdict_counts(rows)}.")


def deep_markdown(deep: dict) -> str:
    """The 5-layer teacher's accuracy and the ℓ∞ robust accuracy of its students."""
    return (f"5-layer teacher {deep['teacher_widths']}: test accuracy "
            f"{100 * deep['teacher_test_accuracy']:.1f} %. ℓ∞ robust accuracy μ (σ²): "
            + ", ".join(f"{c}: {100 * m:.1f} % ({v:.1e})"
                        for c, (m, v) in deep["linf_robust"].items()) + ".")


def deep_left_out_markdown(deep: dict | None) -> str:
    """Why the 5-layer rows are missing from the claims ("" when they are there or no 5-layer run
    was made)."""
    if deep is None or deep_testable(deep):
        return ""
    return (f"The 5-layer rows are left out: its teacher's test accuracy is "
            f"{100 * deep['teacher_test_accuracy']:.1f} % (chance: 10 %).")


def plot_deep(deep):
    """Figure 5.4 (source A, Fig. 5): sorted BNC curves of layers 0, 2 and 4 and the first
    layer's ε curves of the 5-layer AT (blue) and ST (red) students. ``deep``: the ``deep``
    record (values, arrays, provenance)."""
    cols = deep.values["columns"]
    show_layers = [l for l in (0, 2, 4) if f"{cols[0]}__sorted_bnc_{l}" in deep.arrays]
    fig, axes = plt.subplots(1, len(show_layers) + 2, figsize=(3.2 * (len(show_layers) + 2), 3.4))
    for ax, l in zip(axes, show_layers):
        for col, style in zip(cols, ("b-", "r--")):
            _curve(ax, deep.arrays[f"{col}__sorted_bnc_{l}"], style, label=col)
        ax.set_title(f"sorted BNC, layer {l}")
        ax.set_xlabel("teacher node (sorted)")
        ax.set_ylabel("best normalized correlation")
    for ax, eps in zip(axes[len(show_layers):], ("eps_in", "eps_out")):
        for col, style in zip(cols, ("b-", "r--")):
            _curve(ax, deep.arrays[f"{col}__{eps}"], style, label=col)
        ax.set_title(f"$\\epsilon_{{{eps[4:]}}}$ curve, layer 0")
        ax.set_xlabel("teacher node (sorted by the value)")
        ax.set_ylabel("ε")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"5-layer network: AT (blue) vs ST (red), profile {deep.provenance['profile']}")
    fig.tight_layout()
    return fig


def run_flops(cfg) -> int:
    """FLOPs of this chapter at ``cfg`` (:mod:`tsrobust.bench`): per seed the surrogate, the ST
    and the AT student (``at_steps`` PGD steps per image and epoch); the augmented AT and ST
    students (``augmentation``); the deep teacher and its AT and ST students (``deep``). Not
    counted: the evaluation attacks of Table 1 (each checkpoint attacks ``n_eval`` images
    ``repeats`` times with every attack) and the specialization metrics; so it is a lower bound.
    """
    s, t = bench.layer_macs(build_student()), bench.layer_macs(ConvNet(PRUNED_WIDTHS))
    n, e = cfg.n_student, cfg.epochs
    at = bench.run_flops(s, t, images=n, epochs=e, pgd_steps=cfg.at_steps)
    st = bench.run_flops(s, t, images=n, epochs=e)
    flops = cfg.seeds * (at + st + bench.run_flops(s, t, images=n, epochs=cfg.surrogate_epochs))
    if cfg.augmentation:
        flops += at + st
    if cfg.deep:
        sd = bench.layer_macs(build_student("deep"))
        td = bench.layer_macs(ConvNet(DEEP_PRUNED_WIDTHS))
        m = min(n, cfg.deep_n_train)
        flops += bench.teacher_flops(bench.layer_macs(ConvNet(DEEP_TEACHER_WIDTHS)),
                                     images=cfg.deep_n_train, epochs=cfg.deep_teacher_epochs)
        flops += (bench.run_flops(sd, td, images=m, epochs=e, pgd_steps=cfg.at_steps)
                  + bench.run_flops(sd, td, images=m, epochs=e))
    return flops


def estimate_markdown(cfg) -> str:
    """How long this chapter's training takes at ``cfg`` on the reference GPU (:func:`run_flops`,
    :func:`tsrobust.bench.estimate_markdown`)."""
    return bench.estimate_markdown(run_flops(cfg), f"Training the students of the "
                                                   f"`{cfg.profile}` profile")
