"""Chapter 4: standard training, logit versus label, and Gaussian input noise (source A §5.5).

- :func:`standard_training` / :func:`record_standard_training`: one student (logit, label, or
  logit with Gaussian noise; :data:`VARIANTS`) trained on the oracle teacher and measured at each
  checkpoint epoch (robust accuracy, NC per layer, ε_in/ε_out), recorded per student.
- :func:`table3_rows`: our robust accuracies beside the paper's Table 3 (:data:`PAPER_TABLE3`).
- :func:`claim_rows`: the qualitative claims of §5.5 (Table 3, Figs. 8–10, Fig. 2 right).
- The chapter's figures (:func:`plot_robust_accuracy`, :func:`plot_sorted_bnc`,
  :func:`plot_eps_curves`, :func:`plot_rho_eps`).

The source gives no optimizer, learning rate or batch size; the choices are :data:`SETTINGS`
(every one a chapter parameter). Students use Adam at a constant learning rate, so a checkpoint
at epoch 50 of a 300-epoch run *is* a student trained for 50 epochs, as in Table 3.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from tsrobust import attacks, results
from tsrobust.chapters.cifar import (
    EVAL_SEED_OFFSET,
    MEASURES,
    N_PCA,
    N_TEST,
    N_TRAIN,
    PAPER_CHECKPOINTS,
    PCA_RANK,
    STUDENT_BATCH_SIZE,
    STUDENT_LR,
    STUDENT_OPTIMIZER,
    paper_epoch,
    record_for,
    scaled_checkpoints,
)
from tsrobust.data import CIFAR10, NOISE_STD
from tsrobust.models import ConvNet, build_student
from tsrobust.params import Setting
from tsrobust.runtime import choose_device
from tsrobust.specialization import patch_basis, specialization_at
from tsrobust.training import (
    agreement_rate,
    checkpoint_folder,
    discard_checkpoints,
    model_digest,
    train_student,
)

CHAPTER = "04_standard_training"
"""Record key of this chapter."""

SETTINGS = {
    "n_train": N_TRAIN,
    "n_test": N_TEST,
    "epochs": Setting(int, smoke=2, gpu=100, paper=300, min=1,
                      doc="student training epochs (§5.5: up to 300)"),
    "checkpoints": Setting(tuple, smoke=(1, 2), gpu=scaled_checkpoints(100),
                           paper=PAPER_CHECKPOINTS, min=1,
                           doc="epochs at which students are measured (§5.5: 50…300)"),
    "optimizer": STUDENT_OPTIMIZER,
    "lr": STUDENT_LR,
    "batch_size": STUDENT_BATCH_SIZE,
    "noise_std": Setting(float, smoke=NOISE_STD, gpu=NOISE_STD, paper=NOISE_STD, min=0.0,
                         doc="σ of the Gaussian input noise of Fig. 10 (§5.5)"),
    "attack_eps": Setting(float, smoke=10 / 255, gpu=10 / 255, paper=10 / 255, min=0.0,
                          doc="ℓ∞ budget of the robust-accuracy attack (§5.1: 10/255)"),
    "attack_alpha": Setting(float, smoke=0.01, gpu=0.01, paper=0.01, min=0.0,
                            doc="PGD step size (§5.1: 0.01)"),
    "attack_steps": Setting(int, smoke=5, gpu=40, paper=40, min=1,
                            doc="PGD steps (§5.1: 40)"),
    "attack_repeats": Setting(int, smoke=1, gpu=3, paper=5, min=1,
                              doc="repeated robust evaluations for μ and σ² (§5.4)"),
    "n_eval": Setting(int, smoke=100, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images attacked for robust accuracy"),
    "n_spec": Setting(int, smoke=100, gpu=500, paper=1000, min=2, max=10_000,
                      doc="test images whose activations give the NC of §5.2"),
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
}
"""Chapter 4's parameters (standard training, logit vs label, Gaussian noise)."""

