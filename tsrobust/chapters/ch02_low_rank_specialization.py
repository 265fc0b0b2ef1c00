"""Chapter 2 (``notebooks/02_low_rank_specialization``): source A §3–4 on two-layer ReLU
networks whose inputs lie in or near a known d′-dimensional subspace 𝒳 of R^d — projected angles
(Theorems 1–2), fan-out of unspecialized nodes (Corollary 1), ε_in and ε_out (Eq. 2),
oracle- and data-adversarial examples (Eqs. 3–4), label- and teacher-target adversarial training
(§4.2), augmentation along the weak directions (§4.3), and sweeps over the off-subspace spread s
and the subspace dimension d′ (§4.1).

Data exactly in 𝒳 (s = 0) cannot move the out-of-plane weights (Theorem 1's mechanism), so the
rows measured there are *sanity checks* of the set-up; the *tests* of the source's claims are
measured near 𝒳 (s > 0), where Theorem 2 says something, over several seeds with margins from
their spread. The theorems' hypotheses (‖g₁‖∞, observation) and bounds are measured on every run
(:func:`tsrobust.theory.theorem2_report`, :func:`tsrobust.theory.corollary1_report`).

The chapter's parameters (``SETTINGS``, cross-checked by ``check_settings``), its experiments
(each returns ``(values, arrays)`` for ``results.record``), figures, and claim rows
(``claim_rows``: ``results.Row``s, each stating when it holds). The formulas and networks are in
:mod:`tsrobust.theory`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
from tqdm.auto import tqdm

from tsrobust import results
from tsrobust import theory as th
from tsrobust.params import Setting
from tsrobust.plotting import add_frame_slider, plain_log_ticks
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
                      doc="fresh inputs for NC, the theorems' measurements and the probes"),
    "steps": Setting(int, smoke=2000, gpu=20_000, paper=20_000, min=1,
                     doc="full-batch gradient steps of the two single runs (§2.1–2.4)"),
    "lr": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=1e-9, max=10.0,
                  doc="SGD learning rate (momentum 0.9)"),
    "near_std": Setting(float, smoke=0.05, gpu=0.05, paper=0.05, min=1e-9,
                        doc="std s of the off-subspace spread of the *near*-subspace data (one "
                            "of s_values)"),
    "noise_std": Setting(float, smoke=0.3, gpu=0.3, paper=0.3, min=1e-9,
                         doc="std σ of the noise augmentations (§4.3)"),
    "attack_eps": Setting(float, smoke=0.5, gpu=0.5, paper=0.5, min=1e-9,
                          doc="ℓ2 radius ε of adversarial examples (Eqs. 3–4)"),
    "attack_steps": Setting(int, smoke=20, gpu=50, paper=50, min=1,
                            doc="PGD steps of the adversarial probe"),
    "train_attack_steps": Setting(int, smoke=5, gpu=10, paper=10, min=1,
                                  doc="PGD steps inside adversarial training"),
    "adversarial_every": Setting(int, smoke=10, gpu=5, paper=5, cpu=10, min=1,
                                 doc="refresh the adversarial training inputs every … steps"),
    "n_attack": Setting(int, smoke=500, gpu=5000, paper=5000, min=1,
                        doc="evaluation inputs attacked by the probe"),
    "aug_steps": Setting(int, smoke=1000, gpu=20_000, paper=20_000, cpu=3000, min=1,
                         doc="training steps of each run of the augmentation comparison"),
    "aug_repeats": Setting(int, smoke=2, gpu=5, paper=5, cpu=3, min=2,
                           doc="independent seeds (teacher, subspace, data, initialisation) of "
                               "the augmentation comparison"),
    "s_values": Setting(tuple, smoke=(0.0, 0.02, 0.05, 0.1, 0.2),
                        gpu=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
                        paper=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
                        cpu=(0.0, 0.02, 0.05, 0.1, 0.2), min=0.0,
                        doc="off-subspace spreads s of the s sweep: 0 first (sanity checks), "
                            "then at least two increasing s > 0 (tests)"),
    "sweep_d_subs": Setting(tuple, smoke=(2, 5, 8, 11), gpu=(2, 4, 6, 8, 10, 12, 14, 16, 18),
                            paper=(2, 4, 6, 8, 10, 12, 14, 16, 18), cpu=(2, 6, 10, 14, 18),
                            min=1, doc="subspace dimensions d′ of the d′ sweep (each < d)"),
    "sweep_repeats": Setting(int, smoke=3, gpu=5, paper=5, cpu=3, min=2,
                             doc="independent seeds (teacher, subspace, data, initialisation) "
                                 "per point of the s and d′ sweeps"),
    "sweep_steps": Setting(int, smoke=1000, gpu=10_000, paper=10_000, cpu=4000, min=1,
                           doc="training steps per sweep run"),
    "sweep_records": Setting(int, smoke=10, gpu=20, paper=20, min=2,
                             doc="checkpoints per s-sweep run at which ‖g₁‖∞ and the angles "
                                 "are measured (the ε scaling test)"),
}
"""Parameters of chapter 2 (``tsrobust.params.resolve``). The source gives no sizes for this
toy: smoke is sized for a CPU in about two minutes; gpu and paper are larger runs of the same
toy; cpu keeps the paper's networks, data and single runs but runs the sweeps and the
augmentation comparison over fewer points, seeds and steps, so that the whole chapter stays
within a few hours on one CPU core."""


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
    s = list(cfg.s_values)
    if s[:1] != [0.0] or len(s) < 3 or any(b <= a for a, b in zip(s, s[1:])):
        raise ValueError(f"parameter 's_values' = {cfg.s_values} must start with 0 (the sanity "
                         "checks) and increase through at least two values s > 0 (the tests)")
    if cfg.near_std not in s:
        raise ValueError(f"parameter 'near_std' = {cfg.near_std} must be one of 's_values' = "
                         f"{cfg.s_values}: the near-subspace tests read the s sweep there")


# Streams of ``theory.make_generator``: one per experiment (the sweeps and the augmentation
# comparison use one per seed from their base on), so that changing one experiment's settings
# leaves the others' randomness unchanged.
STREAM_LOW_RANK, STREAM_SWEEP, STREAM_S_SWEEP, STREAM_AUGMENTATION = 5, 100, 200, 300


# ----------------------------------------------------------------------------------------------
# Experiments (source A §3–4). Each returns (values, arrays) for ``results.record``.
# ----------------------------------------------------------------------------------------------


def _low_rank_setup(d, d_sub, teacher_width, student_width, outputs, n_train, n_eval,
                    off_subspace_std, generator):
    """Teacher, subspace basis U, training and evaluation inputs, and student, drawn from
    ``generator`` (teacher, subspace and student first, then the data, so that runs of one seed
    that differ only in s share teacher, subspace, initialisation, in-plane data and noise
    directions)."""
    teacher = th.make_teacher(d, teacher_width, outputs, generator)
    basis = th.random_subspace(d, d_sub, generator)
    student = th.make_student(d, student_width, outputs, generator)
    x = th.low_rank_inputs(n_train, basis, generator, off_subspace_std=off_subspace_std)
    x_eval = th.low_rank_inputs(n_eval, basis, generator, off_subspace_std=off_subspace_std)
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

    After training: per teacher node and its best student (highest NC on held-out data), the
    projected angles inside 𝒳 and in its complement (Theorems 1–2), ε_in and ε_out (Eq. 2), and
    Theorem 2's measurements (``theory.theorem2_report``); per student node the L-shape data and
    Corollary 1's (``theory.corollary1_report``); how far the out-of-plane parts of the student
    weights moved during training (exactly 0 when s = 0: the gradient lies in 𝒳, Theorem 1);
    and the adversarial probe (Eqs. 3–4) on ``n_attack`` evaluation inputs.
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
    thm2 = th.theorem2_report(student, teacher, x_eval, basis, best_student=report["best_student"])
    cor1 = th.corollary1_report(student, teacher, x_eval, basis)
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
        "g1_sup": thm2["eps"],
        **{k: float(v.mean()) for k, v in probe.items()},
    }
    arrays = {**{f"teacher_{k}": v for k, v in report.items()},
              **{f"teacher_thm2_{k}": np.asarray(v) for k, v in thm2.items()
                 if np.ndim(v) == 1},
              **{f"student_{k}": v for k, v in shape.items()},
              **{f"student_cor1_{k}": np.asarray(v) for k, v in cor1.items() if np.ndim(v) == 1},
              **probe, "out_of_plane_change": w_out_moved.numpy(),
              "steps": np.asarray(hist.steps), "loss": np.asarray(hist.loss)}
    return values, arrays


NODE_KEYS = ("alpha", "sin_in_min", "sin_out_min", "sin_in_best", "sin_out_best", "bound_in",
             "bound_out", "slide_in", "align_in_min", "r_in", "r_out")
"""Per-teacher-node quantities of ``theory.theorem2_report`` kept by the s sweep."""


@th.single_threaded
def off_subspace_sweep(
    *,
    d: int,
    d_sub: int,
    s_values,
    repeats: int,
    teacher_width: int,
    student_width: int,
    outputs: int,
    n_train: int,
    n_eval: int,
    steps: int,
    lr: float,
    records: int,
    seed: int,
    progress: bool = True,
    device="cpu",
):
    """Theorem 2 near the subspace: for each off-subspace spread s in ``s_values`` and each of
    ``repeats`` seeds (teacher, subspace, initialisation, data; shared across s, see
    ``_low_rank_setup``), train a student and measure Theorem 2 and Corollary 1
    (``theory.theorem2_report``, ``theory.corollary1_report``), ε_in and ε_out per teacher node
    and its best student, and, at ``records`` + 1 checkpoints of training, ‖g₁‖∞ and the mean
    smallest in-plane sine (how the angle follows ε).

    Arrays: per teacher node ``NODE_KEYS`` and ``eps_in``/``eps_out`` [n_s, repeats, K_t]; per
    student node ``cor1_bound``, ``fan_out_inf`` and ``unspecialized`` (boundary in the data, best
    NC < 0.8) [n_s, repeats, K_s]; per run ``g1_sup`` (‖g₁‖∞), ``final_loss``, ``mbnc``
    [n_s, repeats]; per checkpoint ``ckpt_g1_sup``, ``ckpt_sin_in`` [n_s, repeats, records + 1]
    (or one more when ``records`` does not divide ``steps``).
    """
    s_values = [float(s) for s in s_values]
    repeats = th.positive_int("repeats", repeats)
    every = max(1, steps // th.positive_int("records", records))
    runs = {}
    jobs = [(i, r) for i in range(len(s_values)) for r in range(repeats)]
    for i, r in tqdm(jobs, desc="s sweep", disable=not progress, leave=False):
        g = th.make_generator(seed, STREAM_S_SWEEP + r)
        teacher, basis, x, x_eval, student = _low_rank_setup(
            d, d_sub, teacher_width, student_width, outputs, n_train, n_eval, s_values[i], g)
        hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                           record_every=every, progress=False)
        rep = th.specialization_report(student, teacher, x_eval, basis)
        thm2 = th.theorem2_report(student, teacher, x_eval, basis,
                                  best_student=rep["best_student"])
        cor1 = th.corollary1_report(student, teacher, x_eval, basis)
        shape = th.l_shape(student, teacher, x_eval)
        ckpt = [th.theorem2_report(hist.student_at(k), teacher, x_eval, basis)
                for k in range(len(hist.snapshots))]
        runs[i, r] = {
            **{k: thm2[k] for k in NODE_KEYS}, "eps_in": rep["eps_in"], "eps_out": rep["eps_out"],
            "cor1_bound": cor1["bound"], "fan_out_inf": cor1["fan_out_inf"],
            "unspecialized": (shape["node_class"] == 0) & (shape["best_corr"] < UNSPECIALIZED_NC),
            "g1_sup": thm2["eps"], "final_loss": hist.loss[-1],
            "mbnc": float(rep["best_nc"].mean()),
            "ckpt_g1_sup": [c["eps"] for c in ckpt],
            "ckpt_sin_in": [float(np.nanmean(c["sin_in_min"])) for c in ckpt]}
    arrays = {key: np.array([[runs[i, r][key] for r in range(repeats)]
                             for i in range(len(s_values))], dtype=float)
              for key in runs[0, 0]}
    arrays["unspecialized"] = arrays["unspecialized"].astype(bool)
    arrays["s_values"] = np.asarray(s_values)
    values = {"s_values": s_values, "repeats": repeats, "d_sub": d_sub,
              "k_total": teacher_width + student_width,
              "mean_sin_in_best": np.nanmean(arrays["sin_in_best"], axis=(1, 2)).tolist(),
              "mean_sin_out_best": np.nanmean(arrays["sin_out_best"], axis=(1, 2)).tolist(),
              "mean_eps_out": arrays["eps_out"].mean(axis=(1, 2)).tolist(),
              "mean_g1_sup": arrays["g1_sup"].mean(axis=1).tolist()}
    return values, arrays


AUGMENTATIONS = ("none", "gaussian", "off_subspace", "oracle_adversarial", "data_adversarial",
                 "data_adversarial_label")
"""The training variants of ``augmentation_comparison`` (§4.2–4.3)."""


def _augmentation(kind: str, *, basis, noise_std, attack_eps, attack_steps, adversarial_every):
    """The ``theory.Augmentation`` of a training variant of ``AUGMENTATIONS``."""
    attack = dict(eps=attack_eps, attack_steps=attack_steps, every=adversarial_every)
    return {
        "none": None,
        "gaussian": th.Augmentation("gaussian", std=noise_std),
        "off_subspace": th.Augmentation("off_subspace", std=noise_std, basis=basis),
        "oracle_adversarial": th.Augmentation("oracle_adversarial", **attack),
        "data_adversarial": th.Augmentation("data_adversarial", **attack),
        "data_adversarial_label": th.Augmentation("data_adversarial", target="label", **attack),
    }[kind]


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
    repeats: int,
    seed: int,
    kinds=AUGMENTATIONS,
    progress: bool = True,
    device="cpu",
):
    """§4.2–4.3: per seed (``repeats`` of them), the same teacher, data and student
    initialisation trained with each variant of ``kinds`` — none; Gaussian noise N(0, σ²I) in all
    directions; noise only along the weak directions ⊥ 𝒳; oracle-adversarial examples (Eq. 3);
    data-adversarial examples (Eq. 4) with teacher targets f*(x′) and with label targets f*(x)
    (ℓ2 radius ``attack_eps``, refreshed every ``adversarial_every`` steps); all but the last
    labelled by the teacher. Per variant and seed: ε_in, ε_out and projected angles per teacher
    node and the oracle loss on clean held-out inputs and under an oracle-adversarial attack.

    Values: per variant the means over seeds; arrays ``{kind}_{key}`` [repeats, K_t] per teacher
    node and ``{kind}_seed_{key}`` [repeats] per seed (the paired differences of the claims)."""
    bad = [k for k in kinds if k not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation(s) {bad}; choose from {AUGMENTATIONS}")
    repeats = th.positive_int("repeats", repeats)
    per_seed = {k: {} for k in kinds}
    arrays = {}
    jobs = [(k, r) for r in range(repeats) for k in kinds]
    for kind, r in tqdm(jobs, desc="augmentations", disable=not progress, leave=False):
        g = th.make_generator(seed, STREAM_AUGMENTATION + r)  # same set-up for every variant
        teacher, basis, x, x_eval, student = _low_rank_setup(
            d, d_sub, teacher_width, student_width, outputs, n_train, n_eval, off_subspace_std, g)
        aug = _augmentation(kind, basis=basis, noise_std=noise_std, attack_eps=attack_eps,
                            attack_steps=attack_steps, adversarial_every=adversarial_every)
        hist = th.train_on(device, student, teacher, x, steps=steps, lr=lr, generator=g,
                           record_every=steps, augmentation=aug, progress=False)
        report = th.specialization_report(student, teacher, x_eval, basis)
        x_att = x_eval[:n_attack]
        x_adv = th.oracle_adversarial(student, teacher, x_att, eps=attack_eps, steps=attack_steps)
        seed_values = {
            "final_loss": hist.loss[-1],
            "mean_eps_in": float(report["eps_in"].mean()),
            "mean_eps_out": float(report["eps_out"].mean()),
            "mean_angle_out_deg": float(np.degrees(np.nanmean(report["angle_out"]))),
            "loss_clean": float(th.oracle_loss(student, teacher, x_att).mean()),
            "loss_adversarial": float(th.oracle_loss(student, teacher, x_adv).mean()),
        }
        for key, v in seed_values.items():
            per_seed[kind].setdefault(key, []).append(v)
        for key in ("eps_in", "eps_out", "angle_in", "angle_out", "best_nc"):
            arrays.setdefault(f"{kind}_{key}", []).append(report[key])
    values = {k: {key: float(np.mean(v)) for key, v in per_seed[k].items()} for k in kinds}
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    arrays.update({f"{k}_seed_{key}": np.asarray(v) for k in kinds
                   for key, v in per_seed[k].items()})
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
    in ``d_subs`` and ``repeats`` seeds (the teacher of a seed is the same for every d′); arrays
    are ``[len(d_subs), repeats]``. Eq. 2 discussion: ε_out should grow as the data get more
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
    values = {"d_subs": d_subs, "off_subspace_std": float(off_subspace_std),
              "mean_eps_out": mean_out.tolist(),
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


PROBE_LOSSES = ("loss_clean", "loss_random", "loss_in_plane", "loss_data_adversarial",
                "loss_adversarial")
"""The oracle losses of ``theory.adversarial_probe``, in the order Figure 2.4 shows them."""


def plot_probe(runs: dict, arrays: dict, *, d: int, d_sub: int, attack_eps: float, name: str):
    """Figure 2.4: left, the off-subspace fractions of random, data-adversarial and
    oracle-adversarial perturbations (the run ``name`` with arrays ``arrays``); right, the mean
    oracle loss after each perturbation, per run (``runs``: name → ``low_rank_experiment``
    result)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    a = arrays
    bins = np.linspace(0, 1, 41)
    for key, label in (("off_fraction_random", "random direction"),
                       ("off_fraction_data_adversarial", "data-adversarial (Eq. 4)"),
                       ("off_fraction_adversarial", "oracle-adversarial (Eq. 3)")):
        axes[0].hist(a[key], bins=bins, alpha=0.5, label=label)
    axes[0].set_xlim(max(0.0, a["off_fraction_random"].min() - 0.05), 1.0)
    axes[0].axvline(np.sqrt((d - d_sub) / d), color="k", ls=":", label="√((d − d′)/d)")
    axes[0].set_xlabel("off-subspace fraction ‖(I − UUᵀ)δ‖ / ‖δ‖")
    axes[0].set_ylabel("attacked inputs")
    axes[0].set_title(f"Where the perturbation points (data {name}, ε = {attack_eps:g})")
    axes[0].legend(fontsize=8)
    labels = ["clean", "random", f"PGD in {SUB}", "PGD (Eq. 4)", "PGD (Eq. 3)"]
    width = 0.38
    for i, (run, res) in enumerate(runs.items()):
        axes[1].bar(np.arange(len(labels)) + (i - 0.5) * width,
                    [res.values[k] for k in PROBE_LOSSES], width, label=f"data {run}")
    axes[1].set_yscale("log")
    axes[1].set_xticks(np.arange(len(labels)), labels, fontsize=8)
    axes[1].set_ylabel("mean oracle loss ‖f(x′) − f*(x′)‖²")
    axes[1].set_title("Student-teacher disagreement after a perturbation")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _positive(arrays: dict) -> np.ndarray:
    """Indices of the s > 0 points of an ``off_subspace_sweep``."""
    return np.flatnonzero(np.asarray(arrays["s_values"]) > 0)


