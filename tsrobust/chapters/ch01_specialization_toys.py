"""Chapter 1 (``notebooks/01_specialization_toys``): source D's theory toys — the analytic
gradient of a ReLU node checked by Monte Carlo (at unequal norms, so that the factor ‖w*‖/‖w‖
is tested), the 2-D teacher and its over-realized student (specialization measured as the
talk's ε-alignment), the L-shaped curve at convergence (source A, Corollary 1), the slow
learning of weak teacher nodes, and teacher-agnostic vs teacher-aware augmentation ("Lesson 2")
with the talk's gradient condition evaluated on the runs.

The chapter's parameters (``SETTINGS``), its experiments (each returns ``(values, arrays)`` for
``results.record``), figures, and claim rows (``claim_rows``: ``results.Row``s, each stating
when it holds). The formulas and networks are in :mod:`tsrobust.theory`.
"""

from __future__ import annotations

import copy
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib import ticker
from tqdm.auto import tqdm

from tsrobust import results
from tsrobust import theory as th
from tsrobust.params import Setting
from tsrobust.plotting import add_frame_slider, live_figure, plain_log_ticks
from tsrobust.specialization import SPECIALIZED_NC, UNSPECIALIZED_NC, best_nc

CHAPTER = "01_specialization_toys"
"""The chapter's name: the folder of its recorded results."""

SETTINGS = {
    "grad_dim": Setting(int, smoke=5, gpu=10, paper=10, min=2,
                        doc="input dimension d of the single-node gradient check"),
    "grad_angles_deg": Setting(tuple, smoke=(30.0, 60.0, 90.0, 120.0, 150.0),
                               gpu=(15.0, 30.0, 60.0, 90.0, 120.0, 150.0, 175.0),
                               paper=(15.0, 30.0, 60.0, 90.0, 120.0, 150.0, 175.0),
                               min=0.0, max=180.0, doc="angles θ between w and w* (degrees)"),
    "grad_sample_sizes": Setting(tuple, smoke=(100, 1_000, 10_000, 100_000),
                                 gpu=(100, 1_000, 10_000, 100_000, 1_000_000),
                                 paper=(100, 1_000, 10_000, 100_000, 1_000_000), min=2,
                                 doc="Monte-Carlo sample sizes N"),
    "grad_repeats": Setting(int, smoke=8, gpu=20, paper=20, min=2,
                            doc="independent Monte-Carlo estimates per (θ, N)"),
    "grad_norm_w": Setting(float, smoke=1.5, gpu=1.5, paper=1.5, min=1e-6,
                           doc="‖w‖ of the gradient check (≠ ‖w*‖, so that the factor "
                               "‖w*‖/‖w‖ of the formula is tested)"),
    "grad_norm_w_star": Setting(float, smoke=0.6, gpu=0.6, paper=0.6, min=1e-6,
                                doc="‖w*‖ of the gradient check"),
    "outputs": Setting(int, smoke=5, gpu=5, paper=5, min=1,
                       doc="output dimension C of teacher and student"),
    "lr": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=1e-9, max=10.0,
                  doc="SGD learning rate (momentum 0.9)"),
    "n_train": Setting(int, smoke=1000, gpu=10_000, paper=10_000, min=10,
                       doc="training inputs of every toy"),
    "n_eval": Setting(int, smoke=4000, gpu=20_000, paper=20_000, min=10,
                      doc="fresh inputs on which correlations are measured"),
    "steps": Setting(int, smoke=2000, gpu=20_000, paper=20_000, min=1,
                     doc="full-batch gradient steps of every training run"),
    "toy_teacher_width": Setting(int, smoke=4, gpu=4, paper=4, min=1,
                                 doc="teacher ReLU nodes of the 2-D toy"),
    "toy_student_width": Setting(int, smoke=12, gpu=20, paper=20, min=1,
                                 doc="student ReLU nodes of the 2-D toy"),
    "toy_records": Setting(int, smoke=20, gpu=40, paper=40, min=1,
                           doc="training records shown by the 2-D toy's slider"),
    "widget_steps": Setting(int, smoke=1000, gpu=2000, paper=2000, min=1,
                            doc="training steps of each rerun triggered by the widget"),
    "ls_dim": Setting(int, smoke=10, gpu=20, paper=20, min=1, doc="input dimension, L-shape"),
    "ls_teacher_width": Setting(int, smoke=5, gpu=10, paper=10, min=1,
                                doc="teacher nodes, L-shape"),
    "ls_student_width": Setting(int, smoke=25, gpu=50, paper=50, min=1,
                                doc="student nodes, L-shape"),
    "weak_dim": Setting(int, smoke=10, gpu=20, paper=20, min=1,
                        doc="input dimension, weak-teacher experiment"),
    "weak_teacher_width": Setting(int, smoke=8, gpu=10, paper=10, min=2,
                                  doc="teacher nodes, weak-teacher experiment"),
    "weak_student_width": Setting(int, smoke=24, gpu=50, paper=50, min=1,
                                  doc="student nodes, weak-teacher experiment"),
    "weak_decay": Setting(float, smoke=1.0, gpu=1.0, paper=1.0, min=0.0,
                          doc="p in ‖v*_j‖ ∝ 1/j^p"),
    "weak_records": Setting(int, smoke=40, gpu=100, paper=100, min=1,
                            doc="records of the best-NC curves"),
    "aug_dim": Setting(int, smoke=8, gpu=20, paper=20, min=1,
                       doc="input dimension d, augmentation experiment (Lesson 2)"),
    "aug_teacher_width": Setting(int, smoke=3, gpu=5, paper=5, min=1,
                                 doc="teacher nodes, augmentation experiment"),
    "aug_student_width": Setting(int, smoke=12, gpu=25, paper=25, min=1,
                                 doc="student nodes, augmentation experiment"),
    "aug_sizes": Setting(tuple, smoke=(20, 40, 80), gpu=(25, 50, 100, 200, 400),
                         paper=(25, 50, 100, 200, 400), cpu=(25, 50, 100, 200), min=1,
                         doc="sizes |D| of the original data sets"),
    "aug_repeats": Setting(int, smoke=3, gpu=5, paper=5, cpu=3, min=2,
                           doc="independent seeds (teacher, initialisation, data) per |D|"),
    "aug_delta": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=1e-9,
                         doc="step δ of the augmentations x ± δ u"),
    "aug_steps": Setting(int, smoke=2000, gpu=5000, paper=5000, cpu=3000, min=1,
                         doc="full-batch gradient steps per run of the augmentation experiment"),
}
"""Parameters of chapter 1 (``tsrobust.params.resolve``). The sources give no sizes for these
toys: smoke is sized for a CPU in about a minute; gpu and paper are larger runs of the same
toys; cpu is paper with fewer sizes, seeds and steps in the augmentation experiment."""


