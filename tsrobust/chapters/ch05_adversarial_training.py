"""Chapter 5: adversarial training of the student, robustness and specialization (source A §5.4).

Everything the chapter computes, checks and draws lives here; the notebook calls these
functions and shows what they return.

- :func:`run_table1`: a surrogate student, a standard-trained (ST, logit) student and an
  adversarially trained (AT, oracle-adversarial ℓ∞ PGD, Eq. 3, teacher-target) student; at each
  checkpoint of AT and at the end of ST, the robust accuracy (§5.4: student-teacher argmax
  agreement on adversarial examples) under ℓ∞/ℓ2/ℓ1 PGD, FGSM, CW-ℓ2 and black-box transfer from
  the surrogate, repeated for μ and σ² (Table 1), and the specialization snapshot: NC per layer,
  sorted BNC (Fig. 3), ε_in/ε_out curves of the first layer (Fig. 4), MBNC and the
  unspecialized/specialized ratio (Fig. 6).
- :func:`run_augmentation`: AT and ST again with data augmentation (Fig. 6).
- :func:`run_deep`: the 5-layer teacher and students (Fig. 5).
- :func:`table1_rows`, :func:`claim_rows`: our numbers beside the paper's and the claims of §5.4;
  the figures 5.1–5.4 (:func:`plot_sorted_bnc`, :func:`plot_eps_curves`, :func:`plot_fig6`,
  :func:`plot_deep`).

Where source A is silent (ℓ1/ℓ2 budgets, CW settings, the surrogate, how the repeats differ)
the choices are settings of :data:`SETTINGS`, stated in the chapter. The students are trained
like chapter 4's (:mod:`tsrobust.chapters.cifar`), so that the standard-trained ones compare.
"""

from __future__ import annotations

import hashlib
import json

import matplotlib.pyplot as plt
import numpy as np
import torch

