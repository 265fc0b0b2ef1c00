"""Chapter 11, *The analytically tractable logit model* (Seguin et al., source C, appendix C):
the chapter's settings, its checks, its figures and the claim rows that compare them with the
paper.

The model's formulas (printed and derived) are in :mod:`tsrobust.logit_model`; this module
decides which N and β are checked, how many random starts the numerical search gets, what the
figures show and what counts as agreeing with the paper. Records: ``verification`` (the table of
closed forms against numerical stationary points), ``thresholds`` (the admissible-β thresholds
for N = ``n_classes`` and as a function of N), ``exact`` (the exact loss minimised over S_N).
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors
from tqdm.auto import tqdm

from tsrobust import logit_model as lm
from tsrobust import results
from tsrobust.params import Setting
from tsrobust.plotting import live_figure
from tsrobust.results import Row, sanity_check, verdict

CHAPTER = "11_logit_model"
"""The chapter's key in ``results/<profile>/``."""

PAPER_THRESHOLD = 3.5
"""Fig. C.1 and C.2.4: misclassified inputs admit stationary points only for β > 3.5."""

FORMULA_TOL = 1e-6
"""A closed form is right when it lies within this of a numerical stationary point."""

SETTINGS = {
    "n_classes": Setting(int, smoke=10, gpu=10, paper=10, min=3,
                         doc="number of classes N of the figures (source C: CIFAR-10, N = 10)"),
    "eps_error": Setting(float, smoke=0.2, gpu=0.2, paper=0.2, min=0.0, max=1.0,
                         doc="training error rate ε_error of Fig. C.2 and C.3 (the source does not "
                             "give it; our choice)"),
    "eps_adversarial": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=0.0,
                               doc="FGSM strength ε of Fig. C.3 (source: 0.1)"),
    "beta_max": Setting(float, smoke=10.0, gpu=10.0, paper=10.0, min=1.0,
                        doc="largest β drawn and searched for thresholds"),
    "grid": Setting(int, smoke=121, gpu=401, paper=401, min=11,
                    doc="grid points per β axis of the figures and the threshold search"),
    "check_n": Setting(tuple, smoke=(3, 10, 100), gpu=(3, 10, 100), paper=(3, 10, 100), min=3,
                       doc="numbers of classes N of the verification table"),
    "check_betas": Setting(tuple, smoke=(1.0, 2.5, 3.5, 5.0), gpu=(1.0, 2.0, 2.5, 3.0, 3.5, 5.0),
                           paper=(1.0, 2.0, 2.5, 3.0, 3.5, 5.0), min=0.01,
                           doc="β of the verification table"),
    "starts": Setting(int, smoke=12, gpu=60, paper=60, min=1,
                      doc="random starts of each numerical search for stationary points"),
    "threshold_ns": Setting(tuple, smoke=(3, 5, 10, 20, 34, 50, 100, 1000),
                            gpu=(3, 4, 5, 7, 10, 15, 20, 30, 34, 40, 50, 70, 100, 300, 1000),
                            paper=(3, 4, 5, 7, 10, 15, 20, 30, 34, 40, 50, 70, 100, 300, 1000),
                            min=3, doc="numbers of classes N of the threshold curve"),
}


# --------------------------------------------------------------------------------------------
# Verification: closed forms against the numerical stationary points of Eq. (3)
# --------------------------------------------------------------------------------------------

def _nearest(points, target) -> float:
    points = np.asarray(points, dtype=float)
    target = np.asarray(target, dtype=float)
    if len(points) == 0 or not np.all(np.isfinite(target)):
        return math.inf
    return float(np.abs(points - target).max(axis=1).min())


