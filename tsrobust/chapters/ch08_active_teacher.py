"""Chapter 8, *Robustness requires an active teacher* (Ma & Ying, source B): the chapter's
settings, its runs, its figures and the claim rows that compare them with the paper.

The paper's objects (teachers, students, learners, the CNN of Example 4.2) are in
:mod:`tsrobust.active_teacher`; this module only decides how large the runs are, which random
stream each uses, what is shown and what counts as agreeing with the paper. Each ``*_experiment``
returns what :func:`tsrobust.results.record` stores under the record names the notebook uses
(``fig32``, ``parity_active``, ``parity_passive``, ``parity_sq``, ``parity_gd``, ``example41``,
``example42_raw``, ``example42_maxpool``); :func:`claim_rows` and the ``*_text`` functions read
those values back.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib.patches import Polygon
from plotly.subplots import make_subplots
from tqdm.auto import tqdm

from tsrobust import results
from tsrobust.active_teacher import (
    A, B, EX41_DIM, FIG32_LEFT_MU, FIG32_LEFT_TEACHER, FIG32_RIGHT_STUDENT, FIG32_RIGHT_TEACHER,
    SQUARE, U, CorrelationOracle, ParityTeacher, Shapes, adversarial_41, adversarial_area,
    adversarial_area_grid, error_rate, fit_on_mu, flippable_in_cube, flipping_eps,
    flipping_eps_search, hypercube, l2_robust_fraction, l2_robust_radius, learn_parity_active,
    learn_parity_sq, least_squares, linear_student, linear_threshold, max_margin_2d,
    maxpool_prefilter, mu_parity_points, parity, polygon_area, predict_41, random_parity_set,
    region_teacher, sample_41, sample_regions, sample_shapes, sparse_error_exact, sq_lower_bound,
    sq_queries_needed, teacher_41, train_parity_gd, train_shape_cnn, walsh_hadamard,
)
from tsrobust.params import Setting
from tsrobust.results import Row, sanity_check, verdict, verdict_counts

CHAPTER = "08_active_teacher"
"""The chapter's key in ``results/<profile>/`` (the committed paper-profile records use it)."""

# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------

SETTINGS = {
    # §3.3, Fig. 3.2
    "n_2d": Setting(int, smoke=200, gpu=200, paper=200, min=2,
                    doc="training points of μ in the 2-D example of Fig. 3.2 (left), half per "
                        "square; the paper does not say how many"),
    "grid_2d": Setting(int, smoke=401, gpu=801, paper=801, min=11,
                       doc="grid points per axis for the numerical check of the areas"),
    # §4.1–4.2, parity
    "parity_d_max": Setting(int, smoke=64, gpu=256, paper=256, min=2,
                            doc="largest dimension d for the active-teacher parity learner"),
    "sq_d": Setting(int, smoke=12, gpu=16, paper=16, min=2, max=20,
                    doc="dimension d of the statistical-query experiment (ν enumerated: 2^d)"),
    "sq_tolerance": Setting(float, smoke=0.05, gpu=0.05, paper=0.05, min=0.0, max=0.12,
                            doc="tolerance α of the correlation oracle (< 1/8 for the learner)"),
    "sq_budget": Setting(int, smoke=1000, gpu=10000, paper=10000, min=1,
                         doc="statistical queries the student may ask before giving up"),
    "gd_d": Setting(int, smoke=30, gpu=50, paper=50, min=2,
                    doc="dimension d of the gradient-descent parity experiment"),
    "gd_sizes": Setting(tuple, smoke=(1, 2, 3, 4, 5), gpu=(1, 2, 3, 4, 5, 6),
                        paper=(1, 2, 3, 4, 5, 6), min=1, doc="sizes |S| tried by gradient descent"),
    "gd_repeats": Setting(int, smoke=1, gpu=3, paper=3, min=1,
                          doc="random teachers (and initialisations) per size |S|"),
    "gd_budget": Setting(int, smoke=5000, gpu=30000, paper=30000, min=1,
                         doc="SGD steps the gradient-descent student may take"),
    "gd_width": Setting(int, smoke=128, gpu=128, paper=128, min=1,
                        doc="hidden width of the gradient-descent student (one ReLU layer)"),
    "gd_batch": Setting(int, smoke=64, gpu=64, paper=64, min=1,
                        doc="fresh samples of ν per SGD step"),
    "gd_lr": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=0.0,
                     doc="SGD learning rate of the gradient-descent student"),
    "gd_target": Setting(float, smoke=0.95, gpu=0.95, paper=0.95, min=0.5, max=1.0,
                         doc="accuracy on ν at which the gradient-descent student counts as done"),
    # Example 4.1
    "n_per_class": Setting(int, smoke=1000, gpu=1000, paper=1000, min=1,
                           doc="training samples per class in Example 4.1 (paper: 1000)"),
    "n_nu": Setting(int, smoke=20000, gpu=200000, paper=200000, min=1,
                    doc="samples of ν (uniform cube) for the error rates of Example 4.1"),
    # Example 4.2, App. A
    "image_size": Setting(int, smoke=48, gpu=100, paper=100, min=16,
                          doc="side of the square images in Example 4.2 (paper: 100)"),
    "radius_range": Setting(tuple, smoke=(6, 12), gpu=(12, 25), paper=(12, 25), min=1,
                            doc="integer range [r_min, r_max] of the radius / half side "
                                "(paper: [12, 25] ≈ [a/8, a/4])"),
    "n_train": Setting(int, smoke=1000, gpu=1000, paper=1000, min=2,
                       doc="training images of Example 4.2, half squares and half disks"),
    "n_eval": Setting(int, smoke=400, gpu=1000, paper=1000, min=1,
                      doc="fresh test (μ) and adversarial (ν) images per evaluation"),
    "epochs": Setting(int, smoke=10, gpu=10, paper=10, min=1, doc="training epochs (paper: 10)"),
    "batch_size": Setting(int, smoke=50, gpu=50, paper=50, min=1, doc="batch size (paper: 50)"),
    "lr": Setting(float, smoke=1e-3, gpu=1e-3, paper=1e-3, min=0.0, doc="Adam learning rate"),
    "eval_every": Setting(int, smoke=20, gpu=10, paper=10, min=1,
                          doc="SGD steps between two evaluations on fresh images"),
    "channels": Setting(tuple, smoke=(8, 16, 32), gpu=(16, 32, 64), paper=(16, 32, 64), min=1,
                        doc="channels of the 3 conv layers (App. A.2 gives none: our choice)"),
    "kernel_size": Setting(int, smoke=3, gpu=3, paper=3, min=1,
                           doc="kernel of the conv layers (App. A.2 gives none: our choice)"),
    "torch_threads": Setting(int, smoke=1, gpu=0, paper=1, min=0,
                             doc="CPU threads for the CNN (0: torch's default)"),
    "device": Setting(str, smoke="cpu", gpu="auto", paper="cpu", choices=("cpu", "cuda", "auto"),
                      doc="where the CNN trains; auto: cuda if available (the paper used a CPU)"),
}
"""The chapter's parameters, per profile (see :func:`tsrobust.params.resolve`). Their names
are those of the recorded runs under ``results/<profile>/08_active_teacher/``: renaming one
makes :func:`tsrobust.results.record` recompute instead of loading."""


# --------------------------------------------------------------------------------------------
# Runs (each returns what tsrobust.results.record stores: values, or (values, arrays))
# --------------------------------------------------------------------------------------------

STREAM_FIG32, STREAM_PARITY, STREAM_SQ, STREAM_GD, STREAM_41, STREAM_42 = range(6)
"""Random streams: experiment k uses ``np.random.default_rng((seed, k))``, so each one is
reproducible on its own, whatever ran before it."""

FIG32_EPS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
"""Radii at which the ℓ2-robust accuracy of both students of Fig. 3.2 is reported."""
FIG32_RIGHT_N = (10, 100, 1000, 10000)
"""Sample sizes at which a max-margin student is fitted on the no-margin setup (Fig. 3.2 right)."""
FIG32_RESAMPLES = 20
"""Fresh samples of μ (``n_2d`` points each) on which the max-margin student is refitted to
measure the spread of its direction (the noise of the Fig. 3.2 angle row)."""


def normal_angle_deg(w) -> float:
    """Direction of a line's normal ``w`` in degrees from the x1 axis (45°: the line
    x1 + x2 = 0)."""
    return math.degrees(math.atan2(w[1], w[0]))