def plot_s_sweep(arrays: dict, *, d: int, d_sub: int):
    """Figure 2.5: left, the mean sine of the projected angle to the best student inside 𝒳 and
    across it (and, dashed, the smallest over all students) against s, mean ± standard deviation
    over seeds; right, ε_in, ε_out and ‖g₁‖∞ against s (``off_subspace_sweep`` arrays)."""
    a = arrays
    s = np.asarray(a["s_values"])
    x = np.arange(len(s))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.3))
    for key, label, color, style in (
            ("sin_out_best", f"across {SUB}, best-NC student", "tab:orange", "s-"),
            ("sin_out_min", f"across {SUB}, smallest over students", "tab:orange", "s--"),
            ("sin_in_best", f"inside {SUB}, best-NC student", "tab:blue", "o-"),
            ("sin_in_min", f"inside {SUB}, smallest over students", "tab:blue", "o--")):
        per_seed = np.nanmean(a[key], axis=2)
        ax1.errorbar(x, per_seed.mean(1), yerr=per_seed.std(1), fmt=style, color=color,
                     capsize=3, label=label, mfc="none" if "--" in style else None)
    ax1.set_yscale("log")
    ax1.set_xticks(x, [f"{v:g}" for v in s])
    ax1.set_xlabel(f"off-subspace spread s (0: data exactly in {SUB}, the sanity check)")
    ax1.set_ylabel(r"sin $\theta^{\mathcal{U}}$ (mean over teacher nodes)")
    ax1.set_title(f"Theorem 2: projected angles vs the spread across {SUB}")
    ax1.legend(fontsize=7)
    for key, label, marker in (("eps_out", "ε_out", "s"), ("eps_in", "ε_in", "o")):
        per_seed = a[key].mean(axis=2)
        ax2.errorbar(x, per_seed.mean(1), yerr=per_seed.std(1), marker=marker, capsize=3,
                     label=label)
    ax2.errorbar(x, a["g1_sup"].mean(1), yerr=a["g1_sup"].std(1), marker="^", capsize=3,
                 color="k", label="‖g₁‖∞ (the theorems' ε)")
    ax2.set_yscale("log")
    ax2.set_xticks(x, [f"{v:g}" for v in s])
    ax2.set_xlabel("off-subspace spread s")
    ax2.set_ylabel("mean over teacher nodes / runs")
    ax2.set_title(f"Eq. 2's ε and the gradient size (d = {d}, d′ = {d_sub})")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def s_slider_figure(arrays: dict):
    """Figure 2.6 (interactive): one slider position per s of an ``off_subspace_sweep``; for
    every teacher node of every seed, the smallest sin θ^𝒰 over students inside 𝒳 and across it
    (filled) and Theorem 2's bound for it (open; a bound above the dotted line at 1 says
    nothing, an infinite one is not drawn)."""
    a = arrays
    s = np.asarray(a["s_values"])
    n_rep, k_t = a["sin_in_min"].shape[1:]
    x = np.arange(n_rep * k_t)
    labels = [f"seed {r}, node {j + 1}" for r in range(n_rep) for j in range(k_t)]
    fig = go.Figure(go.Scatter(x=[-0.5, len(x) - 0.5], y=[1, 1], mode="lines",
                               name="sin θ = 1 (a bound above says nothing)",
                               line=dict(color="gray", dash="dot")))
    frames = []
    for i in range(len(s)):
        frame = []
        for key, name, color, symbol in (
                ("sin_in_min", "inside 𝒳: measured", "#1f77b4", "circle"),
                ("bound_in", "inside 𝒳: Theorem 2 bound", "#1f77b4", "circle-open"),
                ("sin_out_min", "across 𝒳: measured", "#ff7f0e", "square"),
                ("bound_out", "across 𝒳: Theorem 2 bound", "#ff7f0e", "square-open")):
            y = a[key][i].ravel()
            y = np.where(np.isfinite(y), y, np.nan)
            frame.append(go.Scatter(x=x, y=y, mode="markers", name=name, text=labels,
                                    marker=dict(color=color, symbol=symbol, size=9)))
        frames.append(frame)
    fig.update_layout(height=520, xaxis=dict(title="teacher node (all seeds)"),
                      yaxis=dict(title="sin θ^𝒰 and its bound", type="log"))
    add_frame_slider(fig, frames, [f"{v:g}" for v in s], prefix="off-subspace spread s = ",
                     titles=[f"Theorem 2 near 𝒳: s = {v:g}" for v in s])
    return fig