from tsrobust import attacks, results
from tsrobust.chapters.cifar import (
    EVAL_SEED_OFFSET,
    MEASURES,
    N_PCA,
    N_TRAIN,
    PAPER_CHECKPOINTS,
    PCA_RANK,
    STUDENT_BATCH_SIZE,
    STUDENT_LR,
    STUDENT_OPTIMIZER,
    oracle_teacher,
    paper_epoch,
    record_for,
    scaled_checkpoints,
)
from tsrobust.data import CIFAR10
from tsrobust.models import build_student
from tsrobust.params import Setting
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
    "n_test": Setting(int, smoke=1000, gpu=10_000, paper=10_000, min=1, max=10_000,
                      doc="CIFAR-10 test images (the pool robust accuracy is measured on)"),
    "n_student": Setting(int, smoke=1000, gpu=50_000, paper=50_000, min=1, max=50_000,
                         doc="training images the students learn from (the first of n_train)"),
    "epochs": Setting(int, smoke=2, gpu=20, paper=300, min=1,
                      doc="student training epochs (§5.4: AT up to 300, ST 300)"),
    "checkpoints": Setting(tuple, smoke=(1, 2), gpu=scaled_checkpoints(20),
                           paper=PAPER_CHECKPOINTS, min=1,
                           doc="AT epochs evaluated for Table 1 (§5.4: 50…300, scaled)"),
    "surrogate_epochs": Setting(int, smoke=2, gpu=20, paper=300, min=1,
                                doc="epochs of the transfer attack's surrogate student (ST)"),
    "optimizer": STUDENT_OPTIMIZER,  # as chapter 4, so ST students are comparable
    "lr": STUDENT_LR,
    "batch_size": STUDENT_BATCH_SIZE,
    "at_eps": Setting(float, smoke=10 / 255, gpu=10 / 255, paper=10 / 255, min=0.0,
                      doc="ℓ∞ budget of adversarial training (§5.1: 10/255)"),
    "at_alpha": Setting(float, smoke=0.01, gpu=0.01, paper=0.01, min=0.0,
                        doc="PGD step size of adversarial training (§5.1: 0.01)"),
    "at_steps": Setting(int, smoke=2, gpu=40, paper=40, min=1,
                        doc="PGD steps of adversarial training (§5.1: 40)"),
    "n_eval": Setting(int, smoke=50, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images attacked per evaluation (drawn afresh from n_test "
                          "for each repeat)"),
    "repeats": Setting(int, smoke=2, gpu=3, paper=5, min=1,
                       doc="repeated evaluations for μ and σ² (§5.4)"),
    "eval_steps": Setting(int, smoke=3, gpu=20, paper=40, min=1,
                          doc="PGD steps of the evaluation attacks (ℓ∞, ℓ2, ℓ1, transfer)"),
    "linf_eps": Setting(float, smoke=10 / 255, gpu=10 / 255, paper=10 / 255, min=0.0,
                        doc="ℓ∞ budget of the evaluation (PGD, FGSM, transfer); as training"),
    "linf_alpha": Setting(float, smoke=0.015, gpu=0.01, paper=0.01, min=0.0,
                          doc="ℓ∞ PGD step of the evaluation: training's 0.01, larger in smoke "
                              "so that its few steps can reach ε"),
    "l2_eps": Setting(float, smoke=0.5, gpu=0.5, paper=0.5, min=0.0,
                      doc="ℓ2 budget (not in the source; 0.5, the common CIFAR-10 ℓ2 budget)"),
    "l2_alpha": Setting(float, smoke=0.4, gpu=0.0625, paper=0.03125, min=0.0,
                        doc="ℓ2 PGD step (2.5·ε/steps)"),
    "l1_eps": Setting(float, smoke=10.0, gpu=10.0, paper=10.0, min=0.0,
                      doc="ℓ1 budget (not in the source; 10, of the order used for CIFAR-10)"),
    "l1_alpha": Setting(float, smoke=8.0, gpu=1.25, paper=0.625, min=0.0,
                        doc="ℓ1 PGD step, the ℓ1 size of one sparse step (2.5·ε/steps)"),
    "l1_sparsity": Setting(float, smoke=attacks.L1_SPARSITY, gpu=attacks.L1_SPARSITY,
                           paper=attacks.L1_SPARSITY, min=0.0, max=0.999,
                           doc="ℓ1 PGD moves the top (1 − sparsity) gradient coordinates"),
    "fgsm_eps": Setting(float, smoke=10 / 255, gpu=10 / 255, paper=10 / 255, min=0.0,
                        doc="FGSM step (ℓ∞ budget; as training)"),
    "cw_c": Setting(float, smoke=attacks.CW_C, gpu=attacks.CW_C, paper=attacks.CW_C, min=0.0,
                    doc="CW weight of the margin term (not in the source)"),
    "cw_steps": Setting(int, smoke=5, gpu=50, paper=100, min=1, doc="CW Adam steps"),
    "cw_lr": Setting(float, smoke=attacks.CW_LR, gpu=attacks.CW_LR, paper=attacks.CW_LR,
                     min=0.0, doc="CW Adam learning rate"),
    "cw_max_l2": Setting(float, smoke=0.5, gpu=0.5, paper=0.5, min=0.0,
                         doc="CW examples count only within this ℓ2 distance (as l2_eps)"),
    "n_spec": Setting(int, smoke=100, gpu=500, paper=1000, min=2, max=10_000,
                      doc="test images whose activations give the NC of §5.2"),
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
    "augmentation": Setting(bool, smoke=True, gpu=True, paper=True,
                            doc="train AT and ST with data augmentation too (Fig. 6)"),
    "deep": Setting(bool, smoke=True, gpu=True, paper=True,
                    doc="run the 5-layer teacher and students (Fig. 5)"),
    "deep_n_train": Setting(int, smoke=1000, gpu=50_000, paper=50_000, min=1, max=50_000,
                            doc="training images of the 5-layer teacher and its students"),
    "deep_teacher_epochs": Setting(int, smoke=4, gpu=60, paper=200, min=1,
                                   doc="epochs of the 5-layer teacher (as chapter 3's teacher "
                                       "in gpu/paper; fewer in smoke)"),
    "deep_teacher_optimizer": Setting(str, smoke="adam", gpu="adam", paper="adam",
                                      choices=OPTIMIZERS,
                                      doc="optimizer of the 5-layer teacher (not chapter 3's SGD: "
                                          "with it this teacher stays at chance)"),
    "deep_teacher_lr": Setting(float, smoke=1e-3, gpu=1e-3, paper=1e-3, min=0.0,
                               doc="learning rate of the 5-layer teacher, cosine-annealed to 0"),
}
"""Chapter 5's parameters (``tsrobust.params`` API)."""


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
                 generator: torch.Generator,
                 subsets: list[torch.Tensor] | None = None) -> dict[str, tuple[float, float]]:
    """Table 1 for one student: ``{attack: (μ, σ²)}`` of the robust accuracy (fractions).

    Each of the ``cfg.repeats`` evaluations attacks one subset of ``cfg.n_eval`` images of
    ``x_pool`` (``subsets``, else drawn by :func:`eval_subsets`); every attack and the clean
    agreement use the same subsets, so the rows are paired, and so are students evaluated on the
    same ``subsets``. σ² (sample variance over the evaluations) covers both the choice of images
    and the attacks' random starts.
    """
    if subsets is None:
        subsets = eval_subsets(len(x_pool), cfg, generator)
    teacher_label = lambda z: teacher(z).argmax(1)  # noqa: E731 - the oracle label at x′
    makers = {
        "clean": lambda xb, g: xb,
        "linf_pgd": lambda xb, g: attacks.pgd(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.linf_eps,
            alpha=cfg.linf_alpha, steps=cfg.eval_steps, norm="linf", generator=g),
        "l2_pgd": lambda xb, g: attacks.pgd(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.l2_eps, alpha=cfg.l2_alpha,
            steps=cfg.eval_steps, norm="l2", generator=g),
        "l1_pgd": lambda xb, g: attacks.pgd(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.l1_eps, alpha=cfg.l1_alpha,
            steps=cfg.eval_steps, norm="l1", generator=g, l1_sparsity=cfg.l1_sparsity),
        "fgsm": lambda xb, g: attacks.fgsm(
            attacks.oracle_objective(student, teacher), xb, eps=cfg.fgsm_eps),
        "cw": lambda xb, g: attacks.cw_l2(
            student, xb, teacher_label, c=cfg.cw_c, steps=cfg.cw_steps, lr=cfg.cw_lr,
            max_l2=cfg.cw_max_l2),
        "transfer": lambda xb, g: attacks.transfer_attack(
            surrogate, teacher, xb, eps=cfg.linf_eps, alpha=cfg.linf_alpha,
            steps=cfg.eval_steps, norm="linf", generator=g),
    }
    return {name: attacks.robust_accuracy_of(student, teacher, x_pool, makers[name],
                                             generator=generator, subsets=subsets)
            for name in ATTACKS}


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
    teacher-target AT when ``adversarial``), resumable in a checkpoint folder that is removed
    when the run ends. Returns the student (eval mode)."""
    student = _initial_student(cfg, kind=kind, seed_offset=seed_offset, device=device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + seed_offset)
    adv = (dict(norm="linf", eps=cfg.at_eps, alpha=cfg.at_alpha, steps=cfg.at_steps)
           if adversarial else None)
    folder = _run_folder(cfg, name)
    train_student(student, teacher, x, target="logit", epochs=epochs or cfg.epochs, lr=cfg.lr,
                  batch_size=cfg.batch_size, optimizer=cfg.optimizer, augment=augment,
                  adversarial=adv,
                  checkpoint_dir=folder, checkpoint_epochs=checkpoint_epochs,
                  on_checkpoint=on_checkpoint, generator=gen, device=device, progress=progress)
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


def run_table1(cfg, data, teacher, *, device="cpu", progress: bool = True):
    """Surrogate, ST and AT students; Table 1 and the specialization snapshots (Figs. 3, 4, 6).

    Returns ``(values, arrays)`` for ``results.record``: ``values["table"][column][attack] =
    [μ, σ²]`` with columns ``"AT (e)"`` for each checkpoint e and ``"ST (epochs)"``;
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

    surrogate = train("surrogate", teacher, x_train, cfg, adversarial=False, augment=False,
                      seed_offset=SURROGATE_SEED_OFFSET, epochs=cfg.surrogate_epochs,
                      device=device, progress=progress)

    def measure(column):
        def on_checkpoint(epoch, student):
            col = column(epoch)
            table[col] = {k: list(v) for k, v in attack_suite(
                student, teacher, surrogate, x_pool, cfg, evaluator, subsets).items()}
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
    values = {"columns": at_cols + [f"ST ({cfg.epochs})"], "attacks": list(ATTACKS),
              "table": table, "spec": spec, "init_spec": _scalars(init), "epochs": cfg.epochs,
              "checkpoints": sorted(cfg.checkpoints), "repeats": cfg.repeats,
              "n_eval": cfg.n_eval,
              "surrogate_clean_agreement": float(attacks.agreement(
                  surrogate.eval(), teacher.eval(), x_spec).float().mean())}
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
                                             teacher_lr=cfg.deep_teacher_lr)
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
            steps=cfg.eval_steps, norm="linf", generator=g)
        robust[col] = list(attacks.robust_accuracy_of(student, teacher, x_pool, linf,
                                                      generator=evaluator, subsets=subsets))
    values = {"columns": list(spec), "spec": spec, "linf_robust": robust,
              "teacher_test_accuracy": teacher_res.values["test_accuracy_pruned"],
              "teacher_widths": list(teacher.widths)}
    return values, arrays