VARIANTS = {
    "logit": {"target": "logit", "noise": False},
    "label": {"target": "label", "noise": False},
    "logit_noise": {"target": "logit", "noise": True},
}
"""The students of chapter 4: Table 3 / Figs. 8–9 compare logit and label training; Fig. 10 adds
Gaussian input noise (σ = ``noise_std``) to logit training."""

PAPER_TABLE3 = {
    # Source A, Table 3: robust accuracy (%) of ST students at epochs 50, 100, 150, 200, 300.
    "logit": (23.12, 30.72, 36.72, 48.52, 62.77),
    "label": (19.08, 20.81, 22.34, 23.42, 25.79),
}

VERDICT_ABS_TOL = 3.0
"""A robust accuracy counts as reproduced within ±3 percentage points of the paper's."""
PEARSON_MAX = -0.1
"""Fig. 2 right's strong negative (ρ, ε_in) correlation needs a Pearson score below −0.1 …"""
PEARSON_MARGIN = 0.05
"""… that is also 0.05 below the untrained student's (which picking best-NC pairs already
lowers)."""


def check_settings(cfg):
    """Cross-parameter checks of chapter 4 (single values are checked by ``resolve``)."""
    bad = [e for e in cfg.checkpoints if e > cfg.epochs]
    if bad or len(set(cfg.checkpoints)) != len(cfg.checkpoints):
        raise ValueError(
            f"checkpoints {cfg.checkpoints} must be distinct epochs in 1..{cfg.epochs} (epochs)"
        )
    for name in ("n_eval", "n_spec"):
        if getattr(cfg, name) > cfg.n_test:
            raise ValueError(f"{name} = {getattr(cfg, name)} must be ≤ n_test = {cfg.n_test}")
    if cfg.n_pca > cfg.n_train:
        raise ValueError(f"n_pca = {cfg.n_pca} must be ≤ n_train = {cfg.n_train}")


# -- the runs ---------------------------------------------------------------------------------