def _loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x over the finite positive pairs; NaN when fewer
    than two distinct x remain."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if len(np.unique(x[keep])) < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def plot_scaling(arrays: dict):
    """Figure 2.7: how the measured angles follow Theorem 2's ε, r and α
    (``off_subspace_sweep`` arrays): left, the mean smallest in-plane sine against ‖g₁‖∞ over
    the checkpoints of each s > 0 run; middle, the mean smallest sine across 𝒳 against s (r ∝ s)
    per seed; right, the smallest in-plane sine of every observed teacher node against its α."""
    a = arrays
    pos = _positive(a)
    s = np.asarray(a["s_values"])
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(pos)))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for c, i in zip(colors, pos):
        for r in range(a["ckpt_g1_sup"].shape[1]):
            axes[0].loglog(a["ckpt_g1_sup"][i, r, 1:], a["ckpt_sin_in"][i, r, 1:], ".-",
                           color=c, alpha=0.7, label=f"s = {s[i]:g}" if r == 0 else None)
    axes[0].set_xlabel("‖g₁‖∞ at a checkpoint (ε)")
    axes[0].set_ylabel(f"mean smallest sin θ inside {SUB}")
    axes[0].set_title("Along training: angle vs ε (bound ∝ ε)")
    axes[0].legend(fontsize=7)
    sin_out = np.nanmean(a["sin_out_min"], axis=2)
    for r in range(sin_out.shape[1]):
        axes[1].loglog(s[pos], sin_out[pos, r], "s-", alpha=0.7, label=f"seed {r}")
    ref = sin_out[pos].mean(1)[0] * s[pos][0] / s[pos]
    axes[1].loglog(s[pos], ref, "k--", label="∝ 1/s")
    axes[1].set_xlabel("off-subspace spread s (r ∝ s)")
    axes[1].set_ylabel(f"mean smallest sin θ across {SUB}")
    axes[1].set_title(f"Across {SUB}: angle vs s (bound ∝ 1/r)")
    axes[1].legend(fontsize=7)
    for c, i in zip(colors, pos):
        axes[2].scatter(a["alpha"][i].ravel(), a["sin_in_min"][i].ravel(), color=c, s=14,
                        label=f"s = {s[i]:g}")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("α = |v*_jᵀ v_k| of the best observer k")
    axes[2].set_ylabel(f"smallest sin θ inside {SUB}")
    axes[2].set_title("Across teacher nodes: angle vs α (bound ∝ 1/α)")
    axes[2].legend(fontsize=7)
    for ax in axes[:2]:
        plain_log_ticks(ax.xaxis), plain_log_ticks(ax.yaxis)
    plain_log_ticks(axes[2].yaxis)
    fig.tight_layout()
    return fig