# -- presenting the results --------------------------------------------------------------------

VERDICT_ABS_TOL = 3.0
"""A robust accuracy counts as reproduced within ±3 percentage points of the paper's."""


def table1_markdown(values: dict) -> str:
    """Our Table 1 as markdown: μ (%) and σ² (of the accuracy as a fraction) per attack/column."""
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


def paper_table1_markdown() -> str:
    """Source A's Table 1 (the paper's numbers, for reading beside ours)."""
    head = "| attack | " + " | ".join(f"{c} μ (%) | {c} σ²" for c in PAPER_TABLE1_COLUMNS) + " |"
    lines = [head, "|---|" + "---|---|" * len(PAPER_TABLE1_COLUMNS)]
    for a, row in PAPER_TABLE1.items():
        lines.append(f"| {ATTACK_LABELS[a]} | " + " | ".join(
            f"{mu:.2f} | {var:.1e}" for mu, var in row) + " |")
    return "\n".join(lines)


DEEP_TEACHER_MIN_ACCURACY = 0.15
"""The 5-layer comparison (Fig. 5) is only read when its teacher's test accuracy is at least 15 %
(chance is 10 %): students that copy a teacher at chance copy a near-constant function, and
their robustness says nothing about the claim."""


def _mu(values, col, attack) -> float:
    return 100 * values["table"][col][attack][0]


