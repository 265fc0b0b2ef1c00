"""Chapter 6: in-plane vs out-of-plane adversarial training (source A §5.4, Table 2 and Fig. 7).

Everything the chapter computes, checks and draws lives here; the notebook calls these
functions and shows what they return.

- :func:`run_table2`: three students of one seed, all from the same initialization, trained by
  oracle-adversarial ℓ∞ PGD (Eq. 3, teacher-target) on the *in-plane* example of each image
  (of two PGD runs from different random starts, the one whose perturbation is closer to the
  data subspace span(U), :func:`tsrobust.attacks.pgd_in_out`), on the *out-of-plane* one, or on
  a single run (*standard*, chapter 5's AT). Each is evaluated against the in-plane, the
  out-of-plane and the standard attack (Table 2: one pair of runs per image gives all three),
  and, one step past the source, against ℓ∞ PGD projected onto either side of the data
  subspace at every step (:func:`tsrobust.attacks.pgd_projected`); with the first layer's
  ε_in/ε_out curves (Fig. 7). :func:`record_seeds` records it for every seed.
- :func:`leading_runs`: the book leads with the largest recorded run; this build's own run is
  the pipeline check (:func:`pipeline_markdown`).
- :func:`claim_rows`: the claims of §5.4 on Table 2 and Fig. 7, and the projected attack's,
  judged by the spread across seeds and, for differences between attacks on the same students,
  by the paired noise of the images; :func:`plot_eps_curves` (Fig. 7),
  :func:`plot_split_spectrum`.

Source A does not define the distance to the input subspace: :data:`SETTINGS`'s
``in_out_distance`` chooses it (:data:`tsrobust.specialization.SUBSPACE_DISTANCES`; by default
the mean over the perturbation's 3×3×3 patches of ‖(I − UUᵀ)p‖). The students are trained and
attacked like chapter 5's (:mod:`tsrobust.chapters.cifar`), from chapter 3's recorded teacher.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from tsrobust import attacks, bench, results
from tsrobust.chapters.cifar import (
    ATTACK_ALPHA, ATTACK_EPS, ATTACK_STEPS, EVAL_SEED_OFFSET, MEASURES, N_PCA, N_TRAIN, PCA_RANK,
    PRECISION, STUDENT_BATCH_SIZE, STUDENT_IMAGES_DOC, STUDENT_LR, STUDENT_OPTIMIZER,
    larger_profiles_sentence, notebook_inputs, record_for, seed_config,
    seed_name, shown_run_markdown, teacher_run,
)
from tsrobust.data import CIFAR10
from tsrobust.models import PRUNED_WIDTHS, ConvNet, build_student
from tsrobust.params import Setting, resolve_notebook
from tsrobust.runtime import resolve_precision
from tsrobust.specialization import (
    SPLIT_THRESHOLD,
    SUBSPACE_DISTANCES,
    PatchSubspaceSplit,
    off_subspace_distance,
    patch_basis,
    specialization_at,
)
from tsrobust.training import checkpoint_folder, discard_checkpoints, model_digest, train_student

CHAPTER = "06_in_out_plane_at"
"""Record key of this chapter."""

COLUMNS = ("AT (in-plane)", "AT (out-of-plane)", "AT (standard)")
"""The students of Table 2, in its row order."""
SELECT = {"AT (in-plane)": "in", "AT (out-of-plane)": "out", "AT (standard)": None}
"""Which example of the pair each student trains on (None: one PGD run)."""
ATTACKS = ("in", "out", "standard")
"""Table 2's attacks: the in-plane and out-of-plane example of a pair of PGD runs, and the
standard one (a single run: the pair's first)."""
PROJECTED = ("proj_in", "proj_out")
"""The attacks past the source: ℓ∞ PGD projected onto the in-plane or out-of-plane subspace."""
ATTACK_LABELS = {"clean": "no attack (clean agreement)", "in": "in-plane", "out": "out-of-plane",
                 "standard": "standard", "proj_in": "projected in-plane",
                 "proj_out": "projected out-of-plane"}

PAPER_TABLE2 = {
    # Source A, Table 2: robust accuracy (%) of AT students trained 150 epochs.
    "AT (in-plane)": {"in": 88.86, "out": 89.18, "standard": 89.28},
    "AT (out-of-plane)": {"in": 83.11, "out": 83.54, "standard": 83.60},
    "AT (standard)": {"in": 86.87, "out": 87.28, "standard": 87.18},
}
PAPER_EPOCHS = 150
"""Table 2's students are trained for 150 epochs."""

SETTINGS = {
    "n_train": N_TRAIN,  # chapter 3's: the recorded teacher is reused
    "n_test": Setting(int, smoke=1000, cpu=10_000, gpu=10_000, paper=10_000, min=1, max=10_000,
                      doc="CIFAR-10 test images (the pool the attacked images are drawn from)"),
    "n_student": Setting(int, smoke=500, cpu=15_000, gpu=50_000, paper=50_000, min=1,
                         max=50_000, doc=STUDENT_IMAGES_DOC),
    "seeds": Setting(int, smoke=2, cpu=3, gpu=3, paper=3, min=1,
                     doc="the three students are trained from seeds seed, seed + 1, …: their "
                         "spread is the noise the verdicts on students judge by"),
    "epochs": Setting(int, smoke=1, cpu=2, gpu=20, paper=PAPER_EPOCHS, min=1,
                      doc="student training epochs (Table 2: 150)"),
    "optimizer": STUDENT_OPTIMIZER,  # as chapters 4 and 5
    "lr": STUDENT_LR,
    "batch_size": STUDENT_BATCH_SIZE,
    "at_eps": Setting(float, smoke=10 / 255, cpu=10 / 255, gpu=10 / 255, paper=10 / 255,
                      min=0.0, doc="ℓ∞ budget of adversarial training (§5.1: 10/255)"),
    "at_alpha": Setting(float, smoke=0.01, cpu=0.01, gpu=0.01, paper=0.01, min=0.0,
                        doc="PGD step size of adversarial training (§5.1: 0.01)"),
    "at_steps": Setting(int, smoke=2, cpu=5, gpu=40, paper=40, min=1,
                        doc="PGD steps of adversarial training (§5.1: 40; the cpu profile "
                            "trains with PGD-5, two runs per batch for the in/out students)"),
    "in_out_distance": Setting(str, smoke="mean", cpu="mean", gpu="mean", paper="mean",
                               choices=SUBSPACE_DISTANCES,
                               doc="distance of a perturbation to the data subspace, which "
                                   "splits a pair of runs into in-plane and out-of-plane (not "
                                   "defined in the source): 'mean' over its 3×3×3 patches of "
                                   "‖(I − UUᵀ)p‖, or 'share', the off-subspace share of its "
                                   "patch energy"),
    "eval_steps": ATTACK_STEPS,  # chapter 4 and 5's attack
    "linf_eps": ATTACK_EPS,
    "linf_alpha": ATTACK_ALPHA,
    "n_eval": Setting(int, smoke=50, cpu=1000, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images attacked (one random draw from n_test; every student "
                          "and attack sees the same ones)"),
    "projected": Setting(bool, smoke=True, cpu=True, gpu=True, paper=True,
                         doc="also attack with ℓ∞ PGD projected onto either side of the data "
                             "subspace (not in the source)"),
    "split_threshold": Setting(float, smoke=SPLIT_THRESHOLD, cpu=SPLIT_THRESHOLD,
                               gpu=SPLIT_THRESHOLD, paper=SPLIT_THRESHOLD, min=0.01, max=0.99,
                               doc="an image direction is out-of-plane for the projected attack "
                                   "when more than this share of its patch energy lies off "
                                   "span(U)"),
    "n_spec": Setting(int, smoke=100, cpu=500, gpu=500, paper=1000, min=2, max=10_000,
                      doc="test images whose activations give the NC (to pick each teacher "
                          "node's best student for the ε curves)"),
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
    "precision": PRECISION,
}
"""Chapter 6's parameters (``tsrobust.params`` API).

The ``cpu`` profile keeps three seeds of the three students (Table 2's differences between
students are 2–6 points, between attacks under 0.5) and the paper's PGD-40 evaluation, and
spends nothing else: students on 15 000 images for 2 epochs, trained with PGD-5. Its work, in
units of one forward and backward pass of student and teacher on one image: training 3 seeds ×
2 epochs × 15 000 images × (in-plane 2·5 + 1, out-of-plane 2·5 + 1, standard 5 + 1 = 28) =
2.52 M; evaluation 3 seeds × 3 students × 1 000 images × 40 steps × (2 runs of the pair + 2
projected) = 1.44 M: about 3.96 M passes, 55 min at 1 200 per second (44 min at 1 500), plus
the patch-split eigensolver (once per run, well under a minute)."""


def check_settings(cfg):
    """Cross-parameter checks (single values are checked by ``resolve``)."""
    if cfg.n_student > cfg.n_train:
        raise ValueError(f"n_student = {cfg.n_student} must be ≤ n_train = {cfg.n_train}")
    if cfg.n_eval > cfg.n_test or cfg.n_spec > cfg.n_test:
        raise ValueError(f"n_eval = {cfg.n_eval} and n_spec = {cfg.n_spec} must be ≤ n_test = "
                         f"{cfg.n_test} (they are drawn from the test images)")
    if cfg.n_pca > cfg.n_train:
        raise ValueError(f"n_pca = {cfg.n_pca} must be ≤ n_train = {cfg.n_train}")


# -- the split of image space (built once per basis) -------------------------------------------

_SPLITS: dict = {}


def subspace_split(basis: torch.Tensor, threshold: float) -> PatchSubspaceSplit:
    """:class:`tsrobust.specialization.PatchSubspaceSplit` of CIFAR-10 images for ``basis``,
    built once per basis and threshold in a process (the seeds of a run share it)."""
    key = (hashlib.sha1(basis.double().cpu().numpy().tobytes()).hexdigest(), float(threshold))
    if key not in _SPLITS:
        _SPLITS.clear()
        _SPLITS[key] = PatchSubspaceSplit(basis, shape=(3, 32, 32), threshold=threshold)
    return _SPLITS[key]


# -- evaluation -------------------------------------------------------------------------------

def evaluate(student, teacher, x: torch.Tensor, basis, cfg, generator: torch.Generator,
             split: PatchSubspaceSplit | None = None, progress: bool = False) -> dict:
    """Table 2 for one student on the images ``x``, all attacks on the same images.

    For each image one pair of ℓ∞ PGD runs (:func:`tsrobust.attacks.pgd_in_out`) gives the
    in-plane, out-of-plane and standard (the first run) examples; with ``split``, PGD projected
    onto the in-plane and out-of-plane subspace gives two more. Returns the agreement counts
    ``hits[attack]`` (and "clean"), the paired discordances ``only[a]`` of the pairs (in, out) and
    (proj_in, proj_out) — images on which the student agrees under ``a`` and not under its
    partner — and the mean off-subspace distances of the perturbations."""
    names = ("clean",) + ATTACKS + (PROJECTED if split is not None else ())
    hits = dict.fromkeys(names, 0)
    only = dict.fromkeys(("in", "out") + (PROJECTED if split is not None else ()), 0)
    dist = dict.fromkeys(("in", "out", "standard") + (PROJECTED if split is not None else ()),
                         0.0)
    share_std = 0.0
    prec = cfg.precision
    chunk = attacks.cpu_chunk(x, prec)
    batch = chunk or attacks.EVAL_BATCH
    kw = dict(eps=cfg.linf_eps, alpha=cfg.linf_alpha, steps=cfg.eval_steps, generator=generator,
              precision=prec, chunk_size=chunk)
    with attacks.frozen(student, teacher):
        obj = attacks.oracle_objective(student, teacher)
        for xb in tqdm(x.split(batch), desc="attacks", disable=not progress, leave=False):
            made = dict(zip(("in", "out", "standard"),
                            attacks.pgd_in_out(obj, xb, basis, how=cfg.in_out_distance, **kw)))
            if split is not None:
                for side, name in zip(("in", "out"), PROJECTED):
                    made[name] = attacks.pgd_projected(obj, xb, split, side, **kw)
            made["clean"] = xb
            agree = {a: attacks.agreement(student, teacher, xa, prec) for a, xa in made.items()}
            for a in names:
                hits[a] += int(agree[a].sum())
            for a, b in (("in", "out"), ("out", "in")) + (
                    (("proj_in", "proj_out"), ("proj_out", "proj_in")) if split else ()):
                only[a] += int((agree[a] & ~agree[b]).sum())
            for a in dist:
                dist[a] += float(off_subspace_distance(made[a] - xb, basis,
                                                       cfg.in_out_distance).sum())
            share_std += float(off_subspace_distance(made["standard"] - xb, basis,
                                                     "share").sum())
    n = len(x)
    return {"hits": hits, "only": only, "n": n,
            "table": {a: h / n for a, h in hits.items()},
            "distance": {a: d / n for a, d in dist.items()},
            "standard_off_share": share_std / n}


# -- training ---------------------------------------------------------------------------------

def _run_folder(cfg, name: str):
    digest = hashlib.sha1(json.dumps(cfg.as_dict(), sort_keys=True).encode()).hexdigest()[:10]
    return checkpoint_folder(cfg.profile, CHAPTER, f"{name}-{digest}")


INIT = "init"
"""Array-name prefix of the untrained student's ε curves."""


def _initial_student(cfg, device="cpu"):
    """The student before training: built from ``seed`` (the three students share it)."""
    return build_student("student", generator=torch.Generator().manual_seed(cfg.seed)).to(
        device).eval()


def train(column: str, teacher, x: torch.Tensor, basis, cfg, *, device="cpu",
          progress: bool = True):
    """Train the student ``column`` of :data:`COLUMNS` with
    ``tsrobust.training.train_student`` (logit target, teacher-target ℓ∞ AT; in-plane or
    out-of-plane examples as :data:`SELECT` says), resumable in a checkpoint folder that is
    removed when the run ends. Returns the student (eval mode)."""
    student = _initial_student(cfg, device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    adv = dict(norm="linf", eps=cfg.at_eps, alpha=cfg.at_alpha, steps=cfg.at_steps)
    if SELECT[column] is not None:
        adv.update(select=SELECT[column], distance=cfg.in_out_distance)
    folder = _run_folder(cfg, {"in": "at_in", "out": "at_out", None: "at"}[SELECT[column]])
    train_student(student, teacher, x, target="logit", epochs=cfg.epochs, lr=cfg.lr,
                  batch_size=cfg.batch_size, optimizer=cfg.optimizer, adversarial=adv,
                  basis=basis, checkpoint_dir=folder, generator=gen, device=device,
                  precision=cfg.precision, progress=progress)
    discard_checkpoints(folder)
    return student.eval()


def _spec(student, teacher, x_spec, basis) -> tuple[dict, dict]:
    m = specialization_at(student, teacher, x_spec, basis)
    return ({"mbnc": m["mbnc"], "eps_in_mean": float(m["eps_in_curve"].mean()),
             "eps_out_mean": float(m["eps_out_curve"].mean()), "dead_teacher": m["dead_teacher"]},
            {"eps_in": m["eps_in_curve"].numpy(), "eps_out": m["eps_out_curve"].numpy()})


def run_table2(cfg, data, teacher, *, device="cpu", progress: bool = True):
    """The three students of one seed, Table 2 (and the projected attacks) and their first-layer
    ε curves (Fig. 7).

    Returns ``(values, arrays)`` for ``results.record``: ``values["table"][column][attack]`` the
    robust accuracy (a fraction), ``values["only"][column]`` the paired discordances,
    ``values["distance"][column]`` the mean off-subspace distances of the perturbations,
    ``values["spec"][column]`` MBNC and mean ε_in/ε_out; arrays ``<column>__eps_in``,
    ``<column>__eps_out`` (and ``init__…``), the patch PCA's eigenvalues and the shares of the
    split's eigen-directions."""
    check_settings(cfg)
    x_train = data.x_train[: cfg.n_student].to(device)
    x_pool = data.x_test.to(device)
    x_spec = data.x_test[: cfg.n_spec].to(device)
    eigvals, basis = patch_basis(data.x_train[: cfg.n_pca], cfg.pca_rank)
    split = subspace_split(basis, cfg.split_threshold) if cfg.projected else None
    evaluator = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
    subset = torch.randperm(len(x_pool), generator=evaluator, device=device)[: cfg.n_eval]
    x_eval = x_pool[subset]
    arrays = {"pca_eigenvalues": eigvals.numpy()}
    if split is not None:
        arrays["split_eigenvalues"] = split.eigenvalues.numpy()
    init_spec, curves = _spec(_initial_student(cfg, device), teacher, x_spec, basis)
    arrays.update({f"{INIT}__{k}": v for k, v in curves.items()})
    table, only, dist, share, spec = {}, {}, {}, {}, {}
    for col in COLUMNS:
        student = train(col, teacher, x_train, basis, cfg, device=device, progress=progress)
        ev = evaluate(student, teacher, x_eval, basis, cfg, evaluator, split, progress)
        table[col], only[col], dist[col] = ev["table"], ev["only"], ev["distance"]
        share[col] = ev["standard_off_share"]
        spec[col], curves = _spec(student, teacher, x_spec, basis)
        arrays.update({f"{col}__{k}": v for k, v in curves.items()})
    values = {"columns": list(COLUMNS),
              "attacks": list(ATTACKS) + (list(PROJECTED) if split is not None else []),
              "table": table, "only": only, "distance": dist, "standard_off_share": share,
              "spec": spec, "init_spec": init_spec, "n_eval": cfg.n_eval, "seed": cfg.seed,
              "epochs": cfg.epochs, "in_out_distance": cfg.in_out_distance,
              "split_n_in": None if split is None else split.n_in,
              "split_dims": None if split is None else len(split.eigenvalues),
              "random_off_share": (27 - cfg.pca_rank) / 27,
              "teacher_widths": list(teacher.widths),
              "precision": resolve_precision(cfg.precision, device)}
    return values, arrays


# -- recorded runs ----------------------------------------------------------------------------

def teacher_fingerprint(teacher) -> dict:
    """What a record depends on besides its parameters: the teacher's weights (by digest) and
    the definition of the measurements."""
    return {"teacher_digest": model_digest(teacher), "measures": MEASURES}


def record_names(cfg) -> dict:
    """The records a run with ``cfg`` makes, ``{k: (chapter, name, config)}``: ``table2`` for
    the first seed, ``table2_seed<s>`` for the others."""
    return {k: (CHAPTER, seed_name("table2", cfg, k), seed_config(cfg, SETTINGS, k))
            for k in range(cfg.seeds)}


def record_seed(cfg, data: CIFAR10, teacher, k: int, *, device="cpu", progress: bool = True):
    """:func:`run_table2` of the ``k``-th seed of a run with ``cfg`` (:func:`record_names`),
    recorded (loaded when recorded with this teacher)."""
    _, name, seed_cfg = record_names(cfg)[k]
    return record_for(CHAPTER, name, seed_cfg, lambda: run_table2(
        seed_cfg, data, teacher, device=device, progress=progress), data=data,
        fingerprint=teacher_fingerprint(teacher), device=device)


def record_seeds(cfg, data: CIFAR10, teacher, *, device="cpu", progress: bool = True) -> list:
    """:func:`record_seed` of every seed: a list of Results, first seed first."""
    return [record_seed(cfg, data, teacher, k, device=device, progress=progress)
            for k in record_names(cfg)]


def _run_seed(profile: str, params: dict, k: int):
    cfg = resolve_notebook(SETTINGS, profile, params)
    device, data, teacher = notebook_inputs(cfg, cuda_mode=None, data_on_device=False)
    return record_seed(cfg, data, teacher, k, device=device)


def independent_runs(profile: str, **params) -> list[results.Run]:
    """Each seed's three students (:func:`record_seed`) as a run of its own (a cluster job),
    with the notebook's settings for ``params``, after chapter 3's teacher."""
    cfg = resolve_notebook(SETTINGS, profile, params)
    check_settings(cfg)
    teacher = teacher_run(cfg, cuda_mode=None, data_on_device=False)
    return [results.Run(f"{CHAPTER}/{name}", partial(_run_seed, profile, params, k),
                        settings=seed_cfg.as_dict(), needs=(teacher,))
            for k, (_, name, seed_cfg) in record_names(cfg).items()]


def leading_runs(cfg, own: list) -> tuple:
    """``(config, records, own_run)``: the records of every seed of the largest profile above
    ``cfg``'s for which all are present (:func:`tsrobust.results.largest_recorded_set`), else
    this build's own ``own``."""
    big, found = results.largest_recorded_set(cfg, SETTINGS, record_names)
    if found is None:
        return cfg, own, True
    return big, [found[k] for k in sorted(found)], False


# -- numbers of the shown run -------------------------------------------------------------------

VERDICT_ABS_TOL = 3.0
"""A robust accuracy counts as reproduced within ±3 points of the paper's (only at the paper's
settings), as in chapter 5."""
Z_95 = results.t_quantile(float("inf"))
"""Normal two-sided 95 % quantile, for the paired noise of one run's images."""


def _acc(values, col, attack) -> float:
    return 100 * values["table"][col][attack]


def _accs(t2s, col, attack) -> list[float]:
    return [_acc(v, col, attack) for v in t2s if attack in v["table"][col]]


def _binomial_var(t2s, cols, attack) -> float:
    """The largest binomial variance (points²) of one run's accuracy among ``cols``."""
    return max(_acc(v, c, attack) * (100 - _acc(v, c, attack)) / v["n_eval"]
               for v in t2s for c in cols)


def student_margin(t2s, col_a, col_b, attack) -> float | None:
    """Margin (points) that the seed-mean accuracy of ``col_a`` must exceed ``col_b``'s by under
    ``attack``: ``results.seed_margin`` of the per-seed accuracies, floored by the binomial
    noise of ``n_eval`` images."""
    return results.seed_margin(_accs(t2s, col_a, attack), _accs(t2s, col_b, attack),
                               floor_var=_binomial_var(t2s, (col_a, col_b), attack))


def attack_gap(values, col, weaker, stronger) -> tuple[float, float]:
    """How much more severe attack ``stronger`` is than ``weaker`` on one student, in points:
    ``acc(weaker) − acc(stronger)``, and its standard error from the paired discordances (the
    images on which exactly one of the two succeeds; McNemar's variance)."""
    n = values["n_eval"]
    b, c = values["only"][col][weaker], values["only"][col][stronger]
    gap = 100 * (b - c) / n
    se = 100 * np.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n
    return float(gap), float(se)


def severity(t2s, weaker, stronger) -> tuple[float, float, list[float]]:
    """The mean over students and seeds of :func:`attack_gap`, its margin and the per-seed
    means: the margin is the larger of ``Z_95`` times the paired standard error of the mean (the
    images' noise; students and seeds independent) and, with two seeds or more,
    ``results.paired_seed_margin`` of the per-seed means (the students' noise)."""
    per_seed, var = [], 0.0
    for v in t2s:
        gaps = [attack_gap(v, c, weaker, stronger) for c in v["columns"]]
        per_seed.append(float(np.mean([g for g, _ in gaps])))
        var += sum(se ** 2 for _, se in gaps) / len(gaps) ** 2
    within = Z_95 * np.sqrt(var) / len(t2s)
    seeds = results.paired_seed_margin(per_seed) if len(t2s) > 1 else 0.0
    return float(np.mean(per_seed)), float(max(within, seeds)), per_seed


def scale_note(cfg) -> str:
    """The run's scale, as every row states it."""
    if results.at_paper_scale(cfg, SETTINGS):
        return f"{cfg.profile} profile, paper settings, {cfg.seeds} seeds"
    return (f"{cfg.profile} profile: {cfg.epochs} epoch{'s' if cfg.epochs > 1 else ''} on "
            f"{cfg.n_student} images, PGD-{cfg.at_steps} training, {cfg.seeds} "
            f"seed{'s' if cfg.seeds > 1 else ''}, PGD-{cfg.eval_steps} evaluation on "
            f"{cfg.n_eval} test images (paper: {PAPER_EPOCHS} epochs on 50000, PGD-40)")


def _note(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _seed_mean(xs) -> float:
    return results.seed_stats(xs)[0]


PAPER_ATTACK_GAP = min(PAPER_TABLE2[c]["out"] - PAPER_TABLE2[c]["in"] for c in COLUMNS)
"""The smallest of the paper's in- vs out-of-plane attack gaps (0.32 points): a run whose margin
is at least this cannot resolve the paper's effect."""


def attack_verdict(gap: float, margin: float) -> str:
    """The verdict of "the in-plane attack is more severe" from the mean gap (points) and its
    margin: "direction holds" beyond the margin; "differs" when the gap is reversed beyond it,
    or within it in a run fine enough to see the paper's gap (margin below
    :data:`PAPER_ATTACK_GAP`); otherwise "inconclusive" — a tie in a run too coarse to see an
    effect of the paper's size says nothing."""
    if gap > margin:
        return "direction holds"
    if -gap > margin or margin < PAPER_ATTACK_GAP:
        return "differs"
    return "inconclusive"


def claim_rows(t2s: list[dict], cfg) -> list[results.Row]:
    """The claims of §5.4 on Table 2 and Fig. 7, and the projected attack's, on the runs of
    every seed ``t2s``.

    Students are compared by their per-seed accuracies (:func:`student_margin`); attacks on the
    same students by the paired per-image noise and the seeds' spread (:func:`severity`) — a
    run whose margin is at least the paper's own gap (:data:`PAPER_ATTACK_GAP`) and which does
    not clear it is *inconclusive* for the source's attack claim: it cannot resolve an effect
    that small. ε rows need two seeds (``results.seed_margin``). Every row states the scale."""
    paper_scale = results.at_paper_scale(cfg, SETTINGS)
    rows = []
    for a, b in (("AT (in-plane)", "AT (standard)"), ("AT (standard)", "AT (out-of-plane)")):
        xa, xb = _accs(t2s, a, "standard"), _accs(t2s, b, "standard")
        m = student_margin(t2s, a, b, "standard")
        pa, pb = PAPER_TABLE2[a]["standard"], PAPER_TABLE2[b]["standard"]
        noise = np.sqrt(_binomial_var(t2s, (a, b), "standard") / len(t2s))
        reproduced = all(results.verdict(_seed_mean(x), p, abs_tol=VERDICT_ABS_TOL, noise=noise,
                                         paper_scale=paper_scale) == "reproduced"
                         for x, p in ((xa, pa), (xb, pb)))
        verdict = "reproduced" if reproduced else results.direction_verdict(
            _seed_mean(xa) - _seed_mean(xb), m)
        rows.append(results.Row(
            f"{a} more robust than {b} (standard attack, %)",
            f"{results.mean_pm(xa, '.1f')} vs {results.mean_pm(xb, '.1f')}",
            f"{pa} vs {pb}", "Table 2, §5.4", verdict,
            _note(results.margin_text(m, ".1f", " points"), f"paper: {pa - pb:+.2f} points",
                  scale_note(cfg))))
    gap, m, per_seed = severity(t2s, "out", "in")
    verdict = attack_verdict(gap, m)
    rows.append(results.Row(
        "the in-plane attack is more severe than the out-of-plane one (accuracy out − in, "
        "points, mean over the three students)",
        f"{gap:+.2f}" + (f" (per seed: {', '.join(f'{g:+.2f}' for g in per_seed)})"
                         if len(per_seed) > 1 else ""),
        "+0.32, +0.43, +0.41 (one per student)", "Table 2, §5.4", verdict,
        _note(f"margin {m:.2f} points (paired per-image noise and the seeds' spread)",
              f"this run resolves attack differences of about {m:.2f} points; the paper's are "
              f"0.3–0.4" + ("" if m < PAPER_ATTACK_GAP else ": too small for this run"),
              scale_note(cfg))))
    for eps in ("eps_in", "eps_out"):
        a = [v["spec"]["AT (in-plane)"][f"{eps}_mean"] for v in t2s]
        b = [v["spec"]["AT (out-of-plane)"][f"{eps}_mean"] for v in t2s]
        m = results.seed_margin(b, a)
        rows.append(results.Row(
            f"AT (in-plane) has a lower ε_{eps[4:]} curve than AT (out-of-plane) (mean over "
            "teacher nodes, first layer)", f"{results.mean_pm(a)} vs {results.mean_pm(b)}",
            "lower (figure only)", "Fig. 7", results.direction_verdict(
                _seed_mean(b) - _seed_mean(a), m),
            _note(results.margin_text(m), scale_note(cfg))))
    if all("proj_in" in v["table"][COLUMNS[0]] for v in t2s):
        gap, m, per_seed = severity(t2s, "proj_out", "proj_in")
        rows.append(results.Row(
            "projected attacks: in-plane more severe than out-of-plane (accuracy out − in, "
            "points, mean over the three students)",
            f"{gap:+.2f}" + (f" (per seed: {', '.join(f'{g:+.2f}' for g in per_seed)})"
                             if len(per_seed) > 1 else ""),
            "— (not in the source)", "beyond §5.4", results.direction_verdict(gap, m),
            _note(f"margin {m:.2f} points (paired per-image noise and the seeds' spread)",
                  scale_note(cfg))))
        verdicts, cells = [], []
        for attack in PROJECTED:
            xa, xb = _accs(t2s, "AT (in-plane)", attack), _accs(t2s, "AT (out-of-plane)", attack)
            m = student_margin(t2s, "AT (in-plane)", "AT (out-of-plane)", attack)
            verdicts.append(results.direction_verdict(_seed_mean(xa) - _seed_mean(xb), m))
            cells.append(f"{ATTACK_LABELS[attack]}: {results.mean_pm(xa, '.1f')} vs "
                         f"{results.mean_pm(xb, '.1f')} (margin {m:.1f})")
        verdict = ("inconclusive" if "inconclusive" in verdicts else
                   "direction holds" if all(v == "direction holds" for v in verdicts)
                   else "differs")
        rows.append(results.Row(
            "projected attacks: AT (in-plane) more robust than AT (out-of-plane), under both "
            "(%)", "; ".join(cells), "— (not in the source)", "beyond §5.4", verdict,
            _note("each beyond its margin across seeds, floored by the binomial noise",
                  scale_note(cfg))))
    return rows


# -- what the notebook shows ---------------------------------------------------------------------

def _cell(t2s, col, attack) -> str:
    return results.mean_pm(_accs(t2s, col, attack), ".1f")


def table2_markdown(t2s: list[dict]) -> str:
    """Our Table 2 (mean ± sd over seeds, %), with the clean agreement, and the paper's beside
    it."""
    head = ("| student | " + " | ".join(f"{ATTACK_LABELS[a]} attack" for a in ATTACKS)
            + " | clean agreement | paper: in / out / standard |")
    lines = [head, "|---|" + "---|" * (len(ATTACKS) + 2)]
    for col in COLUMNS:
        p = PAPER_TABLE2[col]
        lines.append(f"| {col} | " + " | ".join(_cell(t2s, col, a) for a in ATTACKS)
                     + f" | {_cell(t2s, col, 'clean')} | "
                     f"{p['in']} / {p['out']} / {p['standard']} |")
    return "\n".join(lines)


def projected_markdown(t2s: list[dict]) -> str:
    """The same students under the projected attacks, beside Table 2's in-plane and out-of-plane
    columns (mean ± sd over seeds, %)."""
    if not all("proj_in" in v["table"][COLUMNS[0]] for v in t2s):
        return "The projected attacks are switched off in this run (`projected`)."
    cols = ("in", "proj_in", "out", "proj_out")
    lines = ["| student | " + " | ".join(f"{ATTACK_LABELS[a]}" for a in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for col in COLUMNS:
        lines.append(f"| {col} | " + " | ".join(_cell(t2s, col, a) for a in cols) + " |")
    return "\n".join(lines)


def split_markdown(t2s: list[dict]) -> str:
    """How far apart the two runs of a pair are: the mean off-subspace distance of the in-plane,
    out-of-plane and standard perturbations (first seed, per student), the off-subspace share of
    the standard perturbation's patch energy against that of white noise, and the split of image
    space the projected attack uses."""
    v = t2s[0]
    how = v["in_out_distance"]
    lines = ["| student | in-plane | out-of-plane | standard | relative gap (out − in)/in | "
             f"off-subspace share of the standard δ |", "|---|---|---|---|---|---|"]
    for col in v["columns"]:
        d = v["distance"][col]
        lines.append(f"| {col} | {d['in']:.4f} | {d['out']:.4f} | {d['standard']:.4f} | "
                     f"{100 * (d['out'] - d['in']) / max(d['in'], 1e-12):.2f} % | "
                     f"{v['standard_off_share'][col]:.3f} |")
    text = (f"Distance `{how}` of the attacks' perturbations to the data subspace (seed "
            f"{v['seed']}, mean over the {v['n_eval']} attacked images):\n\n" + "\n".join(lines)
            + f"\n\nA perturbation of white noise has an off-subspace share of "
            f"{v['random_off_share']:.3f} ({27 - round(27 * (1 - v['random_off_share']))} of "
            f"27 patch dimensions).")
    if v.get("split_n_in") is not None:
        text += (f" The projected attack's split keeps {v['split_n_in']} of the "
                 f"{v['split_dims']} image dimensions on the in-plane side.")
    return text


def plot_eps_curves(runs):
    """Figure 6.1 (source A, Fig. 7): the first layer's ε_in (left) and ε_out (right) curves of
    the three AT students and the untrained student (means over seeds, ± sd shaded). ``runs``:
    the records (values, arrays) of every seed."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    styles = {INIT: (":", "gray", "untrained"), "AT (in-plane)": ("-", "tab:blue", None),
              "AT (out-of-plane)": ("-", "tab:red", None),
              "AT (standard)": ("--", "black", None)}
    for ax, eps in zip(axes, ("eps_in", "eps_out")):
        for col, (style, color, label) in styles.items():
            curves = np.asarray([r.arrays[f"{col}__{eps}"] for r in runs], dtype=float)
            x = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(0)
            ax.plot(x, mean, style, color=color, label=label or col)
            if len(curves) > 1:
                sd = curves.std(0, ddof=1)
                ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
        ax.set_title(f"$\\epsilon_{{{eps[4:]}}}$ of each teacher node's best student")
        ax.set_xlabel("teacher node (sorted by the value)")
    axes[0].set_ylabel("ε (normalized filters)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"First-layer ε_in / ε_out curves of in-plane, out-of-plane and standard AT "
                 f"(lower = better specialized); {len(runs)} seed" + ("s, ± sd shaded"
                                                                     if len(runs) > 1 else ""))
    fig.tight_layout()
    return fig


def plot_split_spectrum(run, threshold: float):
    """Figure 6.2: the off-subspace shares λ of the eigen-directions of image space (the split
    the projected attack uses), as a histogram with the threshold marked. ``run``: one record
    with ``split_eigenvalues``."""
    lam = np.asarray(run.arrays["split_eigenvalues"], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.hist(lam, bins=40, range=(0, 1), color="tab:gray")
    ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("off-subspace share of the patch energy, λ")
    ax.set_ylabel("image directions")
    ax.set_title(f"{int((lam <= threshold).sum())} in-plane and {int((lam > threshold).sum())} "
                 f"out-of-plane directions of {len(lam)}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def shown_markdown(shown_cfg, own_run: bool, build_profile: str) -> str:
    """Which run the chapter shows (:func:`tsrobust.chapters.cifar.shown_run_markdown`)."""
    return shown_run_markdown(shown_cfg, own_run, build_profile, scale_note(shown_cfg))


def reading_markdown(shown_cfg, own_run: bool) -> str:
    """How far the shown run can test §5.4's Table 2 and Fig. 7, from its settings."""
    if results.at_paper_scale(shown_cfg, SETTINGS):
        return ("This run has the paper's settings: its numbers can reproduce Table 2's, and "
                "its directions are judged by the spread of its seeds.")
    text = (f"This `{shown_cfg.profile}` run trains for {shown_cfg.epochs} epoch"
            f"{'s' if shown_cfg.epochs > 1 else ''} on {shown_cfg.n_student} images with "
            f"PGD-{shown_cfg.at_steps} adversarial training (the paper: {PAPER_EPOCHS} epochs "
            f"on 50,000 with PGD-40): it cannot reproduce Table 2's numbers, only test whether "
            f"its directions already show at this scale.")
    if own_run and shown_cfg.profile == "smoke":
        text += (" At the smoke scale the students have barely begun to learn and the "
                 "differences are of the order of the evaluation noise: the run shows that the "
                 "pipeline works end to end, not whether the claims hold.")
    return text + larger_profiles_sentence(shown_cfg.profile)


def pipeline_markdown(own: list[dict], cfg) -> str:
    """This build's own run, compactly: the standard-attack accuracy and clean agreement of each
    student (mean ± sd over its seeds), then the verdicts its rows would get."""
    lines = ["| student | seeds | clean agreement (%) | standard attack (%) | mean ε_in |",
             "|---|---|---|---|---|"]
    for c in COLUMNS:
        lines.append(f"| {c} | {len(own)} | {_cell(own, c, 'clean')} | "
                     f"{_cell(own, c, 'standard')} | "
                     f"{results.mean_pm([v['spec'][c]['eps_in_mean'] for v in own])} |")
    return ("\n".join(lines) + f"\n\nThis build's `{cfg.profile}` run ({scale_note(cfg)}) — its "
            f"claim rows would read: {results.verdict_counts(claim_rows(own, cfg))}.")


SURVIVAL = (
    ("the in-plane side is the more severe attack",
     "the in-plane attack is more severe", "projected attacks: in-plane more severe"),
    ("in-plane AT is more robust than out-of-plane AT",
     ("AT (in-plane) more robust than AT (standard)",
      "AT (standard) more robust than AT (out-of-plane)"),
     "projected attacks: AT (in-plane) more robust"),
)
"""The two conclusions of Table 2, each with its source rows (all must hold) and its row under
the projected attacks."""


def survival_markdown(rows: list[results.Row]) -> str:
    """Which of Table 2's conclusions survive the projected attack: for each, its verdict under
    the source's split (the rows of :data:`SURVIVAL`, all holding → holds) beside its verdict
    under the projected attacks; "" when the run has no projected rows."""
    def find(prefix):
        return next((r.verdict for r in rows if r.quantity.startswith(prefix)), None)

    lines = []
    for claim, source, projected in SURVIVAL:
        after = find(projected)
        if after is None:
            return ""
        befores = [find(p) for p in ((source,) if isinstance(source, str) else source)]
        before = ("inconclusive" if "inconclusive" in befores else
                  "direction holds" if all(b == "direction holds" for b in befores) else "differs")
        survives = ("survives" if before == after == "direction holds" else
                    "holds only under the projected attacks" if after == "direction holds" else
                    "does not survive" if before == "direction holds" and after == "differs" else
                    "cannot be told at this scale" if "inconclusive" in (before, after) else
                    "holds under neither")
        lines.append(f"- *{claim}*: Table 2's split — {before}; projected attacks — {after}: "
                     f"**{survives}**.")
    return "Which of Table 2's conclusions survive the projected attack:\n\n" + "\n".join(lines)


def run_flops(cfg) -> int:
    """FLOPs of this chapter at ``cfg`` (:mod:`tsrobust.bench`), per seed: the in-plane and the
    out-of-plane student (two PGD runs of ``at_steps`` per image and epoch: the pair), the
    standard AT student (one run), and Table 2's evaluation of the three (``n_eval`` images,
    ``eval_steps`` steps, the pair's two runs and, with ``projected``, the two projected
    attacks). Not counted: the specialization metrics and the patch-split eigensolver."""
    s, t = bench.layer_macs(build_student()), bench.layer_macs(ConvNet(PRUNED_WIDTHS))
    n, e = cfg.n_student, cfg.epochs
    train = (2 * bench.run_flops(s, t, images=n, epochs=e, pgd_steps=2 * cfg.at_steps)
             + bench.run_flops(s, t, images=n, epochs=e, pgd_steps=cfg.at_steps))
    runs = 2 + (2 if cfg.projected else 0)
    evals = len(COLUMNS) * bench.attack_flops(s, t, images=cfg.n_eval,
                                              steps=runs * cfg.eval_steps)
    return cfg.seeds * (train + evals)
