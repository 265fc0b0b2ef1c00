"""Chapter 2 (``notebooks/02_low_rank_specialization``): source A §3–4 on two-layer ReLU
networks whose inputs lie in or near a known d′-dimensional subspace 𝒳 of R^d — projected angles
(Theorems 1–2), fan-out of unspecialized nodes (Corollary 1), ε_in and ε_out (Eq. 2),
oracle-adversarial examples (Eq. 3), augmentation along the weak directions (§4.3) and the sweep
over d′ (§4.1).

The chapter's parameters (``SETTINGS``, cross-checked by ``check_settings``), its experiments
(each returns ``(values, arrays)`` for ``results.record``), figures, and claim rows
(``claim_rows``: ``results.Row``s, each stating when it holds). The formulas and networks are in
:mod:`tsrobust.theory`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from tqdm.auto import tqdm

from tsrobust import results
from tsrobust import theory as th
from tsrobust.params import Setting
from tsrobust.specialization import SPECIALIZED_NC, UNSPECIALIZED_NC

CHAPTER = "02_low_rank_specialization"
"""The chapter's name: the folder of its recorded results."""

SETTINGS = {
    "d": Setting(int, smoke=12, gpu=20, paper=20, min=2, doc="input dimension d"),
    "d_sub": Setting(int, smoke=4, gpu=6, paper=6, min=1,
                     doc="dimension d′ of the data subspace 𝒳 (< d)"),
    "teacher_width": Setting(int, smoke=5, gpu=10, paper=10, min=1, doc="teacher hidden nodes"),
    "student_width": Setting(int, smoke=20, gpu=50, paper=50, min=1, doc="student hidden nodes"),
    "outputs": Setting(int, smoke=5, gpu=5, paper=5, min=1, doc="output dimension C"),
    "n_train": Setting(int, smoke=1000, gpu=10_000, paper=10_000, min=10,
                       doc="training inputs"),
    "n_eval": Setting(int, smoke=4000, gpu=20_000, paper=20_000, min=10,
                      doc="fresh inputs for NC and the probes"),
    "steps": Setting(int, smoke=2000, gpu=20_000, paper=20_000, min=1,
                     doc="full-batch gradient steps"),
    "lr": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=1e-9, max=10.0,
                  doc="SGD learning rate (momentum 0.9)"),
    "near_std": Setting(float, smoke=0.05, gpu=0.05, paper=0.05, min=1e-9,
                        doc="std s of the off-subspace spread of the *near*-subspace data"),
    "noise_std": Setting(float, smoke=0.3, gpu=0.3, paper=0.3, min=1e-9,
                         doc="std σ of the noise augmentations (§4.3)"),
    "attack_eps": Setting(float, smoke=0.5, gpu=0.5, paper=0.5, min=1e-9,
                          doc="ℓ2 radius ε of oracle-adversarial examples (Eq. 3)"),
    "attack_steps": Setting(int, smoke=20, gpu=50, paper=50, min=1,
                            doc="PGD steps of the adversarial probe"),
    "train_attack_steps": Setting(int, smoke=5, gpu=10, paper=10, min=1,
                                  doc="PGD steps inside adversarial training"),
    "adversarial_every": Setting(int, smoke=10, gpu=5, paper=5, min=1,
                                 doc="refresh the adversarial training inputs every … steps"),
    "n_attack": Setting(int, smoke=500, gpu=5000, paper=5000, min=1,
                        doc="evaluation inputs attacked by the probe"),
    "sweep_d_subs": Setting(tuple, smoke=(2, 5, 8, 11), gpu=(2, 4, 6, 8, 10, 12, 14, 16, 18),
                            paper=(2, 4, 6, 8, 10, 12, 14, 16, 18), min=1,
                            doc="subspace dimensions d′ of the sweep (each < d)"),
    "sweep_repeats": Setting(int, smoke=2, gpu=5, paper=5, min=1,
                             doc="independent teachers/subspaces per d′"),
    "sweep_steps": Setting(int, smoke=1000, gpu=10_000, paper=10_000, min=1,
                           doc="training steps per sweep run"),
}
"""Parameters of chapter 2 (``tsrobust.params.resolve``). The source gives no sizes for this
toy: smoke is sized for a CPU in about a minute; gpu and paper are larger runs of the same toy."""