def table1_se(values: dict, col: str, attack: str) -> float:
    """Standard error (a fraction) of one μ of our Table 1 (:func:`_se`)."""
    return _se(values, values["table"][col][attack])


def _se(values: dict, mu_var) -> float:
    """``results.accuracy_se`` of a robust accuracy ``(μ, σ²)`` evaluated like ``values``'s
    Table 1: ``n_eval`` images drawn afresh for each of its ``repeats``."""
    mu, var = mu_var
    return results.accuracy_se(mu, var, values["n_eval"], values["repeats"], fresh_images=True)


def accuracy_margin(values: dict, col_a: str, col_b: str, attack: str) -> float:
    """Margin (in points) a difference of two μ of our Table 1 must clear to count as a direction
    (``results.direction_margin``: two standard errors, at least ``results.ACC_MARGIN``)."""
    return 100 * results.direction_margin(table1_se(values, col_a, attack),
                                          table1_se(values, col_b, attack))


def paper_column(values: dict, column: str) -> int:
    """Index into :data:`PAPER_TABLE1`'s lists of the paper column that ``column`` ("AT (e)" or
    "ST (e)") stands for: the paper epoch at the same fraction of training."""
    if column.startswith("ST"):
        return PAPER_TABLE1_COLUMNS.index("ST (300)")
    e = int(column.split("(")[1].rstrip(")"))
    return PAPER_TABLE1_COLUMNS.index(f"AT ({paper_epoch(e, values['epochs'])})")