def fig32_experiment(cfg) -> tuple[dict, dict]:
    """Fig. 3.2, both panels: the max-margin student on μ (left), adversarial areas (exact and
    on a grid), ℓ2 robustness radii and ℓ2-robust accuracies of both students, and the spread
    of the left student's direction over ``FIG32_RESAMPLES`` fresh samples of μ."""
    rng = np.random.default_rng((cfg.seed, STREAM_FIG32))
    x, y = sample_regions(FIG32_LEFT_MU, cfg.n_2d, rng)
    w, b, margin = max_margin_2d(x, y)
    w_r, b_r = FIG32_RIGHT_STUDENT
    right_margins = []
    for n in FIG32_RIGHT_N:
        xr, yr = sample_regions(FIG32_RIGHT_TEACHER, n, rng)
        right_margins.append(max_margin_2d(xr, yr)[2])
    angles = [normal_angle_deg(max_margin_2d(*sample_regions(FIG32_LEFT_MU, cfg.n_2d, rng))[0])
              for _ in range(FIG32_RESAMPLES)]
    values = {
        "left_w": w.tolist(), "left_b": b, "left_svm_margin": margin,
        "left_angle_deg": normal_angle_deg(w),
        "left_angle_seed_std": float(np.std(angles, ddof=1)),
        "left_adv_area": adversarial_area(FIG32_LEFT_TEACHER, w, b),
        "left_adv_area_grid": adversarial_area_grid(FIG32_LEFT_TEACHER, w, b, cfg.grid_2d),
        "left_certain_area": sum(polygon_area(p) for p in FIG32_LEFT_TEACHER.values()),
        "left_l2_radius_mu": l2_robust_radius(FIG32_LEFT_MU, w, b),
        "left_l2_robust_acc": [l2_robust_fraction(FIG32_LEFT_MU, w, b, e) for e in FIG32_EPS],
        "right_adv_area": adversarial_area(FIG32_RIGHT_TEACHER, w_r, b_r),
        "right_adv_area_grid": adversarial_area_grid(FIG32_RIGHT_TEACHER, w_r, b_r, cfg.grid_2d),
        "right_l2_radius_mu": l2_robust_radius(FIG32_RIGHT_TEACHER, w_r, b_r),
        "right_l2_robust_acc": [l2_robust_fraction(FIG32_RIGHT_TEACHER, w_r, b_r, e)
                                for e in FIG32_EPS],
        "right_n": list(FIG32_RIGHT_N), "right_svm_margins": right_margins,
        "eps": list(FIG32_EPS),
    }
    return values, {"left_x": x, "left_y": y}


def parity_dims(d_max: int) -> list[int]:
    """Dimensions 2, 4, 8, … up to ``d_max`` (and ``d_max`` itself)."""
    dims = [2**k for k in range(1, int(math.log2(d_max)) + 1)]
    return dims if dims[-1] == d_max else [*dims, d_max]


def parity_active_experiment(cfg) -> dict:
    """Thm 4.3 for d = 2, 4, …, ``parity_d_max``: a random teacher of (4.3) (random size), the
    active student's queries and whether it recovered S exactly."""
    rng = np.random.default_rng((cfg.seed, STREAM_PARITY))
    rows = []
    for d in parity_dims(cfg.parity_d_max):
        S = random_parity_set(d, int(rng.integers(1, d + 1)), rng)
        teacher = ParityTeacher(d, S)
        found = learn_parity_active(teacher, d)
        rows.append({"d": d, "size": len(S), "queries": teacher.n_queries,
                     "recovered": found == S})
    return {"rows": rows}


def parity_passive_experiment(cfg) -> dict:
    """Thm 4.2, the passive fit: for |S| = 1…``sq_d``, least squares on the two points of μ,
    its accuracy on μ and its exact accuracy on ν (all 2^d points)."""
    rng = np.random.default_rng((cfg.seed, STREAM_PARITY))
    d = cfg.sq_d
    x_nu = hypercube(d)
    rows = []
    for size in range(1, d + 1):
        S = random_parity_set(d, size, rng)
        teacher = ParityTeacher(d, S)
        alpha = fit_on_mu(teacher, d)
        x_mu = mu_parity_points(d)
        rows.append({
            "size": size, "S": sorted(S), "alpha_nonzero": int(np.sum(np.abs(alpha) > 1e-9)),
            "acc_mu": float(np.mean(linear_threshold(alpha, x_mu) == parity(x_mu, S))),
            "acc_nu": float(np.mean(linear_threshold(alpha, x_nu) == parity(x_nu, S))),
        })
    return {"d": d, "rows": rows}


def sq_experiment(cfg, progress: bool = True) -> dict:
    """§4.1: the feature-query student against a random teacher of each size |S|, with the
    budget ``sq_budget``; its expected cost and the lower bound for any SQ student.

    Candidates are tried by size, so a teacher of size k + 1 always costs more queries than one of
    size k: after the first size that exhausts the budget the larger sizes are not run (their
    cost is the closed form :func:`tsrobust.active_teacher.sq_queries_needed`).
    """
    rng = np.random.default_rng((cfg.seed, STREAM_SQ))
    d, budget, tol = cfg.sq_d, cfg.sq_budget, cfg.sq_tolerance
    rows, exhausted = [], False
    for size in tqdm(range(1, d + 1), desc="feature-query student", disable=not progress):
        n_class = math.comb(d - 1, size - 1)
        before = sum(math.comb(d - 1, j - 1) for j in range(1, size))
        row = {"size": size, "n_teachers": n_class, "expected": before + (n_class + 1) / 2,
               "lower_bound": sq_lower_bound(n_class, tol), "run": not exhausted}
        S = random_parity_set(d, size, rng)
        row["S"] = sorted(S)
        row["needed"] = sq_queries_needed(d, S)
        if not exhausted:
            oracle = CorrelationOracle(ParityTeacher(d, S), tol, rng)
            found, used = learn_parity_sq(oracle, d, budget)
            row.update(queries=used, recovered=found == S)
            exhausted = found is None
        rows.append(row)
    # Parseval check behind the lower bound: for a few features h (random ones, and ORs of the
    # first coordinates), how many parities answer outside the tolerance (|ĥ(S)|/2 > α)?
    # At most 1/(4α²) can.
    x = hypercube(d)
    features = [rng.integers(0, 2, size=len(x)) for _ in range(10)]
    features += [x[:, :m].max(axis=1) for m in range(1, d + 1)]
    most = max(int(np.sum(np.abs(walsh_hadamard(h)[1:]) / 2 > tol)) for h in features)
    return {"d": d, "budget": budget, "tolerance": tol, "rows": rows,
            "max_far_parities_per_query": most, "parseval_bound": 1 / (4 * tol**2)}


def gd_experiment(cfg, progress: bool = True) -> tuple[dict, dict]:
    """The book's gradient-descent addition to §4.1 (not an experiment of the paper): SGD steps
    until :func:`tsrobust.active_teacher.train_parity_gd` reaches ``gd_target`` on ν, for each
    size in ``gd_sizes`` and ``gd_repeats`` random teachers, at the single dimension ``gd_d``,
    within ``gd_budget`` steps."""
    rng = np.random.default_rng((cfg.seed, STREAM_GD))
    rows, arrays = [], {}
    jobs = [(size, rep) for size in cfg.gd_sizes for rep in range(cfg.gd_repeats)]
    for size, rep in tqdm(jobs, desc="gradient-descent student", disable=not progress):
        if size > cfg.gd_d:
            raise ValueError(f"gd_sizes holds {size} > gd_d = {cfg.gd_d}")
        S = random_parity_set(cfg.gd_d, size, rng)
        out = train_parity_gd(cfg.gd_d, S, width=cfg.gd_width, batch=cfg.gd_batch, lr=cfg.gd_lr,
                              budget=cfg.gd_budget, seed=(cfg.seed, STREAM_GD, size, rep),
                              target=cfg.gd_target, progress=progress)
        rows.append({"size": size, "repeat": rep, "S": sorted(S), "steps": out["steps"],
                     "final_acc": float(out["curve_acc"][-1])})
        arrays[f"curve_steps_{size}_{rep}"] = out["curve_steps"]
        arrays[f"curve_acc_{size}_{rep}"] = out["curve_acc"]
    return {"d": cfg.gd_d, "budget": cfg.gd_budget, "rows": rows}, arrays


EX41_SHOWN = 5
"""Adversarial examples of the dense student shown as 10×10 images."""
EX41_SEARCHED = 1000
"""Points on which the flipping ε of the formula is checked against a bisection search."""
EX41_RESAMPLES = 20
"""Fresh training sets on which the sparse fit is repeated to measure its spread."""


