"""Chapter 3: the oracle teacher (source A §5.1) and the low-rank patch spectrum (§5.3, Fig. 2
left).

The teacher itself is trained, pruned and recorded by :func:`tsrobust.chapters.cifar.
oracle_teacher` (chapters 4 and 5 load it from this chapter's record); this module holds the
chapter's settings, the patch spectrum, the figures and the claim rows.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from tsrobust import bench, results
from tsrobust.chapters.cifar import (
    N_PCA,
    N_TEST,
    N_ACTIVITY,
    PCA_RANK,
    TEACHER_CHAPTER,
    TEACHER_SETTINGS,
    oracle_teacher,
    teacher_run,
)
from tsrobust.data import CIFAR10
from tsrobust.models import TEACHER_WIDTHS, ConvNet
from tsrobust.params import resolve_notebook
from tsrobust.specialization import PATCH_SIZE, patch_basis

CHAPTER = TEACHER_CHAPTER
"""Record key of this chapter."""

SETTINGS = {
    **TEACHER_SETTINGS,
    "n_test": N_TEST,
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
}
"""Chapter 3's parameters: the teacher's (:data:`tsrobust.chapters.cifar.TEACHER_SETTINGS`),
the test images for its accuracy and the patch PCA."""

AGREEMENT_TOL = 2.0
"""The pruned teacher counts as the trained one when they agree on all but 2 % of test images."""
ACCURACY_LOSS_TOL = 1.0
"""… and pruning costs at most 1 point of test accuracy."""
FAST_DECAY_SHARE = 99.0
"""The patch spectrum counts as fast-decaying when the top ``pca_rank`` components carry at least
99 % of the variance (Fig. 2 left gives no number)."""
SPREAD_RATIO = 100.0
"""… and the first eigenvalue is more than 100 times the ``pca_rank``-th."""


def teacher(cfg, data: CIFAR10, *, device="cpu", progress: bool = True):
    """The oracle teacher of ``cfg`` (chapter 3's teacher settings) on ``data``:
    :func:`tsrobust.chapters.cifar.oracle_teacher`, loaded when recorded."""
    return oracle_teacher(cfg.profile, cfg.seed, data, device=device, progress=progress,
                          **teacher_overrides(cfg))


def teacher_overrides(cfg) -> dict:
    """The teacher settings of ``cfg`` (chapter 3's configuration) as overrides of
    :func:`tsrobust.chapters.cifar.oracle_teacher` (``n_train`` comes from the data)."""
    return {k: getattr(cfg, k) for k in TEACHER_SETTINGS if k != "n_train"}


def independent_runs(profile: str, **params) -> list[results.Run]:
    """The chapter's run that a cluster executes as a job of its own before the notebook: the
    oracle teacher (:func:`tsrobust.chapters.cifar.teacher_run`) with the notebook's settings
    for ``params``. Chapters 4–7's runs need the same run, so it is trained once."""
    cfg = resolve_notebook(SETTINGS, profile, params)
    return [teacher_run(cfg, cuda_mode=params.get("cuda_mode", "default"),
                        **teacher_overrides(cfg))]


def leading(run, settings: dict) -> tuple:
    """What the chapter shows for this build's ``run`` (the teacher's record, or the patch
    spectrum's): the book leads with the largest recorded run
    (:func:`tsrobust.results.largest_recorded`). Returns ``(shown, own_run)``; ``settings``:
    the parameters the record was made with (:data:`TEACHER_SETTINGS` for the teacher,
    :data:`SETTINGS` for the spectrum)."""
    shown = results.largest_recorded(run, settings)
    return shown, shown is run


def scale_of(res) -> str | None:
    """``None`` if the teacher record ``res`` was trained with the paper's settings
    (:func:`tsrobust.results.at_paper_scale` over :data:`TEACHER_SETTINGS`), else its profile:
    what :func:`claim_rows` needs to keep a smaller run from *reproducing* a number."""
    cfg = results.config_of(res, TEACHER_SETTINGS)
    return None if results.at_paper_scale(cfg, TEACHER_SETTINGS) else cfg.profile


def shown_markdown(shown, own_run: bool, build_profile: str, what: str) -> str:
    """The sentence that says which run the chapter shows for ``what`` ("the teacher", "the
    patch spectrum")."""
    p = shown.provenance["profile"]
    if own_run:
        return (f"No run of {what} larger than this build's `{build_profile}` run is recorded in "
                f"this copy of the book: what follows is this build's own run.")
    return (f"What follows for {what} is the `{p}` run recorded in the repository, the largest "
            f"recorded; this build's own `{build_profile}` run is the pipeline check at the end "
            f"of the chapter.")


def pipeline_markdown(teacher_res, pca_res) -> str:
    """This build's own teacher and patch spectrum, compactly (the pipeline check)."""
    tv, pv = teacher_res.values, pca_res.values
    acc_only, _ = _pruned_only(tv)
    rank = pca_res.provenance["parameters"]["pca_rank"]
    rows = claim_rows(teacher=tv, spectrum=pv, pca_rank=rank, teacher_scale=scale_of(teacher_res))
    return (f"This build's `{teacher_res.provenance['profile']}` teacher: test accuracy "
            f"{100 * tv['test_accuracy_full']:.1f} % trained, {100 * acc_only:.1f} % pruned, "
            f"{100 * tv['test_accuracy_pruned']:.1f} % as the oracle, on "
            f"{tv['n_test_used']} test images; its patch spectrum puts "
            f"{100 * pv['variance_in_top_rank']:.2f} % of the variance in the top {rank} "
            f"components. Verdicts of its rows: "
            f"{results.verdict_counts(rows)}.")


def _widths(w) -> str:
    return "-".join(map(str, w))


def _pruned_only(tv: dict) -> tuple[float, float]:
    """Test accuracy and agreement with the trained teacher of the pruned teacher *before* any
    fine-tune (a record made without a fine-tune has only the one pruned teacher)."""
    return (tv.get("test_accuracy_pruned_only", tv["test_accuracy_pruned"]),
            tv.get("agreement_pruned_only_full", tv["agreement_pruned_full"]))


def teacher_markdown(tv: dict, n_train: int) -> str:
    """The trained, the pruned and (if any) the fine-tuned pruned teacher: widths, accuracies,
    agreement and dead channels."""
    acc_only, agree_only = _pruned_only(tv)
    ft = tv.get("finetune_history")
    rows = (f"| teacher | widths | test accuracy (%) |\n|---|---|---|\n"
            f"| trained | {_widths(tv['full_widths'])} | {100 * tv['test_accuracy_full']:.1f} |\n"
            f"| pruned by fan-out norm | {_widths(tv['pruned_widths'])} | {100 * acc_only:.1f} |\n")
    if ft:
        rows += (f"| pruned, then fine-tuned {len(ft['epoch'])} epochs on the labels (the oracle) "
                 f"| {_widths(tv['pruned_widths'])} | {100 * tv['test_accuracy_pruned']:.1f} |\n")
    return (
        rows + f"\nTraining accuracy of the trained teacher: {100 * tv['train_accuracy_full']:.1f} %. "
        f"The pruned teacher predicts the same class as the trained one on "
        f"{100 * agree_only:.1f} % of the {tv['n_test_used']} test images"
        + (f" ({100 * tv['agreement_pruned_full']:.1f} % after the fine-tune)" if ft else "")
        + ".\n\n"
        f"Dead channels (zero on all of the first {min(N_ACTIVITY, n_train)} training "
        f"images), per layer: trained teacher "
        f"{', '.join(str(len(d)) for d in tv['dead_channels'])} of "
        f"{', '.join(map(str, tv['full_widths']))}; pruned teacher "
        f"{', '.join(str(len(d)) for d in tv['dead_channels_pruned'])} of "
        f"{', '.join(map(str, tv['pruned_widths']))}.")


def plot_history(tv: dict):
    """Figure 3.1: the teacher's loss per epoch, and its accuracy on the augmented training
    batches and (where recorded) on the test images; the pruned teacher's fine-tune epochs
    follow the trained teacher's."""
    hist, ft = tv["history"], tv.get("finetune_history")
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(hist["epoch"], hist["loss"], marker="o", label="trained teacher")
    ax[1].plot(hist["epoch"], 100 * np.array(hist["accuracy"]), marker="o",
               label="training batches")
    if "test_accuracy" in hist:
        ax[1].plot(hist["epoch"], 100 * np.array(hist["test_accuracy"]), marker="s",
                   label="test images")
    if ft:
        epochs = np.array(ft["epoch"]) + hist["epoch"][-1]
        ax[0].plot(epochs, ft["loss"], marker="o", label="pruned, fine-tune")
        ax[1].plot(epochs, 100 * np.array(ft["test_accuracy"]), marker="s",
                   label="pruned, fine-tune (test)")
        for a in ax:
            a.axvline(hist["epoch"][-1] + 0.5, color="gray", lw=0.8, ls="--")
    ax[0].set(title="Teacher training loss", xlabel="epoch", ylabel="cross-entropy")
    ax[1].set(title="Teacher accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_fanout_norms(tv: dict):
    """Figure 3.2: each channel's fan-out weight norm, sorted, per layer; kept channels blue,
    pruned live channels red, dead channels gray."""
    norms = [np.array(n) for n in tv["fanout_norms"]]
    kept = [set(k) for k in tv["kept_channels"]]
    dead = [set(d) for d in tv["dead_channels"]]
    fig, axes = plt.subplots(1, len(norms), figsize=(12, 3.2), sharey=False)
    for l, (ax, n) in enumerate(zip(axes, norms)):
        order = np.argsort(-n)
        colors = ["tab:blue" if k in kept[l] else "tab:gray" if k in dead[l] else "tab:red"
                  for k in order]
        ax.bar(np.arange(len(n)), n[order], color=colors, width=1.0)
        ax.set_ylim(bottom=0)
        ax.set(title=f"layer {l}: keep {len(kept[l])} of {len(n)}", xlabel="channel (sorted)",
               ylabel="fan-out weight norm" if l == 0 else None)
    fig.suptitle("Fan-out weight norms of the trained teacher "
                 "(blue: kept, red: pruned, gray: dead, pruned)")
    fig.tight_layout()
    return fig


def pruned_mass(tv: dict) -> list[float]:
    """Per layer, the share of the live channels' squared fan-out norm that the pruned live
    channels carry (0 if footnote 3's "inactivated" channels carried nothing)."""
    out = []
    for l, n in enumerate(tv["fanout_norms"]):
        n = np.array(n)
        dead, kept = set(tv["dead_channels"][l]), set(tv["kept_channels"][l])
        live = [k for k in range(len(n)) if k not in dead]
        out.append(float((n[[k for k in live if k not in kept]] ** 2).sum() / (n[live] ** 2).sum()))
    return out


def pruned_mass_markdown(tv: dict) -> str:
    return ("Share of the live channels' squared fan-out norm carried by the pruned live "
            "channels, per layer: "
            + ", ".join(f"layer {l}: {100 * m:.1f} %" for l, m in enumerate(pruned_mass(tv))))


def patch_spectrum(x_train, cfg) -> dict:
    """§5.3, Fig. 2 left: the 27 eigenvalues of the 3×3×3 patch covariance of the first
    ``n_pca`` training images, the share of the variance in the top ``pca_rank`` and the ratio of
    the first to the ``pca_rank``-th eigenvalue."""
    vals, _ = patch_basis(x_train[: cfg.n_pca], cfg.pca_rank)
    vals = vals.clamp_min(0).numpy()
    share = vals / vals.sum()
    side = x_train.shape[-1] - PATCH_SIZE + 1
    return {
        "eigenvalues": vals.tolist(),
        "variance_in_top_rank": float(share[: cfg.pca_rank].sum()),
        "top_over_rank": float(vals[0] / vals[cfg.pca_rank - 1]),
        "n_patches": cfg.n_pca * side * side,
    }


def record_spectrum(cfg, data: CIFAR10):
    """:func:`patch_spectrum` recorded as ``patch_pca`` of this chapter."""
    return results.record(CHAPTER, "patch_pca", cfg, lambda: patch_spectrum(data.x_train, cfg),
                          dataset=data.description)


def plot_spectrum(pv: dict, pca_rank: int):
    """Figure 3.3: the patch eigenvalues (log scale), the top ``pca_rank`` (the basis U) shaded."""
    vals = np.array(pv["eigenvalues"])
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.semilogy(np.arange(1, len(vals) + 1), vals, marker="o")
    ax.axvspan(0.5, pca_rank + 0.5, color="tab:green", alpha=0.12,
               label=f"basis U: top {pca_rank}")
    ax.set(title="Eigenvalues of the 3×3×3 patch covariance", xlabel="PCA component",
           ylabel="eigenvalue (log scale)")
    ax.legend()
    return fig


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _direction(holds: bool) -> str:
    return "direction holds" if holds else "differs"


def claim_rows(*, teacher: dict | None = None, spectrum: dict | None = None,
               pca_rank: int | None = None, official: bool = True,
               teacher_scale: str | None = None) -> list[results.Row]:
    """Chapter 3's claims, as ``results.Row``s, for what is given:

    - ``teacher`` (values of the oracle teacher's record): footnote 3 removes only *inactive*
      channels, so the pruned teacher, before any fine-tune, should predict as the trained one
      (within
      :data:`AGREEMENT_TOL` points of 100 %) and lose no test accuracy (within
      :data:`ACCURACY_LOSS_TOL` points of 0). ``teacher_scale``: ``None`` when the teacher was
      trained with the paper's settings (:func:`scale_of`), else the profile it was trained at —
      then a match is at best *direction holds* (a smaller run that lands on the implied number
      has not reproduced it), and the note names the scale;
    - ``spectrum`` (values of :func:`patch_spectrum` with ``pca_rank``): the patch spectrum decays
      fast (§5.3): the top ``pca_rank`` components carry at least :data:`FAST_DECAY_SHARE` % of the
      variance, and λ₁ exceeds λ_rank :data:`SPREAD_RATIO` times. ``official``: whether the
      images are the official release (a JPEG-decoded copy decays faster, which the note says).
    """
    rows = []
    if teacher is not None:
        paper_note = ("implied by footnote 3: only inactive channels are removed, so the function "
                      "should not change")
        acc_only, agree_only = _pruned_only(teacher)
        agree = 100 * agree_only
        acc_drop = 100 * (teacher["test_accuracy_full"] - acc_only)
        scale = "" if teacher_scale is None else f"; our teacher: `{teacher_scale}` profile"
        rows += [
            results.Row("pruned vs trained teacher: same prediction (% of test images)",
                        round(agree, 1), 100.0, "§5.1, footnote 3 (implied)",
                        results.verdict(agree, 100.0, abs_tol=AGREEMENT_TOL,
                                        paper_scale=teacher_scale is None,
                                        direction_holds=abs(agree - 100) <= AGREEMENT_TOL),
                        paper_note + scale),
            results.Row("test accuracy lost by pruning (points)", round(acc_drop, 1), 0.0,
                        "§5.1, footnote 3 (implied)",
                        results.verdict(acc_drop, 0.0, abs_tol=ACCURACY_LOSS_TOL,
                                        paper_scale=teacher_scale is None,
                                        direction_holds=abs(acc_drop) <= ACCURACY_LOSS_TOL),
                        "the source gives no teacher accuracy; 0 is what 'inactive' implies"
                        + scale),
        ]
    if spectrum is not None:
        if pca_rank is None:
            raise ValueError("pca_rank is needed with spectrum (the rank the values were made for)")
        share = 100 * spectrum["variance_in_top_rank"]
        spread = spectrum["top_over_rank"]
        jpeg_note = ("" if official else "; JPEG compression removes high-frequency detail, so "
                     "this copy decays faster than the official pixels would")
        rows += [
            results.Row(f"variance in the top {pca_rank} of 27 components (%)", round(share, 3),
                        "fast decay (Fig. 2 left; no numbers given)", "§5.3, Fig. 2 left",
                        _direction(share >= FAST_DECAY_SHARE),
                        f"we call the decay fast if the top {pca_rank} carry ≥ "
                        f"{FAST_DECAY_SHARE:.0f} % of the variance" + jpeg_note),
            results.Row(f"λ₁ / λ_{pca_rank}", round(spread, 1), "—", "§5.3, Fig. 2 left",
                        _direction(spread > SPREAD_RATIO),
                        f"more than two orders of magnitude between the first and the "
                        f"{_ordinal(pca_rank)} eigenvalue"),
        ]
    return rows


def run_flops(cfg) -> int:
    """FLOPs of this chapter's teacher at ``cfg`` (:mod:`tsrobust.bench`): the 64-64-64-64
    teacher trained for ``teacher_epochs`` on ``n_train`` images, the pruned one fine-tuned for
    ``teacher_finetune_epochs``, and the test accuracy after every epoch of both (forward passes
    over ``n_test`` images). Not counted: pruning, the final accuracies and the patch PCA (a
    27 × 27 covariance), each under one epoch's forward passes."""
    full = bench.layer_macs(ConvNet(TEACHER_WIDTHS))
    pruned = bench.layer_macs(ConvNet(tuple(cfg.pruned_widths)))
    train = (bench.teacher_flops(full, images=cfg.n_train, epochs=cfg.teacher_epochs)
             + bench.teacher_flops(pruned, images=cfg.n_train,
                                   epochs=cfg.teacher_finetune_epochs))
    evals = cfg.n_test * (cfg.teacher_epochs * bench.net_flops(full)
                          + cfg.teacher_finetune_epochs * bench.net_flops(pruned))
    return train + evals