def table1_rows(values: dict, note: str = ""):
    """``results.Row``s: our last AT checkpoint and our ST student beside the paper's columns
    at the same fraction of training (:func:`paper_column`), per attack. "reproduced" needs our
    μ within ±3 points *and* a standard error of at most 3 points; the direction checked is the
    paper's reading of Table 1: the AT student is more robust than the ST student, by more than
    :func:`accuracy_margin`."""
    at_last, st = values["columns"][-2], values["columns"][-1]
    rows = []
    for a, paper in PAPER_TABLE1.items():
        at, stv = _mu(values, at_last, a), _mu(values, st, a)
        margin = accuracy_margin(values, at_last, st, a)
        holds = results.exceeds(at, stv, margin)
        rel = ">" if holds else "≈" if abs(at - stv) <= margin else "<"
        for col, ours in ((at_last, at), (st, stv)):
            j = paper_column(values, col)
            se = 100 * table1_se(values, col, a)
            rows.append(results.Row(
                f"{ATTACK_LABELS[a]}: robust acc. (%), {col}", round(ours, 2), paper[j][0],
                f"Table 1, {PAPER_TABLE1_COLUMNS[j]}",
                results.verdict(ours, paper[j][0], abs_tol=VERDICT_ABS_TOL,
                                direction_holds=holds, noise=se),
                f"ours ± {se:.1f} (s.e.); AT {rel} ST here ({at:.1f} vs {stv:.1f}, margin "
                f"{margin:.1f}). {note}".strip()))
    return rows


def _claim(quantity, ours: str, paper: str, source: str, holds: bool, note=""):
    """A qualitative claim: the paper states a direction (mostly from a figure, without a number to
    reproduce), so the verdict is "direction holds" or "differs"."""
    return results.Row(quantity, ours, paper, source, "direction holds" if holds else "differs",
                       note)


def deep_testable(deep: dict) -> bool:
    """Whether the 5-layer run can test Fig. 5's claims (its teacher learned something)."""
    return deep["teacher_test_accuracy"] >= DEEP_TEACHER_MIN_ACCURACY


def _paper_note(a: float, b: float) -> str:
    """Whether the paper's own two numbers clear the book's 2-point floor."""
    gap = a - b
    if abs(gap) > 100 * results.ACC_MARGIN:
        return f"paper: {gap:+.2f} points"
    return f"paper: {gap:+.2f} points, itself within the {100 * results.ACC_MARGIN:.0f}-point floor"