def example41_experiment(cfg) -> tuple[dict, dict]:
    """Example 4.1: dense, sparse and rounded students; the adversarial construction; error rates
    under ν (uniform on the cube, where the teacher is certain everywhere)."""
    rng = np.random.default_rng((cfg.seed, STREAM_41))
    x, y = sample_41(cfg.n_per_class, rng)
    dense = least_squares(x, y)
    sparse = least_squares(x, y, support=(1, EX41_DIM))
    rounded = np.round(sparse)
    nu = rng.random((cfg.n_nu, EX41_DIM))
    # The construction on points of ν that the dense student classifies correctly.
    ok = predict_41(dense, nu) == teacher_41(nu)
    pts = nu[ok]
    eps = flipping_eps(dense, pts)
    eps_search = flipping_eps_search(dense, pts[:EX41_SEARCHED])
    adv = adversarial_41(dense, pts, eps * (1 + 1e-6))
    # Shown: points at the 10%, 30%, 50%, 70%, 90% quantiles of the flipping ε.
    order = np.argsort(eps)
    shown = order[(np.linspace(0.1, 0.9, EX41_SHOWN) * (len(order) - 1)).astype(int)]
    # The sparse student's adversarial examples: the thin wedge between x100 = x1 and its line.
    wedge = predict_41(sparse, nu) != teacher_41(nu)
    # Spread of the sparse coefficients over fresh training sets (only x1 and x100 matter).
    refits = np.array([least_squares(*sample_41(cfg.n_per_class, rng, d=2), support=(1, 2))
                       for _ in range(EX41_RESAMPLES)])
    paper_point = np.zeros((1, EX41_DIM))
    paper_point[0, 0], paper_point[0, -1] = 1.0, 1.01
    values = {
        "n_train": len(x), "dense_alpha_1": dense[0], "dense_alpha_100": dense[-1],
        "dense_sum_abs_middle": float(np.abs(dense[1:-1]).sum()),
        "dense_max_abs_middle": float(np.abs(dense[1:-1]).max()),
        "sparse_alpha_1": sparse[0], "sparse_alpha_100": sparse[-1],
        "sparse_alpha_seed_std": float(refits.std(axis=0, ddof=1).mean()),
        "rounded_alpha_1": rounded[0], "rounded_alpha_100": rounded[-1],
        "train_err_dense": error_rate(dense, x), "train_err_sparse": error_rate(sparse, x),
        "err_nu_dense": error_rate(dense, nu), "err_nu_sparse": error_rate(sparse, nu),
        "err_nu_rounded": error_rate(rounded, nu),
        "err_nu_sparse_exact": sparse_error_exact(sparse[0], sparse[-1]),
        "err_nu_rounded_exact": sparse_error_exact(rounded[0], rounded[-1]),
        "err_nu_paper_sparse_exact": sparse_error_exact(-2.01, 1.98),
        "n_attacked": int(len(pts)),
        "eps_median": float(np.median(eps)), "eps_min": float(eps.min()),
        "eps_max": float(eps.max()),
        "eps_formula_vs_search_max_diff": float(np.max(np.abs(eps[:EX41_SEARCHED] - eps_search))),
        "flipped_at_eps": float(np.mean(predict_41(dense, adv) != predict_41(dense, pts))),
        "teacher_flipped": float(np.mean(teacher_41(adv) != teacher_41(pts))),
        "adv_in_cube": float(np.mean(np.all((adv >= 0) & (adv <= 1), axis=1))),
        "flippable_in_cube": float(np.mean(flippable_in_cube(dense, pts))),
        "sparse_wedge_fraction": float(wedge.mean()),
        "paper_point_sparse_ours": int(predict_41(sparse, paper_point)[0]),
        "paper_point_teacher": int(teacher_41(paper_point)[0]),
        "sparse_flip_eps_inf": bool(np.all(np.isinf(flipping_eps(sparse, pts[:10])))),
    }
    arrays = {
        "dense_alpha": dense, "sparse_alpha": sparse, "shown_x": pts[shown],
        "shown_adv": adv[shown], "shown_eps": eps[shown],
        "wedge_x": nu[wedge][:EX41_SHOWN],
    }
    return values, arrays


EX42_PANEL = 8
"""Images of μ and of ν followed through training in the slider figure (each)."""


def example42_panel(cfg) -> tuple[Shapes, Shapes]:
    """A fixed panel of ``EX42_PANEL`` images of μ and of ν (4 squares and 4 disks each)."""
    rng = np.random.default_rng((cfg.seed, STREAM_42, 1))
    size, rr = cfg.image_size, cfg.radius_range
    return (sample_shapes(EX42_PANEL, distribution="mu", size=size, radius_range=rr, rng=rng,
                          balanced=True),
            sample_shapes(EX42_PANEL, distribution="nu", size=size, radius_range=rr, rng=rng,
                          balanced=True))


def example42_samples(cfg, n: int = 6) -> tuple[Shapes, Shapes]:
    """``n`` images of μ and ``n`` of ν (half squares each) to show (Fig. 4.2); drawn from their
    own stream, so showing them changes no run."""
    rng = np.random.default_rng((cfg.seed, STREAM_42, 2))
    size, rr = cfg.image_size, cfg.radius_range
    return (sample_shapes(n, distribution="mu", size=size, radius_range=rr, rng=rng,
                          balanced=True),
            sample_shapes(n, distribution="nu", size=size, radius_range=rr, rng=rng,
                          balanced=True))


def example42_experiment(cfg, prefilter: bool, progress: bool = True) -> tuple[dict, dict]:
    """Example 4.2 / Fig. 4.3: train the CNN on μ (raw or max-pool prefiltered) and follow its
    test and adversarial accuracy on fresh images; same training images for both variants."""
    mu_panel, nu_panel = example42_panel(cfg)
    panel = Shapes(*(np.concatenate([getattr(mu_panel, f), getattr(nu_panel, f)])
                     for f in Shapes.__dataclass_fields__))
    log = train_shape_cnn(
        prefilter=prefilter, size=cfg.image_size, radius_range=cfg.radius_range,
        n_train=cfg.n_train, n_eval=cfg.n_eval, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, eval_every=cfg.eval_every, channels=cfg.channels,
        kernel_size=cfg.kernel_size, seed=(cfg.seed, STREAM_42), panel=panel,
        threads=cfg.torch_threads, device=cfg.device, progress=progress)
    values = {"final_test_acc": float(log["test_acc"][-1]),
              "final_adv_acc": float(log["adv_acc"][-1]), "steps": int(log["steps"][-1]),
              "n_eval": cfg.n_eval}
    arrays = dict(log, panel_images=panel.images, panel_labels=panel.labels,
                  panel_textured=panel.textured)
    return values, arrays

# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def plot_fig32(fig32_values: dict, fig32_arrays: dict, grid: int = 400):
    """Fig. 3.2, both panels: teacher regions, adversarial region, training data, students."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    c = np.linspace(-1, 1, grid)
    g1, g2 = np.meshgrid(c, c)
    pts = np.stack([g1.ravel(), g2.ravel()], axis=1)
    w_l, b_l = np.array(fig32_values["left_w"]), fig32_values["left_b"]
    w_r, b_r = FIG32_RIGHT_STUDENT
    panels = ((axes[0], FIG32_LEFT_TEACHER, w_l, b_l, "left"),
              (axes[1], FIG32_RIGHT_TEACHER, w_r, b_r, "right"))
    for ax, regions, w, b, side in panels:
        for label, poly in regions.items():
            ax.add_patch(Polygon(poly, closed=True, alpha=0.15,
                                 color="tab:blue" if label == A else "tab:orange",
                                 label=f"Ω_{'A' if label == A else 'B'} (teacher certain)"))
        t = region_teacher(regions, pts)
        wrong = ((t != U) & (linear_student(pts, w, b) != t)).reshape(g1.shape)
        ax.contourf(g1, g2, wrong.astype(float), levels=[0.5, 1.5], colors=["0.35"], alpha=0.7)
        xs = np.linspace(-1, 1, 2)
        if abs(w[1]) > 1e-12:
            ax.plot(xs, -(w[0] * xs + b) / w[1], color="red", lw=2, label="student boundary")
        area = fig32_values[f"{side}_adv_area"]
        ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", xlabel="x1", ylabel="x2")
        ax.set_title(f"{side}: adversarial area {area:.3f} (grey)")
    x, y = fig32_arrays["left_x"], fig32_arrays["left_y"]
    axes[0].scatter(*x[y == A].T, s=6, color="tab:blue", label="μ, class A")
    axes[0].scatter(*x[y == B].T, s=6, color="tab:orange", label="μ, class B")
    axes[0].legend(loc="lower right", fontsize=7)
    axes[1].legend(loc="lower left", fontsize=7)
    fig.suptitle("Fig. 3.2: ℓ2 robust but not adversarially robust (left), and the reverse (right)")
    fig.tight_layout()
    return fig


def plot_query_costs(sq: dict, gd: dict):
    """Cost of the passive-teacher students of §4.1 against |S|: feature queries and SGD steps."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    rows = sq["rows"]
    sizes = [r["size"] for r in rows]
    ax1.semilogy(sizes, [r["expected"] for r in rows], "k--", label="our student, mean over S")
    bound = [(r["size"], r["lower_bound"]) for r in rows if r["lower_bound"] > 0]
    ax1.semilogy(*zip(*bound), ":", color="tab:green",
                 label="any SQ student told |S|, adversarial oracle: "
                       "≥ 4α²(#teachers of that size − 1)")
    run = [r for r in rows if r["run"]]
    ok = [r for r in run if r["recovered"]]
    ax1.semilogy([r["size"] for r in ok], [r["queries"] for r in ok], "o", color="tab:blue",
                 label="run: S recovered")
    failed = [r for r in run if not r["recovered"]]
    ax1.semilogy([r["size"] for r in failed], [r["queries"] for r in failed], "x", ms=10,
                 color="tab:red", label="run: budget exhausted")
    ax1.axhline(sq["budget"], color="tab:red", lw=1, label=f"budget {sq['budget']}")
    ax1.set(xlabel="|S| (size of the teacher's parity)", ylabel="feature queries",
            title=f"Feature (statistical) queries, d = {sq['d']}, α = {sq['tolerance']}")
    ax1.legend(fontsize=7)
    ax1.xaxis.get_major_locator().set_params(integer=True)
    grows = gd["rows"]
    for r in grows:
        reached = r["steps"] is not None
        ax2.semilogy(r["size"], r["steps"] if reached else gd["budget"],
                     "o" if reached else "x", color="tab:blue" if reached else "tab:red", ms=8)
    ax2.axhline(gd["budget"], color="tab:red", lw=1, label=f"budget {gd['budget']} steps")
    ax2.set(xlabel="|S|", ylabel="SGD steps to reach the target accuracy on ν",
            title=f"SGD on samples of ν, d = {gd['d']} (x: budget exhausted)")
    ax2.legend(fontsize=7)
    ax2.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def plot_coefficients(arrays: dict):
    """Fig. 4.1 left: the dense and the sparse student's coefficients α_i."""
    fig, ax = plt.subplots(figsize=(10, 3.6))
    i = np.arange(1, EX41_DIM + 1)
    ax.bar(i, arrays["dense_alpha"], color="tab:blue", label="dense (all 100 coordinates)")
    ax.plot([1, EX41_DIM], arrays["sparse_alpha"][[0, -1]], "o", color="tab:red", ms=8,
            label="sparse (x1 and x100 only)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="coordinate i", ylabel="α_i",
           title="Example 4.1: least-squares coefficients (Fig. 4.1 left)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_41_examples(arrays: dict):
    """Fig. 4.1 right: points of ν, their adversarial examples and the perturbation as 10×10
    images (x1 top left, x100 bottom right), and points where the sparse student errs."""
    xs, advs, eps = arrays["shown_x"], arrays["shown_adv"], arrays["shown_eps"]
    alpha, sparse, wedge = arrays["dense_alpha"], arrays["sparse_alpha"], arrays["wedge_x"]
    n = max(len(xs), len(wedge), 1)
    fig, axes = plt.subplots(4, n, figsize=(2.2 * n, 9.4), squeeze=False)
    lo, hi = min(0.0, float(advs.min(initial=0))), max(1.0, float(advs.max(initial=1)))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for k in range(len(xs)):
        x, adv = xs[k:k + 1], advs[k:k + 1]
        y, before, after = teacher_41(x)[0], predict_41(alpha, x)[0], predict_41(alpha, adv)[0]
        axes[0, k].imshow(x[0].reshape(10, 10), cmap="gray", vmin=lo, vmax=hi)
        axes[0, k].set_title(f"x: teacher {y:+d}, dense {before:+d}", fontsize=8)
        axes[1, k].imshow(adv[0].reshape(10, 10), cmap="gray", vmin=lo, vmax=hi)
        axes[1, k].set_title(f"x̂: teacher {teacher_41(adv)[0]:+d}, dense {after:+d}",
                             fontsize=8)
        axes[2, k].imshow((adv[0] - x[0]).reshape(10, 10), cmap="coolwarm",
                          vmin=-float(eps.max()), vmax=float(eps.max()))
        axes[2, k].set_title(f"x̂ − x: ±ε, ε = {eps[k]:.3f}", fontsize=8)
    for k in range(len(wedge)):
        w = wedge[k:k + 1]
        axes[3, k].imshow(w[0].reshape(10, 10), cmap="gray", vmin=0, vmax=1)
        axes[3, k].set_title(f"x1={w[0, 0]:.3f}, x100={w[0, -1]:.3f}\nteacher "
                             f"{teacher_41(w)[0]:+d}, sparse {predict_41(sparse, w)[0]:+d}",
                             fontsize=7)
    for row, name in enumerate(("x", "x̂ (dense flipped)", "x̂ − x", "sparse errs")):
        axes[row, 0].set_ylabel(name)
    fig.suptitle("Example 4.1: the attack on the dense student (rows 1–3) and the sparse "
                 "student's errors (row 4)")
    fig.tight_layout()
    return fig


def plot_shapes_grid(mu: Shapes, nu: Shapes, n: int = 6):
    """Fig. 4.2: images of μ and ν, raw and after the max-pool prefilter."""
    fig, axes = plt.subplots(4, n, figsize=(1.9 * n, 8.2), squeeze=False)
    rows = (("μ", mu.images, mu.labels), ("ν", nu.images, nu.labels))
    for r, (name, images, labels) in enumerate(rows):
        filtered = maxpool_prefilter(torch.from_numpy(images[:n])).numpy()
        for k in range(n):
            kind = "square" if labels[k] == SQUARE else "disk"
            for rr, img, tag in ((r, images[k], ""), (r + 2, filtered[k], ", max-pooled")):
                ax = axes[rr, k]
                ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{name}: {kind}{tag}", fontsize=7)
    fig.suptitle("Fig. 4.2: training/test distribution μ (row 1), adversarial ν (row 2), and "
                 "both after max-pool(3, stride 1) (rows 3–4)")
    fig.tight_layout()
    return fig


def plot_fig43(raw: dict, pooled: dict, title: str | None = None):
    """Fig. 4.3: test (μ) and adversarial (ν) accuracy over training, raw and prefiltered."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    if title:
        fig.suptitle(title)
    for ax, log, name in ((axes[0], raw, "raw images"), (axes[1], pooled, "max-pool prefilter")):
        ax.plot(log["steps"], log["test_acc"], "-o", ms=3, label="test (fresh μ)")
        ax.plot(log["steps"], log["adv_acc"], "-o", ms=3, label="adversarial (fresh ν)")
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set(xlabel="training step (batch)", title=f"Fig. 4.3: {name}", ylim=(-0.02, 1.02))
        ax.legend()
    axes[0].set_ylabel("accuracy")
    fig.tight_layout()
    return fig


def slider_figure(raw: dict, pooled: dict):
    """A plotly figure with a slider over evaluation steps: the accuracy curves up to the step
    (top) and the probability each student gives the true class of the panel images (bottom)."""
    steps = raw["steps"]
    if not np.array_equal(steps, pooled["steps"]):
        raise ValueError("the two runs must be evaluated at the same steps")
    labels = raw["panel_labels"]
    textured = raw["panel_textured"]
    n_mu = len(labels) // 2
    names = [f"{'μ' if k < n_mu else 'ν'} {k % n_mu + 1}: "
             f"{'textured ' if textured[k] else ''}{'square' if labels[k] == SQUARE else 'disk'}"
             for k in range(len(labels))]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.45, 0.55], vertical_spacing=0.18,
                        subplot_titles=("accuracy on fresh images",
                                        "probability of the true class, panel images"))
    curves = (("raw: test", raw["test_acc"], "tab:blue", "solid"),
              ("raw: adversarial", raw["adv_acc"], "tab:blue", "dot"),
              ("max-pool: test", pooled["test_acc"], "tab:red", "solid"),
              ("max-pool: adversarial", pooled["adv_acc"], "tab:red", "dot"))
    colors = {"tab:blue": "#1f77b4", "tab:red": "#d62728"}

    def traces(i):
        out = [go.Scatter(x=steps[: i + 1], y=acc[: i + 1], name=name, mode="lines+markers",
                          line=dict(color=colors[c], dash=dash)) for name, acc, c, dash in curves]
        out += [go.Bar(x=names, y=raw["panel_prob"][i], name="raw",
                       marker_color=colors["tab:blue"]),
                go.Bar(x=names, y=pooled["panel_prob"][i], name="max-pool",
                       marker_color=colors["tab:red"])]
        return out

    for tr, row in zip(traces(len(steps) - 1), (1, 1, 1, 1, 2, 2)):
        fig.add_trace(tr, row=row, col=1)
    fig.frames = [go.Frame(data=traces(i), name=str(int(s))) for i, s in enumerate(steps)]
    fig.update_layout(
        height=720, barmode="group", title="Example 4.2 over training (slide the step)",
        sliders=[dict(active=len(steps) - 1, currentvalue=dict(prefix="step "),
                      steps=[dict(label=str(int(s)), method="animate",
                                  args=[[str(int(s))], dict(mode="immediate",
                                                            frame=dict(duration=0, redraw=True),
                                                            transition=dict(duration=0))])
                             for s in steps])])
    fig.update_xaxes(range=[0, float(steps[-1])], title_text="training step", row=1, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], title_text="accuracy", row=1, col=1)
    fig.update_yaxes(range=[0, 1], title_text="P(true class)", row=2, col=1)
    return fig


# --------------------------------------------------------------------------------------------
# What each run shows, in words (read from the recorded values)
# --------------------------------------------------------------------------------------------


def fig32_text(res: results.Result) -> str:
    """The left student's line, ℓ2 radius and adversarial area, and the right panel's, with the
    grid check explained (``res``: a ``fig32`` record).

    The grid check counts cells of side h = 2/``grid_2d``. The exact area of the right panel is
    0; any grid area is a whole number of cells, and with an odd ``grid_2d`` one cell is centred
    at the origin, which both closed quadrants contain: the grid's teacher (``region_teacher``)
    labels it B there, while the student's line passes through it and says A.
    """
    cfg, v = results.config_of(res, SETTINGS), res.values
    h2 = (2 / cfg.grid_2d) ** 2
    right_cells = round(v["right_adv_area_grid"] / h2)
    grid_note = (f"{right_cells} cell{'s' if right_cells != 1 else ''} of area h² = {h2:.2g}"
                 + (": the cell centred at the origin, where the closed quadrants Ω_A and Ω_B "
                    "meet; the grid's teacher labels that point B and the student, whose line "
                    "passes through it, says A" if right_cells == 1 and cfg.grid_2d % 2 == 1
                    else ""))
    return (
        f"In this run the max-margin student of {cfg.n_2d} samples has w = "
        f"({v['left_w'][0]:.3f}, {v['left_w'][1]:.3f}), b = {v['left_b']:.4f}: its normal is "
        f"{v['left_angle_deg']:.1f}° from the x1 axis (45° is the line x1 + x2 = 0; its "
        f"standard deviation over {FIG32_RESAMPLES} fresh samples of μ is "
        f"{v['left_angle_seed_std']:.2f}°). Every point of the support of μ is at least "
        f"**{v['left_l2_radius_mu']:.3f}** from its line, so it is ℓ2 robust at every radius "
        f"below that, yet it contradicts the teacher on an area of "
        f"**{v['left_adv_area']:.4f}** (grid check: {v['left_adv_area_grid']:.4f}) out of the "
        f"teacher's certain area {v['left_certain_area']:.0f}, i.e. on "
        f"{100 * v['left_adv_area'] / v['left_certain_area']:.1f}% of it. (For the exact line "
        f"x1 + x2 = 0 the area is 1/4 by hand.)\n\n"
        f"Right panel: adversarial area **{v['right_adv_area']:.4f}** (grid: "
        f"{v['right_adv_area_grid']:.2g}, {grid_note}) and ℓ2 robustness radius on "
        f"Ω_A ∪ Ω_B **{v['right_l2_radius_mu']:.4f}**."
    )


def fig32_tables(v: dict) -> tuple[results.MarkdownTable, results.MarkdownTable]:
    """The ℓ2-robust accuracy of both students against ε, and the margin of a max-margin student
    fitted on samples of the no-margin setup against the sample size."""
    return (results.markdown_table({"ε": v["eps"],
                                    "left: ℓ2-robust accuracy on μ": v["left_l2_robust_acc"],
                                    "right: ℓ2-robust accuracy on μ": v["right_l2_robust_acc"]}),
            results.markdown_table({"samples n": v["right_n"],
                                    "right panel: margin of the max-margin student":
                                    v["right_svm_margins"]}))


def parity_tables(active: dict, passive: dict):
    """The active student's data queries per d (Thm 4.3), and the passive fit's accuracy on μ and
    ν per |S| (Thm 4.2)."""
    a, p = active["rows"], passive["rows"]
    return (results.markdown_table({"d": [r["d"] for r in a], "|S|": [r["size"] for r in a],
                                    "data queries": [r["queries"] for r in a],
                                    "S recovered": [r["recovered"] for r in a]}),
            results.markdown_table({"|S|": [r["size"] for r in p], "S": [r["S"] for r in p],
                                    "fit on μ: accuracy on μ": [r["acc_mu"] for r in p],
                                    "fit on μ: accuracy on ν (exact)":
                                    [r["acc_nu"] for r in p]}))


def half_bound(d: int, tolerance: float) -> float:
    """Lower bound of any SQ student for the teachers of size |S| = ⌊d/2⌋ (of (4.3), so
    C(d − 1, ⌊d/2⌋ − 1) of them): :func:`tsrobust.active_teacher.sq_lower_bound`."""
    return sq_lower_bound(math.comb(d - 1, d // 2 - 1), tolerance)


HALF_BOUND_D = (16, 32, 64, 100)
"""Dimensions at which the lower bound for teachers of half the coordinates is quoted."""


def sq_first_failure(sq: dict) -> dict | None:
    """The first size |S| whose run exhausted the query budget (its row), or None."""
    return next((r for r in sq["rows"] if r["run"] and not r["recovered"]), None)


def sq_text(sq: dict) -> str:
    """Where the feature-query budget ran out, the Parseval check, and how the lower bound for
    any SQ student grows with d."""
    tol, first_fail = sq["tolerance"], sq_first_failure(sq)
    d_million = next((d for d in range(2, 1002, 2) if half_bound(d, tol) > 1e6), None)
    return (
        f"Feature queries, d = {sq['d']}, α = {tol}: "
        + (f"the budget of {sq['budget']} queries runs out at |S| = {first_fail['size']} "
           f"(this teacher needs {first_fail['needed']}); larger teachers come later in the "
           f"student's order, so they would need more (not run). "
           if first_fail else f"every size fits the budget of {sq['budget']} queries. ")
        + f"The most parities that any of our test features separates from the null answer is "
          f"{sq['max_far_parities_per_query']}, within the Parseval bound "
          f"1/(4α²) = {sq['parseval_bound']:.0f} (a sanity check: Parseval's identity makes "
          f"this hold for every feature).\n\n"
        + "The lower bound for *any* SQ student told |S|, against an oracle that answers "
          "adversarially within α, grows with d, not only with |S|: for the "
          "teachers of half the coordinates (C(d − 1, d/2 − 1) of them, about 2^d/√(2πd)) it is "
        + ", ".join(f"{half_bound(d, tol):.3g} at d = {d}" for d in HALF_BOUND_D)
        + " queries"
        + (f"; it first exceeds a million queries at d = {d_million}." if d_million is not None
           else "; it stays below a million queries for every even d up to 1000.")
    )


def gd_failed_sizes(gd: dict) -> list[int]:
    """Sizes |S| (one entry per teacher) for which SGD ran out of steps."""
    return [r["size"] for r in gd["rows"] if r["steps"] is None]


def gd_steps_by_size(gd: dict) -> str:
    """"|S| = 1: 120, 80; |S| = 2: > 5000": SGD steps per teacher, grouped by size."""
    rows = gd["rows"]
    return "; ".join(f"|S| = {size}: "
                     + ", ".join(str(r["steps"]) if r["steps"] is not None
                                 else f"> {gd['budget']}"
                                 for r in rows if r["size"] == size)
                     for size in sorted({r["size"] for r in rows}))


def gd_text(gd: dict) -> str:
    """SGD steps per size |S| and whether the step budget ran out."""
    failed = gd_failed_sizes(gd)
    return (
        f"Gradient descent (our addition), d = {gd['d']}, SGD steps to the target accuracy "
        f"on ν: " + gd_steps_by_size(gd)
        + (f". The budget of {gd['budget']} steps runs out for a teacher of size |S| = "
           + ", ".join(map(str, sorted(set(failed)))) + "."
           if failed else ". Every size fits the step budget at this scale.")
        + " These are counts at one d; they do not measure how the cost grows with d."
    )


def example41_text(e: dict) -> str:
    """The attack on the dense student and the sparse student's wedge, in numbers."""
    return (
        f"Dense student: Σ_{{i=2}}^{{99}} |α_i| = {e['dense_sum_abs_middle']:.3f}. On the "
        f"{e['n_attacked']} points of ν it classifies correctly, the flipping ε has median "
        f"{e['eps_median']:.3f} (range {e['eps_min']:.2g}–{e['eps_max']:.3f}); the formula "
        f"agrees with a bisection on the student's output to "
        f"{e['eps_formula_vs_search_max_diff']:.1e}. At the formula's ε (+10⁻⁶ relative) the "
        f"student flips on {100 * e['flipped_at_eps']:.1f}% of them and the teacher on "
        f"{100 * e['teacher_flipped']:.1f}%. {100 * e['adv_in_cube']:.1f}% of these adversarial "
        f"points stay inside [0,1]^100, but a change of x2…x99 inside the cube flips the student "
        f"on {100 * e['flippable_in_cube']:.1f}% of them.\n\n"
        f"Sparse student: α1 = {e['sparse_alpha_1']:.3f}, α100 = {e['sparse_alpha_100']:.3f} "
        f"(standard deviation over {EX41_RESAMPLES} fresh training sets: "
        f"{e['sparse_alpha_seed_std']:.3f}). Its error on ν is "
        f"{100 * e['err_nu_sparse_exact']:.2f}% (exact area; sampled: "
        f"{100 * e['err_nu_sparse']:.2f}%), "
        f"all of it on the thin wedge. The paper's example point x1 = 1, x100 = 1.01 (outside "
        f"the cube; the teacher says 1 there) is "
        f"{'correctly' if e['paper_point_sparse_ours'] == e['paper_point_teacher'] else 'wrongly'}"
        f" classified by our sparse student. A sparse student errs at that point exactly when "
        f"α1 + 1.01·α100 < 0, i.e., with α1 < 0 < α100, when |α1| > 1.01·|α100|: the paper's "
        f"(−2.01, 1.98) does, since 2.01 > {1.01 * 1.98:.4f}; ours has α1 + 1.01·α100 = "
        f"{e['sparse_alpha_1'] + 1.01 * e['sparse_alpha_100']:+.4f}. Which side a fitted student "
        f"falls on depends on its training sample."
    )


def example41_table(e: dict) -> results.MarkdownTable:
    """Coefficients and error rates of the dense, sparse and rounded students."""
    return results.markdown_table({
        "student": ["dense (100 coefficients)", "sparse (x1, x100)",
                    "sparse, rounded to integers"],
        "α1": [e["dense_alpha_1"], e["sparse_alpha_1"], e["rounded_alpha_1"]],
        "α100": [e["dense_alpha_100"], e["sparse_alpha_100"], e["rounded_alpha_100"]],
        "training error": [e["train_err_dense"], e["train_err_sparse"], None],
        "error on ν (sampled)": [e["err_nu_dense"], e["err_nu_sparse"], e["err_nu_rounded"]],
        "error on ν (exact)": [None, e["err_nu_sparse_exact"], e["err_nu_rounded_exact"]],
    })


def panel_means(arrays: dict) -> tuple[float, float]:
    """Mean probability of the true class at the last evaluation, on the μ and ν halves of the
    panel."""
    prob = arrays["panel_prob"][-1]
    half = len(prob) // 2
    return float(prob[:half].mean()), float(prob[half:].mean())


def panel_text(raw_res: results.Result, pooled_res: results.Result) -> str:
    """The slider figure's last step in numbers (``raw_res``, ``pooled_res``: the
    ``example42_raw`` and ``example42_maxpool`` records)."""
    cfg = results.config_of(raw_res, SETTINGS)
    raw, pooled = raw_res.arrays, pooled_res.arrays
    raw_mu, raw_nu = panel_means(raw)
    pool_mu, pool_nu = panel_means(pooled)
    return (
        f"At the last step ({int(raw['steps'][-1])}) the mean probability of the true class "
        f"on the panel is {raw_mu:.3f} on μ and {raw_nu:.3f} on ν for the raw student "
        f"(gap {raw_mu - raw_nu:+.3f}), and {pool_mu:.3f} on μ and {pool_nu:.3f} on ν for the "
        f"prefiltered one (gap {pool_mu - pool_nu:+.3f}). Eight images per half is a small "
        f"panel: the accuracy curves on {cfg.n_eval} fresh images each are the measurement."
    )


# --------------------------------------------------------------------------------------------
# Claims: our numbers beside the paper's
# --------------------------------------------------------------------------------------------

ANGLE_TOL_DEG = 5.0
"""Fig. 3.2 left: the max-margin normal counts as 'close to x1 + x2 = 0' within ±5°."""
EXACT_TOL = 1e-12
"""Exact polygon areas and radii: 0 up to rounding."""
ACC_TOL = 0.05
"""Example 4.2: an accuracy (fraction) 'goes to' 1 or 0, or two are 'nearly as good', within
0.05; the paper states these in words, not numbers."""
PAPER_SPARSE_ALPHA = (-2.01, 1.98)
"""Eq. (4.8): the paper's sparse fit ŷ = −2.01·x1 + 1.98·x100."""


def _fig32_rows(v: dict) -> list[Row]:
    angle, area, radius = v["left_angle_deg"], v["right_adv_area"], v["right_l2_radius_mu"]
    spread = v["left_angle_seed_std"]
    return [
        Row("left: direction of the max-margin normal (degrees)", ours=angle, paper=45.0,
            source="§3.2: boundary 'close to x1 + x2 = 0'",
            verdict=verdict(angle, 45.0, rel_tol=0, abs_tol=ANGLE_TOL_DEG, noise=spread),
            note=f"test; noise: the samples of μ fix the line (standard deviation over "
                 f"{FIG32_RESAMPLES} fresh samples: {spread:.2f}°); rule: reproduced within "
                 f"±{ANGLE_TOL_DEG:g}° of 45° if that noise is below {ANGLE_TOL_DEG:g}°"),
        Row("right: adversarial area of the student through 0", ours=area, paper=0.0,
            source="§3.3: 'strongly adversarially robust'",
            verdict=sanity_check(area <= EXACT_TOL),
            note="true by construction: the student's line x2 = x1 is chosen through the "
                 "origin, where the closed quadrants meet; checks the exact area code "
                 "(0 up to 10⁻¹²)"),
        Row("right: ℓ2 robustness radius on μ", ours=radius, paper=0.0,
            source="§3.3: 'not l2 robust with any ε > 0'",
            verdict=sanity_check(radius <= EXACT_TOL),
            note="true by construction: the corner of both quadrants lies on the student's "
                 "line; checks the radius code (0 up to 10⁻¹²)"),
    ]


def _parity_active_rows(v: dict) -> list[Row]:
    last = v["rows"][-1]
    holds = last["recovered"] and last["queries"] == last["d"] + 1
    return [
        Row(f"active student: data queries to recover S, d = {last['d']}",
            ours=last["queries"], paper=last["d"] + 1, source="Thm 4.3: d + 1 queries",
            verdict=sanity_check(holds),
            note="true by construction: the student asks T(0) and T(e_i), i = 1…d, and reads "
                 "S off the exact answers; "
                 + ("S recovered exactly" if last["recovered"] else "S NOT recovered")),
    ]


def sparse_alpha_tolerance(spread: float) -> float:
    """Example 4.1: how far our sparse coefficient may be from the paper's and count as
    reproduced. Ours and the paper's are two independent fits on training sets of the same size,
    each with standard deviation ``spread`` over training sets, so their difference has standard
    deviation √2·``spread``; the tolerance is two of those, 2√2·``spread``."""
    return 2 * math.sqrt(2) * spread


def _example41_rows(e: dict) -> list[Row]:
    spread = e["sparse_alpha_seed_std"]
    tol = sparse_alpha_tolerance(spread)
    a1, a100 = PAPER_SPARSE_ALPHA
    note = (f"test; noise: the training sample (standard deviation of the fit over "
            f"{EX41_RESAMPLES} fresh training sets: σ = {spread:.3f}; of ours minus the paper's, "
            f"two independent fits: √2σ); rule: reproduced within 2√2σ = {tol:.3f}, else "
            f"direction holds if the sign is the paper's")
    rounded = (e["rounded_alpha_1"], e["rounded_alpha_100"])
    return [
        Row("sparse student α1", ours=e["sparse_alpha_1"], paper=a1, source="eq. (4.8)",
            verdict=verdict(e["sparse_alpha_1"], a1, rel_tol=0, abs_tol=tol,
                            noise=math.sqrt(2) * spread,
                            direction_holds=e["sparse_alpha_1"] < 0),
            note=note),
        Row("sparse student α100", ours=e["sparse_alpha_100"], paper=a100, source="eq. (4.8)",
            verdict=verdict(e["sparse_alpha_100"], a100, rel_tol=0, abs_tol=tol,
                            noise=math.sqrt(2) * spread,
                            direction_holds=e["sparse_alpha_100"] > 0),
            note=note),
        Row("rounded student: error on ν", ours=e["err_nu_rounded_exact"], paper=0.0,
            source="§4.2: rounding gives 'strong adversarial robustness'",
            verdict=sanity_check(e["err_nu_rounded_exact"] == 0),
            note=f"true by construction once the fit rounds to (−k, k), k > 0 (ours: "
                 f"({rounded[0]:g}, {rounded[1]:g})): that line is x1 = x100, the teacher's; "
                 f"checks the exact area code"),
        Row("dense student: flipped by the attack at the formula's ε (%)",
            ours=100 * e["flipped_at_eps"], paper=100.0,
            source="§4.2: flips 'as long as ε > αᵀx / Σ\\|α_i\\|'",
            verdict=sanity_check(e["flipped_at_eps"] == 1),
            note="true by construction: for a linear student the formula's ε is exact (the "
                 "attack is applied just above it); checks the attack code. ε may leave the "
                 "cube, as in the text"),
    ]


def accuracy_noise(n_eval: int) -> float:
    """Standard error of an accuracy measured on ``n_eval`` fresh images, at its largest
    (accuracy 1/2): 0.5/√n. An accuracy of 0 or 1 has binomial error 0, which would hide how
    few images measured it."""
    return 0.5 / math.sqrt(n_eval)


def _example42_rows(r: dict, p: dict, tag: str) -> list[Row]:
    gap = p["final_test_acc"] - p["final_adv_acc"]
    raw_gap = r["final_test_acc"] - r["final_adv_acc"]
    se = accuracy_noise(r["n_eval"])
    se_gap = math.sqrt(2) * accuracy_noise(p["n_eval"])
    noise = (f"noise: {r['n_eval']} fresh images per accuracy (standard error ≤ {se:.3f}), one "
             f"training run (its spread over seeds is not measured)")
    chance_margin = results.direction_margin(se, 0.0)
    gap_margin = results.direction_margin(se_gap, math.sqrt(2) * se)
    return [
        Row(f"{tag}raw images: final test accuracy", ours=r["final_test_acc"], paper=1.0,
            source="§4.2: 'the test accuracy goes to 1'",
            verdict=verdict(r["final_test_acc"], 1.0, rel_tol=0, abs_tol=ACC_TOL, noise=se),
            note=f"test; {noise}; rule: reproduced within {ACC_TOL} (the paper states it in "
                 f"words; its Fig. 4.3 shows curves, which we do not read values from)"),
        Row(f"{tag}raw images: final adversarial accuracy", ours=r["final_adv_acc"], paper=0.0,
            source="§4.2: 'the adversarial accuracy goes to 0'",
            verdict=verdict(r["final_adv_acc"], 0.0, rel_tol=0, abs_tol=ACC_TOL, noise=se,
                            direction_holds=results.exceeds(0.5, r["final_adv_acc"],
                                                            chance_margin)),
            note=f"test; {noise}; rule: reproduced within {ACC_TOL}, else direction holds if "
                 f"below chance (0.5) by more than {chance_margin:.3f}, i.e. the student uses "
                 f"the texture"),
        Row(f"{tag}max-pool: test − adversarial accuracy", ours=gap, paper=0.0,
            source="§4.2: adversarial 'nearly as good as the test accuracy'",
            verdict=verdict(gap, 0.0, rel_tol=0, abs_tol=ACC_TOL, noise=se_gap,
                            direction_holds=results.exceeds(raw_gap, gap, gap_margin)),
            note=f"test; {noise} (of the difference: ≤ {se_gap:.3f}); rule: reproduced within "
                 f"{ACC_TOL}, else direction holds if smaller than the raw student's gap "
                 f"({raw_gap:.3f}) by more than {gap_margin:.3f}; max-pool final test accuracy "
                 f"{p['final_test_acc']:.3f}"),
    ]


def claim_rows(*, fig32: dict | None = None, parity_active: dict | None = None,
               example41: dict | None = None, example42_raw: dict | None = None,
               example42_maxpool: dict | None = None, tag: str = "") -> list[Row]:
    """The comparison rows of the runs given (each the ``values`` of the record of that name):
    Fig. 3.2 (§3.2–3.3), Thm 4.3, eq. (4.8) and §4.2 of Example 4.1, and Example 4.2's Fig. 4.3
    (which needs both its runs). ``tag`` prefixes the Example 4.2 quantities.

    A row is either a test, which could have come out otherwise on this run (a verdict of
    :data:`tsrobust.results.VERDICTS`; its note says "test" and states the noise and the rule),
    or a sanity check, true by construction on a correct run
    (:func:`tsrobust.results.sanity_check`; its note says why): the areas and the radius of
    Fig. 3.2's right panel, the d + 1 queries of Thm 4.3, the rounded student's error and the
    flips at the formula's ε."""
    if (example42_raw is None) != (example42_maxpool is None):
        raise ValueError("Example 4.2's rows compare two runs: give example42_raw and "
                         "example42_maxpool together")
    rows = []
    if fig32 is not None:
        rows += _fig32_rows(fig32)
    if parity_active is not None:
        rows += _parity_active_rows(parity_active)
    if example41 is not None:
        rows += _example41_rows(example41)
    if example42_raw is not None:
        rows += _example42_rows(example42_raw, example42_maxpool, tag)
    return rows


# --------------------------------------------------------------------------------------------
# Summary of a run
# --------------------------------------------------------------------------------------------

FILTER_GAIN = 0.05
"""Example 4.2: the max-pool filter counts as raising the adversarial accuracy when it does so
by more than 0.05 (the tolerance of the accuracy rows)."""


def notions_part_ways(f32: dict) -> bool:
    """Fig. 3.2: the left student is ℓ2 robust on μ yet contradicts the teacher somewhere, and
    the right one contradicts it nowhere yet has no ℓ2 radius (§3.3, both directions)."""
    return (f32["left_l2_radius_mu"] > 0 and f32["left_adv_area"] > 0
            and f32["right_adv_area"] <= EXACT_TOL and f32["right_l2_radius_mu"] <= EXACT_TOL)


def active_recovers_everywhere(active: dict) -> bool:
    """Thm 4.3 at every d tried: S recovered with exactly d + 1 data queries."""
    return all(r["recovered"] and r["queries"] == r["d"] + 1 for r in active["rows"])


def filter_gain(raw: dict, pooled: dict) -> float:
    """Final adversarial accuracy of the prefiltered student minus the raw one's."""
    return pooled["final_adv_acc"] - raw["final_adv_acc"]


def summary_text(shown: dict, own: dict | None = None) -> str:
    """The chapter's summary as markdown bullets, read from ``shown`` (record name → the
    :class:`tsrobust.results.Result` the chapter shows, all eight runs: the largest recorded
    ones) and, where it differs from them, this build's own run ``own`` (same keys; one bullet,
    the pipeline check). The verdict counts count the tests; sanity checks are counted apart."""
    runs = {name: res.values for name, res in shown.items()}
    gd_cfg = results.config_of(shown["parity_gd"], SETTINGS)
    ex_cfg = results.config_of(shown["example42_raw"], SETTINGS)
    f32, active, passive = runs["fig32"], runs["parity_active"], runs["parity_passive"]
    sq, gd, e = runs["parity_sq"], runs["parity_gd"], runs["example41"]
    rw, pw = runs["example42_raw"], runs["example42_maxpool"]
    arows = active["rows"]
    passive_nu = [r["acc_nu"] for r in passive["rows"] if r["size"] > 1]
    passive_mu_ok = all(r["acc_mu"] == 1.0 for r in passive["rows"])
    sq_run = [r for r in sq["rows"] if r["run"] and r["recovered"]]
    first_fail, gd_fail = sq_first_failure(sq), gd_failed_sizes(gd)
    gain = filter_gain(rw, pw)
    bullets = [
        f"**Runs shown.** {shown_profiles_text(shown)}",
        f"**Fig. 3.2.** The max-margin student (left) is ℓ2 robust on μ up to radius "
        f"{f32['left_l2_radius_mu']:.3f} and contradicts the teacher on an area of "
        f"{f32['left_adv_area']:.4f}; the student through the origin (right) contradicts it on "
        f"an area of {f32['right_adv_area']:.2g} and has ℓ2 radius "
        f"{f32['right_l2_radius_mu']:.2g}. "
        + ("So in this run strong (conditional) robustness and ℓ2 robustness part ways in both "
           "directions, as §3.3 says" if notions_part_ways(f32) else
           "This run does not show the two notions parting ways in both directions")
        + f" (verdicts: {verdict_counts(claim_rows(fig32=f32))}).",
        "**Parity, active teacher (Thm 4.3).** "
        + (f"Told 'I am a parity', the student recovered S with d + 1 data queries at every d "
           f"tried, up to d = {arows[-1]['d']}" if active_recovers_everywhere(active) else
           "The active student did not recover S with d + 1 data queries at every d tried")
        + f" (verdicts: {verdict_counts(claim_rows(parity_active=active))}). The least-squares "
          f"fit on μ is "
        + ("right on all of μ" if passive_mu_ok else "not right on all of μ")
        + ("" if not passive_nu else
           f" and right on {min(passive_nu):.0%} of ν for every |S| > 1"
           if min(passive_nu) == max(passive_nu) else
           f" and right on {min(passive_nu):.0%}–{max(passive_nu):.0%} of ν for |S| > 1") + ".",
        f"**Parity, passive teacher (Thm 4.2).** Our statistical-query student (d = {sq['d']})"
        f" paid the rank of S in its search order: "
        + ", ".join(f"{r['queries']} quer{'y' if r['queries'] == 1 else 'ies'} at |S| = "
                    f"{r['size']}" for r in sq_run)
        + (f"; its budget of {sq['budget']} ran out at |S| = {first_fail['size']}"
           if first_fail else "")
        + ". That cost is this one student's (for a fixed |S| its closed form grows like "
          "d^{|S|−1}); the bound for *any* SQ student against an oracle that answers "
          "adversarially within α (the counting argument behind Thm 4.1, from Parseval's "
          "identity) is "
        + f"{half_bound(sq['d'], sq['tolerance']):.3g} queries "
          f"for teachers of half the coordinates at d = {sq['d']} and "
          f"{half_bound(100, sq['tolerance']):.3g} at d = 100.",
        f"**Gradient descent (our addition, one d = {gd['d']}).** SGD steps to "
        f"{gd_cfg.gd_target:.0%} accuracy on ν: {gd_steps_by_size(gd)}"
        + (f"; the budget of {gd['budget']} steps ran out for |S| = "
           + ", ".join(map(str, sorted(set(gd_fail)))) if gd_fail else "")
        + ". This measures how the cost moves with |S| at one d, not how it grows with d; "
          "minibatch SGD on fresh samples is not, in general, a statistical-query algorithm, "
          "so Thm 4.2's bound does not apply to it.",
        f"**Example 4.1.** The attack on x2…x99 flips the dense student on "
        f"{100 * e['flipped_at_eps']:.1f}% of the points of ν it classifies correctly"
        + ("; it cannot move the sparse student, which the hint 'only x1 and x100 matter' gives"
           if e["sparse_flip_eps_inf"] else "; it also moves the sparse student")
        + f". The sparse student errs on {100 * e['err_nu_sparse_exact']:.2f}% of ν (the "
          f"wedge); rounded to integers it errs on {100 * e['err_nu_rounded_exact']:.2f}%"
        + (", so the hint 'the coefficients are integers' removes the wedge"
           if e["err_nu_rounded_exact"] == 0 else "")
        + f" (verdicts: {verdict_counts(claim_rows(example41=e))}).",
        f"**Example 4.2** ({ex_cfg.image_size}×{ex_cfg.image_size} images). The CNN on raw "
        f"images ends at test accuracy {rw['final_test_acc']:.3f} and adversarial accuracy "
        f"{rw['final_adv_acc']:.3f}; behind the max-pool filter at {pw['final_test_acc']:.3f} "
        f"and {pw['final_adv_acc']:.3f}. "
        + (f"In this run the hint 'decide by shape', turned into the filter, raises the "
           f"adversarial accuracy by {gain:.3f}" if gain > FILTER_GAIN else
           "In this run the filter does not raise the adversarial accuracy by more than 0.05")
        + " (verdicts: "
          f"{verdict_counts(claim_rows(example42_raw=rw, example42_maxpool=pw))}).",
    ]
    if own is not None and any(own[name] is not shown[name] for name in RUNS):
        own_rows = claim_rows(**{k: own[k].values for k in CLAIM_RUNS})
        profile = own["fig32"].provenance["profile"]
        bullets.append(f"**This build's own run** (profile `{profile}`, the pipeline check "
                       f"above): verdicts: {verdict_counts(own_rows)}.")
    return "\n".join(f"- {b}" for b in bullets)


# --------------------------------------------------------------------------------------------
# What is shown: the largest recorded run; this build's own run as the pipeline check
# --------------------------------------------------------------------------------------------

RUNS = ("fig32", "parity_active", "parity_passive", "parity_sq", "parity_gd", "example41",
        "example42_raw", "example42_maxpool")
"""The chapter's record names, in the order the notebook makes them."""
CLAIM_RUNS = ("fig32", "parity_active", "example41", "example42_raw", "example42_maxpool")
"""The records :func:`claim_rows` compares with the paper."""


def shown_profiles_text(shown: dict) -> str:
    """Which profile each shown run comes from, and whether it was loaded or computed."""
    by_profile: dict[tuple, list[str]] = {}
    for name, res in shown.items():
        key = (res.provenance["profile"], res.loaded)
        by_profile.setdefault(key, []).append(name)
    parts = [f"{'recorded' if loaded else 'computed in this run'}, profile `{profile}`"
             + ("" if len(by_profile) == 1 else f" ({', '.join(names)})")
             for (profile, loaded), names in by_profile.items()]
    return "The results above are " + "; ".join(parts) + "."


def pipeline_check(own: dict, shown: dict) -> tuple[str, results.MarkdownTable]:
    """This build's own run, compactly: what it is, its headline numbers, and its claim rows
    beside those of the run shown (``own``, ``shown``: record name → Result, as in
    :func:`summary_text`). When the chapter shows a larger recorded run, this run is the
    pipeline check: the same code, end to end, at this build's profile."""
    v = {name: res.values for name, res in own.items()}
    prov = own["fig32"].provenance
    cfg = results.config_of(own["fig32"], SETTINGS)
    seconds = sum(float(res.provenance.get("seconds", 0.0)) for res in own.values())
    loaded = sum(res.loaded for res in own.values())
    same = all(own[name] is shown[name] for name in RUNS)
    sq, gd = v["parity_sq"], v["parity_gd"]
    first_fail = sq_first_failure(sq)
    raw, pooled = v["example42_raw"], v["example42_maxpool"]
    rows = claim_rows(**{name: v[name] for name in CLAIM_RUNS})
    text = (
        (f"The results above are this build's own run (profile `{cfg.profile}`): no larger "
         f"recorded run is present to lead with. " if same else
         f"This build's own run, profile `{cfg.profile}`, the same code end to end at this "
         f"profile's sizes: the pipeline check of the results shown above. ")
        + f"Commit `{prov['commit']}`, {prov['device']}, {seconds:.0f} s over its "
          f"{len(own)} records ({loaded} loaded, {len(own) - loaded} computed in this run). "
        + f"Feature queries (d = {sq['d']}): "
        + (f"the budget of {sq['budget']} ran out at |S| = {first_fail['size']}"
           if first_fail else f"every size fits the budget of {sq['budget']}")
        + f"; SGD steps (d = {gd['d']}): {gd_steps_by_size(gd)}. Example 4.2 "
          f"({cfg.image_size}×{cfg.image_size} images): raw {raw['final_test_acc']:.3f} / "
          f"{raw['final_adv_acc']:.3f}, max-pool {pooled['final_test_acc']:.3f} / "
          f"{pooled['final_adv_acc']:.3f} (test / adversarial accuracy). Its comparison with the "
          f"paper, by the rules stated in the tables above: {verdict_counts(rows)}."
    )
    columns = {"quantity": [r.quantity for r in rows],
               f"this build (`{cfg.profile}`)": [r.ours for r in rows],
               "verdict, this build": [results.verdict_cell(r.verdict) for r in rows]}
    if not same:
        theirs = claim_rows(**{name: shown[name].values for name in CLAIM_RUNS})
        profile = shown["fig32"].provenance["profile"]
        columns[f"shown (`{profile}`)"] = [r.ours for r in theirs]
        columns["verdict, shown"] = [results.verdict_cell(r.verdict) for r in theirs]
    return text, results.markdown_table(columns)