def standard_training(cfg, data: CIFAR10, teacher: ConvNet, *, variant: str, device="cpu",
                      progress: bool = True):
    """Train one chapter-4 student (§5.5) and measure it at every checkpoint epoch.

    ``variant``: a key of :data:`VARIANTS`. The student (50-35-35-22, initialized from
    ``seed``) learns from ``teacher`` on ``data.x_train``; at each of ``cfg.checkpoints`` it is
    measured on test images: clean agreement with the teacher (on all test images, and on the
    ``n_eval`` attacked ones), §5.4 robust accuracy (ℓ∞ PGD on the logit distance, μ and σ²
    over ``attack_repeats``), and :func:`tsrobust.specialization.specialization_at`.
    Resumable (checkpoints next to the chapter's results, removed at the end). Returns
    ``(values, arrays)`` for ``results.record``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    check_settings(cfg)
    spec = VARIANTS[variant]
    device = choose_device(device)
    teacher = teacher.to(device).eval()
    x_test = data.x_test.to(device)
    x_eval, x_spec = x_test[: cfg.n_eval], x_test[: cfg.n_spec]
    eigvals, basis = patch_basis(data.x_train[: cfg.n_pca], cfg.pca_rank)
    rows = {}

    def on_checkpoint(epoch, student):
        gen = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET + epoch)
        mu, var = attacks.robust_accuracy(
            student, teacher, x_eval, eps=cfg.attack_eps, alpha=cfg.attack_alpha,
            steps=cfg.attack_steps, norm="linf", repeats=cfg.attack_repeats, generator=gen)
        rows[epoch] = {"agreement": agreement_rate(student, teacher, x_test),
                       "agreement_eval": agreement_rate(student, teacher, x_eval),
                       "robust_mu": mu, "robust_var": var,
                       **specialization_at(student, teacher, x_spec, basis)}

    student = build_student(generator=torch.Generator().manual_seed(cfg.seed)).to(device)
    init = specialization_at(student.eval(), teacher, x_spec, basis)  # the untrained baseline
    folder = checkpoint_folder(cfg.profile, CHAPTER, f"{variant}-seed{cfg.seed}")
    history = train_student(
        student, teacher, data.x_train, target=spec["target"], epochs=cfg.epochs, lr=cfg.lr,
        batch_size=cfg.batch_size, noise_std=cfg.noise_std if spec["noise"] else 0.0,
        optimizer=cfg.optimizer, checkpoint_dir=folder, checkpoint_epochs=cfg.checkpoints,
        on_checkpoint=on_checkpoint, generator=torch.Generator(device=device).manual_seed(
            cfg.seed), device=device, progress=progress)
    discard_checkpoints(folder)

    epochs = sorted(rows)
    n_layers = len(student.widths)
    values = {
        "variant": variant, **spec, "epochs": epochs,
        "agreement": [rows[e]["agreement"] for e in epochs],
        "agreement_eval": [rows[e]["agreement_eval"] for e in epochs],
        "robust_mu": [rows[e]["robust_mu"] for e in epochs],
        "robust_var": [rows[e]["robust_var"] for e in epochs],
        "mbnc": [rows[e]["mbnc"] for e in epochs],
        "ratio": [rows[e]["ratio"] for e in epochs],
        "rho_eps_in_pearson": [rows[e]["rho_eps_in_pearson"] for e in epochs],
        "dead_teacher": rows[epochs[0]]["dead_teacher"],
        "init": {"mbnc": init["mbnc"], "rho_eps_in_pearson": init["rho_eps_in_pearson"],
                 "eps_in_mean": float(init["eps_in_curve"].mean()),
                 "eps_out_mean": float(init["eps_out_curve"].mean()),
                 "dead_student": init["dead_student"]},
        "dead_student": [rows[e]["dead_student"] for e in epochs],
        "eps_in_mean": [float(rows[e]["eps_in_curve"].mean()) for e in epochs],
        "eps_out_mean": [float(rows[e]["eps_out_curve"].mean()) for e in epochs],
        "loss": history["loss"],
    }

    def stack(key):
        return np.stack([np.asarray(rows[e][key]) for e in epochs])

    arrays = {
        "pca_eigenvalues": eigvals.numpy(),
        "eps_in_curve": stack("eps_in_curve"), "eps_out_curve": stack("eps_out_curve"),
        "eps_in": stack("eps_in"), "eps_out": stack("eps_out"),
        **{f"sorted_bnc_{l}": np.stack([rows[e]["sorted_bnc"][l].numpy() for e in epochs])
           for l in range(n_layers)},
        "nc_0": np.stack([rows[e]["nc"][0].numpy() for e in epochs]),
        "init_eps_in_curve": init["eps_in_curve"].numpy(),
        "init_eps_out_curve": init["eps_out_curve"].numpy(),
        **{f"init_sorted_bnc_{l}": init["sorted_bnc"][l].numpy() for l in range(n_layers)},
    }
    return values, arrays


def record_standard_training(cfg, data: CIFAR10, teacher: ConvNet, *, variant: str,
                             device="cpu", progress: bool = True):
    """:func:`standard_training` recorded as ``student_<variant>`` of this chapter: loaded when
    recorded with the same parameters, data copy and teacher (by weight digest)."""
    return record_for(
        CHAPTER, f"student_{variant}", cfg,
        lambda: standard_training(cfg, data, teacher, variant=variant, device=device,
                                  progress=progress),
        data=data, fingerprint={"teacher_digest": model_digest(teacher), "measures": MEASURES})


# -- robust accuracies: standard errors and Table 3 ---------------------------------------------

def robust_se(values: dict, i: int, cfg) -> float:
    """Standard error (points) of a student's robust accuracy at its ``i``-th checkpoint: the same
    ``n_eval`` images at every one of the ``attack_repeats`` (``results.accuracy_se``)."""
    return 100 * results.accuracy_se(values["robust_mu"][i], values["robust_var"][i], cfg.n_eval,
                                     cfg.attack_repeats, fresh_images=False)


def robust_margin(a: dict, b: dict, i: int, cfg, j: int | None = None) -> float:
    """Points by which robust accuracies ``a`` (checkpoint ``i``) and ``b`` (checkpoint ``j``,
    default ``i``) must differ to count as a direction (``results.direction_margin``)."""
    j = i if j is None else j
    return 100 * results.direction_margin(robust_se(a, i, cfg) / 100, robust_se(b, j, cfg) / 100)


def scale_note(cfg) -> str:
    """How this run is smaller than the paper's ("" in the paper profile)."""
    if cfg.profile == "paper":
        return ""
    return (f"{cfg.profile}: {cfg.epochs} epochs on {cfg.n_train} images, PGD-{cfg.attack_steps} "
            f"on {cfg.n_eval} test images (paper: 300 epochs on 50000, PGD-40)")