def check_settings(cfg) -> None:
    """Cross-checks of ``SETTINGS`` that single ranges cannot express; raises
    ``ValueError`` naming the parameters."""
    if cfg.d_sub >= cfg.d:
        raise ValueError(f"parameter 'd_sub' = {cfg.d_sub} must be smaller than 'd' = {cfg.d}: "
                         "the data subspace needs a complement")
    bad = [s for s in cfg.sweep_d_subs if not isinstance(s, int) or not 1 <= s < cfg.d]
    if bad:
        raise ValueError(f"parameter 'sweep_d_subs' has {bad}: every d′ must be an integer in "
                         f"[1, d − 1] = [1, {cfg.d - 1}]")
    if cfg.n_attack > cfg.n_eval:
        raise ValueError(f"parameter 'n_attack' = {cfg.n_attack} must not exceed "
                         f"'n_eval' = {cfg.n_eval}")


# Streams of ``theory.make_generator``: one per experiment (the sweep uses one per repeat from
# ``STREAM_SWEEP`` on), so that changing one experiment's settings leaves the others' randomness
# unchanged.
STREAM_LOW_RANK, STREAM_SWEEP = 5, 100


# ----------------------------------------------------------------------------------------------
# Experiments (source A §3–4). Each returns (values, arrays) for ``results.record``.
# ----------------------------------------------------------------------------------------------


def _low_rank_setup(d, d_sub, teacher_width, student_width, outputs, n_train, n_eval,
                    off_subspace_std, generator):
    """Teacher, subspace basis U, training and evaluation inputs, and student, drawn in this
    order from ``generator`` (the order fixes every run's randomness)."""
    teacher = th.make_teacher(d, teacher_width, outputs, generator)
    basis = th.random_subspace(d, d_sub, generator)
    x = th.low_rank_inputs(n_train, basis, generator, off_subspace_std=off_subspace_std)
    x_eval = th.low_rank_inputs(n_eval, basis, generator, off_subspace_std=off_subspace_std)
    student = th.make_student(d, student_width, outputs, generator)
    return teacher, basis, x, x_eval, student