def _bound_pairs(arrays: dict) -> dict:
    """(measured, bound, informative) per bound of an ``off_subspace_sweep``, flattened over
    runs and nodes: Theorem 2 inside and across 𝒳 (observed teacher nodes; informative below 1),
    Corollary 1 (unspecialized student nodes; informative below the largest ‖v‖∞ of the run),
    and the talk's condition (in-plane ε-alignment; informative below 1)."""
    a = arrays
    observed = np.isfinite(a["alpha"])
    top = np.broadcast_to(a["fan_out_inf"].max(axis=2, keepdims=True), a["fan_out_inf"].shape)
    unspec = a["unspecialized"].astype(bool)
    return {
        "thm2_in": (a["sin_in_min"][observed], a["bound_in"][observed],
                    a["bound_in"][observed] < 1),
        "thm2_out": (a["sin_out_min"][observed], a["bound_out"][observed],
                     a["bound_out"][observed] < 1),
        "cor1": (a["fan_out_inf"][unspec], a["cor1_bound"][unspec],
                 a["cor1_bound"][unspec] < top[unspec]),
        "slide": (a["align_in_min"][observed], a["slide_in"][observed],
                  a["slide_in"][observed] < 1),
    }


BOUND_NAMES = {"thm2_in": "Theorem 2 inside 𝒳 (sin θ)", "thm2_out": "Theorem 2 across 𝒳 (sin θ)",
               "cor1": "Corollary 1 (‖v‖∞ of unspecialized nodes)",
               "slide": "talk's condition (in-plane ε-alignment)"}