def table3_rows(runs: dict[str, dict], cfg) -> list[results.Row]:
    """Table 3: the logit and label students' robust accuracies at each checkpoint beside the
    paper's at the same fraction of training (:func:`tsrobust.chapters.cifar.paper_epoch`).
    "reproduced" needs our μ within :data:`VERDICT_ABS_TOL` points and a standard error of at most
    that; the direction checked is the paper's: logit above label by more than
    :func:`robust_margin`. ``runs``: the values of the recorded students by variant."""
    logit, label = runs["logit"], runs["label"]
    scale = scale_note(cfg)
    rows = []
    for i, e in enumerate(logit["epochs"]):
        p = paper_epoch(e, cfg.epochs)
        j = PAPER_CHECKPOINTS.index(p)
        mu = {"logit": 100 * logit["robust_mu"][i], "label": 100 * label["robust_mu"][i]}
        m = robust_margin(logit, label, i, cfg)
        holds = results.exceeds(mu["logit"], mu["label"], m)
        for variant in ("logit", "label"):
            paper = PAPER_TABLE3[variant][j]
            se = robust_se(runs[variant], i, cfg)
            rows.append(results.Row(
                f"{variant.capitalize()} training, ST ({e}) ↔ paper ST ({p}): robust accuracy (%)",
                round(mu[variant], 2), paper, "Table 3",
                results.verdict(mu[variant], paper, abs_tol=VERDICT_ABS_TOL,
                                direction_holds=holds, noise=se),
                (f"ours ± {se:.1f} (s.e.); logit vs label here {mu['logit']:.1f} vs "
                 f"{mu['label']:.1f}, margin {m:.1f}" + (f"; {scale}" if scale else ""))))
    return rows


# -- the claims of §5.5 ---------------------------------------------------------------------------

FIGURE_ONLY = "holds (figure, no numbers)"


def _pct(v: dict, key: str, i: int) -> str:
    return f"{100 * v[key][i]:.1f}"


def _signed(x: float) -> str:
    """``x`` with a typographic minus sign, as the prose writes it."""
    return f"{x:g}".replace("-", "−")


def _per_layer(a, b) -> tuple[list[bool], str]:
    """Layers where MBNC list ``a`` exceeds ``b`` by ``results.SPEC_MARGIN``, and the text
    "k of n layers: a vs b, …"."""
    more = [results.exceeds(x, y, results.SPEC_MARGIN) for x, y in zip(a, b)]
    return more, f"{sum(more)} of {len(more)} layers: " + ", ".join(
        f"{x:.3f} vs {y:.3f}" for x, y in zip(a, b))