@th.single_threaded
def low_rank_experiment(
    *,
    d: int,
    d_sub: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    n_train: int,
    n_eval: int,
    steps: int,
    lr: float,
    off_subspace_std: float,
    attack_eps: float,
    attack_steps: int,
    n_attack: int,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """Source A §3–4 on a two-layer teacher and an over-realized student, inputs in (s = 0) or
    near (s > 0) a random d′-dimensional subspace 𝒳 of R^d, s = ``off_subspace_std``.

    After training: per teacher node and its best student, the projected angles inside 𝒳 and in
    its complement (Theorems 1–2), ε_in and ε_out (Eq. 2); per student node the L-shape data
    (Corollary 1); how far the out-of-plane parts of the student weights moved during training
    (exactly 0 when s = 0: the gradient lies in 𝒳, Theorem 1); and the oracle-adversarial probe
    (Eq. 3) on ``n_attack`` evaluation inputs.
    """
    g = th.make_generator(seed, STREAM_LOW_RANK)
    teacher, basis, x, x_eval, student = _low_rank_setup(
        d, d_sub, teacher_width, student_width, outputs, n_train, n_eval, off_subspace_std, g)
    comp = th.complement_basis(basis)
    w_out_init = student.hidden.weight.detach() @ comp
    hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                       record_every=max(1, steps // 50), progress=progress,
                       desc=f"low-rank d′={d_sub}, s={off_subspace_std}")
    w_out_moved = (student.hidden.weight.detach() @ comp - w_out_init).norm(dim=1)
    report = th.specialization_report(student, teacher, x_eval, basis)
    shape = th.l_shape(student, teacher, x_eval)
    probe = th.adversarial_probe(student, teacher, x_eval[:n_attack], basis, eps=attack_eps,
                              steps=attack_steps, generator=g)
    values = {
        "final_loss": hist.loss[-1],
        "mbnc": float(report["best_nc"].mean()),
        "mean_angle_in_deg": float(np.degrees(np.nanmean(report["angle_in"]))),
        "mean_angle_out_deg": float(np.degrees(np.nanmean(report["angle_out"]))),
        "mean_eps_in": float(report["eps_in"].mean()),
        "mean_eps_out": float(report["eps_out"].mean()),
        "max_out_of_plane_change": float(w_out_moved.max()),
        "loss_clean": float(probe["loss_clean"].mean()),
        "loss_random": float(probe["loss_random"].mean()),
        "loss_in_plane": float(probe["loss_in_plane"].mean()),
        "loss_adversarial": float(probe["loss_adversarial"].mean()),
        "off_fraction_adversarial": float(probe["off_fraction_adversarial"].mean()),
        "off_fraction_random": float(probe["off_fraction_random"].mean()),
    }
    arrays = {**{f"teacher_{k}": v for k, v in report.items()},
              **{f"student_{k}": v for k, v in shape.items()},
              **probe, "out_of_plane_change": w_out_moved.numpy(),
              "steps": np.asarray(hist.steps), "loss": np.asarray(hist.loss)}
    return values, arrays


AUGMENTATIONS = ("none", "gaussian", "off_subspace", "oracle_adversarial")
"""The training variants of ``augmentation_comparison`` (§4.3)."""


@th.single_threaded
def augmentation_comparison(
    *,
    d: int,
    d_sub: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    n_train: int,
    n_eval: int,
    steps: int,
    lr: float,
    off_subspace_std: float,
    noise_std: float,
    attack_eps: float,
    attack_steps: int,
    adversarial_every: int,
    n_attack: int,
    seed: int,
    kinds=AUGMENTATIONS,
    progress: bool = True,
    device="cpu",
):
    """§4.3: the same teacher, data and student initialisation trained with each augmentation of
    ``kinds`` — none; Gaussian noise N(0, σ²I) in all directions; noise only along the weak
    directions ⊥ 𝒳; oracle-adversarial examples (Eq. 3, ℓ2 radius ``attack_eps``, refreshed every
    ``adversarial_every`` steps) — all labelled by the teacher. Per variant: ε_in, ε_out and
    projected angles per teacher node, and the oracle loss under an oracle-adversarial attack."""
    bad = [k for k in kinds if k not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation(s) {bad}; choose from {AUGMENTATIONS}")
    values, arrays = {}, {}
    for kind in tqdm(kinds, desc="augmentations", disable=not progress, leave=False):
        g = th.make_generator(seed, STREAM_LOW_RANK)  # identical teacher, data and initialisation
        teacher, basis, x, x_eval, student = _low_rank_setup(
            d, d_sub, teacher_width, student_width, outputs, n_train, n_eval, off_subspace_std, g)
        aug = {
            "none": None,
            "gaussian": th.Augmentation("gaussian", std=noise_std),
            "off_subspace": th.Augmentation("off_subspace", std=noise_std, basis=basis),
            "oracle_adversarial": th.Augmentation("oracle_adversarial", eps=attack_eps,
                                               attack_steps=attack_steps,
                                               every=adversarial_every),
        }[kind]
        hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                           record_every=max(1, steps // 50), augmentation=aug,
                           progress=progress, desc=f"train ({kind})")
        report = th.specialization_report(student, teacher, x_eval, basis)
        probe = th.adversarial_probe(student, teacher, x_eval[:n_attack], basis, eps=attack_eps,
                                  steps=attack_steps, generator=g)
        values[kind] = {
            "final_loss": hist.loss[-1],
            "mean_eps_in": float(report["eps_in"].mean()),
            "mean_eps_out": float(report["eps_out"].mean()),
            "mean_angle_out_deg": float(np.degrees(np.nanmean(report["angle_out"]))),
            "loss_adversarial": float(probe["loss_adversarial"].mean()),
            "loss_clean": float(probe["loss_clean"].mean()),
        }
        for key in ("eps_in", "eps_out", "angle_in", "angle_out", "best_nc"):
            arrays[f"{kind}_{key}"] = report[key]
        arrays[f"{kind}_loss_adversarial"] = probe["loss_adversarial"]
    return values, arrays


@th.single_threaded
def subspace_sweep(
    *,
    d: int,
    d_subs,
    repeats: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    n_train: int,
    n_eval: int,
    steps: int,
    lr: float,
    off_subspace_std: float,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """ε_in, ε_out and projected angles (means over teacher nodes) for each subspace dimension d′
    in ``d_subs`` and ``repeats`` independent teachers / subspaces / initialisations; arrays are
    ``[len(d_subs), repeats]``. Eq. 2 discussion: ε_out should grow as the data get more
    rank-deficient (smaller d′)."""
    d_subs = [th.positive_int("d_sub", s) for s in d_subs]
    if any(s >= d for s in d_subs):
        raise ValueError(f"every d′ must be < d = {d} (no complement otherwise); got {d_subs}")
    repeats = th.positive_int("repeats", repeats)
    shape = (len(d_subs), repeats)
    out = {k: np.zeros(shape) for k in ("eps_in", "eps_out", "angle_in_deg", "angle_out_deg",
                                        "mbnc", "final_loss")}
    jobs = [(i, r) for i in range(len(d_subs)) for r in range(repeats)]
    for i, r in tqdm(jobs, desc="d′ sweep", disable=not progress, leave=False):
        g = th.make_generator(seed, STREAM_SWEEP + r)
        teacher, basis, x, x_eval, student = _low_rank_setup(
            d, d_subs[i], teacher_width, student_width, outputs, n_train, n_eval,
            off_subspace_std, g)
        hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                           record_every=steps, progress=False)
        rep = th.specialization_report(student, teacher, x_eval, basis)
        out["eps_in"][i, r] = rep["eps_in"].mean()
        out["eps_out"][i, r] = rep["eps_out"].mean()
        out["angle_in_deg"][i, r] = np.degrees(np.nanmean(rep["angle_in"]))
        out["angle_out_deg"][i, r] = np.degrees(np.nanmean(rep["angle_out"]))
        out["mbnc"][i, r] = rep["best_nc"].mean()
        out["final_loss"][i, r] = hist.loss[-1]
    mean_out = out["eps_out"].mean(1)
    values = {"d_subs": d_subs, "mean_eps_out": mean_out.tolist(),
              "eps_out_decreases_with_d_sub": bool(np.all(np.diff(mean_out) < 0))}
    return values, {"d_subs": np.asarray(d_subs), **out}


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------

SUB = r"$\mathcal{X}$"
"""The data subspace, in figure labels."""


def run_names(near_std: float) -> tuple[str, str]:
    """How the figures name the run on data exactly in 𝒳 and the one near it."""
    return f"exactly in {SUB} (s = 0)", f"near {SUB} (s = {near_std:g})"


def plot_projected_angles(runs: dict, *, d: int, d_sub: int):
    """Figure 2.1: per teacher node, the projected angle to its best student inside 𝒳 and in its
    complement, one panel per run (``runs``: name → ``low_rank_experiment`` result)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (name, res) in zip(axes, runs.items()):
        a = res.arrays
        j = np.arange(1, len(a["teacher_angle_in"]) + 1)
        ax.bar(j - 0.2, np.degrees(a["teacher_angle_in"]), 0.4, label=f"inside {SUB}")
        ax.bar(j + 0.2, np.degrees(a["teacher_angle_out"]), 0.4,
               label=f"in the complement of {SUB}")
        ax.set_xticks(j)
        ax.set_xlabel("teacher node j")
        ax.set_title(f"data {name}")
    axes[0].set_ylabel("projected angle to the best student (degrees)")
    axes[0].legend()
    fig.suptitle(f"Projected angles, d = {d}, d′ = {d_sub}")
    fig.tight_layout()
    return fig


def plot_fan_out(runs: dict):
    """Figure 2.2: best NC with any teacher node against fan-out norm, one dot per student node,
    by node class, one panel per run (``runs``: name → ``low_rank_experiment`` result)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (name, res) in zip(axes, runs.items()):
        a = res.arrays
        for cls, (label, marker, color) in enumerate(zip(th.NODE_CLASSES, "oxs",
                                                         ("tab:blue", "tab:gray", "tab:green"))):
            keep = a["student_node_class"] == cls
            if keep.any():
                ax.scatter(a["student_best_corr"][keep], a["student_fan_out_norm"][keep],
                           marker=marker, color=color, label=f"{label} ({keep.sum()})")
        for nc, style in ((UNSPECIALIZED_NC, "--"), (SPECIALIZED_NC, ":")):
            ax.axvline(nc, color="k", ls=style, lw=1)
        ax.set_xlabel("best NC with any teacher node")
        ax.set_title(f"data {name}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("fan-out norm ‖v_k‖")
    fig.suptitle("Corollary 1 on low-rank data: fan-out vs specialization")
    fig.tight_layout()
    return fig


def plot_eps(runs: dict):
    """Figure 2.3: sorted ε_in and ε_out of every teacher node and its best student, one panel
    per run (``runs``: name → ``low_rank_experiment`` result)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (name, res) in zip(axes, runs.items()):
        a = res.arrays
        rank = np.arange(1, len(a["teacher_eps_in"]) + 1)
        ax.plot(rank, np.sort(a["teacher_eps_in"]), "o-", label="ε_in")
        ax.plot(rank, np.sort(a["teacher_eps_out"]), "s-", label="ε_out")
        ax.set_xticks(rank)
        ax.set_xlabel("rank among teacher nodes (sorted by the value shown)")
        ax.set_title(f"data {name}")
        ax.legend()
    axes[0].set_ylabel("ε (normalized weights)")
    fig.suptitle("Eq. 2 measured: ε_in and ε_out per teacher node and its best student")
    fig.tight_layout()
    return fig


PROBE_LOSSES = ("loss_clean", "loss_random", "loss_in_plane", "loss_adversarial")
"""The oracle losses of ``theory.adversarial_probe``, in the order Figure 2.4 shows them."""


def plot_probe(runs: dict, exact_arrays: dict, *, d: int, d_sub: int, attack_eps: float):
    """Figure 2.4: left, the off-subspace fractions of random and oracle-adversarial
    perturbations (data exactly in 𝒳, ``exact_arrays``); right, the mean oracle loss after each
    perturbation, per run (``runs``: name → ``low_rank_experiment`` result)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    a = exact_arrays
    bins = np.linspace(0, 1, 41)
    axes[0].hist(a["off_fraction_random"], bins=bins, alpha=0.6, label="random direction")
    axes[0].hist(a["off_fraction_adversarial"], bins=bins, alpha=0.6, label="oracle-adversarial")
    axes[0].set_xlim(max(0.0, a["off_fraction_random"].min() - 0.05), 1.0)
    axes[0].axvline(np.sqrt((d - d_sub) / d), color="k", ls=":", label="√((d − d′)/d)")
    axes[0].set_xlabel("off-subspace fraction ‖(I − UUᵀ)δ‖ / ‖δ‖")
    axes[0].set_ylabel("attacked inputs")
    axes[0].set_title(f"Where the perturbation points (data in {SUB}, ε = {attack_eps:g})")
    axes[0].legend(fontsize=8)
    labels = ["clean", "random", f"PGD in {SUB}", "PGD (Eq. 3)"]
    width = 0.38
    for i, (name, res) in enumerate(runs.items()):
        axes[1].bar(np.arange(4) + (i - 0.5) * width, [res.values[k] for k in PROBE_LOSSES],
                    width, label=f"data {name}")
    axes[1].set_yscale("log")
    axes[1].set_xticks(np.arange(4), labels)
    axes[1].set_ylabel("mean oracle loss ‖f(x′) − f*(x′)‖²")
    axes[1].set_title("Student-teacher disagreement after a perturbation")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_augmentation(values: dict, arrays: dict, *, attack_eps: float):
    """Figure 2.5: left, sorted ε_out per teacher node for every training variant; right, the
    mean oracle loss under attack per variant (``augmentation_comparison`` values and arrays)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for kind in AUGMENTATIONS:
        rank = np.arange(1, len(arrays[f"{kind}_eps_out"]) + 1)
        ax1.plot(rank, np.sort(arrays[f"{kind}_eps_out"]), "o-", label=kind)
    ax1.set_yscale("log")
    ax1.set_xticks(rank)
    ax1.set_xlabel("rank among teacher nodes (sorted by ε_out)")
    ax1.set_ylabel("ε_out")
    ax1.set_title("ε_out per teacher node and training variant")
    ax1.legend(fontsize=8)
    ax2.bar(AUGMENTATIONS, [values[k]["loss_adversarial"] for k in AUGMENTATIONS],
            color=["tab:blue", "tab:orange", "tab:green", "tab:red"])
    ax2.set_yscale("log")
    ax2.set_ylabel("mean oracle loss under oracle-adversarial attack")
    ax2.set_title(f"Robustness to Eq. 3 attacks (ℓ2, ε = {attack_eps:g})")
    ax2.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(arrays: dict, *, d: int, repeats: int):
    """Figure 2.6: ε_out and ε_in against d′, mean ± standard deviation over repeats, with the
    single runs (``subspace_sweep`` arrays)."""
    a = arrays
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key, label, marker in (("eps_out", "ε_out", "s"), ("eps_in", "ε_in", "o")):
        ax.errorbar(a["d_subs"], a[key].mean(1),
                    yerr=a[key].std(1) if a[key].shape[1] > 1 else None,
                    marker=marker, capsize=3, label=label)
        ax.plot(np.repeat(a["d_subs"], a[key].shape[1]), a[key].ravel(), ".", color="gray",
                alpha=0.5)
    ax.set_xlabel("dimension d′ of the data subspace")
    ax.set_ylabel("mean over teacher nodes")
    ax.set_title(f"ε_in and ε_out vs subspace dimension (d = {d}, {repeats} repeats)")
    ax.legend()
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# What the numbers say, in words and tables (markdown)
# ----------------------------------------------------------------------------------------------


def angle_summary(exact: dict, near: dict) -> str:
    """§2.1: mean projected angles of both runs, and the largest out-of-plane weight change
    against the rounding level (``low_rank_experiment`` values)."""
    ve, vn = exact, near
    return (
        f"Mean projected angle inside / outside 𝒳: **{ve['mean_angle_in_deg']:.2f}° / "
        f"{ve['mean_angle_out_deg']:.1f}°** for data exactly in 𝒳, "
        f"**{vn['mean_angle_in_deg']:.2f}° / {vn['mean_angle_out_deg']:.1f}°** for data near it "
        f"(MBNC {ve['mbnc']:.4f} and {vn['mbnc']:.4f}; final training loss "
        f"{ve['final_loss']:.2g} and {vn['final_loss']:.2g}).\n\n"
        f"The mechanism of Theorem 1: with data exactly in 𝒳 every gradient with respect to w̃_k "
        f"is a combination of inputs, hence lies in 𝒳, and the out-of-plane part of each student "
        f"weight should never move. The largest change of (I − UUᵀ) w̃_k over training, over all "
        f"student nodes, is **{ve['max_out_of_plane_change']:.1e}** ("
        + ("below" if ve["max_out_of_plane_change"] < ROUNDING_TOL else "above")
        + f" the rounding level {ROUNDING_TOL:g}), against "
        f"**{vn['max_out_of_plane_change']:.2f}** for the data near 𝒳.")


def fan_out_summary(arrays: dict) -> str:
    """The footnote-4 split of a ``low_rank_experiment``'s student nodes, in words."""
    a = arrays
    return th.fan_out_sentence(th.fan_out_by_specialization(
        a["student_best_corr"], a["student_fan_out_norm"], a["student_node_class"]))


def in_plane_share(values: dict) -> float | None:
    """Of what the unrestricted attack adds to the clean oracle loss, the fraction that the
    attack kept inside 𝒳 adds (``low_rank_experiment`` values); ``None`` when the unrestricted
    attack adds nothing."""
    gain = values["loss_adversarial"] - values["loss_clean"]
    return (values["loss_in_plane"] - values["loss_clean"]) / gain if gain > 0 else None


def probe_summary(exact: dict, near: dict) -> str:
    """§2.4: off-subspace fractions and oracle losses of the probe (``low_rank_experiment``
    values)."""
    ve, vn = exact, near
    return (
        f"Mean off-subspace fraction: oracle-adversarial "
        f"**{ve['off_fraction_adversarial']:.3f}**, random **{ve['off_fraction_random']:.3f}** "
        f"(data exactly in 𝒳); {vn['off_fraction_adversarial']:.3f} vs "
        f"{vn['off_fraction_random']:.3f} (near 𝒳). Mean oracle loss clean / random / in-plane "
        f"PGD / PGD: {ve['loss_clean']:.2g} / {ve['loss_random']:.2g} / "
        f"{ve['loss_in_plane']:.2g} / **{ve['loss_adversarial']:.2g}** (exactly in 𝒳). Of what "
        f"the unrestricted attack adds to the clean oracle loss, the attack kept inside 𝒳 adds a "
        f"fraction **{results.fmt(in_plane_share(ve), '.2g')}** (near 1: the "
        f"weakness lies inside 𝒳; near 0: across it).")


def augmentation_table(values: dict) -> str:
    """§2.5's table: per training variant, mean ε_in and ε_out, the mean angle out of 𝒳 and the
    oracle loss clean and under attack (``augmentation_comparison`` values)."""
    rows = "\n".join(
        f"| {k} | {values[k]['mean_eps_in']:.3f} | {values[k]['mean_eps_out']:.3f} | "
        f"{values[k]['mean_angle_out_deg']:.1f} | {values[k]['loss_clean']:.2g} | "
        f"{values[k]['loss_adversarial']:.2g} |" for k in AUGMENTATIONS)
    return ("| training | mean ε_in | mean ε_out | mean angle out of 𝒳 (°) | clean oracle loss | "
            "oracle loss under attack |\n|---|---|---|---|---|---|\n" + rows)


def sweep_summary(values: dict) -> str:
    """§2.6: mean ε_out per d′ and whether it decreases strictly (``subspace_sweep`` values)."""
    v = values
    return ("Mean ε_out per d′: " + ", ".join(f"d′ = {s}: **{e:.3f}**"
                                             for s, e in zip(v["d_subs"], v["mean_eps_out"]))
            + f". Strictly decreasing in d′: **{v['eps_out_decreases_with_d_sub']}**"
            + ("" if v["eps_out_decreases_with_d_sub"] else
               " (with few repeats the means are noisy; the gpu profile uses more)") + ".")


# ----------------------------------------------------------------------------------------------
# Claims (source A §3–4): results.Row rows, each stating when it holds
# ----------------------------------------------------------------------------------------------

ANGLE_RATIO = 10.0
"""Theorems 1–2 on data exactly in 𝒳: the projected angle outside 𝒳 counts as large and the
one inside as small when the mean outside angle exceeds 10 × the mean inside angle."""
ROUNDING_TOL = 1e-9
"""Theorem 1: with data exactly in 𝒳 the out-of-plane weights must not move; in float64 a
largest change below 1e-9 is rounding."""
MARGIN = results.SPEC_MARGIN
"""ε values (and off-subspace fractions) closer than ``results.SPEC_MARGIN`` = 0.01 are a tie,
not a direction."""

_HOLDS = {True: "direction holds", False: "differs"}


def angle_claim(exact: dict) -> results.Row:
    """Theorems 1–2: on data exactly in 𝒳 the projected angle to the best student is small inside
    𝒳 and large outside (``low_rank_experiment`` values)."""
    ve = exact
    return results.Row(
        "inside / outside projected angle (°), data in 𝒳",
        ours=f"{ve['mean_angle_in_deg']:.2f} / {ve['mean_angle_out_deg']:.1f}",
        paper="small / large", source="A, Thms 1–2",
        verdict=_HOLDS[results.exceeds(ve["mean_angle_out_deg"],
                                       ANGLE_RATIO * ve["mean_angle_in_deg"])],
        note=f"holds if outside > {ANGLE_RATIO:g} × inside")


def out_of_plane_claim(exact: dict) -> results.Row:
    """Theorem 1: on data exactly in 𝒳 the out-of-plane parts of the student weights never move
    (``low_rank_experiment`` values)."""
    change = exact["max_out_of_plane_change"]
    return results.Row(
        "out-of-plane weight change in training, data in 𝒳", ours=change,
        paper="0 (only Proj_𝒳 is learned)", source="A, Thm 1",
        verdict=_HOLDS[change < ROUNDING_TOL],
        note=f"holds if below the rounding level {ROUNDING_TOL:g}")


def off_subspace_claim(exact: dict, off_adversarial, off_random) -> results.Row:
    """§4.2: oracle-adversarial perturbations leave 𝒳 more than random ones of the same size;
    ``off_adversarial``/``off_random``: the per-input off-subspace fractions (paired), whose
    means are in ``exact``; the margin is ``results.paired_margin``, at least ``MARGIN``."""
    ve = exact
    m_off = results.paired_margin(off_adversarial, off_random, floor=MARGIN)
    return results.Row(
        "off-subspace fraction, adversarial vs random",
        ours=f"{ve['off_fraction_adversarial']:.3f} vs {ve['off_fraction_random']:.3f}",
        paper="adversarial examples leave 𝒳", source="A, §4.2",
        verdict=_HOLDS[results.exceeds(ve["off_fraction_adversarial"],
                                       ve["off_fraction_random"], m_off)],
        note=f"Eq. 3 with ℓ2 PGD; margin {m_off:.3f} (two standard errors of the paired "
             f"difference over {len(off_random)} inputs, at least {MARGIN})")


def adversarial_training_claim(augmentation: dict) -> results.Row:
    """§4.3 (CIFAR: Fig. 4): oracle-adversarial training lowers the mean ε_out
    (``augmentation_comparison`` values)."""
    plain, at = (augmentation[k]["mean_eps_out"] for k in ("none", "oracle_adversarial"))
    return results.Row(
        "mean ε_out, plain / adversarial training", ours=f"{plain:.3f} / {at:.3f}",
        paper="AT lowers ε_out", source="A, §4.3 (CIFAR: Fig. 4)",
        verdict=_HOLDS[results.exceeds(plain, at, MARGIN)],
        note=f"same initialisation; margin {MARGIN}")


def noise_claim(augmentation: dict, *, noise_std: float) -> results.Row:
    """§4.3 (CIFAR: Fig. 10): Gaussian noise of std ``noise_std`` on the inputs lowers the mean
    ε_out (``augmentation_comparison`` values)."""
    plain, noise = (augmentation[k]["mean_eps_out"] for k in ("none", "gaussian"))
    return results.Row(
        "mean ε_out, plain / Gaussian noise", ours=f"{plain:.3f} / {noise:.3f}",
        paper="noise lowers ε_out", source="A, §4.3 (CIFAR: Fig. 10)",
        verdict=_HOLDS[results.exceeds(plain, noise, MARGIN)],
        note=f"σ = noise_std = {noise_std:g}; margin {MARGIN}")


def sweep_claim(sweep: dict) -> results.Row:
    """§4.1: the mean ε_out is larger at the smallest d′ of the sweep than at the largest
    (``subspace_sweep`` values)."""
    first, last = sweep["mean_eps_out"][0], sweep["mean_eps_out"][-1]
    return results.Row(
        "mean ε_out at smallest / largest d′", ours=f"{first:.3f} / {last:.3f}",
        paper="grows as d′ shrinks", source="A, §4.1",
        verdict=_HOLDS[results.exceeds(first, last, MARGIN)],
        note=f"d′ = {sweep['d_subs'][0]} vs {sweep['d_subs'][-1]}; margin {MARGIN}")


def claim_rows(exact: dict, exact_arrays: dict, augmentation: dict, sweep: dict, *,
               noise_std: float) -> list[results.Row]:
    """The chapter's six claims (§2.7): from the values and arrays of the ``low_rank_experiment``
    on data exactly in 𝒳, the values of ``augmentation_comparison`` (trained with noise of std
    ``noise_std``) and of ``subspace_sweep``."""
    return [
        angle_claim(exact),
        out_of_plane_claim(exact),
        off_subspace_claim(exact, exact_arrays["off_fraction_adversarial"],
                           exact_arrays["off_fraction_random"]),
        adversarial_training_claim(augmentation),
        noise_claim(augmentation, noise_std=noise_std),
        sweep_claim(sweep),
    ]