"""How figures and tables name the bounds of ``_bound_pairs``."""


def plot_bounds(arrays: dict):
    """Figure 2.8: each measured quantity against its bound, one dot per node and run of the s
    sweep (log-log; finite bounds only): below the diagonal the bound holds; left of the dotted
    line (where there is one) it says something."""
    pairs = _bound_pairs(arrays)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    panels = ((axes[0], ("thm2_in", "thm2_out"), "Theorem 2", True),
              (axes[1], ("cor1",), "Corollary 1", False),
              (axes[2], ("slide",), "Talk's gradient condition", True))
    for ax, keys, title, unit in panels:
        lo, hi = np.inf, 0.0
        for key, color in zip(keys, ("tab:blue", "tab:orange")):
            measured, bound, _ = pairs[key]
            keep = np.isfinite(bound) & np.isfinite(measured) & (measured > 0)
            ax.scatter(bound[keep], measured[keep], s=12, color=color,
                       label=f"{BOUND_NAMES[key].replace('𝒳', SUB)} ({keep.sum()} of "
                             f"{len(bound)} finite)")
            if keep.any():
                lo = min(lo, measured[keep].min(), bound[keep].min())
                hi = max(hi, measured[keep].max(), bound[keep].max())
        if hi > 0:
            ax.loglog([lo, hi], [lo, hi], "k-", lw=1, label="measured = bound")
        if unit:
            ax.axvline(1.0, color="gray", ls=":", label="bound = 1")
        ax.set_xscale("log"), ax.set_yscale("log")
        ax.set_xlabel("bound evaluated on the run")
        ax.set_ylabel("measured")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_augmentation(values: dict, arrays: dict, *, attack_eps: float):
    """Figure 2.9: left, mean ε_out per training variant; right, the oracle loss on clean
    held-out inputs and under an oracle-adversarial attack per variant; bars are means over
    seeds, dots single seeds (``augmentation_comparison`` values and arrays)."""
    kinds = [k for k in AUGMENTATIONS if k in values]
    x = np.arange(len(kinds))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.3))
    ax1.bar(x, [values[k]["mean_eps_out"] for k in kinds], color="tab:orange")
    for i, k in enumerate(kinds):
        seeds = arrays[f"{k}_seed_mean_eps_out"]
        ax1.plot(np.full(len(seeds), i), seeds, "k.")
    ax1.set_yscale("log")
    ax1.set_xticks(x, kinds, rotation=25, ha="right", fontsize=8)
    ax1.set_ylabel("mean ε_out over teacher nodes")
    ax1.set_title("ε_out per training variant (dots: seeds)")
    for shift, key, label in ((-0.2, "loss_clean", "clean"),
                              (0.2, "loss_adversarial", f"under attack (ℓ2, ε = {attack_eps:g})")):
        ax2.bar(x + shift, [values[k][key] for k in kinds], 0.4, label=label)
        for i, k in enumerate(kinds):
            seeds = arrays[f"{k}_seed_{key}"]
            ax2.plot(np.full(len(seeds), i + shift), seeds, "k.")
    ax2.set_yscale("log")
    ax2.set_xticks(x, kinds, rotation=25, ha="right", fontsize=8)
    ax2.set_ylabel("mean oracle loss ‖f(x) − f*(x)‖²")
    ax2.set_title("Agreement with the teacher, clean and under Eq. 3 attacks")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(sweeps: dict, *, d: int):
    """Figure 2.10: ε_out and ε_in against d′, mean ± standard deviation over seeds, one panel per
    sweep (``sweeps``: name → ``subspace_sweep`` arrays)."""
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.6 * len(sweeps), 4.2), sharey=True,
                             squeeze=False)
    for ax, (name, a) in zip(axes[0], sweeps.items()):
        for key, label, marker in (("eps_out", "ε_out", "s"), ("eps_in", "ε_in", "o")):
            ax.errorbar(a["d_subs"], a[key].mean(1), yerr=a[key].std(1), marker=marker,
                        capsize=3, label=label)
            ax.plot(np.repeat(a["d_subs"], a[key].shape[1]), a[key].ravel(), ".",
                    color="gray", alpha=0.5)
        ax.set_xlabel("dimension d′ of the data subspace")
        ax.set_title(f"data {name}")
        ax.legend()
    axes[0, 0].set_ylabel("mean over teacher nodes")
    fig.suptitle(f"ε_in and ε_out vs subspace dimension (d = {d}; grey: single seeds)")
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
    """The footnote-4 split of a ``low_rank_experiment``'s student nodes, in words, with
    Corollary 1's bound for the unspecialized ones."""
    a = arrays
    text = th.fan_out_sentence(th.fan_out_by_specialization(
        a["student_best_corr"], a["student_fan_out_norm"], a["student_node_class"]))
    unspec = (a["student_node_class"] == 0) & (a["student_best_corr"] < UNSPECIALIZED_NC)
    bound = a["student_cor1_bound"][unspec]
    finite = bound[np.isfinite(bound)]
    if finite.size:
        text += (f"; Corollary 1's bound on their ‖v‖∞ is at least **{finite.min():.3g}** "
                 f"({finite.size} of {unspec.sum()} finite)")
    return text


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
        f"Mean off-subspace fraction, oracle-adversarial / data-adversarial / random: "
        f"**{vn['off_fraction_adversarial']:.3f}** / {vn['off_fraction_data_adversarial']:.3f} / "
        f"{vn['off_fraction_random']:.3f} (near 𝒳); {ve['off_fraction_adversarial']:.3f} / "
        f"{ve['off_fraction_data_adversarial']:.3f} / {ve['off_fraction_random']:.3f} (exactly "
        f"in 𝒳). Mean oracle loss clean / random / in-plane PGD / Eq. 4 PGD / Eq. 3 PGD, near "
        f"𝒳: {vn['loss_clean']:.2g} / {vn['loss_random']:.2g} / {vn['loss_in_plane']:.2g} / "
        f"{vn['loss_data_adversarial']:.2g} / **{vn['loss_adversarial']:.2g}**. Of what the "
        f"unrestricted attack adds to the clean oracle loss, the attack kept inside 𝒳 adds a "
        f"fraction **{results.fmt(in_plane_share(vn), '.2g')}** near 𝒳 and "
        f"{results.fmt(in_plane_share(ve), '.2g')} exactly in it (near 1: the weakness lies "
        f"inside 𝒳; near 0: across it).")


def s_sweep_summary(values: dict) -> str:
    """§2.5: mean sines inside and across 𝒳 and ‖g₁‖∞ per s (``off_subspace_sweep`` values)."""
    v = values
    parts = [f"s = {s:g}: {i:.3f} / **{o:.3f}** (‖g₁‖∞ {g:.2g})"
             for s, i, o, g in zip(v["s_values"], v["mean_sin_in_best"], v["mean_sin_out_best"],
                                   v["mean_g1_sup"])]
    return ("Mean sin θ to the best-NC student inside / across 𝒳, over teacher nodes and "
            f"{v['repeats']} seeds: " + "; ".join(parts) + ".")