def claim_rows(runs: dict[str, dict], cfg) -> list[results.Row]:
    """The qualitative claims of §5.5 checked on the first and the last checkpoint of our
    students (``runs``: values by variant, :data:`VARIANTS`).

    A claimed change holds only by more than a margin: :func:`robust_margin` for robust
    accuracies, ``results.SPEC_MARGIN`` for MBNC (in *every* layer) and ε, and for the (ρ, ε_in)
    Pearson score a value below :data:`PEARSON_MAX` that is also :data:`PEARSON_MARGIN` below the
    untrained student's. A change within the margin is a tie: it does not support a claimed
    change, and it does support the one claim of *no* change (label training does not lower
    ε_in)."""
    L, B, N = runs["logit"], runs["label"], runs["logit_noise"]
    epochs = L["epochs"]
    first, final = 0, len(epochs) - 1
    P = PAPER_TABLE3
    SPEC = results.SPEC_MARGIN
    above = results.exceeds
    rises, rises_text = _per_layer(L["mbnc"][final], L["mbnc"][first])
    logit_more, logit_more_text = _per_layer(L["mbnc"][final], B["mbnc"][final])
    p_first, p_final = (PAPER_CHECKPOINTS.index(paper_epoch(epochs[i], cfg.epochs))
                        for i in (first, final))
    m_epochs = robust_margin(L, L, first, cfg, final)
    m_final = robust_margin(L, B, final, cfg)
    pearson, pearson_init = L["rho_eps_in_pearson"][final], L["init"]["rho_eps_in_pearson"]
    claims = [  # (claim, ours, paper, holds in our run, source, what was required)
        ("robust accuracy rises with epochs (logit)",
         f"{_pct(L, 'robust_mu', first)} → {_pct(L, 'robust_mu', final)} %",
         f"ST ({PAPER_CHECKPOINTS[p_first]}): {P['logit'][p_first]} → "
         f"ST ({PAPER_CHECKPOINTS[p_final]}): {P['logit'][p_final]} %",
         above(100 * L["robust_mu"][final], 100 * L["robust_mu"][first], m_epochs), "Table 3",
         f"margin {m_epochs:.1f} points"),
        ("logit more robust than label (final epoch)",
         f"{_pct(L, 'robust_mu', final)} vs {_pct(B, 'robust_mu', final)} %",
         f"{P['logit'][p_final]} vs {P['label'][p_final]} %",
         above(100 * L["robust_mu"][final], 100 * B["robust_mu"][final], m_final), "Table 3",
         f"margin {m_final:.1f} points"),
        ("MBNC rises with epochs (logit, final vs first checkpoint, per layer)", rises_text,
         FIGURE_ONLY, all(rises), "Fig. 8", f"every layer, margin {SPEC}; untrained: "
         + ", ".join(f"{x:.3f}" for x in L["init"]["mbnc"])),
        ("logit specializes more than label (MBNC, final, per layer)", logit_more_text,
         FIGURE_ONLY, all(logit_more), "Fig. 8", f"every layer, margin {SPEC}"),
        ("logit lowers ε_in with epochs (mean of curve)",
         f"{L['eps_in_mean'][first]:.3f} → {L['eps_in_mean'][final]:.3f}", FIGURE_ONLY,
         above(L["eps_in_mean"][first], L["eps_in_mean"][final], SPEC), "Fig. 9",
         f"margin {SPEC}; untrained: {L['init']['eps_in_mean']:.3f}"),
        ("label does not lower ε_in with epochs (mean of curve)",
         f"{B['eps_in_mean'][first]:.3f} → {B['eps_in_mean'][final]:.3f}", FIGURE_ONLY,
         not above(B["eps_in_mean"][first], B["eps_in_mean"][final], SPEC), "Fig. 9",
         f"holds on a tie or a rise (margin {SPEC})"),
        ("noise lowers ε_in (final, mean of curve)",
         f"{N['eps_in_mean'][final]:.3f} vs {L['eps_in_mean'][final]:.3f} without", FIGURE_ONLY,
         above(L["eps_in_mean"][final], N["eps_in_mean"][final], SPEC), "Fig. 10",
         f"margin {SPEC}"),
        ("noise lowers ε_out (final, mean of curve)",
         f"{N['eps_out_mean'][final]:.3f} vs {L['eps_out_mean'][final]:.3f} without",
         FIGURE_ONLY, above(L["eps_out_mean"][final], N["eps_out_mean"][final], SPEC),
         "Fig. 10", f"margin {SPEC}"),
        ("ρ and ε_in negatively correlated (Pearson, final logit student)",
         f"{pearson:.2f} (untrained: {pearson_init:.2f})", "strong negative (figure)",
         pearson < PEARSON_MAX and above(pearson_init, pearson, PEARSON_MARGIN),
         "§5.3, Fig. 2 right",
         f"below {_signed(PEARSON_MAX)} and {PEARSON_MARGIN} below the untrained student"),
    ]
    return [results.Row(q, ours, paper, src, "direction holds" if holds else "differs",
                        f"{note}; {cfg.profile} profile, epochs {epochs[first]} → "
                        f"{epochs[final]}")
            for q, ours, paper, holds, src, note in claims]