def claim_rows(t1: dict, aug: dict | None = None, deep: dict | None = None):
    """The qualitative claims of §5.4 checked on our numbers (each row says what was compared).

    A direction holds only by more than a margin: :func:`accuracy_margin` for robust
    accuracies, ``results.SPEC_MARGIN`` for MBNC and ε, a ratio lower by 10 % for the
    unspecialized/specialized ratio. The paper's numbers quoted are those of its checkpoints at
    the same fraction of training as ours. The 5-layer rows are left out when its teacher is at
    chance (:func:`deep_testable`)."""
    at_cols, st = t1["columns"][:-1], t1["columns"][-1]
    first, last = at_cols[0], at_cols[-1]
    pf, pl, ps = paper_column(t1, first), paper_column(t1, last), paper_column(t1, st)
    paper_linf = PAPER_TABLE1["linf_pgd"]
    rows = []
    mu_first, mu_last, mu_st = (_mu(t1, first, "linf_pgd"), _mu(t1, last, "linf_pgd"),
                                _mu(t1, st, "linf_pgd"))
    if len(at_cols) > 1:
        m = accuracy_margin(t1, first, last, "linf_pgd")
        rows.append(_claim("AT ℓ∞ robustness grows with epochs",
                           f"{first}: {mu_first:.1f} → {last}: {mu_last:.1f}",
                           f"{PAPER_TABLE1_COLUMNS[pf]}: {paper_linf[pf][0]} → "
                           f"{PAPER_TABLE1_COLUMNS[pl]}: {paper_linf[pl][0]}", "Table 1",
                           results.exceeds(mu_last, mu_first, m),
                           f"margin {m:.1f} points; "
                           + _paper_note(paper_linf[pl][0], paper_linf[pf][0])))
    m = accuracy_margin(t1, first, st, "linf_pgd")
    rows.append(_claim("AT at the first checkpoint beats ST (ℓ∞ PGD)",
                       f"{mu_first:.1f} vs {mu_st:.1f}",
                       f"{paper_linf[pf][0]} vs {paper_linf[ps][0]} "
                       f"({PAPER_TABLE1_COLUMNS[pf]} vs {PAPER_TABLE1_COLUMNS[ps]})",
                       "Table 1, §5.4", results.exceeds(mu_first, mu_st, m),
                       f"margin {m:.1f} points; "
                       + _paper_note(paper_linf[pf][0], paper_linf[ps][0])))
    spec = t1["spec"]
    layers = len(spec[st]["mbnc"])
    higher = [results.exceeds(spec[last]["mbnc"][l], spec[st]["mbnc"][l], results.SPEC_MARGIN)
              for l in range(layers)]
    rows.append(_claim("AT has higher MBNC than ST, per layer",
                       f"{sum(higher)} of {layers} layers: " + ", ".join(
                           f"{spec[last]['mbnc'][l]:.3f} vs {spec[st]['mbnc'][l]:.3f}"
                           for l in range(layers)),
                       "all layers (figure only)", "Fig. 3, Fig. 6 left", all(higher),
                       f"margin {results.SPEC_MARGIN}"))
    lower = [_ratio_lower(spec[last]["ratio"][l], spec[st]["ratio"][l]) for l in range(layers)]
    rows.append(_claim("AT has a lower unspecialized/specialized ratio than ST, per "
                       "layer", f"{sum(lower)} of {layers} layers: " + ", ".join(
                           f"{_fmt_ratio(spec[last]['ratio'][l])} vs "
                           f"{_fmt_ratio(spec[st]['ratio'][l])}" for l in range(layers)),
                       "all layers (figure only)", "Fig. 6 right", all(lower),
                       f"lower by more than {RATIO_MARGIN:.0%}"))
    for eps in ("eps_in", "eps_out"):
        a, b = spec[last][f"{eps}_mean"], spec[st][f"{eps}_mean"]
        rows.append(_claim(f"AT has a lower ε_{eps[4:]} curve than ST (mean over "
                           "teacher nodes, first layer)", f"{a:.3f} vs {b:.3f}",
                           "lower (figure only)", "Fig. 4",
                           results.exceeds(b, a, results.SPEC_MARGIN),
                           f"margin {results.SPEC_MARGIN}"))
    if aug is not None:
        for name in ("AT", "ST"):
            base = last if name == "AT" else st
            col = next(c for c in aug["columns"] if c.startswith(name))
            a, b = aug["spec"][col]["mbnc"], spec[base]["mbnc"]
            more = [results.exceeds(x, y, results.SPEC_MARGIN) for x, y in zip(a, b)]
            rows.append(_claim(
                f"augmentation raises the MBNC of {name}",
                f"{sum(more)} of {len(more)} layers: " + ", ".join(
                    f"{x:.3f} vs {y:.3f}" for x, y in zip(a, b)),
                "higher (figure only)", "Fig. 6 left", all(more),
                f"margin {results.SPEC_MARGIN}"))
    if deep is not None and deep_testable(deep):
        at_col = next(c for c in deep["columns"] if c.startswith("AT"))
        st_col = next(c for c in deep["columns"] if c.startswith("ST"))
        a, b = deep["spec"][at_col]["mbnc"], deep["spec"][st_col]["mbnc"]
        more = [results.exceeds(x, y, results.SPEC_MARGIN) for x, y in zip(a, b)]
        rows.append(_claim("deeper net: AT has higher MBNC than ST",
                           f"{sum(more)} of {len(more)} layers", "similar to 4 layers",
                           "Fig. 5", all(more), f"margin {results.SPEC_MARGIN}"))
        m = 100 * results.direction_margin(_se(t1, deep["linf_robust"][at_col]),
                                           _se(t1, deep["linf_robust"][st_col]))
        ra, rs = deep["linf_robust"][at_col][0], deep["linf_robust"][st_col][0]
        rows.append(_claim("deeper net: AT more robust than ST (ℓ∞ PGD)",
                           f"{100 * ra:.1f} vs {100 * rs:.1f}", "(not reported)", "Fig. 5",
                           results.exceeds(100 * ra, 100 * rs, m), f"margin {m:.1f} points"))
    return rows


RATIO_MARGIN = 0.1
"""An unspecialized/specialized ratio counts as lower only when below 90 % of the other."""


def _ratio_lower(a, b) -> bool:
    a, b = float(a), float(b)
    if np.isnan(a) or np.isnan(b):
        return False
    if np.isinf(b):
        return not np.isinf(a)
    return a < (1 - RATIO_MARGIN) * b