def bounds_table(arrays: dict) -> results.MarkdownTable:
    """§2.6's table: for each bound, over the nodes and runs of the s sweep, how many bounds are
    finite and informative, the smallest bound, the median measured value, and whether any
    informative bound is broken (``off_subspace_sweep`` arrays)."""
    cols = {"bound": [], "nodes × runs": [], "finite": [], "informative": [], "smallest bound": [],
            "median measured": [], "broken": []}
    for key, (measured, bound, informative) in _bound_pairs(arrays).items():
        finite = np.isfinite(bound)
        cols["bound"].append(BOUND_NAMES[key])
        cols["nodes × runs"].append(int(len(bound)))
        cols["finite"].append(int(finite.sum()))
        cols["informative"].append(int(informative.sum()))
        cols["smallest bound"].append(float(bound[finite].min()) if finite.any() else None)
        cols["median measured"].append(float(np.nanmedian(measured)) if len(measured) else None)
        cols["broken"].append(int((informative & (measured > bound)).sum()))
    return results.markdown_table(cols, digits=3)


def augmentation_table(values: dict) -> str:
    """§2.7's table: per training variant, mean ε_in and ε_out, the mean angle out of 𝒳 and the
    oracle loss clean and under attack, means over seeds (``augmentation_comparison`` values)."""
    kinds = [k for k in AUGMENTATIONS if k in values]
    rows = "\n".join(
        f"| {k} | {values[k]['mean_eps_in']:.3f} | {values[k]['mean_eps_out']:.3f} | "
        f"{values[k]['mean_angle_out_deg']:.1f} | {values[k]['loss_clean']:.2g} | "
        f"{values[k]['loss_adversarial']:.2g} |" for k in kinds)
    return ("| training | mean ε_in | mean ε_out | mean angle out of 𝒳 (°) | clean oracle loss | "
            "oracle loss under attack |\n|---|---|---|---|---|---|\n" + rows)


def sweep_summary(values: dict) -> str:
    """§2.8: mean ε_out per d′ and whether it decreases strictly (``subspace_sweep`` values)."""
    v = values
    return (f"s = {v['off_subspace_std']:g}, mean ε_out per d′: "
            + ", ".join(f"d′ = {s}: **{e:.3f}**" for s, e in zip(v["d_subs"], v["mean_eps_out"]))
            + f". Strictly decreasing in d′: **{v['eps_out_decreases_with_d_sub']}**.")


# ----------------------------------------------------------------------------------------------
# Claims (source A §3–4): results.Row rows, each stating when it holds. Tests read the runs near
# 𝒳 (s > 0) over several seeds; the rows read on data exactly in 𝒳 are sanity checks.
# ----------------------------------------------------------------------------------------------

ANGLE_RATIO = 10.0
"""Sanity check on data exactly in 𝒳: the mean projected angle outside 𝒳 must exceed 10 × the
one inside (inside is trained, outside cannot move)."""
ROUNDING_TOL = 1e-9
"""Theorem 1's mechanism: with data exactly in 𝒳 the out-of-plane weights must not move; in
float64 a largest change below 1e-9 is rounding."""
MARGIN = results.SPEC_MARGIN
"""ε values, sines and off-subspace fractions closer than ``results.SPEC_MARGIN`` = 0.01 are a
tie, not a direction (the floor of every seed margin on them)."""

SLOPE_TIE = 0.05
"""A fitted log-log slope within 0.05 of 0 is flat, not a direction (the floor of its seed
margin)."""
RHO_TIE = 0.1
"""A mean rank correlation within 0.1 of 0 is no ordering (the floor of its seed margin)."""

_HOLDS = {True: "direction holds", False: "differs"}


def _seed_rule(n: int) -> str:
    return (f"margin: one-sided 5 % t-level of the {n} per-seed values "
            f"(t · sd/√n, t = {results.t_quantile_95(max(n - 1, 1)):.2f})")


def _seed_test(per_seed, floor: float = 0.0):
    """Mean of per-seed values, its seed margin and whether the mean clears it (> margin)."""
    per_seed = np.asarray(per_seed, dtype=float)
    per_seed = per_seed[np.isfinite(per_seed)]
    if per_seed.size == 0:
        return float("nan"), float("inf"), False
    m = results.paired_seed_margin(per_seed, floor)
    return float(per_seed.mean()), m, results.exceeds(per_seed.mean(), 0.0, m)


def out_of_plane_check(exact: dict) -> results.Row:
    """Sanity check (Theorem 1's mechanism): on data exactly in 𝒳 the out-of-plane parts of the
    student weights never move (``low_rank_experiment`` values)."""
    change = exact["max_out_of_plane_change"]
    return results.Row(
        "out-of-plane weight change in training, data in 𝒳", ours=change,
        paper="0 (only Proj_𝒳 is learned)", source="A, Thm 1",
        verdict=results.sanity_check(change < ROUNDING_TOL),
        note=f"follows from the set-up (every gradient lies in 𝒳); passes below the rounding "
             f"level {ROUNDING_TOL:g}")


def angle_check(exact: dict) -> results.Row:
    """Sanity check: on data exactly in 𝒳 the projected angle to the best student is small inside
    𝒳 and large outside (``low_rank_experiment`` values); outside, the weights cannot move."""
    ve = exact
    return results.Row(
        "inside / outside projected angle (°), data in 𝒳",
        ours=f"{ve['mean_angle_in_deg']:.2f} / {ve['mean_angle_out_deg']:.1f}",
        paper="small / large", source="A, Thms 1–2",
        verdict=results.sanity_check(results.exceeds(ve["mean_angle_out_deg"],
                                                       ANGLE_RATIO * ve["mean_angle_in_deg"])),
        note=f"the outside angle is the initialisation's; passes if outside > {ANGLE_RATIO:g} "
             f"× inside")


def sweep_check(sweep: dict, arrays: dict) -> results.Row:
    """Sanity check: on data exactly in 𝒳 the mean ε_out is larger at the smallest d′ of the
    sweep than at the largest (``subspace_sweep`` values and arrays): the out-of-plane parts are
    the initialisation's, and there are more of them at small d′."""
    diffs = arrays["eps_out"][0] - arrays["eps_out"][-1]
    mean, m, holds = _seed_test(diffs, MARGIN)
    first, last = sweep["mean_eps_out"][0], sweep["mean_eps_out"][-1]
    return results.Row(
        "mean ε_out at smallest / largest d′, data in 𝒳", ours=f"{first:.3f} / {last:.3f}",
        paper="grows as d′ shrinks", source="A, §4.1", verdict=results.sanity_check(holds),
        note=f"geometry of untrained out-of-plane weights; d′ = {sweep['d_subs'][0]} vs "
             f"{sweep['d_subs'][-1]}; {_seed_rule(len(diffs))}, at least {MARGIN} "
             f"(= {m:.3f})")