ROBUSTNESS_NAMES = {"logit": "logit", "label": "label", "logit + noise": "logit_noise"}
"""The students as the closing sentence names them."""


def robustness_summary(runs: dict[str, dict], cfg) -> str:
    """A sentence that reads this run's final robust accuracies against Table 3: logit vs label,
    and logit with noise vs without ("about as robust" within :func:`robust_margin`)."""
    final = len(runs["logit"]["epochs"]) - 1
    acc = {name: 100 * runs[v]["robust_mu"][final] for name, v in ROBUSTNESS_NAMES.items()}
    p_final = PAPER_CHECKPOINTS.index(paper_epoch(runs["logit"]["epochs"][final], cfg.epochs))

    def compared(a, b):
        m = robust_margin(runs[ROBUSTNESS_NAMES[a]], runs[ROBUSTNESS_NAMES[b]], final, cfg)
        return ("more robust than" if acc[a] > acc[b] + m else
                "less robust than" if acc[b] > acc[a] + m else "about as robust as")

    return (
        f"In this run, at epoch {runs['logit']['epochs'][final]}, the robust accuracies are "
        + ", ".join(f"{k} {v:.1f} %" for k, v in acc.items())
        + f". The logit student is {compared('logit', 'label')} the label student (Table 3: more "
        f"robust, {PAPER_TABLE3['logit'][p_final]} vs {PAPER_TABLE3['label'][p_final]} % at the "
        f"matching epoch), and the logit student trained with Gaussian noise is "
        f"{compared('logit + noise', 'logit')} the one trained without (a difference within two "
        f"standard errors, or within 2 points, counts as a tie).")


# -- figures ----------------------------------------------------------------------------------

def _shades(cmap, n):
    return [cmap(x) for x in np.linspace(0.45, 1.0, n)]