def verification(*, check_n, check_betas, starts: int, seed: int) -> dict:
    """One row per (case, N, β, root): the printed closed form, ours, the nearest numerical
    stationary point of Eq. (3) and the distances, the kind of our point (minimum / saddle /
    maximum) and whether it lies in S_N. A printed point with no numerical stationary point
    near it is not one."""
    rows = []
    pairs = [(n, b) for n in check_n for b in check_betas]
    for n, beta in tqdm(pairs, desc="stationary points of Eq. (3)"):
        num = lm.numerical_stationary_points(beta, n, "correct", starts=starts, seed=seed)
        for s in (1, -1):
            ours, printed = float(lm.f_derived(beta, n, s)), float(lm.f_printed(beta, n, s))
            ok = np.isfinite(ours)
            rows.append({
                "case": "correct", "N": n, "beta": beta, "root": "+" if s > 0 else "−",
                "printed": [printed], "derived": [ours] if ok else None,
                "d_printed": _nearest(num, [printed]), "d_derived": _nearest(num, [ours]),
                "kind": lm.stationary_kind(lm.correct_vector(n, ours), beta, 0, 0) if ok else "none",
                "in_s_n": bool(ok and ours < beta), "n_numerical": len(num)})
        num = lm.numerical_stationary_points(beta, n, "misclassified", starts=starts, seed=seed)
        ours_all = lm.misclassified_derived(beta, n)
        for s in (1, -1):
            printed = [float(lm.g_printed(beta, n, s)), float(lm.psi_printed(beta, n, s))]
            rows.append({
                "case": "misclassified (printed)", "N": n, "beta": beta,
                "root": "+" if s > 0 else "−", "printed": printed, "derived": None,
                "d_printed": _nearest(num, printed), "d_derived": math.nan, "kind": "",
                "in_s_n": bool(np.all(np.isfinite(printed)) and beta > max(printed)),
                "n_numerical": len(num)})
        for i, point in enumerate(ours_all):
            v = lm.misclassified_vector(n, *point)
            rows.append({
                "case": "misclassified (derived)", "N": n, "beta": beta, "root": str(i + 1),
                "printed": None, "derived": [float(p) for p in point], "d_printed": math.nan,
                "d_derived": _nearest(num, point), "kind": lm.stationary_kind(v, beta, 0, 1),
                "in_s_n": bool(beta > max(point)), "n_numerical": len(num)})
    return {"rows": rows}


def _num(x) -> float:
    """A recorded number as a float: the record stores inf and NaN as strings."""
    return math.nan if x is None else float(x)


def _floats(d: dict) -> dict:
    return {k: _num(v) for k, v in d.items()}


def _finite_max(values) -> float:
    vals = [_num(v) for v in values if v is not None and np.isfinite(_num(v))]
    return max(vals) if vals else math.nan


def verification_summary(values: dict) -> dict:
    """The largest distances to a numerical stationary point: of our roots (where they exist) and
    of the printed ones, per case."""
    rows = values["rows"]
    out = {}
    for case in ("correct", "misclassified"):
        mine = [r for r in rows if r["case"].startswith(case) and r["derived"] is not None]
        found = [_num(r["d_derived"]) <= FORMULA_TOL * max(1.0, max(abs(x) for x in r["derived"]))
                 for r in mine]
        printed = [r for r in rows if r["case"].startswith(case) and r["printed"] is not None
                   and np.all(np.isfinite(r["printed"]))]
        out[case] = {"derived_max": _finite_max(r["d_derived"] for r, ok in zip(mine, found)
                                                if ok),
                     "derived_missing": len(found) - sum(found),
                     "printed_min": min((_num(r["d_printed"]) for r in printed),
                                        default=math.nan)}
    return out