def near_angle_claim(sweep: dict, arrays: dict, near_std: float) -> results.Row:
    """Theorem 2 near 𝒳 (s = ``near_std``): the projected angle to the best-NC student is larger
    across 𝒳 than inside it; per seed the mean over teacher nodes of sin θ_out − sin θ_in
    (``off_subspace_sweep`` values and arrays) must clear the seed margin."""
    i = list(sweep["s_values"]).index(near_std)
    diffs = np.nanmean(arrays["sin_out_best"][i] - arrays["sin_in_best"][i], axis=1)
    mean, m, holds = _seed_test(diffs, MARGIN)
    return results.Row(
        f"sin θ inside / across 𝒳, best-NC student, s = {near_std:g}",
        ours=f"{sweep['mean_sin_in_best'][i]:.3f} / {sweep['mean_sin_out_best'][i]:.3f}",
        paper="small / large", source="A, Thm 2", verdict=_HOLDS[holds],
        note=f"holds if the mean difference ({mean:.3f}) exceeds the margin {m:.3f}; "
             f"{_seed_rule(len(diffs))}, at least {MARGIN}")


def r_scaling_claim(arrays: dict) -> results.Row:
    """Theorem 2's 1/r: across 𝒳 the data extend r ∝ s, so the angle there should shrink as s
    grows. Per seed, the log-log slope of the mean smallest sine across 𝒳 against s (s > 0)
    must lie below −margin (``off_subspace_sweep`` arrays)."""
    pos = _positive(arrays)
    s = np.asarray(arrays["s_values"])[pos]
    sin_out = np.nanmean(arrays["sin_out_min"][pos], axis=2)  # [n_s, repeats]
    slopes = np.array([_loglog_slope(s, sin_out[:, r]) for r in range(sin_out.shape[1])])
    mean, m, holds = _seed_test(-slopes, SLOPE_TIE)
    return results.Row(
        "log-log slope of sin θ across 𝒳 against s", ours=-mean,
        paper="< 0 (bound ∝ 1/r, r ∝ s; −1 if tight)", source="A, Thm 2",
        verdict=_HOLDS[holds],
        note=f"s = {', '.join(f'{v:g}' for v in s)}; holds if below −{m:.3f}; "
             f"{_seed_rule(len(slopes))}, at least {SLOPE_TIE}")


def eps_scaling_claim(arrays: dict) -> results.Row:
    """Theorem 2's ε: along training the mean smallest in-plane sine should fall with ‖g₁‖∞. Per
    s > 0 run, the log-log slope over the checkpoints after initialisation; per seed the mean
    over s; it must exceed the seed margin (``off_subspace_sweep`` arrays)."""
    pos = _positive(arrays)
    slopes = np.array([[_loglog_slope(arrays["ckpt_g1_sup"][i, r, 1:],
                                      arrays["ckpt_sin_in"][i, r, 1:]) for r in
                        range(arrays["ckpt_g1_sup"].shape[1])] for i in pos])
    per_seed = np.nanmean(slopes, axis=0)
    mean, m, holds = _seed_test(per_seed, SLOPE_TIE)
    return results.Row(
        "log-log slope of sin θ inside 𝒳 against ‖g₁‖∞ along training", ours=mean,
        paper="> 0 (bound ∝ ε; 1 if tight)", source="A, Thm 2", verdict=_HOLDS[holds],
        note=f"over the checkpoints of every s > 0 run; holds if above {m:.3f}; "
             f"{_seed_rule(len(per_seed))}, at least {SLOPE_TIE}")


def alpha_scaling_claim(arrays: dict) -> results.Row:
    """Theorem 2's 1/α: teacher nodes with a larger α (fan-out overlap with their best observer)
    should have smaller in-plane angles. Spearman's ρ of α and the smallest in-plane sine over the
    observed teacher nodes of each s > 0 run; per seed the mean over s; minus it must exceed the
    seed margin (``off_subspace_sweep`` arrays)."""
    pos = _positive(arrays)
    rho = np.full((len(pos), arrays["alpha"].shape[1]), np.nan)
    for a_i, i in enumerate(pos):
        for r in range(arrays["alpha"].shape[1]):
            alpha, sin_in = arrays["alpha"][i, r], arrays["sin_in_min"][i, r]
            keep = np.isfinite(alpha) & np.isfinite(sin_in)
            if keep.sum() >= 3:
                rho[a_i, r] = th.spearman(alpha[keep], sin_in[keep])
    per_seed = np.nanmean(rho, axis=0) if np.isfinite(rho).any() else np.full(rho.shape[1],
                                                                             np.nan)
    mean, m, holds = _seed_test(-per_seed, RHO_TIE)
    return results.Row(
        "Spearman ρ of α and sin θ inside 𝒳, over teacher nodes", ours=-mean,
        paper="< 0 (bound ∝ 1/α)", source="A, Thm 2", verdict=_HOLDS[holds],
        note=f"within each s > 0 run, averaged over s; holds if below −{m:.3f}; "
             f"{_seed_rule(int(np.isfinite(per_seed).sum()))}, at least {RHO_TIE}")


def _bound_row(quantity: str, source: str, paper: str, pairs, what: str) -> results.Row:
    """A bound checked where it is informative: holds if no informative bound is broken and at
    least one is informative, differs if one is broken, inconclusive if none is informative."""
    n_total = n_inf = n_broken = 0
    smallest = np.inf
    for measured, bound, informative in pairs:
        n_total += len(bound)
        n_inf += int(informative.sum())
        n_broken += int((informative & (measured > bound)).sum())
        finite = bound[np.isfinite(bound)]
        smallest = min(smallest, float(finite.min())) if finite.size else smallest
    verdict = (results.INCONCLUSIVE if n_inf == 0 else
               _HOLDS[n_broken == 0])
    return results.Row(
        quantity, ours=f"{n_inf} of {n_total} informative, {n_broken} broken", paper=paper,
        source=source, verdict=verdict,
        note=f"{what}; smallest bound {results.fmt(smallest, '.3g')}; holds if no informative "
             f"bound is broken, inconclusive if none is informative")


def theorem2_bound_claim(arrays: dict) -> results.Row:
    """Theorem 2's bound M K ε / α, evaluated with the run's own ε = ‖g₁‖∞, r and α, against the
    smallest measured sin θ^𝒰 over students, inside and across 𝒳, for every observed teacher
    node of every run of the s sweep (``off_subspace_sweep`` arrays); informative below 1."""
    pairs = _bound_pairs(arrays)
    return _bound_row("Theorem 2's bound on sin θ (inside and across 𝒳)", "A, Thm 2, A.4–A.6",
                      "sin θ ≤ M K ε / α", (pairs["thm2_in"], pairs["thm2_out"]),
                      "informative where the bound is below 1")


def corollary1_bound_claim(arrays: dict) -> results.Row:
    """Corollary 1's bound ‖Q⁻¹‖₁ M K ε / c₀ on ‖v‖∞ of the unspecialized student nodes of every
    run of the s sweep (``off_subspace_sweep`` arrays); informative below the largest ‖v‖∞ of
    the run (above it, it does not single out any node)."""
    return _bound_row("Corollary 1's bound on ‖v‖∞ of unspecialized nodes", "A, Cor. 1, A.7",
                      "‖v‖∞ ≤ ‖Q⁻¹‖₁ M K ε / c₀", (_bound_pairs(arrays)["cor1"],),
                      "informative where the bound is below the run's largest ‖v‖∞")