def plot_robust_accuracy(runs):
    """Figure 4.1: robust accuracy (±σ over repeats) and, faint, clean agreement on the attacked
    images, per checkpoint, for the three students (``runs``: recorded results by variant)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for variant, style in (("logit", "-o"), ("label", "--s"), ("logit_noise", ":^")):
        v = runs[variant].values
        ax.errorbar(v["epochs"], 100 * np.array(v["robust_mu"]),
                    yerr=100 * np.sqrt(np.array(v["robust_var"])), fmt=style, capsize=3,
                    label=f"ST ({variant.replace('_', ' + ')})")
        ax.plot(v["epochs"], 100 * np.array(v["agreement_eval"]), style[:-1], alpha=0.35,
                color=ax.lines[-1].get_color())
    ax.set(title="Robust accuracy (bold) and clean agreement (faint) over training",
           xlabel="student training epoch", ylabel="student = teacher argmax (%)")
    ax.legend()
    return fig


def plot_sorted_bnc(runs):
    """Figure 4.2: sorted BNC curves per layer, logit (solid blue) vs label (dashed red), lighter
    at earlier checkpoints, and the untrained student (dotted gray)."""
    epochs = runs["logit"].values["epochs"]
    layers = len(runs["logit"].values["mbnc"][0])
    fig, axes = plt.subplots(1, layers, figsize=(13, 3.4), sharey=True)
    for variant, cmap, ls in (("logit", plt.cm.Blues, "-"), ("label", plt.cm.Reds, "--")):
        curves = runs[variant].arrays
        for l, ax in enumerate(axes):
            for c, e, curve in zip(_shades(cmap, len(epochs)), epochs, curves[f"sorted_bnc_{l}"]):
                ax.plot(curve, ls, color=c, label=f"{variant}, epoch {e}" if l == 0 else None)
    for l, ax in enumerate(axes):
        ax.plot(runs["logit"].arrays[f"init_sorted_bnc_{l}"], ":", color="gray",
                label="untrained student" if l == 0 else None)
        ax.set(title=f"layer {l}", xlabel="teacher node (sorted)",
               ylabel="best NC" if l == 0 else None)
    fig.legend(loc="lower center", ncol=2 * len(epochs), fontsize=8, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Sorted BNC curves: logit (solid blue) vs label (dashed red), light → dark = "
                 "later")
    fig.tight_layout()
    return fig


def mbnc_markdown(runs: dict[str, dict], teacher_widths, n_spec: int) -> str:
    """The MBNC of every layer for the untrained student and each student at each checkpoint, and
    the dead teacher nodes left out (``runs``: values by variant)."""
    epochs = runs["logit"]["epochs"]
    layers = len(runs["logit"]["mbnc"][0])
    return (
        "| MBNC per layer | " + " | ".join(f"layer {l}" for l in range(layers)) + " |\n|---|"
        + "---|" * layers + "\n"
        + "| untrained (all three) | "
        + " | ".join(f"{x:.3f}" for x in runs["logit"]["init"]["mbnc"]) + " |\n"
        + "\n".join(
            f"| {v} (epoch {e}) | " + " | ".join(f"{x:.3f}" for x in runs[v]["mbnc"][i]) + " |"
            for v in ("logit", "label", "logit_noise") for i, e in enumerate(epochs))
        + f"\n\nDead teacher nodes on the {n_spec} NC images, per layer (left out): "
        + ", ".join(map(str, runs["logit"]["dead_teacher"])) + " of "
        + ", ".join(map(str, teacher_widths)) + ".")


def plot_eps_curves(runs, pairs, title: str):
    """Figures 4.3 and 4.5: the first layer's ε_in (left) and ε_out (right) curves of the students
    in ``pairs`` (``(variant, colormap, line style)``) at each checkpoint, and the untrained
    student's (dotted gray)."""
    epochs = runs["logit"].values["epochs"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    init = runs[pairs[0][0]].arrays  # all students start from the same weights
    axes[0].plot(init["init_eps_in_curve"], ":", color="gray", label="untrained student")
    axes[1].plot(init["init_eps_out_curve"], ":", color="gray")
    for variant, cmap, ls in pairs:
        arr = runs[variant].arrays
        for c, i in zip(_shades(cmap, len(epochs)), range(len(epochs))):
            lab = f"{variant.replace('_', ' + ')}, epoch {epochs[i]}"
            axes[0].plot(arr["eps_in_curve"][i], ls, color=c, label=lab)
            axes[1].plot(arr["eps_out_curve"][i], ls, color=c)
    axes[0].set(title="ε_in of each teacher node's best-NC student",
                xlabel="teacher node (sorted)", ylabel="ε")
    axes[1].set(title="ε_out of each teacher node's best-NC student",
                xlabel="teacher node (sorted)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_rho_eps(runs):
    """Figure 4.4: ρ_kj against ε_in[k, j] over every first-layer pair of the final logit
    student, with their Pearson score in the title."""
    v, arr = runs["logit"].values, runs["logit"].arrays
    last = len(v["epochs"]) - 1
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(arr["nc_0"][last].ravel(), arr["eps_in"][last].ravel(), s=6, alpha=0.5)
    ax.set(title=f"First layer, logit student at epoch {v['epochs'][last]}: Pearson "
                 f"{v['rho_eps_in_pearson'][last]:.2f}",
           xlabel="normalized correlation ρ_kj", ylabel="ε_in[k, j]")
    return fig