def verification_table(values: dict) -> results.MarkdownTable:
    """The verification table as markdown: one line per root."""
    def fmt(v):
        return results.MISSING if v is None else ", ".join(f"{_num(x):.6g}" for x in v)

    lines = ["| case | N | β | root | printed (f or g, ψ) | derived | distance of printed to "
             "nearest numerical | distance of derived | kind | in S_N |", "|" + "---|" * 10]
    for r in values["rows"]:
        d_p, d_d = _num(r["d_printed"]), _num(r["d_derived"])
        dp = results.fmt(d_p, ".2g") if np.isfinite(d_p) else (
            "none found" if r["printed"] is not None else results.MISSING)
        dd = results.fmt(d_d, ".1e") if np.isfinite(d_d) else (
            "not found" if r["derived"] is not None else results.MISSING)
        lines.append(f"| {r['case']} | {r['N']} | {r['beta']:g} | {r['root']} | "
                     f"{fmt(r['printed'])} | {fmt(r['derived'])} | {dp} | {dd} | {r['kind']} | "
                     f"{'yes' if r['in_s_n'] else 'no'} |")
    return results.MarkdownTable("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Thresholds of the admissible β
# --------------------------------------------------------------------------------------------

def _thresholds_for(n: int, beta_max: float, grid: int) -> dict:
    lo = 0.01
    out = {}
    for s, name in ((1, "plus"), (-1, "minus")):
        for squared in (False, True):
            key = f"printed_{name}" + ("_squared" if squared else "")
            out[key] = lm.admissible_threshold(
                lambda b, s=s, sq=squared: lm.margin(b, lm.g_printed(b, n, s, sq),
                                                     lm.psi_printed(b, n, s, sq)),
                lo, beta_max, grid)
    out["printed_both"] = max(out["printed_plus"], out["printed_minus"])
    out["printed_either"] = min(out["printed_plus"], out["printed_minus"])
    out["derived_any"] = lm.admissible_threshold(
        lambda b: lm.misclassified_margin_derived(b, n), lo, beta_max, grid)
    out["correct_printed_plus"] = lm.admissible_threshold(
        lambda b: lm.margin(b, lm.f_printed(b, n, 1)), lo, beta_max, grid)
    out["correct_derived_edge"] = math.log(2 * (n - 1))  # f_derived real for β ≤ ln 2(N−1)
    out["log_n_minus_1"] = math.log(n - 1)
    return out


def thresholds(*, n_classes: int, threshold_ns, beta_max: float, grid: int) -> dict:
    """The thresholds for N = ``n_classes`` and for every N of ``threshold_ns``."""
    ns = sorted(set(threshold_ns) | {n_classes})
    per_n = {str(n): _thresholds_for(n, beta_max, grid)
             for n in tqdm(ns, desc="thresholds over N")}
    return {"n": n_classes, "main": per_n[str(n_classes)], "per_n": per_n}


def exact_check(*, n_classes: int, starts: int, seed: int, beta: float = PAPER_THRESHOLD) -> dict:
    """The exact loss minimised over S_N at β = 3.5 for both cases (see
    :func:`tsrobust.logit_model.exact_minimum`)."""
    out = {}
    for case in ("correct", "misclassified"):
        r = lm.exact_minimum(beta, n_classes, case, starts=max(2, starts // 4), seed=seed)
        out[case] = {"loss": r["loss"], "infimum": r["infimum"], "on_boundary": r["on_boundary"]}
    out["beta"] = beta
    return out


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def _betas(beta_max, grid):
    return np.linspace(0.05, beta_max, grid)


def plot_constraints(n: int, *, beta_max: float, grid: int, main: dict | None = None):
    """Fig. C.1: β minus the largest component of each stationary point, against β, shaded where
    positive (the point lies in S_N, β admissible). Left: correct inputs, printed f± and our f±;
    middle: misclassified, printed g±, ψ±; right: misclassified, our four roots."""
    b = _betas(beta_max, grid)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), sharey=True)
    clip = lambda y: np.clip(np.where(np.isfinite(y), y, np.nan), -15, 15)  # noqa: E731
    ax = axes[0]
    for s, ls in ((1, "-"), (-1, "--")):
        sign = "+" if s > 0 else "−"
        ax.plot(b, clip(b - lm.f_printed(b, n, s)), ls, color="tab:blue", label=f"printed f{sign}")
        ax.plot(b, clip(b - lm.f_derived(b, n, s)), ls, color="tab:red", label=f"derived f{sign}")
    ax.set_title(f"correct inputs (N = {n}): β − f(β)")
    ax = axes[1]
    for s, ls in ((1, "-"), (-1, "--")):
        sign = "+" if s > 0 else "−"
        m = lm.margin(b, lm.g_printed(b, n, s), lm.psi_printed(b, n, s))
        ax.plot(b, clip(m), ls, color="tab:blue", label=f"printed g{sign}, ψ{sign}")
        ax.fill_between(b, 0, 15, where=m > 0, color="tab:blue", alpha=0.08 if s > 0 else 0.15)
    ax.set_title("misclassified, printed: β − max(g, ψ)")
    ax = axes[2]
    sols = [lm.misclassified_derived(float(x), n) for x in b]
    for i in range(4):
        m = np.array([x - max(s[i]) if len(s) > i else np.nan for x, s in zip(b, sols)])
        ax.plot(b, clip(m), color=plt.cm.Reds(0.4 + 0.15 * i), label=f"derived root {i + 1}")
    anym = lm.misclassified_margin_derived(b, n)
    ax.fill_between(b, 0, 15, where=anym > 0, color="tab:red", alpha=0.1)
    ax.set_title("misclassified, derived: β − max(g, ψ)")
    for ax in axes:
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(PAPER_THRESHOLD, color="k", ls=":", lw=1, label="β = 3.5 (source)")
        ax.set_xlabel("β (largest logit)")
        ax.set_ylim(-15, 15)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("β − largest other component (> 0: admissible)")
    if main is not None:
        axes[1].axvline(_num(main["printed_both"]), color="tab:blue", ls="-.", lw=1)
    fig.suptitle("Fig. C.1 redrawn: which β admit a stationary point in S_N (shaded: admissible)")
    fig.tight_layout()
    return fig


def surfaces(n: int, *, eps_error: float, eps_adversarial: float, beta_max: float, grid: int):
    """The mean-field loss (Fig. C.2) and the relative gap change (Fig. C.3) on the (β✓, β✗)
    grid, with the printed formulas (f+, g+, ψ+, Eq. 10 as printed) and with ours (f+, the
    admissible root of lowest exact loss, Eq. 10 with its missing term). Ω✓ = Ω✗ = ε (every
    training input weighs 1/N_data in Eq. 8: our reading of 'unit-norm inputs')."""
    b = _betas(beta_max, grid)
    out = {"beta": b}
    f_p, f_d = lm.f_printed(b, n, 1), lm.f_derived(b, n, 1)
    g_p, psi_p = lm.g_printed(b, n, 1), lm.psi_printed(b, n, 1)
    g_d, psi_d = lm.misclassified_branch(b, n)
    for name, f, g, psi, gap_fn in (("printed", f_p, g_p, psi_p, lm.gap_change_printed),
                                    ("derived", f_d, g_d, psi_d, lm.gap_change_derived)):
        ok = np.where(b > f, lm.correct_loss(b, n, f), np.nan)
        wrong = np.where(b > np.fmax(g, psi), lm.misclassified_loss(b, n, g, psi), np.nan)
        out[f"loss_{name}"] = lm.mean_field_loss(ok, wrong, eps_error)
        change = gap_fn(b[None, :], f[None, :], b[:, None], g[:, None], psi[:, None], n,
                        eps_error, eps_adversarial, eps_adversarial)
        gap = (b - f)[None, :]
        rel = np.abs(change) / np.abs(gap)
        out[f"relative_{name}"] = np.where(np.isfinite(out[f"loss_{name}"]), rel, np.nan)
        out[f"change_{name}"] = np.where(np.isfinite(out[f"loss_{name}"]), change, np.nan)
    return out


def plot_surfaces(s: dict, *, which: str, n: int, eps_error: float, eps_adversarial: float,
                  threshold: float | None = None):
    """Fig. C.2 (``which="loss"``) or C.3 (``which="relative"``): printed | derived panels over
    (β✓, β✗); white where no admissible stationary point exists."""
    b = s["beta"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, name in zip(axes, ("printed", "derived")):
        z = s[f"{which}_{name}"]
        if which == "loss":
            im = ax.pcolormesh(b, b, z, shading="auto", cmap="viridis")
            label = "mean-field loss"
        else:
            pos = z[np.isfinite(z) & (z > 0)]
            norm = colors.LogNorm(vmin=max(pos.min(), 1e-4), vmax=pos.max()) if pos.size else None
            im = ax.pcolormesh(b, b, np.where(z > 0, z, np.nan), shading="auto", cmap="magma",
                               norm=norm)
            label = "|Δgap| / gap"
        fig.colorbar(im, ax=ax, label=label)
        ax.axhline(PAPER_THRESHOLD, color="w", ls=":", lw=1.2)
        if threshold is not None and name == "printed" and np.isfinite(threshold):
            ax.axhline(threshold, color="c", ls="--", lw=1.2)
        ax.set_xlabel("β✓ (largest logit, correct inputs)")
        ax.set_ylabel("β✗ (largest logit, misclassified inputs)")
        ax.set_title(f"{name} formulas")
    what = ("Fig. C.2: mean-field loss" if which == "loss"
            else f"Fig. C.3: relative gap change, ε = {eps_adversarial:g}")
    fig.suptitle(f"{what}, N = {n}, ε_error = {eps_error:g} (dotted: β✗ = 3.5; dashed: the "
                 f"printed formulas' threshold)")
    fig.tight_layout()
    return fig


def plot_threshold_curve(values: dict):
    """The threshold of misclassified inputs as a function of N: printed formulas (both roots
    admissible, and either), ln(N − 1), our derivation, and the source's 3.5."""
    per = values["per_n"]
    ns = np.array(sorted(int(k) for k in per))
    get = lambda key: np.array([_num(per[str(n)][key]) for n in ns])  # noqa: E731
    fig, ax = plt.subplots(figsize=(7, 4.3))
    ax.semilogx(ns, get("printed_both"), "o-", color="tab:blue", label="printed g±, ψ±: both roots")
    ax.semilogx(ns, get("printed_either"), "s--", color="tab:blue", alpha=0.6,
                label="printed: either root (= ln(N − 1), the pole)")
    ax.semilogx(ns, get("derived_any"), "^-", color="tab:red", label="derived: some root in S_N")
    ax.semilogx(ns, get("correct_derived_edge"), ":", color="tab:red",
                label="derived, correct inputs: f± exist only below ln 2(N − 1)")
    ax.axhline(PAPER_THRESHOLD, color="k", ls=":", label="3.5 (source, N = 10)")
    ax.axvline(10, color="gray", lw=0.8)
    ax.set_xlabel("number of classes N")
    ax.set_ylabel("threshold β")
    ax.set_title("Where misclassified inputs start to admit stationary points")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def model_widget(cfg, *, grid: int = 61):
    """Sliders for N, ε_error and ε_adversarial that redraw Fig. C.1–C.3 (a coarse grid, so that
    each change takes a second or two; :func:`tsrobust.plotting.live_figure`, so that it works
    under a plain papermill run and shows its first figures in the static book)."""

    def redraw(n_classes, eps_error, eps_adversarial):
        s = surfaces(n_classes, eps_error=eps_error, eps_adversarial=eps_adversarial,
                     beta_max=cfg.beta_max, grid=grid)
        return [plot_constraints(n_classes, beta_max=cfg.beta_max, grid=grid),
                *(plot_surfaces(s, which=which, n=n_classes, eps_error=eps_error,
                                eps_adversarial=eps_adversarial)
                  for which in ("loss", "relative"))]

    return live_figure(
        redraw,
        n_classes=widgets.IntSlider(value=cfg.n_classes, min=3, max=100,
                                    continuous_update=False, description="N"),
        eps_error=widgets.FloatSlider(value=cfg.eps_error, min=0.0, max=0.5, step=0.05,
                                      continuous_update=False, description="ε_error"),
        eps_adversarial=widgets.FloatSlider(value=cfg.eps_adversarial, min=0.01, max=0.3,
                                            step=0.01, continuous_update=False,
                                            description="ε_adv"),
    )


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------

def claim_rows(verif: dict, thr: dict, exact: dict, surf: dict, *, paper_scale: bool,
               robust_mean_max_logit: float | None = None) -> list[Row]:
    """The source's claims about its model against ours.

    ``verif``: :func:`verification` values; ``thr``: :func:`thresholds` values; ``exact``:
    :func:`exact_check` values; ``surf``: :func:`surfaces` output; ``paper_scale``: whether the
    run is at the paper profile's settings; ``robust_mean_max_logit``: the mean largest logit of
    an adversarially trained network from a record of the logit-distribution chapter, if any."""
    summ = verification_summary(verif)
    rows = []
    for case, eq in (("correct", "f± of Eq. 4"), ("misclassified", "g±, κ, ψ± of Eq. 5")):
        d = summ[case]["printed_min"]
        ours = summ[case]["derived_max"]
        rows.append(Row(
            f"{eq}: stationary points of Eq. 3 (closest printed root to a numerical one)",
            d, 0.0, "C.2.4, Eq. 4" if case == "correct" else "C.2.4, Eq. 5",
            verdict(d, 0.0, abs_tol=FORMULA_TOL, paper_scale=paper_scale),
            f"our roots lie within {results.fmt(ours, '.1e')} of the numerical stationary points "
            f"({summ[case]['derived_missing']} of ours not found by the search); a printed root "
            f"counts as right within {FORMULA_TOL:g}"))
    n = thr["n"]
    main = _floats(thr["main"])
    t = main["printed_both"]
    rows.append(Row(
        f"misclassified inputs admit stationary points only for β > 3.5 (N = {n}), printed "
        "formulas", t, PAPER_THRESHOLD, "Fig. C.1",
        verdict(t, PAPER_THRESHOLD, abs_tol=0.05, paper_scale=paper_scale),
        f"both printed roots admissible above {t:.3f}, one above {main['printed_either']:.3f} "
        f"(= ln(N − 1), the pole of g±); with κ's denominator squared "
        f"{max(main['printed_plus_squared'], main['printed_minus_squared']):.3f}"))
    td = main["derived_any"]
    rows.append(Row(
        f"the same threshold from our derivation (N = {n})", td, PAPER_THRESHOLD, "Fig. C.1",
        verdict(td, PAPER_THRESHOLD, abs_tol=0.05, paper_scale=paper_scale),
        "some stationary point of Eq. 3 lies in S_N from this β on; none of them is a local "
        "minimum of Eq. 3 in S_N (table: kinds)"))
    if robust_mean_max_logit is None:
        rows.append(Row("robust networks' mean largest logit ≈ 3.5", None, PAPER_THRESHOLD,
                        "C.2.4", results.INCONCLUSIVE,
                        "waits for the logit-distribution chapter's records of adversarially "
                        "trained networks"))
    else:
        rows.append(Row("robust networks' mean largest logit ≈ 3.5", robust_mean_max_logit,
                        PAPER_THRESHOLD, "C.2.4",
                        verdict(robust_mean_max_logit, PAPER_THRESHOLD, abs_tol=0.5,
                                paper_scale=paper_scale),
                        "from the logit-distribution chapter's record; tolerance 0.5"))
    ex = exact
    at_edge = all(abs(ex[c]["loss"] - ex[c]["infimum"]) < 1e-3
                  for c in ("correct", "misclassified"))
    rows.append(Row(
        "the exact cross-entropy has stationary points in S_N near the perturbative ones",
        "none: the minimiser approaches the infimum" if at_edge else "a lower interior value",
        "yes",
        "C.2.4", verdict(0.0, 1.0, direction_holds=not at_edge, paper_scale=paper_scale),
        f"β = {ex['beta']:g}: lowest exact loss {ex['correct']['loss']:.2e} (correct; infimum 0) "
        f"and {ex['misclassified']['loss']:.4f} (misclassified; infimum ln 2 = 0.6931), approached "
        "only at the edge of S_N (v_i → −∞, v_y → β): the gradient p_i − y_i never vanishes"))
    neg = [surf[f"change_{k}"] for k in ("printed", "derived")]
    neg = np.concatenate([c[np.isfinite(c)] for c in neg])
    rows.append(Row(
        "adversarial perturbations shrink the gaps of correct logits (δgap < 0)",
        f"{int((neg < 0).sum())} of {neg.size} grid points", "all", "C.2.5, Eq. 10",
        sanity_check(bool(neg.size) and bool((neg < 0).all())),
        "holds at every logit set, not only for β✗ > 3.5: Eq. 9 is −N Σ_ν Ω_ν × (spread of "
        "z^ν) ≤ 0"))
    return rows


def threshold_text(values: dict) -> str:
    """The thresholds found for N = ``values["n"]``, as a paragraph with the numbers."""
    m, n = _floats(values["main"]), values["n"]
    per = values["per_n"]
    crossing = [int(k) for k in sorted(per, key=int)
                if _num(per[k]["printed_both"]) >= PAPER_THRESHOLD]
    cross = (f"the printed formulas' threshold first reaches 3.5 at N = {crossing[0]} of the "
             f"N tried" if crossing else "the printed formulas' threshold stays below 3.5 for "
             "every N tried")
    derived = ("from the smallest β searched on" if m["derived_any"] <= 0.011
               else f"for β > {m['derived_any']:.3f}")
    return (f"For N = {n}: with the printed g±, ψ±, both roots are admissible for "
            f"**β > {m['printed_both']:.3f}** and one for β > {m['printed_either']:.3f} "
            f"(= ln(N − 1) = {m['log_n_minus_1']:.3f}, the pole of g±); with κ's denominator "
            f"squared, β > {max(m['printed_plus_squared'], m['printed_minus_squared']):.3f}. "
            f"With our derivation, some stationary point of Eq. (3) lies in S_N {derived}: "
            f"**no threshold**. Correct inputs: the printed f+ is admissible for "
            f"β > {m['correct_printed_plus']:.3f}; ours exist only for "
            f"β ≤ ln 2(N − 1) = {m['correct_derived_edge']:.3f}. Neither gives 3.5; {cross}.")