def slide_bound_claim(arrays: dict) -> results.Row:
    """The talk's gradient condition solved for ε (``theory.slide_alignment_bound``, d = d′ in
    the reduced space) against the measured in-plane ε-alignment error of every observed teacher
    node of the s sweep (``off_subspace_sweep`` arrays); informative below 1."""
    return _bound_row("talk's ε-alignment from ‖g₁‖∞ ≤ αε/(5K^{3/2}√d)",
                      "D, \"Polynomial Complexity\"", "alignment ≤ 5 K^{3/2} √d ‖g₁‖∞ / α",
                      (_bound_pairs(arrays)["slide"],), "informative where the bound is below 1")


def sweep_claim(sweep: dict, arrays: dict) -> results.Row:
    """§4.1 near 𝒳: the mean ε_out is larger at the smallest d′ of the sweep than at the largest;
    per seed (same teacher for every d′) the difference must clear the seed margin
    (``subspace_sweep`` values and arrays)."""
    diffs = arrays["eps_out"][0] - arrays["eps_out"][-1]
    mean, m, holds = _seed_test(diffs, MARGIN)
    first, last = sweep["mean_eps_out"][0], sweep["mean_eps_out"][-1]
    return results.Row(
        f"mean ε_out at smallest / largest d′, s = {sweep['off_subspace_std']:g}",
        ours=f"{first:.3f} / {last:.3f}", paper="grows as d′ shrinks", source="A, §4.1",
        verdict=_HOLDS[holds],
        note=f"d′ = {sweep['d_subs'][0]} vs {sweep['d_subs'][-1]}; holds if the mean difference "
             f"exceeds {m:.3f}; {_seed_rule(len(diffs))}, at least {MARGIN}")


def off_subspace_claim(near: dict, off_adversarial, off_random) -> results.Row:
    """§4.2 near 𝒳: oracle-adversarial perturbations leave 𝒳 more than random ones of the same
    size; ``off_adversarial``/``off_random``: the per-input off-subspace fractions (paired),
    whose means are in ``near``; the margin is ``results.paired_margin``, at least ``MARGIN``."""
    vn = near
    m_off = results.paired_margin(off_adversarial, off_random, floor=MARGIN)
    return results.Row(
        "off-subspace fraction, adversarial vs random, data near 𝒳",
        ours=f"{vn['off_fraction_adversarial']:.3f} vs {vn['off_fraction_random']:.3f}",
        paper="adversarial examples leave 𝒳", source="A, §4.2",
        verdict=_HOLDS[results.exceeds(vn["off_fraction_adversarial"],
                                       vn["off_fraction_random"], m_off)],
        note=f"Eq. 3 with ℓ2 PGD; margin {m_off:.3f} (two standard errors of the paired "
             f"difference over {len(off_random)} inputs, at least {MARGIN})")


def _variant_claim(arrays: dict, values: dict, base: str, other: str, key: str, *, log: bool,
                   quantity: str, paper: str, source: str, note: str) -> results.Row:
    """Variant ``other`` lowers ``key`` below variant ``base``: per seed the difference (of
    log10 values with ``log``) must clear the seed margin (``augmentation_comparison``)."""
    a, b = arrays[f"{base}_seed_{key}"], arrays[f"{other}_seed_{key}"]
    diffs = np.log10(a) - np.log10(b) if log else a - b
    mean, m, holds = _seed_test(diffs, 0.0 if log else MARGIN)
    unit = "log10 ratio" if log else "difference"
    return results.Row(
        quantity, ours=f"{values[base][key]:.3g} / {values[other][key]:.3g}", paper=paper,
        source=source, verdict=_HOLDS[holds],
        note=f"{note}; holds if the mean {unit} ({mean:.3g}) exceeds {m:.3g}; "
             f"{_seed_rule(len(diffs))}" + ("" if log else f", at least {MARGIN}"))


def adversarial_training_claim(values: dict, arrays: dict) -> results.Row:
    """§4.3 (CIFAR: Fig. 4): oracle-adversarial training lowers the mean ε_out, near 𝒳."""
    return _variant_claim(arrays, values, "none", "oracle_adversarial", "mean_eps_out", log=False,
                          quantity="mean ε_out, plain / oracle-adversarial training",
                          paper="AT lowers ε_out", source="A, §4.3 (CIFAR: Fig. 4)",
                          note="same set-up per seed")


def noise_claim(values: dict, arrays: dict, *, noise_std: float) -> results.Row:
    """§4.3 (CIFAR: Fig. 10): Gaussian noise of std ``noise_std`` lowers the mean ε_out."""
    return _variant_claim(arrays, values, "none", "gaussian", "mean_eps_out", log=False,
                          quantity="mean ε_out, plain / Gaussian noise",
                          paper="noise lowers ε_out", source="A, §4.3 (CIFAR: Fig. 10)",
                          note=f"σ = noise_std = {noise_std:g}")


def target_claim(values: dict, arrays: dict) -> results.Row:
    """§4.2: adversarial training with teacher targets f*(x′) is more accurate than with label
    targets f*(x): data-adversarial (Eq. 4) training both ways, compared by the oracle loss on
    clean held-out inputs (log10 ratio per seed)."""
    return _variant_claim(arrays, values, "data_adversarial_label", "data_adversarial",
                          "loss_clean", log=True,
                          quantity="clean oracle loss, label- / teacher-target AT (Eq. 4)",
                          paper="teacher-target more accurate", source="A, §4.2",
                          note="same set-up and attack per seed")


def claim_rows(*, exact, near, s_sweep, augmentation, sweep_exact, sweep_near, near_std: float,
               noise_std: float) -> list[results.Row]:
    """The chapter's rows (§2.9): the tests, read near 𝒳, then the sanity checks, read on data
    exactly in 𝒳. Each argument is a recorded result (``.values``, ``.arrays``): the two
    ``low_rank_experiment`` runs, the ``off_subspace_sweep``, the ``augmentation_comparison``
    (trained with noise of std ``noise_std``) and the ``subspace_sweep`` at s = 0 and s =
    ``near_std``."""
    sv, sa = s_sweep.values, s_sweep.arrays
    av, aa = augmentation.values, augmentation.arrays
    return [
        near_angle_claim(sv, sa, near_std),
        r_scaling_claim(sa),
        eps_scaling_claim(sa),
        alpha_scaling_claim(sa),
        theorem2_bound_claim(sa),
        corollary1_bound_claim(sa),
        slide_bound_claim(sa),
        sweep_claim(sweep_near.values, sweep_near.arrays),
        off_subspace_claim(near.values, near.arrays["off_fraction_adversarial"],
                           near.arrays["off_fraction_random"]),
        adversarial_training_claim(av, aa),
        noise_claim(av, aa, noise_std=noise_std),
        target_claim(av, aa),
        out_of_plane_check(exact.values),
        angle_check(exact.values),
        sweep_check(sweep_exact.values, sweep_exact.arrays),
    ]
