"""Chapter 7: CCAT, the robust-feature dataset and the spread of specialization (source A §5.6,
appendix A.10–A.11).

Everything the chapter computes, checks and draws lives here; the notebook calls these
functions and shows what they return.

- :func:`run_students`: for one seed, every student of the chapter, trained from one
  initialization on chapter 3's oracle teacher: AT (oracle-adversarial, logit target, as
  chapter 5), CCAT for each ρ (:mod:`tsrobust.ccat`, Table 4), ST for ``epochs`` ("short") and
  ``st_long_epochs`` ("long"), and RFT — the short ST student fine-tuned on the robust-feature
  dataset made from this seed's AT student (:mod:`tsrobust.robust_features`, Table 5). Each is
  measured alike: ℓ∞ robust accuracy (chapters 4–5's attack), NC per layer with sorted BNC, MBNC
  and the ε_in/ε_out curves (§5.2–5.3), and how many student nodes specialize to each teacher
  node (A.10). :func:`record_seeds` records it per seed.
- :func:`leading_runs`: the book leads with the largest recorded run; this build's own run is
  the pipeline check (:func:`pipeline_markdown`).
- :func:`claim_rows`: the claims of §5.6, A.10 and A.11 judged by the spread across seeds;
  :func:`table4_markdown`, :func:`table5_markdown`: ours beside the paper's; the figures 7.1–7.6.

Where the source is silent (how CCAT mixes clean and adversarial images and draws δ, the
robust-feature optimizer and its steps, which students A.10 counts) the choices are settings of
:data:`SETTINGS`, stated in the chapter.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from tsrobust import attacks, bench, results
from tsrobust import robust_features as rf
from tsrobust.ccat import CLEAN_FRACTION
from tsrobust.chapters.cifar import (
    ATTACK_ALPHA, ATTACK_EPS, ATTACK_STEPS, EVAL_SEED_OFFSET, MEASURES, N_PCA, N_TRAIN, PCA_RANK,
    PRECISION, STUDENT_BATCH_SIZE, STUDENT_LR, STUDENT_OPTIMIZER, larger_profiles_sentence,
    notebook_inputs, record_for, seed_config, seed_name, shown_run_markdown,
    teacher_run,
)
from tsrobust.data import CIFAR10
from tsrobust.models import PRUNED_WIDTHS, ConvNet, build_student
from tsrobust.params import Setting, resolve_notebook
from tsrobust.plotting import seed_band
from tsrobust.runtime import resolve_precision
from tsrobust.specialization import (
    SPECIALIZED_NC,
    patch_basis,
    specialization_at,
    specialized_counts,
    uniformity_test,
)
from tsrobust.theory import spearman
from tsrobust.training import (
    checkpoint_folder,
    discard_checkpoints,
    model_digest,
    train_student,
)

CHAPTER = "07_ccat_robust_features"
"""Record key of this chapter."""

PAPER_TABLE4 = {"CCAT_5": 47.25, "CCAT_10": 52.04, "CCAT_20": 49.33, "AT": 84.07}
"""Source A, Table 4: robust accuracy (%) of students trained 150 epochs by CCAT (ρ = 5, 10,
20) and AT."""
PAPER_TABLE5 = {"AT": 83.27, "ST_short": 35.88, "ST_long": 61.73, "RFT": 45.39}
"""Source A, Table 5: robust accuracy (%) of AT (150 epochs), ST (150 and 300 epochs) and RFT
(150 epochs on the robust-feature dataset, fine-tuned from the 150-epoch ST student)."""
PAPER_EPOCHS = {"AT": 150, "CCAT": 150, "ST_short": 150, "ST_long": 300, "RFT": 150}

INIT = "init"
"""Array-name prefix of the untrained student's curves."""
ST_SHORT, ST_LONG, RFT, AT = "ST_short", "ST_long", "RFT", "AT"
TABLE5_ORDER = (AT, ST_LONG, RFT, ST_SHORT)
"""Table 5's students in the order of robustness the paper finds: AT > ST (long) > RFT > ST
(short)."""
RF_SEED_OFFSET = 3000
"""The robust-feature dataset's starting images are drawn from ``seed + 3000``."""
RF_BATCH = 250
"""Targets optimized at once when making the robust-feature dataset."""
GRID = 6
"""Images of the first seed's robust-feature dataset kept for the figure (target, start, x_r)."""
UNIFORMITY_P = 0.05
"""A.10's uniformity is rejected in a layer when the χ² test's p-value falls below 5 %."""


def ccat_col(rho) -> str:
    """The column of the CCAT student with transition exponent ``rho``."""
    return f"CCAT_{int(rho) if float(rho).is_integer() else rho}"