# Streams of ``theory.make_generator``: one per experiment, so that changing one experiment's
# settings leaves the others' randomness unchanged.
STREAM_GRADIENT, STREAM_TOY, STREAM_L_SHAPE, STREAM_WEAK = 1, 2, 3, 4
STREAM_AUGMENTATION = 100
"""The augmentation experiment uses one stream per seed from here on."""

PLOT_POINTS = 400
"""Training inputs kept with a 2-D toy result for drawing."""

STRONG_FAN_OUT = 0.2
"""In 2-D figures, a student node counts as carrying weight when ‖v_k‖ ≥ 0.2 · the largest
fan-out norm over the run (drawn bold); the others are drawn faint."""

ALIGNED_NC = 0.99
"""In the weak-teacher experiment, a teacher node counts as learned once its best NC is ≥ 0.99."""

ALIGNED_EPS = 0.05
"""The 2-D toy's claim: every teacher node is ε-aligned with some student node (source D,
"Student Specialization": sin θ̃ ≤ ε and |b − b*| ≤ ε, weights scaled to ‖w̃‖ = 1) for
ε = 0.05 (the talk gives no number; this is the book's)."""


# ----------------------------------------------------------------------------------------------
# Experiments (source D). Each returns (values, arrays) for ``results.record``.
# ----------------------------------------------------------------------------------------------


def gradient_experiment(*, d: int, angles_deg, sample_sizes, repeats: int, seed: int,
                        norm_w: float = 1.0, norm_w_star: float = 1.0, progress: bool = True):
    """Source D "An Analytic Formula": ``theory.gradient_check`` at the angles ``angles_deg``
    (degrees) and norms ‖w‖ = ``norm_w``, ‖w*‖ = ``norm_w_star``, with the chapter's gradient
    stream of ``seed``."""
    return th.gradient_check(d, [math.radians(a) for a in angles_deg], sample_sizes, repeats,
                             th.make_generator(seed, STREAM_GRADIENT), norm_w=norm_w,
                             norm_w_star=norm_w_star, progress=progress)