def _fmt_ratio(r) -> str:
    r = float(r)
    return "∞" if np.isinf(r) else "—" if np.isnan(r) else f"{r:.2f}"


# -- recorded runs ----------------------------------------------------------------------------

def teacher_fingerprint(teacher) -> dict:
    """What a record of this chapter depends on besides its parameters: the teacher's weights
    (by digest) and the definition of the measurements (:data:`tsrobust.chapters.cifar.MEASURES`);
    a record made with another teacher is recomputed."""
    return {"teacher_digest": model_digest(teacher), "measures": MEASURES}


def record_table1(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True):
    """:func:`run_table1` recorded as ``table1`` (loaded when recorded with this teacher)."""
    return record_for(CHAPTER, "table1", cfg, lambda: run_table1(
        cfg, data, teacher, device=device, progress=progress), data=data,
        fingerprint=teacher_fingerprint(teacher))


def record_augmentation(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True):
    """:func:`run_augmentation` recorded as ``augmentation``."""
    return record_for(CHAPTER, "augmentation", cfg, lambda: run_augmentation(
        cfg, data, teacher, device=device, progress=progress), data=data,
        fingerprint=teacher_fingerprint(teacher))


def record_deep(cfg, data: CIFAR10, *, device="cpu", progress: bool = True):
    """:func:`run_deep` recorded as ``deep`` (its teacher is recorded by chapter 3's key)."""
    return record_for(CHAPTER, "deep", cfg, lambda: run_deep(
        cfg, data, device=device, progress=progress), data=data,
        fingerprint={"measures": MEASURES})


def recorded_elsewhere(name: str, profile: str | None = None) -> list:
    """Records ``name`` of this chapter made with the larger profiles (``gpu``, ``paper``) other
    than ``profile`` and present in this copy of the book, as ``[(profile, result)]``."""
    return [(other, rec) for other in ("gpu", "paper")
            if other != profile and (rec := results.recorded(CHAPTER, name, other)) is not None]


# -- what the notebook shows besides the tables -------------------------------------------------

def scale_note(cfg) -> str:
    """How this run is smaller than the paper's ("" in the paper profile)."""
    if cfg.profile == "paper":
        return ""
    return (f"{cfg.profile}: {cfg.epochs} epochs on {cfg.n_student} images, PGD-{cfg.at_steps} "
            f"training, {cfg.eval_steps}-step evaluation.")


def surrogate_markdown(t1: dict, n_spec: int) -> str:
    """How close the transfer attack's surrogate is to the teacher (clean agreement)."""
    agree = t1["surrogate_clean_agreement"]
    return (f"The surrogate of the transfer attack agrees with the teacher on {100 * agree:.1f} % "
            f"of the first {n_spec} clean test images: the transfer attack can only be as strong "
            f"as that copy of the teacher is close"
            + (". Below 50 %, as here, the transfer row says little about robustness."
               if agree < 0.5 else "."))


def _curve(ax, curve, *args, **kw):
    ax.plot(np.arange(1, len(curve) + 1), curve, *args, **kw)


def _at_shades(n: int):
    return plt.cm.Blues(np.linspace(0.4, 1.0, n))


def plot_sorted_bnc(t1):
    """Figure 5.1 (source A, Fig. 3): every layer's sorted BNC curve of the AT checkpoints (blue,
    darker = later), the ST student (red) and the untrained student (dotted gray).
    ``t1``: the ``table1`` record (values and arrays)."""
    cols = t1.values["columns"]
    at_cols, st_col = cols[:-1], cols[-1]
    n_layers = len(t1.values["spec"][st_col]["mbnc"])
    fig, axes = plt.subplots(1, n_layers, figsize=(3.2 * n_layers, 3.4), sharey=True)
    for l, ax in enumerate(axes):
        for col, color in zip(at_cols, _at_shades(len(at_cols))):
            _curve(ax, t1.arrays[f"{col}__sorted_bnc_{l}"], color=color, label=col)
        _curve(ax, t1.arrays[f"{st_col}__sorted_bnc_{l}"], "r--", label=st_col)
        _curve(ax, t1.arrays[f"{INIT}__sorted_bnc_{l}"], ":", color="gray", label="untrained")
        ax.set_title(f"layer {l}")
        ax.set_xlabel("teacher node (sorted)")
    axes[0].set_ylabel("best normalized correlation")
    axes[-1].legend(fontsize=8)
    fig.suptitle("Sorted BNC curves, AT (blue, darker = later) vs ST (red)")
    fig.tight_layout()
    return fig