SETTINGS = {
    "n_train": N_TRAIN,  # chapter 3's: the recorded teacher is reused
    "n_test": Setting(int, smoke=1000, cpu=10_000, gpu=10_000, paper=10_000, min=1, max=10_000,
                      doc="CIFAR-10 test images (the pool robust accuracy is measured on)"),
    "n_student": Setting(int, smoke=500, cpu=10_000, gpu=50_000, paper=50_000, min=1,
                         max=50_000,
                         doc="training images the students learn from: the first of the "
                             "teacher's n_train (the cpu profile: 10 000, half of chapters "
                             "4-5's, for the seven students per seed)"),
    "seeds": Setting(int, smoke=2, cpu=3, gpu=3, paper=3, min=1,
                     doc="every student is trained from seeds seed, seed + 1, …: their spread "
                         "is the noise the verdicts judge by (A.10: three initializations)"),
    "epochs": Setting(int, smoke=1, cpu=4, gpu=30, paper=150, min=1,
                      doc="epochs of AT, CCAT and the short ST student (§5.6, A.11: 150)"),
    "st_long_epochs": Setting(int, smoke=2, cpu=8, gpu=60, paper=300, min=1,
                              doc="epochs of the long ST student (A.11: 300); the short one is "
                                  "its checkpoint at `epochs`"),
    "optimizer": STUDENT_OPTIMIZER,  # as chapters 4-5
    "lr": STUDENT_LR,
    "batch_size": STUDENT_BATCH_SIZE,
    "at_eps": Setting(float, smoke=10 / 255, cpu=10 / 255, gpu=10 / 255, paper=10 / 255,
                      min=0.0, doc="ℓ∞ budget of AT and CCAT (§5.1: 10/255)"),
    "at_alpha": Setting(float, smoke=0.01, cpu=0.01, gpu=0.01, paper=0.01, min=0.0,
                        doc="PGD step size of AT and CCAT (§5.1: 0.01)"),
    "at_steps": Setting(int, smoke=2, cpu=7, gpu=40, paper=40, min=1,
                        doc="PGD steps of AT and CCAT (§5.1: 40; the cpu profile PGD-7, which "
                            "reaches the ε = 10/255 boundary in 4 steps of 0.01)"),
    "rhos": Setting(tuple, smoke=(5, 10, 20), cpu=(5, 10, 20), gpu=(5, 10, 20),
                    paper=(5, 10, 20), min=0.0,
                    doc="CCAT's transition exponents ρ (§5.6: 5, 10, 20)"),
    "ccat_clean_fraction": Setting(float, smoke=CLEAN_FRACTION, cpu=CLEAN_FRACTION,
                                   gpu=CLEAN_FRACTION, paper=CLEAN_FRACTION, min=0.0, max=1.0,
                                   doc="share of each CCAT batch kept clean with the teacher's "
                                       "one-hot label (not in source A; Stutz et al.'s code: "
                                       "half)"),
    "ccat_random_radius": Setting(bool, smoke=True, cpu=True, gpu=True, paper=True,
                                  doc="attack each CCAT image inside r·ε, r ~ U(0, 1), so that "
                                      "λ(δ) spans [0, 1] (not in source A; False: inside ε, "
                                      "where nearly every target is uniform)"),
    "n_rf": Setting(int, smoke=100, cpu=5000, gpu=50_000, paper=50_000, min=1, max=50_000,
                    doc="targets x of the robust-feature dataset (the first of the students' "
                        "images)"),
    "rf_steps": Setting(int, smoke=10, cpu=40, gpu=200, paper=1000, min=0,
                        doc="Adam steps of Eq. 35 per image (not in the source; Ilyas et al. "
                            "take 1000 gradient steps)"),
    "rf_lr": Setting(float, smoke=0.01, cpu=0.01, gpu=0.01, paper=0.01, min=0.0,
                     doc="Adam's rate on the pixels for Eq. 35 (not in the source)"),
    "rf_alpha": Setting(float, smoke=rf.ALPHA, cpu=rf.ALPHA, gpu=rf.ALPHA, paper=rf.ALPHA,
                        min=0.0, doc="α of Eq. 35 (A.11: 0.5)"),
    "rf_start": Setting(str, smoke="image", cpu="image", gpu="image", paper="image",
                        choices=rf.STARTS,
                        doc="where x_r starts: another training image, or uniform noise"),
    "rft_epochs": Setting(int, smoke=5, cpu=8, gpu=30, paper=150, min=1,
                          doc="epochs of the RFT fine-tune on the n_rf robust-feature images "
                              "(n_rf × rft_epochs = n_student × (st_long_epochs − epochs): RFT "
                              "sees as many images as the long ST student's extra epochs)"),
    "n_eval": Setting(int, smoke=100, cpu=1000, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images attacked per evaluation (drawn afresh from n_test for "
                          "each repeat; the same for every student)"),
    "repeats": Setting(int, smoke=1, cpu=1, gpu=3, paper=5, min=1,
                       doc="repeated evaluations of the robust accuracy"),
    "eval_steps": ATTACK_STEPS,  # chapters 4-5's attack
    "linf_eps": ATTACK_EPS,
    "linf_alpha": ATTACK_ALPHA,
    "n_spec": Setting(int, smoke=100, cpu=500, gpu=500, paper=1000, min=2, max=10_000,
                      doc="test images whose activations give the NC of §5.2"),
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
    "precision": PRECISION,
}
"""Chapter 7's parameters (``tsrobust.params`` API).

The ``cpu`` profile sizes seven students per seed (AT, CCAT for three ρ, ST short and long, RFT)
and three seeds to two CPU cores and 75 minutes. Its work, in passes of student and teacher
forward and backward on one image: AT 3 seeds × 4 epochs × 10 000 images × (7 PGD steps + 1) =
0.96 M; CCAT 3 ρ × 3 × 4 × 10 000 × (½ × 7 + 1: half of each batch attacked) = 1.62 M; ST 3 × 8
× 10 000 = 0.24 M (the short student is the long one's checkpoint); the robust-feature dataset 3
× 5 000 images × 40 steps = 0.60 M; RFT 3 × 8 × 5 000 = 0.12 M; ℓ∞ PGD-40 on 1 000 test images
for 7 students × 3 seeds = 0.84 M: about 4.4 M passes, 41–61 minutes at 1 200–1 800 images per
second. Source A's runs are 150 (ST long 300) epochs on 50 000 images with PGD-40."""


def check_settings(cfg):
    """Cross-parameter checks (single values are checked by ``resolve``)."""
    if cfg.n_student > cfg.n_train:
        raise ValueError(f"n_student = {cfg.n_student} must be ≤ n_train = {cfg.n_train}")
    if cfg.n_rf > cfg.n_student:
        raise ValueError(f"n_rf = {cfg.n_rf} must be ≤ n_student = {cfg.n_student} (its targets "
                         f"are the students' training images)")
    if cfg.n_eval > cfg.n_test or cfg.n_spec > cfg.n_test:
        raise ValueError(f"n_eval = {cfg.n_eval} and n_spec = {cfg.n_spec} must be ≤ n_test = "
                         f"{cfg.n_test} (they are drawn from the test images)")
    if cfg.n_pca > cfg.n_train:
        raise ValueError(f"n_pca = {cfg.n_pca} must be ≤ n_train = {cfg.n_train}")
    if cfg.st_long_epochs <= cfg.epochs:
        raise ValueError(f"st_long_epochs = {cfg.st_long_epochs} must exceed epochs = "
                         f"{cfg.epochs} (the short ST student is the long one's checkpoint)")
    if not cfg.rhos or any(r <= 0 for r in cfg.rhos) or len(set(cfg.rhos)) != len(cfg.rhos):
        raise ValueError(f"rhos {cfg.rhos} must be distinct values > 0")


def columns(rhos) -> list[str]:
    """The students of one seed, in the order the tables show them."""
    return [AT, *(ccat_col(r) for r in rhos), ST_SHORT, ST_LONG, RFT]


def label(col: str, values: dict | None = None) -> str:
    """How tables and legends name a student (with its epochs when ``values`` are given)."""
    if col.startswith("CCAT_"):
        name = f"CCAT (ρ = {col[5:]})"
    else:
        name = {AT: "AT", ST_SHORT: "ST (short)", ST_LONG: "ST (long)", RFT: "RFT"}[col]
    if values is None:
        return name
    e = {ST_LONG: values["st_long_epochs"]}.get(col, values["epochs"])
    if col == RFT:
        return f"{name}, {e} + {values['rft_epochs']} ep. on x_r"
    return f"{name}, {e} ep."


# -- training ---------------------------------------------------------------------------------

def _run_folder(cfg, name: str):
    digest = hashlib.sha1(json.dumps(cfg.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
    return checkpoint_folder(cfg.profile, CHAPTER, f"{name}-{digest}")


def _initial_student(cfg, device):
    """Every student of a seed starts here (built from ``cfg.seed``)."""
    return build_student("student", generator=torch.Generator().manual_seed(cfg.seed)).to(device)


def train(name: str, student, teacher, x: torch.Tensor, cfg, *, epochs: int, target="logit",
          adversarial=None, ccat=None, checkpoint_epochs=(), on_checkpoint=None, device="cpu",
          progress: bool = True):
    """``student`` trained in place by ``tsrobust.training.train_student`` (batches drawn from
    ``cfg.seed``; arithmetic in ``cfg.precision``), resumable in a checkpoint folder that is
    removed when the run ends. Returns it in eval mode."""
    folder = _run_folder(cfg, name)
    train_student(student, teacher, x, target=target, epochs=epochs, lr=cfg.lr,
                  batch_size=cfg.batch_size, optimizer=cfg.optimizer, adversarial=adversarial,
                  ccat=ccat, checkpoint_dir=folder, checkpoint_epochs=checkpoint_epochs,
                  on_checkpoint=on_checkpoint,
                  generator=torch.Generator(device=device).manual_seed(cfg.seed),
                  device=device, precision=cfg.precision, progress=progress)
    discard_checkpoints(folder)
    return student.eval()


def robust_feature_dataset(model, teacher, x: torch.Tensor, cfg, *, device="cpu",
                           progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, list]:
    """A.11's dataset for the targets ``x``: ``(x_start, x_r, objective)`` with ``objective[i]``
    the mean of Eq. 35 over all targets after ``i`` steps (:func:`tsrobust.robust_features.
    robust_features`, ``RF_BATCH`` targets at a time; starts drawn from ``seed + 3000``)."""
    gen = torch.Generator(device=device).manual_seed(cfg.seed + RF_SEED_OFFSET)
    x = x.to(device)
    x_start = rf.start_images(x, cfg.rf_start, gen)
    out, curve = [], np.zeros(cfg.rf_steps + 1)
    for i in tqdm(range(0, len(x), RF_BATCH), desc="robust features", disable=not progress):
        xb, sb = x[i:i + RF_BATCH], x_start[i:i + RF_BATCH]
        x_r, hist = rf.robust_features(model, teacher, xb, sb, steps=cfg.rf_steps, lr=cfg.rf_lr,
                                       alpha=cfg.rf_alpha, precision=cfg.precision)
        out.append(x_r)
        curve += np.asarray(hist) * len(xb) / len(x)
    return x_start, torch.cat(out), curve.tolist()


def _summary(m: dict) -> dict:
    """The recorded scalars of one :func:`tsrobust.specialization.specialization_at` result."""
    return {"mbnc": m["mbnc"], "eps_in_mean": float(m["eps_in_curve"].mean()),
            "eps_out_mean": float(m["eps_out_curve"].mean()),
            "dead_teacher": m["dead_teacher"], "dead_student": m["dead_student"],
            "counts": [specialized_counts(nc).tolist() for nc in m["nc"]],
            "n_students": [int(nc.shape[0]) for nc in m["nc"]]}


def _curves(prefix: str, m: dict) -> dict[str, np.ndarray]:
    out = {f"{prefix}__sorted_bnc_{l}": c.numpy() for l, c in enumerate(m["sorted_bnc"])}
    out[f"{prefix}__eps_in"] = m["eps_in_curve"].numpy()
    out[f"{prefix}__eps_out"] = m["eps_out_curve"].numpy()
    return out


def run_students(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True,
                 grid: bool = True):
    """Every student of one seed (module docstring), measured alike. Returns ``(values,
    arrays)`` for ``results.record``: ``values["robust"][col] = [μ, σ²]`` (fractions),
    ``values["spec"][col]`` MBNC per layer, mean ε_in/ε_out, and the specialized counts per
    teacher node and layer; arrays ``<col>__sorted_bnc_<l>``, ``<col>__eps_in``,
    ``<col>__eps_out`` (and ``init__…`` for the untrained student); with ``grid`` the first
    :data:`GRID` targets, starts and x_r of the robust-feature dataset."""
    check_settings(cfg)
    x_train = data.x_train[: cfg.n_student].to(device)
    x_pool = data.x_test.to(device)
    x_spec = data.x_test[: cfg.n_spec].to(device)
    _, basis = patch_basis(data.x_train[: cfg.n_pca], cfg.pca_rank)
    evaluator = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
    subsets = [torch.randperm(len(x_pool), generator=evaluator, device=device)[: cfg.n_eval]
               for _ in range(cfg.repeats)]
    robust, spec, arrays = {}, {}, {}

    def measure(col, student):
        robust[col] = list(attacks.robust_accuracy(
            student, teacher, x_pool, eps=cfg.linf_eps, alpha=cfg.linf_alpha,
            steps=cfg.eval_steps, norm="linf", generator=evaluator, subsets=subsets,
            precision=cfg.precision))
        m = specialization_at(student, teacher, x_spec, basis)
        spec[col] = _summary(m)
        arrays.update(_curves(col, m))

    init = specialization_at(_initial_student(cfg, device).eval(), teacher, x_spec, basis)
    arrays.update(_curves(INIT, init))
    common = dict(device=device, progress=progress)
    at = train("at", _initial_student(cfg, device), teacher, x_train, cfg, epochs=cfg.epochs,
               adversarial=dict(norm="linf", eps=cfg.at_eps, alpha=cfg.at_alpha,
                                steps=cfg.at_steps), **common)
    measure(AT, at)
    for rho in cfg.rhos:
        ccat = dict(eps=cfg.at_eps, alpha=cfg.at_alpha, steps=cfg.at_steps, rho=float(rho),
                    clean_fraction=cfg.ccat_clean_fraction, random_radius=cfg.ccat_random_radius)
        student = train(f"ccat{rho}", _initial_student(cfg, device), teacher, x_train, cfg,
                        epochs=cfg.epochs, target="label", ccat=ccat, **common)
        measure(ccat_col(rho), student)
    short = {}
    st = train("st", _initial_student(cfg, device), teacher, x_train, cfg,
               epochs=cfg.st_long_epochs, checkpoint_epochs=(cfg.epochs,),
               on_checkpoint=lambda e, m: short.__setitem__("model", copy.deepcopy(m).eval()),
               **common)
    measure(ST_SHORT, short["model"])
    measure(ST_LONG, st)
    x_start, x_r, curve = robust_feature_dataset(at, teacher, x_train[: cfg.n_rf], cfg,
                                                 **common)
    rft = train("rft", copy.deepcopy(short["model"]), teacher, x_r, cfg, epochs=cfg.rft_epochs,
                **common)
    measure(RFT, rft)
    if grid:
        k = min(GRID, cfg.n_rf)
        arrays.update({"grid_x": x_train[:k].cpu().numpy().astype(np.float16),
                       "grid_start": x_start[:k].cpu().numpy().astype(np.float16),
                       "grid_xr": x_r[:k].cpu().numpy().astype(np.float16)})
    values = {"columns": columns(cfg.rhos), "robust": robust, "spec": spec,
              "init_spec": _summary(init), "rf_objective": curve, "seed": cfg.seed,
              "epochs": cfg.epochs, "st_long_epochs": cfg.st_long_epochs,
              "rft_epochs": cfg.rft_epochs, "rhos": list(cfg.rhos), "n_eval": cfg.n_eval,
              "repeats": cfg.repeats, "teacher_widths": list(teacher.widths),
              "precision": resolve_precision(cfg.precision, device)}
    return values, arrays


# -- recorded runs ----------------------------------------------------------------------------

def record_names(cfg) -> dict:
    """The records a run with ``cfg`` makes, ``{k: (chapter, name, config)}``: one per seed k
    (``students``, ``students_seed<s>``)."""
    return {k: (CHAPTER, seed_name("students", cfg, k), seed_config(cfg, SETTINGS, k))
            for k in range(cfg.seeds)}


def record_seed(cfg, data: CIFAR10, teacher, k: int, *, device="cpu", progress: bool = True):
    """:func:`run_students` of the ``k``-th seed of a run with ``cfg`` (:func:`record_names`),
    recorded with the teacher's weight digest (a record made with another teacher is
    recomputed)."""
    _, name, seed_cfg = record_names(cfg)[k]
    fingerprint = {"teacher_digest": model_digest(teacher), "measures": MEASURES}
    return record_for(CHAPTER, name, seed_cfg, lambda: run_students(
        seed_cfg, data, teacher, device=device, progress=progress, grid=k == 0), data=data,
        fingerprint=fingerprint, device=device)


def record_seeds(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True) -> list:
    """:func:`record_seed` of every seed: a list of Results, first seed first."""
    return [record_seed(cfg, data, teacher, k, device=device, progress=progress)
            for k in record_names(cfg)]


def _run_seed(profile: str, params: dict, k: int):
    cfg = resolve_notebook(SETTINGS, profile, params)
    device, data, teacher = notebook_inputs(cfg, cuda_mode=None, data_on_device=False)
    return record_seed(cfg, data, teacher, k, device=device)


def independent_runs(profile: str, **params) -> list[results.Run]:
    """Each seed's students (:func:`record_seed`) as a run of its own (a cluster job), with the
    notebook's settings for ``params``, after chapter 3's teacher. (The ρ values of one seed
    share one record, so they stay in one run.)"""
    cfg = resolve_notebook(SETTINGS, profile, params)
    check_settings(cfg)
    teacher = teacher_run(cfg, cuda_mode=None, data_on_device=False)
    return [results.Run(f"{CHAPTER}/{name}", partial(_run_seed, profile, params, k),
                        settings=seed_cfg.as_dict(), needs=(teacher,))
            for k, (_, name, seed_cfg) in record_names(cfg).items()]


def leading_runs(cfg, own: list) -> tuple:
    """``(config, runs, own_run)``: the records of every seed of the largest profile above
    ``cfg``'s that is completely recorded (:func:`tsrobust.results.largest_recorded_set`),
    else this build's own ``own``."""
    big, found = results.largest_recorded_set(cfg, SETTINGS, record_names)
    if found is None:
        return cfg, own, True
    return big, [found[k] for k in sorted(found)], False


# -- numbers and margins ----------------------------------------------------------------------

def _robust(runs: list[dict], col: str) -> list[float]:
    """Per-seed robust accuracy (points) of ``col``."""
    return [100 * v["robust"][col][0] for v in runs]


def _binomial_var(runs: list[dict], cols) -> float:
    """The largest variance (points²) one run's robust accuracy has from its own measurement
    (``results.accuracy_se``: binomial on ``n_eval`` fresh images, and the repeats)."""
    return max((100 * results.accuracy_se(v["robust"][c][0], v["robust"][c][1], v["n_eval"],
                                          v["repeats"], fresh_images=True)) ** 2
               for v in runs for c in cols)


def robust_margin(runs: list[dict], a: str, b: str) -> float | None:
    """What mean robust accuracy of ``a`` minus ``b`` must exceed (points) to count as a
    direction: the spread across seeds, floored by one run's binomial noise
    (``results.seed_margin``)."""
    return results.seed_margin(_robust(runs, a), _robust(runs, b),
                               floor_var=_binomial_var(runs, (a, b)))


def _mean(xs) -> float:
    return results.seed_stats(xs)[0]


def _spec(runs: list[dict], col: str, key: str, l: int | None = None) -> list[float]:
    return [float(v["spec"][col][key] if l is None else v["spec"][col][key][l]) for v in runs]


def mean_mbnc(values: dict, col: str) -> float:
    """MBNC averaged over the layers: one number of specialization per student."""
    return float(np.mean(values["spec"][col]["mbnc"]))


def scale_note(cfg) -> str:
    """The run's scale, as every row states it ("paper settings" only when they are)."""
    if results.at_paper_scale(cfg, SETTINGS):
        return f"{cfg.profile} profile, paper settings, {cfg.seeds} seeds"
    return (f"{cfg.profile} profile: {cfg.epochs} epochs (ST long {cfg.st_long_epochs}) on "
            f"{cfg.n_student} images, PGD-{cfg.at_steps} training, {cfg.seeds} "
            f"seed{'s' if cfg.seeds > 1 else ''}, PGD-{cfg.eval_steps} on {cfg.n_eval} test "
            f"images (paper: 150 epochs, ST long 300, on 50000, PGD-40)")


def _note(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _above(runs, a: str, b: str) -> tuple[str, float | None]:
    """Robust accuracy of ``a`` above ``b``: the verdict and its margin."""
    m = robust_margin(runs, a, b)
    return results.direction_verdict(_mean(_robust(runs, a)) - _mean(_robust(runs, b)), m), m


def _pm(runs, col) -> str:
    return results.mean_pm(_robust(runs, col), ".1f")


def _layers_above(runs, a: str, b_of_layer) -> tuple[str, str, str]:
    """MBNC of ``a`` above that of ``b_of_layer(l)`` in every layer beyond the seeds' margin:
    verdict (inconclusive when a layer is within its margin or has no spread), "k of n layers:
    …" and the note (which layers were within their margins, and by how much)."""
    layers = len(runs[0]["spec"][a]["mbnc"])
    verdicts, cells, within = [], [], []
    for l in range(layers):
        b = b_of_layer(l)
        x, y = _spec(runs, a, "mbnc", l), _spec(runs, b, "mbnc", l)
        margin = results.seed_margin(x, y)
        verdicts.append(results.direction_verdict(_mean(x) - _mean(y), margin))
        if verdicts[-1] == "inconclusive":
            within.append(f"layer {l} (margin {margin:.3f})" if margin is not None
                          else f"layer {l} ({results.margin_text(None)})")
        cells.append(f"{results.mean_pm(x)} vs {results.mean_pm(y)}"
                     + ("" if b_of_layer(0) == b and all(b_of_layer(i) == b
                                                         for i in range(layers))
                        else f" ({label(b)})"))
    held = sum(v == "direction holds" for v in verdicts)
    verdict = ("inconclusive" if "inconclusive" in verdicts else
               "direction holds" if held == layers else "differs")
    note = "holds only with every layer beyond its margin across seeds (t × standard error)"
    if within:
        note += "; within it: " + ", ".join(within)
    return verdict, f"{held} of {layers} layers: " + ", ".join(cells), note


def _lower(runs, a: str, b: str, key: str) -> tuple[str, str, str]:
    """``key`` (an ε mean) of ``a`` below ``b``'s: verdict, "ours" text, note."""
    x, y = _spec(runs, a, key), _spec(runs, b, key)
    m = results.seed_margin(y, x)
    return (results.direction_verdict(_mean(y) - _mean(x), m),
            f"{results.mean_pm(x)} vs {results.mean_pm(y)} ({label(b)})", results.margin_text(m))


def rank_correlation(runs: list[dict]) -> tuple[float, int]:
    """Spearman's ρ between specialization (MBNC averaged over layers) and ℓ∞ robust accuracy
    over every student of every seed, and the number of students."""
    mb = [mean_mbnc(v, c) for v in runs for c in v["columns"]]
    ra = [v["robust"][c][0] for v in runs for c in v["columns"]]
    return spearman(mb, ra), len(mb)


def uniformity(runs: list[dict], col: str = AT) -> list[dict]:
    """A.10 per layer for the students ``col`` of every seed: the counts of specialized student
    nodes per (live) teacher node summed over the seeds, and the χ² test of uniformity
    (:func:`tsrobust.specialization.uniformity_test`) when the layer is *testable* — at least as
    many specialized (student, teacher) pairs as teacher nodes; else ``p`` is None."""
    out = []
    for l in range(len(runs[0]["spec"][col]["counts"])):
        total = np.sum([v["spec"][col]["counts"][l] for v in runs], axis=0)
        testable = len(total) >= 2 and total.sum() >= len(total)
        p = uniformity_test(total)[2] if testable else None
        out.append({"layer": l, "counts": total.tolist(), "total": int(total.sum()),
                    "nodes": len(total), "p": p})
    return out


def claim_rows(runs: list[dict], cfg) -> list[results.Row]:
    """The claims of §5.6 (Table 4, Figs. 11–12), A.11 (Table 5, Figs. 15–16) and A.10 (Fig. 14)
    checked on the seeds ``runs`` (one :func:`run_students` values each). A direction holds only
    beyond a margin from the spread across seeds (robust accuracies floored by one run's
    binomial noise, :func:`robust_margin`); without a spread a row is inconclusive. The rank
    correlation is judged by ``results.spearman_margin`` over all students of all seeds. Every
    row states the run's scale."""
    cols = runs[0]["columns"]
    ccats = [c for c in cols if c.startswith("CCAT_")]
    rows = []  # (claim, ours, paper, source, verdict, note)
    if "CCAT_10" in ccats and len(ccats) > 1:
        others = [c for c in ccats if c != "CCAT_10"]
        verdicts = [_above(runs, "CCAT_10", c) for c in others]
        verdict = ("inconclusive" if any(v == "inconclusive" for v, _ in verdicts) else
                   "direction holds" if all(v == "direction holds" for v, _ in verdicts)
                   else "differs")
        rows.append(("CCAT with ρ = 10 is the most robust CCAT student",
                     ", ".join(f"{label(c)}: {_pm(runs, c)}" for c in ccats),
                     ", ".join(f"{label(c)}: {PAPER_TABLE4[c]}" for c in ccats
                               if c in PAPER_TABLE4), "Table 4", verdict,
                     "above each other ρ beyond its margin: "
                     + ", ".join(results.margin_text(m, ".1f", " points") for _, m in verdicts)))
    best = max(ccats, key=lambda c: _mean(_robust(runs, c)))
    verdict, m = _above(runs, AT, best)
    rows.append(("AT is far more robust than every CCAT student",
                 f"{_pm(runs, AT)} vs {_pm(runs, best)} ({label(best)}, the most robust CCAT)",
                 f"{PAPER_TABLE4['AT']} vs {max(PAPER_TABLE4[c] for c in PAPER_TABLE4 if c != AT)}"
                 " (CCAT ρ = 10)", "Table 4", verdict,
                 results.margin_text(m, ".1f", " points")))
    top = lambda l: max(ccats, key=lambda c: _mean(_spec(runs, c, "mbnc", l)))  # noqa: E731
    verdict, text, note = _layers_above(runs, AT, top)
    rows.append(("AT has higher MBNC than every CCAT student, per layer", text,
                 "higher (figure only)", "Fig. 11, §5.6", verdict,
                 note + "; against the CCAT student of highest MBNC there"))
    for key, name in (("eps_in_mean", "in"), ("eps_out_mean", "out")):
        low = min(ccats, key=lambda c: _mean(_spec(runs, c, key)))
        verdict, ours, note = _lower(runs, AT, low, key)
        rows.append((f"AT has a lower ε_{name} curve than every CCAT student (mean over teacher "
                     "nodes, first layer)", ours, "lower (figure only)", "Fig. 12", verdict,
                     note + "; against the CCAT student of lowest mean"))
    rho, n = rank_correlation(runs)
    m = results.spearman_margin(n)
    rows.append(("Specialization and robustness rank together across the chapter's students",
                 f"Spearman ρ = {results.fmt(rho, '.2f')} over {n} students (MBNC mean over "
                 "layers vs ℓ∞ robust accuracy)",
                 "ranked alike (Tables 4–5, Figs. 11, 15)", "§5.6, A.11 remarks",
                 "differs" if results.as_number(rho) is None else
                 results.direction_verdict(rho, m),
                 f"margin {m:.2f} (one-sided 5 % level of ρ under no association)"))
    paper5 = " > ".join(f"{label(c)} {PAPER_TABLE5[c]}" for c in TABLE5_ORDER)
    for a, b in zip(TABLE5_ORDER, TABLE5_ORDER[1:]):
        verdict, m = _above(runs, a, b)
        rows.append((f"{label(a)} is more robust than {label(b)}",
                     f"{_pm(runs, a)} vs {_pm(runs, b)}",
                     f"{PAPER_TABLE5[a]} vs {PAPER_TABLE5[b]}", "Table 5", verdict,
                     _note(results.margin_text(m, ".1f", " points"),
                           f"the paper's order: {paper5}" if a == AT else "")))
    verdict, text, note = _layers_above(runs, RFT, lambda l: ST_SHORT)
    rows.append(("RFT has higher MBNC than the short ST student it starts from, per layer", text,
                 "higher (figure only)", "Fig. 15, A.11", verdict, note))
    verdict, ours, note = _lower(runs, RFT, ST_LONG, "eps_out_mean")
    rows.append(("RFT has a lower ε_out curve than the long ST student", ours,
                 "slightly lower (figure only)", "Fig. 16, A.11", verdict, note))
    tests = uniformity(runs)
    testable = [t for t in tests if t["p"] is not None]
    rejected = [t for t in testable if t["p"] < UNIFORMITY_P]
    verdict = ("inconclusive" if not testable else "differs" if rejected
               else "direction holds")
    rows.append(("Teacher nodes are specialized uniformly (AT students, NC > "
                 f"{SPECIALIZED_NC})",
                 "; ".join(f"layer {t['layer']}: {t['total']} pairs over {t['nodes']} nodes, "
                           + (f"χ² p = {t['p']:.3f}" if t["p"] is not None else "too few")
                           for t in tests),
                 "uniform (figure only)", "Fig. 14, A.10", verdict,
                 f"χ² test of equal counts per teacher node, summed over {len(runs)} seeds, in "
                 f"every layer with at least one specialized pair per teacher node; uniform "
                 f"unless p < {UNIFORMITY_P}"))
    out = [results.Row(q, ours, paper, src, v, _note(note, scale_note(cfg)))
           for q, ours, paper, src, v, note in rows]
    lowered = all(v["rf_objective"][-1] < v["rf_objective"][0] for v in runs)
    out.append(results.Row(
        "The robust-feature optimisation lowers Eq. 35",
        "; ".join(f"seed {v['seed']}: {v['rf_objective'][0]:.4g} → {v['rf_objective'][-1]:.4g}"
                  for v in runs), "(not reported)", "Eq. 35", results.sanity_check(lowered),
        "mean objective over the dataset, before and after the steps"))
    return out


# -- tables -----------------------------------------------------------------------------------

def _table(runs: list[dict], cols, paper: dict) -> str:
    lines = ["| student | ℓ∞ robust accuracy (%), ours | paper (%) | MBNC, mean over layers |",
             "|---|---|---|---|"]
    for c in cols:
        lines.append(f"| {label(c, runs[0])} | {_pm(runs, c)} | {paper.get(c, '—')} | "
                     f"{results.mean_pm([mean_mbnc(v, c) for v in runs])} |")
    return "\n".join(lines)


def table4_markdown(runs: list[dict]) -> str:
    """Table 4: CCAT for each ρ and AT, ours (mean ± sd over seeds) beside the paper's."""
    return _table(runs, [c for c in runs[0]["columns"] if c.startswith("CCAT_")] + [AT],
                  PAPER_TABLE4)


def table5_markdown(runs: list[dict]) -> str:
    """Table 5: AT, ST (short), ST (long) and RFT, ours beside the paper's."""
    return _table(runs, [AT, ST_SHORT, ST_LONG, RFT], PAPER_TABLE5)


def seeds_markdown(runs: list[dict]) -> str:
    """The ℓ∞ robust accuracy of every student of every seed: the spread the verdicts judge
    by."""
    cols = runs[0]["columns"]
    lines = ["| seed | " + " | ".join(label(c) for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for v in runs:
        lines.append(f"| {v['seed']} | "
                     + " | ".join(f"{100 * v['robust'][c][0]:.1f}" for c in cols) + " |")
    return "\n".join(lines)


def uniformity_markdown(runs: list[dict]) -> str:
    """A.10 in words: per layer, the specialized pairs of the AT students and the χ² test."""
    parts = []
    for t in uniformity(runs):
        c = np.asarray(t["counts"])
        parts.append(f"layer {t['layer']}: {t['total']} (student, teacher) pairs with NC > "
                     f"{SPECIALIZED_NC} over {t['nodes']} live teacher nodes, "
                     f"{int((c > 0).sum())} of them specialized to at least once, the most "
                     f"{int(c.max()) if c.size else 0} times"
                     + (f" (χ² p = {t['p']:.3f})" if t["p"] is not None else
                        " (too few to test)"))
    return "Summed over the seeds' AT students — " + "; ".join(parts) + "."


# -- figures ----------------------------------------------------------------------------------

STYLES = {AT: ("-", "k"), ST_SHORT: ("--", "tab:red"), ST_LONG: ("-", "tab:red"),
          RFT: ("-", "tab:green")}


def _style(col: str, ccats: list[str]):
    if col.startswith("CCAT_"):
        shades = plt.cm.Blues(np.linspace(0.45, 1.0, len(ccats)))
        return "-", shades[ccats.index(col)]
    return STYLES[col]


def plot_sorted_bnc(shown, cols, title: str):
    """Every layer's sorted BNC curve of the students ``cols`` (mean over seeds, ± sd shaded)
    and of the untrained student (dotted gray). ``shown``: the Results of every seed."""
    v0 = shown[0].values
    ccats = [c for c in v0["columns"] if c.startswith("CCAT_")]
    n_layers = len(v0["spec"][cols[0]]["mbnc"])
    fig, axes = plt.subplots(1, n_layers, figsize=(3.2 * n_layers, 3.4), sharey=True)
    for l, ax in enumerate(axes):
        for c in cols:
            ls, color = _style(c, ccats)
            seed_band(ax, [r.arrays[f"{c}__sorted_bnc_{l}"] for r in shown], ls, color=color,
                  label=label(c, v0))
        seed_band(ax, [r.arrays[f"{INIT}__sorted_bnc_{l}"] for r in shown], ":", color="gray",
              label="untrained")
        ax.set_title(f"layer {l}")
        ax.set_xlabel("teacher node (sorted)")
    axes[0].set_ylabel("best normalized correlation")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title + f"; {len(shown)} seed" + ("s, ± sd shaded" if len(shown) > 1 else ""))
    fig.tight_layout()
    return fig


def plot_eps_curves(shown, cols, title: str):
    """The first layer's ε_in (left) and ε_out (right) curves of ``cols`` and the untrained
    student (means over seeds, ± sd shaded); lower = better specialized."""
    v0 = shown[0].values
    ccats = [c for c in v0["columns"] if c.startswith("CCAT_")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, eps in zip(axes, ("eps_in", "eps_out")):
        seed_band(ax, [r.arrays[f"{INIT}__{eps}"] for r in shown], ":", color="gray",
              label="untrained")
        for c in cols:
            ls, color = _style(c, ccats)
            seed_band(ax, [r.arrays[f"{c}__{eps}"] for r in shown], ls, color=color,
                  label=label(c, v0))
        ax.set_title(f"$\\epsilon_{{{eps[4:]}}}$ of each teacher node's best student")
        ax.set_xlabel("teacher node (sorted by the value)")
    axes[0].set_ylabel("ε (normalized filters)")
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_rank(runs: list[dict]):
    """Every student of every seed as a point: MBNC (mean over layers) against ℓ∞ robust
    accuracy, with the Spearman ρ of :func:`rank_correlation` in the title."""
    ccats = [c for c in runs[0]["columns"] if c.startswith("CCAT_")]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for c in runs[0]["columns"]:
        ls, color = _style(c, ccats)
        ax.scatter([mean_mbnc(v, c) for v in runs], _robust(runs, c), color=color,
                   marker="o" if ls == "-" else "s", label=label(c))
    rho, n = rank_correlation(runs)
    ax.set_xlabel("MBNC, mean over the four layers")
    ax.set_ylabel("ℓ∞ robust accuracy (%)")
    ax.set_title(f"Specialization vs robustness, {n} students: Spearman ρ = "
                 f"{results.fmt(rho, '.2f')}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_counts(runs: list[dict], col: str = AT):
    """Figure 14 of source A: for each layer (rows) and seed (columns), how many student nodes
    of ``col`` specialize (NC > 0.9) to each live teacher node."""
    n_layers = len(runs[0]["spec"][col]["counts"])
    fig, axes = plt.subplots(n_layers, len(runs), figsize=(3.0 * len(runs), 1.8 * n_layers),
                             squeeze=False, sharey="row")
    for l in range(n_layers):
        for k, v in enumerate(runs):
            c = v["spec"][col]["counts"][l]
            ax = axes[l][k]
            ax.bar(np.arange(len(c)), c, color="k", width=0.8)
            if l == 0:
                ax.set_title(f"seed {v['seed']}")
            if k == 0:
                ax.set_ylabel(f"layer {l}\nstudent nodes")
            if l == n_layers - 1:
                ax.set_xlabel("teacher node")
    fig.suptitle(f"Student nodes with NC > {SPECIALIZED_NC} to each teacher node ({label(col)})")
    fig.tight_layout()
    return fig


def plot_grid(shown_first):
    """The first images of the robust-feature dataset: target x (top), the image the
    optimisation started from (middle) and x_r (bottom). ``shown_first``: the first seed's
    Result."""
    a = shown_first.arrays
    rows = (("target x", a["grid_x"]), ("start", a["grid_start"]), ("x_r", a["grid_xr"]))
    k = len(a["grid_x"])
    fig, axes = plt.subplots(3, k, figsize=(1.5 * k, 4.8), squeeze=False)
    for i, (name, imgs) in enumerate(rows):
        for j in range(k):
            ax = axes[i][j]
            ax.imshow(np.clip(np.asarray(imgs[j], dtype=np.float32).transpose(1, 2, 0), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name)
    fig.suptitle("Robust-feature dataset (Eq. 35): targets, starts and the optimized x_r")
    fig.tight_layout()
    return fig


# -- what the notebook says about the run ------------------------------------------------------

def shown_markdown(shown_cfg, own_run: bool, build_profile: str) -> str:
    """Which run the chapter shows (:func:`tsrobust.chapters.cifar.shown_run_markdown`)."""
    return shown_run_markdown(shown_cfg, own_run, build_profile, scale_note(shown_cfg))


def reading_markdown(shown_cfg, own_run: bool) -> str:
    """How far the shown run can test §5.6 and A.10–A.11, from its settings."""
    if results.at_paper_scale(shown_cfg, SETTINGS):
        return ("This run has the paper's settings: its numbers can be read against Tables 4 "
                "and 5, and its directions are judged by the spread of its seeds.")
    text = (f"This `{shown_cfg.profile}` run trains for {shown_cfg.epochs} epochs (the long ST "
            f"student {shown_cfg.st_long_epochs}) on {shown_cfg.n_student} images with "
            f"PGD-{shown_cfg.at_steps} (the paper: 150 and 300 epochs on 50,000 with PGD-40): "
            f"it cannot reproduce Tables 4 and 5, only test whether their directions already "
            f"show at this scale, "
            + (f"judged by the spread of its {shown_cfg.seeds} seeds." if shown_cfg.seeds > 1
               else "and with one seed most rows have no spread to judge by."))
    if own_run and shown_cfg.profile == "smoke":
        text += (" At the smoke scale the students have barely begun to learn: the run shows "
                 "that the pipeline works end to end, not whether the claims hold.")
    return text + larger_profiles_sentence(shown_cfg.profile)


def pipeline_markdown(own: list[dict], cfg) -> str:
    """This build's own run, compactly: per student the ℓ∞ robust accuracy and the mean MBNC
    (mean ± sd over its seeds), and the verdicts its rows would get."""
    lines = ["| student | seeds | ℓ∞ robust accuracy (%) | MBNC, mean over layers |",
             "|---|---|---|---|"]
    for c in own[0]["columns"]:
        lines.append(f"| {label(c, own[0])} | {len(own)} | {_pm(own, c)} | "
                     f"{results.mean_pm([mean_mbnc(v, c) for v in own])} |")
    return ("\n".join(lines) + f"\n\nThis build's `{cfg.profile}` run ({scale_note(cfg)}) — its "
            f"claim rows would read: {results.verdict_counts(claim_rows(own, cfg))}.")


def run_flops(cfg) -> int:
    """FLOPs of this chapter at ``cfg`` (:mod:`tsrobust.bench`), per seed, as the settings'
    docstring counts them: AT (``at_steps`` PGD steps per image and epoch); CCAT for each ρ
    (the share ``1 − ccat_clean_fraction`` of each batch attacked); the long ST student (the
    short one is its checkpoint); the robust-feature dataset (``rf_steps`` gradient steps
    through student and teacher per target); the RFT fine-tune; and the ℓ∞ PGD of every
    student (``repeats`` × ``n_eval`` images × ``eval_steps``). Not counted: the specialization
    metrics."""
    s, t = bench.layer_macs(build_student()), bench.layer_macs(ConvNet(PRUNED_WIDTHS))
    n, e = cfg.n_student, cfg.epochs
    attacked = round(n * (1 - cfg.ccat_clean_fraction))
    ccat = (bench.run_flops(s, t, images=n, epochs=e)
            + e * bench.attack_flops(s, t, images=attacked, steps=cfg.at_steps))
    students = 1 + len(cfg.rhos) + 2 + 1  # AT, CCAT per ρ, ST short and long, RFT
    per_seed = (bench.run_flops(s, t, images=n, epochs=e, pgd_steps=cfg.at_steps)
                + len(cfg.rhos) * ccat
                + bench.run_flops(s, t, images=n, epochs=cfg.st_long_epochs)
                + bench.attack_flops(s, t, images=cfg.n_rf, steps=cfg.rf_steps)
                + bench.run_flops(s, t, images=cfg.n_rf, epochs=cfg.rft_epochs)
                + students * cfg.repeats * bench.attack_flops(s, t, images=cfg.n_eval,
                                                              steps=cfg.eval_steps))
    return cfg.seeds * per_seed