@th.single_threaded
def two_d_toy(
    *,
    teacher_width: int,
    student_width: int,
    outputs: int,
    n_train: int,
    steps: int,
    lr: float,
    records: int,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """Source D "Simple 2D experiments": a 2-D teacher with ``teacher_width`` ReLU nodes (with
    bias) and an over-realized student trained on the teacher's outputs (full-batch GD on
    x ~ N(0, I₂)). Records the student ``records`` + 1 times.

    Arrays: teacher weights/biases, student weights/biases/fan-out norms at every record
    ``[R, K_s, ...]``, the records' steps and losses, the final per-teacher best NC and
    ε-alignment (``theory.eps_alignment``: error, sine, bias gap and the student), the final
    L-shape data and ``x_plot`` (a few training inputs).
    """
    g = th.make_generator(seed, STREAM_TOY)
    teacher = th.make_teacher(2, teacher_width, outputs, g)
    student = th.make_student(2, student_width, outputs, g)
    x = th.gaussian_inputs(n_train, 2, g)
    every = max(1, steps // th.positive_int("records", records))
    hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                       record_every=every, progress=progress, desc="2-D toy")
    nets = [hist.student_at(i) for i in range(len(hist.snapshots))]
    shape = th.l_shape(student, teacher, x)
    bnc = best_nc(th.node_correlations(student, teacher, x)).numpy()
    aligned = th.eps_alignment(student, teacher)
    arrays = {
        "teacher_w": teacher.hidden.weight.numpy().copy(),
        "teacher_b": teacher.hidden.bias.numpy().copy(),
        "student_w": np.stack([n.hidden.weight.detach().numpy() for n in nets]),
        "student_b": np.stack([n.hidden.bias.detach().numpy() for n in nets]),
        "student_fan_out": np.stack([n.fan_out_norms().numpy() for n in nets]),
        "steps": np.asarray(hist.steps),
        "loss": np.asarray(hist.loss),
        "best_nc": bnc,
        **{f"alignment_{k}": v for k, v in aligned.items()},
        "x_plot": x[:PLOT_POINTS].numpy(),
        **{f"final_{k}": v for k, v in shape.items()},
    }
    values = {"final_loss": hist.loss[-1], "initial_loss": hist.loss[0],
              "min_best_nc": float(bnc.min()), "mbnc": float(bnc.mean()),
              "max_alignment_error": float(aligned["error"].max())}
    return values, arrays


@th.single_threaded
def l_shape_experiment(
    *,
    d: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    n_train: int,
    n_eval: int,
    steps: int,
    lr: float,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """Source D "L-shape curve at convergence" / Corollary 1 on full-rank Gaussian input: train an
    over-realized student to convergence, then per student node its best NC to a teacher node vs
    its fan-out norm (``l_shape``, on ``n_eval`` fresh inputs). Values: the footnote-4 split of
    the nodes whose boundary lies in the data (``fan_out_by_specialization``; a mean is ``None``
    when its group is empty) and the counts of dead and always-on nodes."""
    g = th.make_generator(seed, STREAM_L_SHAPE)
    teacher = th.make_teacher(d, teacher_width, outputs, g)
    student = th.make_student(d, student_width, outputs, g)
    x, x_eval = th.gaussian_inputs(n_train, d, g), th.gaussian_inputs(n_eval, d, g)
    hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                       record_every=max(1, steps // 50), progress=progress, desc="L-shape")
    shape = th.l_shape(student, teacher, x_eval)
    bnc = best_nc(th.node_correlations(student, teacher, x_eval)).numpy()
    values = {
        "final_loss": hist.loss[-1],
        "mbnc": float(bnc.mean()),
        **th.fan_out_by_specialization(shape["best_corr"], shape["fan_out_norm"],
                                    shape["node_class"]),
        "n_dead": int((shape["node_class"] == 1).sum()),
        "n_always_on": int((shape["node_class"] == 2).sum()),
    }
    arrays = {**shape, "teacher_best_nc": bnc, "steps": np.asarray(hist.steps),
              "loss": np.asarray(hist.loss)}
    return values, arrays


@th.single_threaded
def weak_teacher_experiment(
    *,
    d: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    decay: float,
    n_train: int,
    n_eval: int,
    steps: int,
    lr: float,
    records: int,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """Source D "Weak teacher nodes are slow to learn": teacher fan-out ‖v*_j‖ ∝ 1/j^p
    (p = ``decay``); per teacher node, the best NC over student nodes at ``records`` + 1 points
    of training, and the first recorded step at which it reaches ``ALIGNED_NC`` (−1: never). The
    Spearman correlation of strength ‖v*_j‖ and that step counts never-aligned nodes as the
    slowest; it is ``None`` when undefined (every node reached ``ALIGNED_NC`` at the same
    recorded step, or none did)."""
    g = th.make_generator(seed, STREAM_WEAK)
    teacher = th.make_teacher(d, teacher_width, outputs, g, fan_out_decay=decay)
    student = th.make_student(d, student_width, outputs, g)
    x, x_eval = th.gaussian_inputs(n_train, d, g), th.gaussian_inputs(n_eval, d, g)
    hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                       record_every=max(1, steps // th.positive_int("records", records)),
                         progress=progress, desc="weak teacher")
    bnc = th.best_nc_over_training(hist, teacher, x_eval)
    steps_arr = np.asarray(hist.steps)
    reached = bnc >= ALIGNED_NC
    first = np.where(reached.any(0), steps_arr[reached.argmax(0)], -1)
    strength = teacher.fan_out_norms().numpy()
    learned = first >= 0
    # nodes never aligned count as slower than all others (censored at steps + 1)
    censored = np.where(learned, first, steps_arr[-1] + 1)
    values = {"final_loss": hist.loss[-1], "n_learned": int(learned.sum()),
              "steps_to_align": first.tolist(),
              "spearman_strength_vs_steps": results.as_number(th.spearman(strength, censored))}
    arrays = {"steps": steps_arr, "best_nc": bnc, "teacher_fan_out": strength,
              "loss": np.asarray(hist.loss), "steps_to_align": first}
    return values, arrays


LESSON2 = ("D", "teacher-agnostic Aug(D)", "teacher-aware Aug(D)")
"""The training sets of ``augmentation_experiment``: the data alone, the talk's
teacher-agnostic augmentation and a teacher-aware one (``theory.teacher_*_augmentation``)."""


@th.single_threaded
def augmentation_experiment(
    *,
    d: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    sizes,
    repeats: int,
    delta: float,
    steps: int,
    lr: float,
    n_eval: int,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """Source D, "Polynomial Complexity" and "Lesson 2: Data augmentation matters": for each
    size |D| in ``sizes`` and each of ``repeats`` seeds (teacher and initialisation shared across
    sizes; the data sets nested), train the same student on D, on the teacher-agnostic Aug(D)
    (x ± δ e_i, (2d + 1)|D| inputs) and on a teacher-aware Aug(D) (x ± δ ŵ*_j, (2K* + 1)|D|
    inputs), δ = ``delta``. Per run and teacher node: the ε-alignment error
    (``theory.eps_alignment``), α of its best observer on ``n_eval`` fresh inputs, and the
    alignment the talk's gradient condition guarantees for the run's ‖g₁‖∞ over its training set
    (``theory.slide_alignment_bound``; without √d for the teacher-aware set).

    Arrays: ``error``, ``alpha``, ``slide`` [n_sizes, repeats, 3, K_t]; ``g1_sup``,
    ``final_loss`` [n_sizes, repeats, 3]; ``n_inputs`` [n_sizes, 3]; ``sizes``. Values: the mean
    error per size and training set."""
    sizes = [th.positive_int("size", n) for n in sizes]
    repeats = th.positive_int("repeats", repeats)
    k_total = teacher_width + student_width
    out = {k: np.zeros((len(sizes), repeats, len(LESSON2), teacher_width))
           for k in ("error", "alpha", "slide")}
    out.update({k: np.zeros((len(sizes), repeats, len(LESSON2))) for k in ("g1_sup",
                                                                           "final_loss")})
    n_inputs = np.zeros((len(sizes), len(LESSON2)), dtype=int)
    jobs = [(i, r) for i in range(len(sizes)) for r in range(repeats)]
    for i, r in tqdm(jobs, desc="augmentation", disable=not progress, leave=False):
        g = th.make_generator(seed, STREAM_AUGMENTATION + r)
        teacher = th.make_teacher(d, teacher_width, outputs, g)
        initial = th.make_student(d, student_width, outputs, g)
        x_eval = th.gaussian_inputs(n_eval, d, g)
        x = th.gaussian_inputs(sizes[i], d, g)
        sets = (x, th.teacher_agnostic_augmentation(x, delta),
                th.teacher_aware_augmentation(x, teacher, delta))
        for k, x_train in enumerate(sets):
            student = copy.deepcopy(initial)
            hist = th.train_on(device, student, teacher, x_train, steps=steps, lr=lr,
                               generator=g, record_every=steps, progress=False)
            g1 = float(th.hidden_gradient(student, teacher, x_train).abs().max())
            report = th.theorem2_report(student, teacher, x_eval, torch.eye(d, dtype=th.DTYPE))
            out["error"][i, r, k] = th.eps_alignment(student, teacher)["error"]
            out["alpha"][i, r, k] = report["alpha"]
            out["slide"][i, r, k] = th.slide_alignment_bound(g1, report["alpha"], k_total, d,
                                                             aware=k == 2)
            out["g1_sup"][i, r, k], out["final_loss"][i, r, k] = g1, hist.loss[-1]
            n_inputs[i, k] = len(x_train)
    values = {"sizes": sizes, "repeats": repeats, "d": d,
              "mean_error": {name: out["error"][:, :, k].mean(axis=(1, 2)).tolist()
                             for k, name in enumerate(LESSON2)}}
    return values, {**out, "n_inputs": n_inputs, "sizes": np.asarray(sizes)}


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def plot_gradient_check(values: dict, arrays: dict, angles_deg):
    """Figure 1.1: left, the RMS distance of the Monte-Carlo estimate from the analytic gradient
    against N for every angle, beside a 1/√N reference; right, the analytic gradient's two
    non-zero components for θ in (0°, 180°) at the tested norms, with the same components of
    the formula whose factor ‖w*‖/‖w‖ is replaced by 1 (``gradient_experiment`` values and
    arrays)."""
    sizes = np.asarray(values["sample_sizes"])
    angles = np.asarray(angles_deg)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for a, err in zip(angles, arrays["rms_error"]):
        ax1.loglog(sizes, err, "o-", label=f"θ = {a:.0f}°")
    ref = arrays["rms_error"].mean(0)[0] * np.sqrt(sizes[0] / sizes)
    ax1.loglog(sizes, ref, "k--", label="∝ 1/√N")
    ax1.set_xlabel("Monte-Carlo samples N")
    ax1.set_ylabel("RMS error ‖ĝ_N − g‖ over repeats")
    ax1.set_title("Monte Carlo converges to the formula")
    ax1.legend(fontsize=8)

    fine = np.linspace(1e-3, math.pi - 1e-3, 200)
    norms = dict(norm_w=values["norm_w"], norm_w_star=values["norm_w_star"])
    pairs = [th.vectors_at_angle(t, 2, **norms) for t in fine]
    curves = np.stack([th.relu_population_gradient(w, ws).numpy() for w, ws in pairs])
    ratio = values["norm_w_star"] / values["norm_w"]
    wrong = curves + np.stack([((1 - ratio) * math.sin(t) / (2 * math.pi) * w).numpy()
                               for t, (w, _) in zip(fine, pairs)])
    ax2.plot(np.degrees(fine), curves[:, 0], color="tab:blue", label="analytic, along w*")
    ax2.plot(np.degrees(fine), curves[:, 1], color="tab:orange",
             label="analytic, ⊥ w* (in span{w, w*})")
    ax2.plot(np.degrees(fine), wrong[:, 0], ":", color="tab:blue")
    ax2.plot(np.degrees(fine), wrong[:, 1], ":", color="tab:orange",
             label="with ‖w*‖/‖w‖ replaced by 1")
    an = arrays["analytic"]
    ax2.plot(angles, an[:, 0], "ko", mfc="none", label="analytic at the tested θ")
    ax2.plot(angles, an[:, 1], "ko", mfc="none")
    ax2.set_xlabel("angle θ between w and w* (degrees)")
    ax2.set_ylabel("component of E[∇_w J]")
    ax2.set_title(f"The population gradient, ‖w‖ = {values['norm_w']:g}, "
                  f"‖w*‖ = {values['norm_w_star']:g}")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_slider_figure(toy: dict, *, lim: float, title: str):
    """Figure 1.3: a plotly figure of a 2-D toy (``two_d_toy`` arrays) with a slider over the
    training records: teacher boundaries (black, dashed) and student boundaries (coloured; opacity
    ∝ fan-out norm)."""

    def segments(weights, biases):
        xs, ys = [], []
        for w, b in zip(weights, biases):
            seg = th.boundary_segment(w, b, lim)
            if seg is not None:
                xs += [seg[0][0], seg[1][0], None]
                ys += [seg[0][1], seg[1][1], None]
        return xs, ys

    fig = go.Figure()
    x = toy["x_plot"]
    fig.add_trace(go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", name="training inputs",
                             marker=dict(size=3, color="lightgray")))
    tx, ty = segments(toy["teacher_w"], toy["teacher_b"])
    fig.add_trace(go.Scatter(x=tx, y=ty, mode="lines", name="teacher boundaries",
                             line=dict(color="black", width=3, dash="dash")))
    fan = toy["student_fan_out"]
    top = float(fan.max()) or 1.0
    frames = []
    for r in range(len(toy["steps"])):
        strong = fan[r] >= STRONG_FAN_OUT * top
        frames.append([])
        for flag, name, color in ((True, "students, large fan-out", "crimson"),
                                  (False, "students, small fan-out", "orange")):
            sx, sy = segments(toy["student_w"][r][strong == flag],
                              toy["student_b"][r][strong == flag])
            frames[-1].append(go.Scatter(x=sx, y=sy, mode="lines", name=name,
                                         line=dict(color=color, width=2 if flag else 1),
                                         opacity=1.0 if flag else 0.5, showlegend=True))
    fig.update_layout(
        height=560,
        xaxis=dict(title="x₁", range=[-lim, lim], constrain="domain"),
        yaxis=dict(title="x₂", range=[-lim, lim], scaleanchor="x", scaleratio=1),
    )
    add_frame_slider(fig, frames, [int(s) for s in toy["steps"]], prefix="training step: ",
                     titles=[f"{title} — step {s}" for s in toy["steps"]])
    return fig


def plot_two_d_toy(ax, toy: dict, index: int, *, lim: float, title: str):
    """Draw record ``index`` of a 2-D toy (``two_d_toy`` arrays) on a matplotlib axis: training
    inputs (grey), teacher boundaries (black, dashed), student boundaries (red: large fan-out,
    orange: small, see ``STRONG_FAN_OUT``)."""
    x = toy["x_plot"]
    ax.scatter(x[:, 0], x[:, 1], s=3, color="lightgray", zorder=0)
    fan = toy["student_fan_out"]
    top = float(fan.max()) or 1.0
    labelled = set()
    for w, b, f in zip(toy["student_w"][index], toy["student_b"][index], fan[index]):
        seg = th.boundary_segment(w, b, lim)
        if seg is None:
            continue
        strong = f >= STRONG_FAN_OUT * top
        label = "student, large fan-out" if strong else "student, small fan-out"
        ax.plot(*zip(*seg), color="crimson" if strong else "orange", lw=2 if strong else 1,
                alpha=1.0 if strong else 0.6, label=None if label in labelled else label)
        labelled.add(label)
    for j, (w, b) in enumerate(zip(toy["teacher_w"], toy["teacher_b"])):
        seg = th.boundary_segment(w, b, lim)
        if seg is not None:
            ax.plot(*zip(*seg), color="black", lw=2.5, ls="--",
                    label="teacher" if j == 0 else None)
    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_aspect("equal")
    ax.set_xlabel("$x_1$"), ax.set_ylabel("$x_2$"), ax.set_title(title)


def plot_before_after(toy: dict, *, lim: float, after_title: str, suptitle: str,
                      figsize=(10, 4.8), legend: bool = True):
    """A 2-D toy (``two_d_toy`` arrays) before training and at its last record, side by side
    (``plot_two_d_toy``); Figures 1.2 and 1.4."""
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    plot_two_d_toy(axes[0], toy, 0, lim=lim, title="before training")
    plot_two_d_toy(axes[1], toy, -1, lim=lim, title=after_title)
    if legend:
        axes[1].legend(loc="lower left", fontsize=8)
    fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def toy_widget(cfg, *, lim: float):
    """Figure 1.4: sliders for the student width and the seed that retrain the 2-D toy
    (``cfg.widget_steps`` steps on the CPU) and draw it before and after training
    (:func:`tsrobust.plotting.live_figure`: it works under a plain papermill run, too)."""

    def rerun_toy(student_width, toy_seed):
        _, arrays = two_d_toy(
            teacher_width=cfg.toy_teacher_width, student_width=student_width,
            outputs=cfg.outputs, n_train=cfg.n_train, steps=cfg.widget_steps, lr=cfg.lr,
            records=1, seed=toy_seed, progress=False)
        return plot_before_after(arrays, lim=lim, after_title=f"after {cfg.widget_steps} steps",
                                 suptitle=f"student width {student_width}, seed {toy_seed}: "
                                          f"final loss {arrays['loss'][-1]:.2g}",
                                 figsize=(9, 4.3), legend=False)

    return live_figure(
        rerun_toy,
        student_width=widgets.IntSlider(value=cfg.toy_student_width, min=1, max=40,
                                        continuous_update=False, description="student width"),
        toy_seed=widgets.IntSlider(value=cfg.seed, min=0, max=50, continuous_update=False,
                                   description="seed"),
    )


def plot_l_shape(arrays: dict, *, d: int, teacher_width: int, student_width: int):
    """Figure 1.5: best NC with any teacher node against fan-out norm, one dot per student node
    (``l_shape_experiment`` arrays), by node class, with the footnote-4 thresholds."""
    a = arrays
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for cls, (name, marker, color) in enumerate(zip(th.NODE_CLASSES, "oxs",
                                                    ("tab:blue", "tab:gray", "tab:green"))):
        keep = a["node_class"] == cls
        if keep.any():
            ax.scatter(a["best_corr"][keep], a["fan_out_norm"][keep], marker=marker,
                       color=color, label=f"{name} ({keep.sum()})")
    for nc, style in ((UNSPECIALIZED_NC, "--"), (SPECIALIZED_NC, ":")):
        ax.axvline(nc, color="k", ls=style, lw=1, label=f"NC = {nc}")
    ax.set_xlabel("best NC of the student node with any teacher node")
    ax.set_ylabel("fan-out norm ‖v_k‖")
    ax.set_title(f"L-shape at convergence: d = {d}, {teacher_width} teacher / "
                 f"{student_width} student nodes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_weak_teacher(arrays: dict, *, decay: float):
    """Figure 1.6: left, 1 − best NC of every teacher node during training; right, the first
    recorded step at which each teacher node is copied against its strength ‖v*_j‖
    (``weak_teacher_experiment`` arrays)."""
    a = arrays
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(a["teacher_fan_out"])))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for j, (curve, strength) in enumerate(zip(a["best_nc"].T, a["teacher_fan_out"])):
        ax1.semilogy(a["steps"], np.clip(1 - curve, 1e-6, None), color=colors[j],
                     label=f"j = {j + 1}, ‖v*‖ = {strength:.2f}")
    ax1.axhline(1 - ALIGNED_NC, color="k", ls=":", lw=1)
    ax1.set_xlabel("training step")
    ax1.set_ylabel("1 − best NC of teacher node j")
    ax1.set_title(f"Weak teacher nodes (‖v*_j‖ = 1/j^{decay:g}) are copied later")
    ax1.legend(fontsize=7, ncol=2)
    learned = a["steps_to_align"] >= 0
    ax2.scatter(a["teacher_fan_out"][learned], a["steps_to_align"][learned], c=colors[learned])
    ax2.set_xscale("log")
    ax2.set_xticks(a["teacher_fan_out"], [f"{s:.2f}" for s in a["teacher_fan_out"]], fontsize=7)
    ax2.minorticks_off()
    ax2.set_xlabel("teacher fan-out norm ‖v*_j‖")
    ax2.set_ylabel(f"first recorded step with best NC ≥ {ALIGNED_NC}")
    ax2.set_title("Time to specialize vs teacher strength")
    fig.tight_layout()
    return fig


def plot_augmentation_experiment(arrays: dict, *, d: int):
    """Figure 1.7: left, the mean ε-alignment error against |D| for the three training sets,
    mean ± standard deviation over seeds; right, every teacher node's measured error against the
    alignment the talk's gradient condition guarantees for its run (``augmentation_experiment``
    arrays)."""
    a = arrays
    sizes = np.asarray(a["sizes"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.3))
    for k, (name, marker) in enumerate(zip(LESSON2, "osD")):
        per_seed = a["error"][:, :, k].mean(axis=2)
        ax1.errorbar(sizes, per_seed.mean(1), yerr=per_seed.std(1), marker=marker, capsize=3,
                     label=f"{name} (× {a['n_inputs'][-1, k] // sizes[-1]} inputs)")
    ax1.set_xscale("log"), ax1.set_yscale("log")
    plain_log_ticks(ax1.yaxis)
    ax1.set_xticks(sizes, [str(n) for n in sizes])
    ax1.xaxis.set_minor_locator(ticker.NullLocator())
    ax1.set_xlabel("size |D| of the original data set")
    ax1.set_ylabel("mean ε-alignment error over teacher nodes")
    ax1.set_title(f"Teacher-agnostic vs teacher-aware augmentation (d = {d})")
    ax1.legend(fontsize=8)
    for k, color in ((1, "tab:orange"), (2, "tab:green")):
        bound, err = a["slide"][:, :, k].ravel(), a["error"][:, :, k].ravel()
        keep = np.isfinite(bound)
        ax2.scatter(bound[keep], err[keep], s=12, color=color, label=LESSON2[k])
    finite = a["slide"][np.isfinite(a["slide"])]
    if finite.size:
        lo = min(finite.min(), a["error"].min())
        ax2.loglog([lo, finite.max()], [lo, finite.max()], "k-", lw=1, label="measured = bound")
    ax2.axvline(1.0, color="gray", ls=":", label="bound = 1")
    ax2.set_xscale("log"), ax2.set_yscale("log")
    ax2.set_xlabel(r"ε guaranteed by $\|g_1\|_\infty \leq \alpha\epsilon/(5K^{3/2}\sqrt{d})$"
                   " (no √d: aware)")
    ax2.set_ylabel("measured ε-alignment error")
    ax2.set_title("The talk's gradient condition beside the runs")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# What the numbers say, in words (markdown)
# ----------------------------------------------------------------------------------------------


def gradient_summary(values: dict, arrays: dict, angles_deg) -> str:
    """The slope, the largest z-score against what sampling noise alone reaches, the largest
    z-score at each N, and what a 10 % error in the gating term would do (§1.1)."""
    v, shift = values, arrays["gating_shift_z"]
    angles, sizes = np.asarray(angles_deg), np.asarray(v["sample_sizes"])
    factor = arrays["norm_factor_shift_z"]
    return (
        f"Norms ‖w‖ = {v['norm_w']:g}, ‖w*‖ = {v['norm_w_star']:g}. "
        f"Fitted log-log slope of the mean RMS error against N: "
        f"**{results.fmt(v['loglog_slope'])}** (sampling noise alone gives −0.5). Largest "
        f"deviation of any coordinate of any estimate from the formula, in units of that "
        f"estimate's own standard error: "
        f"**{results.fmt(v['z_max'], '.2f')}** over {len(angles)} angles × {len(sizes)} sample "
        f"sizes × {v['repeats']} repeats × d = {v['d']} coordinates ({v['n_z']} z-scores; for "
        f"that many independent Gaussian z-scores the largest is {v['z_median_max']:.2f} in a "
        f"typical run (median) and exceeds {v['z_chance_1pct']:.2f} once in a hundred runs). "
        f"Largest z-score at each N: {', '.join(f'{z:.2f}' for z in arrays['z_max'].max(0))}; a "
        f"wrong term would make these grow with N, while sampling noise alone leaves them level "
        f"(values that are larger at small N than at large N point to the heavier-than-Gaussian "
        f"tails of a mean over few samples, not to the formula). A "
        f"{th.GATING_ERROR:.0%} error in the gating term would move some coordinate's z-score at "
        f"N = {sizes[-1]:,} by at least {shift.min():.1f} (θ = {angles[shift.argmin()]:.0f}°) to "
        f"{shift.max():.1f} (θ = {angles[shift.argmax()]:.0f}°) standard errors, and the formula "
        f"with the disputed factor ‖w*‖/‖w‖ replaced by 1 would move it by at least "
        f"{factor.min():.1f} (θ = {angles[factor.argmin()]:.0f}°) to {factor.max():.1f} "
        f"(θ = {angles[factor.argmax()]:.0f}°) standard errors"
        + (" — at equal norms the check cannot tell the two apart." if factor.max() == 0
           else "."))


def toy_alignment_summary(values: dict, arrays: dict) -> str:
    """The 2-D toy's specialization as the talk defines it: per teacher node, the sine of the
    angle to its closest student and the gap between their normalized biases (``two_d_toy``)."""
    a = arrays
    per_node = ", ".join(f"{e:.2g} (sin θ̃ {s_:.2g}, |b − b*| {b:.2g})" for e, s_, b in zip(
        a["alignment_error"], a["alignment_sine"], a["alignment_bias_gap"]))
    return (f"Training loss went from {values['initial_loss']:.3g} to "
            f"**{values['final_loss']:.2g}**. Per teacher node, the smallest ε for which a "
            f"student node is ε-aligned with it: {per_node}; largest **"
            f"{values['max_alignment_error']:.2g}**. The best normalized correlations (NC) of "
            f"activations say the same in another unit: "
            f"{', '.join(f'{c:.4f}' for c in a['best_nc'])}.")


def augmentation_summary(values: dict, arrays: dict) -> str:
    """Mean ε-alignment errors per |D| and training set, and how often the talk's guaranteed ε
    is below 1 (``augmentation_experiment``)."""
    v, a = values, arrays
    parts = [f"|D| = {n}: " + " / ".join(f"{v['mean_error'][name][i]:.3g}" for name in LESSON2)
             for i, n in enumerate(v["sizes"])]
    finite = a["slide"][:, :, 1:]
    return ("Mean ε-alignment error, D / teacher-agnostic Aug(D) / teacher-aware Aug(D): "
            + "; ".join(parts) + f" (means over teacher nodes and {v['repeats']} seeds). The "
            f"talk's condition, solved for ε with each run's ‖g₁‖∞ over its augmented set, "
            f"guarantees at best ε = {results.fmt(np.nanmin(finite), '.3g')} (median "
            f"{results.fmt(np.nanmedian(finite), '.3g')}); a guarantee above 1 says nothing.")


TWIN_NC = 0.99
"""Two student nodes whose activations correlate above 0.99 count as twins (source A,
footnote 2)."""
VISIBLE_FAN_OUT = 0.1
"""In the L-shape summary, a fan-out counts as visible above 10 % of the largest of the run."""


def l_shape_summary(values: dict, arrays: dict) -> str:
    """The footnote-4 split of ``l_shape_experiment`` in words, with the nodes that are not
    specialized but keep a visible fan-out, and how many of them have a twin student node."""
    v, a = values, arrays
    off_l = (a["node_class"] == 0) & (a["best_corr"] <= SPECIALIZED_NC) & (
        a["fan_out_norm"] > VISIBLE_FAN_OUT * a["fan_out_norm"].max())
    paired = off_l & (a["partner_corr"] > TWIN_NC)
    return (
        f"Final training loss {v['final_loss']:.2g}; mean best NC of the teacher nodes (MBNC) "
        f"**{v['mbnc']:.4f}**. Of the student nodes whose boundary lies in the data, "
        f"{th.fan_out_sentence(v)}; {v['n_dead']} nodes are dead and {v['n_always_on']} always "
        f"on. Nodes that are not specialized (NC ≤ {SPECIALIZED_NC}) with a fan-out above 10% "
        f"of the largest: {int(off_l.sum())}"
        + (f", of which {int(paired.sum())} have a twin student node (NC > 0.99 between the "
           f"two)" if off_l.any() else "")
        + ". Twins are the case source A's footnote 2 leaves open: two unspecialized students "
          "that copy each other can keep large fan-outs that cancel in the output.")


# ----------------------------------------------------------------------------------------------
# Claims (source D; source A, Corollary 1): results.Row rows, each stating when it holds
# ----------------------------------------------------------------------------------------------

SLOPE_TOL = 0.1
"""The Monte-Carlo error counts as pure sampling noise when its log-log slope in N is within
0.1 of −½ …"""
Z_TOL = 6.0
"""… and no coordinate of any estimate is more than 6 of its standard errors from the formula
(``theory.gradient_check`` also reports the levels Gaussian noise alone reaches)."""
L_SHAPE_MAX_RATIO = 0.2
"""Corollary 1's L counts as present when the unspecialized nodes' mean fan-out is below 0.2 ×
the specialized nodes' (the corollary bounds the fan-out; the ratio is this book's choice)."""


def gradient_claim(values: dict) -> results.Row:
    """Source D "An Analytic Formula": is the Monte-Carlo error pure sampling noise?"""
    slope, z = results.as_number(values["loglog_slope"]), results.as_number(values["z_max"])
    holds = (slope is not None and z is not None and abs(slope + 0.5) <= SLOPE_TOL
             and z <= Z_TOL)
    return results.Row(
        "Monte-Carlo error slope in N", ours=slope, paper="−0.5 (formula exact)",
        source="D, \"An Analytic Formula\"", verdict="direction holds" if holds else "differs",
        note=f"holds if the slope is within {SLOPE_TOL} of −0.5 and the largest z-score "
             f"({results.fmt(z, '.2f')}) is at most {Z_TOL:g}; Gaussian noise alone gives "
             f"{values['z_median_max']:.2f} (median) over {values['n_z']} z-scores; "
             f"‖w‖ = {values.get('norm_w', 1.0):g}, ‖w*‖ = {values.get('norm_w_star', 1.0):g}")


def toy_claim(values: dict) -> results.Row:
    """Source D "Simple 2D experiments" with its definition of specialization: every teacher
    node of the 2-D toy is ε-aligned with some student node (sin θ̃ ≤ ε and |b − b*| ≤ ε), i.e.
    the largest over teacher nodes of the smallest ε (``two_d_toy``) is below ``ALIGNED_EPS``."""
    err = values["max_alignment_error"]
    return results.Row(
        "2-D toy: largest ε-alignment error over teacher nodes", ours=err,
        paper="students align", source="D, \"Simple 2D experiments\", \"Student Specialization\"",
        verdict="direction holds" if results.exceeds(ALIGNED_EPS, err) else "differs",
        note=f"holds if every teacher node is ε-aligned with a student node (sine of the angle "
             f"and gap of the biases both ≤ ε, weights scaled to unit norm) for "
             f"ε = {ALIGNED_EPS}; one run")


def l_shape_claim(values: dict) -> results.Row:
    """Source D "L-shape curve" / Corollary 1: unspecialized nodes whose boundary lies in the
    data carry small fan-out. Ours: the ratio of the unspecialized to the specialized mean
    fan-out (``l_shape_experiment``). No unspecialized node at all leaves nothing to test
    (inconclusive); no specialized node leaves no L, so it differs."""
    spec = results.as_number(values["mean_fan_out_specialized"])
    unspec = results.as_number(values["mean_fan_out_unspecialized"])
    rule = (f"holds if the mean fan-out of unspecialized nodes (NC < {UNSPECIALIZED_NC}) is below "
            f"{L_SHAPE_MAX_RATIO} × that of specialized ones (NC > {SPECIALIZED_NC})")
    common = dict(quantity="L-shape: mean fan-out, unspecialized / specialized",
                  paper="≈ 0 (Corollary 1)", source="D, \"L-shape curve\"; A, Cor. 1")
    if spec is None:
        return results.Row(**common, ours=None, verdict="differs",
                           note=f"no specialized node with its boundary in the data; {rule}")
    if unspec is None:
        return results.Row(**common, ours=None, verdict=results.INCONCLUSIVE,
                           note="no unspecialized node with its boundary in the data: nothing "
                                f"to test; {rule}")
    ratio = unspec / spec
    return results.Row(**common, ours=ratio, note=f"ratio of the two means; {rule}",
                       verdict="direction holds" if results.exceeds(L_SHAPE_MAX_RATIO, ratio)
                       else "differs")


def weak_teacher_claim(values: dict, n_teacher: int) -> results.Row:
    """Source D "Weak teacher nodes are slow to learn": Spearman's ρ between teacher strength
    ‖v*_j‖ and the step at which node j is copied (``weak_teacher_experiment``) must be below
    −``results.spearman_margin(n_teacher)``; an undefined ρ (no ordering at all) differs."""
    rho = results.as_number(values["spearman_strength_vs_steps"])
    m = results.spearman_margin(n_teacher)
    rule = f"holds if ρ < −{m:.2f} (one-sided 5 % level for {n_teacher} nodes)"
    if rho is None:
        note = (f"undefined: all teacher nodes were copied at the same recorded step, or none; "
                f"{rule}")
    else:
        note = f"rank correlation over teacher nodes; {rule}"
    return results.Row(
        "weak teacher: Spearman(strength, steps)", ours=rho, paper="< 0 (weak = slow)",
        source="D, \"Weak teacher nodes are slow to learn\"", note=note,
        verdict="direction holds" if rho is not None and results.exceeds(-rho, 0.0, m)
        else "differs")


def lesson2_claim(values: dict, arrays: dict) -> results.Row:
    """Source D "Lesson 2": teacher-aware augmentation needs fewer samples than teacher-agnostic
    augmentation, so at the same |D| it aligns better. Per seed, the mean over sizes of
    log10(agnostic error / aware error) (mean ε-alignment errors over teacher nodes) must clear
    the seed margin (``augmentation_experiment``)."""
    err = arrays["error"].mean(axis=3)  # [n_sizes, repeats, 3]
    per_seed = np.log10(err[:, :, 1] / err[:, :, 2]).mean(axis=0)
    m = results.paired_seed_margin(per_seed)
    mean = float(per_seed.mean())
    agnostic, aware = (float(np.mean(values["mean_error"][LESSON2[k]])) for k in (1, 2))
    return results.Row(
        "ε-alignment error, teacher-agnostic / teacher-aware Aug(D)",
        ours=f"{agnostic:.3g} / {aware:.3g}", paper="teacher-aware needs fewer samples",
        source="D, \"Lesson 2\"", verdict="direction holds" if results.exceeds(mean, 0.0, m)
        else "differs",
        note=f"same data set sizes ({', '.join(map(str, values['sizes']))}), teacher and "
             f"initialisation; "
             f"holds if the mean log10 ratio ({mean:.3g}) exceeds {m:.3g}, the one-sided 5 % "
             f"t-level of the {len(per_seed)} per-seed values")


def slide_bound_claim(arrays: dict) -> results.Row:
    """Source D's gradient condition ‖g₁‖∞ ≤ α ε / (5 K^{3/2} √d) (no √d when teacher-aware),
    solved for the ε it guarantees with each augmented run's ‖g₁‖∞ over its training set,
    against the measured ε-alignment error of every teacher node (``augmentation_experiment``).
    Informative where the guarantee is below 1; inconclusive if it is nowhere."""
    bound = arrays["slide"][:, :, 1:].ravel()
    err = arrays["error"][:, :, 1:].ravel()
    informative = np.isfinite(bound) & (bound < 1)
    broken = int((informative & (err > bound)).sum())
    finite = bound[np.isfinite(bound)]
    verdict = (results.INCONCLUSIVE if not informative.any() else
               "direction holds" if broken == 0 else "differs")
    return results.Row(
        "talk's ε-alignment from ‖g₁‖∞ on Aug(D)",
        ours=f"{int(informative.sum())} of {len(bound)} informative, {broken} broken",
        paper="alignment ≤ 5 K^{3/2} √d ‖g₁‖∞ / α", source="D, \"Polynomial Complexity\"",
        verdict=verdict,
        note=f"smallest guarantee {results.fmt(finite.min() if finite.size else None, '.3g')}; "
             f"informative below 1; holds if no informative guarantee is broken, inconclusive "
             f"if none is informative")


def claim_rows(gradient: dict, toy: dict, l_shape: dict, weak: dict, augmentation, *,
               n_weak_teacher: int) -> list[results.Row]:
    """The chapter's six claims (§1.6), all tests, from the values of ``gradient_experiment``,
    ``two_d_toy``, ``l_shape_experiment`` and ``weak_teacher_experiment`` and the recorded
    ``augmentation_experiment`` (``.values``, ``.arrays``); ``n_weak_teacher``: the teacher
    width of the weak-teacher experiment (the number of ranked nodes)."""
    return [gradient_claim(gradient), toy_claim(toy), l_shape_claim(l_shape),
            weak_teacher_claim(weak, n_weak_teacher),
            lesson2_claim(augmentation.values, augmentation.arrays),
            slide_bound_claim(augmentation.arrays)]