def dead_nodes_markdown(t1: dict, teacher_widths, n_spec: int) -> str:
    """Dead teacher nodes (left out) and dead student nodes (kept, NC 0) of every column."""
    st_spec = t1["spec"][t1["columns"][-1]]
    return (f"Dead teacher nodes on the {n_spec} NC images, per layer (left out): "
            f"{', '.join(map(str, st_spec['dead_teacher']))} of "
            f"{', '.join(map(str, teacher_widths))}. Dead student nodes (kept, NC 0): "
            + "; ".join(f"{c}: {', '.join(map(str, s['dead_student']))}"
                        for c, s in t1["spec"].items()) + ".")


def plot_eps_curves(t1):
    """Figure 5.2 (source A, Fig. 4): the first layer's ε_in (left) and ε_out (right) curves of
    the AT checkpoints, the ST student and the untrained student."""
    cols = t1.values["columns"]
    at_cols, st_col = cols[:-1], cols[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, eps in zip(axes, ("eps_in", "eps_out")):
        _curve(ax, t1.arrays[f"{INIT}__{eps}"], ":", color="gray", label="untrained")
        for col, color in zip(at_cols, _at_shades(len(at_cols))):
            _curve(ax, t1.arrays[f"{col}__{eps}"], color=color, label=col)
        _curve(ax, t1.arrays[f"{st_col}__{eps}"], "r--", label=st_col)
        ax.set_title(f"$\\epsilon_{{{eps[4:]}}}$ of each teacher node's best student")
        ax.set_xlabel("teacher node (sorted by the value)")
    axes[0].set_ylabel("ε (normalized filters)")
    axes[1].legend(fontsize=8)
    fig.suptitle("First-layer ε_in / ε_out curves (lower = better specialized)")
    fig.tight_layout()
    return fig


def pearson_markdown(t1: dict) -> str:
    """The Pearson score of (ρ, ε_in) and the mean ε_in, ε_out of every student."""
    return ("| student | Pearson (ρ, ε_in) | mean ε_in | mean ε_out |\n|---|---|---|---|\n"
            + "\n".join(f"| {c} | {s['rho_eps_in_pearson']:.3f} | {s['eps_in_mean']:.3f} | "
                        f"{s['eps_out_mean']:.3f} |"
                        for c, s in {"untrained": t1["init_spec"], **t1["spec"]}.items()))


def fig6_groups(t1: dict, aug: dict | None = None) -> dict:
    """The students of Fig. 6: the last AT checkpoint, ST, and (with ``aug``) AT and ST trained
    with augmentation, each with its specialization summary."""
    at_last, st = t1["columns"][-2], t1["columns"][-1]
    groups = {at_last: t1["spec"][at_last], st: t1["spec"][st]}
    if aug is not None:
        groups.update(aug["spec"])
    return groups


def plot_fig6(t1: dict, aug: dict | None = None):
    """Figure 5.3 (source A, Fig. 6): per layer, the MBNC (left) and the unspecialized/specialized
    ratio (right; ∞ bars left out) of :func:`fig6_groups`."""
    groups = fig6_groups(t1, aug)
    n_layers = len(t1["spec"][t1["columns"][-1]]["mbnc"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(groups)
    layers = np.arange(n_layers)
    for i, (name, s) in enumerate(groups.items()):
        axes[0].bar(layers + i * width, s["mbnc"], width, label=name)
        ratio = np.asarray(s["ratio"], dtype=float)
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


def infinite_ratio_markdown(t1: dict, aug: dict | None = None) -> str:
    """The layers of Fig. 6 with no specialized student node (ratio ∞, bar left out); "" if
    none."""
    inf_layers = {n: [l for l, r in enumerate(s["ratio"]) if r == float("inf") or r == "inf"]
                  for n, s in fig6_groups(t1, aug).items()}
    if not any(inf_layers.values()):
        return ""
    return ("Layers with no specialized student node at all (ratio ∞, bar left out): "
            + "; ".join(f"{n}: {v}" for n, v in inf_layers.items() if v) + ".")


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
