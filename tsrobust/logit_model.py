"""The analytically tractable logit model of Seguin et al. (source C, appendix C).

A trained network's logit vector z is replaced by a *surrogate* β φ̂ + v (C.2.1–C.2.2): β is
z's largest component, φ̂ = e_k the one-hot vector of its class k, and v a vector of the set
S_N(β φ̂) of Eq. (1): orthogonal to φ̂ (so v_k = 0) with every component below β (so the top class
stays k). For a correctly classified input φ̂ = y; for a misclassified one φ̂ ⊥ y. Within S_N
the source minimises the cross-entropy over v (Eq. 2), through its third-order Taylor expansion
around β φ̂ (Eq. 3), and prints the stationary points: f±(β) for correct inputs (Eq. 4) and
g±(β), κ(β), ψ±(β) for misclassified ones (Eq. 5), with the β for which they lie in S_N.

This module holds the printed formulas (``*_printed``) beside our own derivation
(``*_derived``), so that the two can be compared with each other and with a direct numerical
search for the stationary points of Eq. (3). The derivation (C.2.4, redone): with
p = softmax(β φ̂), m = p·v and σ² = v·Q v, the gradient of Eq. (3) in a free component i ≠ k is

    ∂L₃/∂v_i = p_i [1 + (v_i − m) + ½((v_i − m)² − σ²)] − y_i ,

(:func:`expanded_gradient`). For a correct input with v = f (1 − y) this vanishes when
(1+E)² + (1+E) f + ½(1−E) f² = 0, E := (N−1) e^{−β}, i.e.

    f±(β) = (1+E)/(1−E) · [−1 ± √(2E − 1)] ,

real only for β ≤ ln(2(N−1)) (:func:`f_derived`). For a misclassified input with
v = g y + ψ (1 − φ̂ − y), write u = ψ − m and w = g − m: the two conditions read
(1+u)² + 1 = σ² and (1+w)² + 1 = σ² + 2/p_y, which reduce to one quartic in u
(:func:`misclassified_derived`). Neither matches the printed Eqs. (4)–(5); see the chapter.

The cross-entropy itself (not its expansion) has no stationary point in S_N at all: its gradient
in a free component is p_i − y_i, which is never 0 for a class i ∉ {k, y} (p_i > 0), nor for
i ≠ k when y = e_k. The stationary points above belong to the truncated series only.

Adversarial perturbations (C.2.5): the FGSM change of the logit gap of a correctly classified
input, Eq. (9) from Eq. (8) and Eq. (10) once the surrogates are substituted
(:func:`gap_change_printed`, :func:`gap_change_derived`, and :func:`gap_change_eq8` that evaluates
Eq. (8) directly on a set of logits).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import polynomial as npoly
from scipy import optimize

# --------------------------------------------------------------------------------------------
# The objects of C.2.4: logits, partition function, field, quadratic form, losses
# --------------------------------------------------------------------------------------------


def _check_n(n, least: int = 2) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < least:
        raise ValueError(f"the number of classes N must be an integer ≥ {least}, got {n!r}")
    return int(n)


def basis(n: int, i: int) -> np.ndarray:
    """The one-hot vector e_i of ℝ^N (φ̂ or y of the source)."""
    e = np.zeros(_check_n(n))
    e[i] = 1.0
    return e


def surrogate_logits(beta: float, v, top: int = 0) -> np.ndarray:
    """The surrogate logits z̃ = β φ̂ + v of C.2.1, φ̂ = e_top. ``v`` must be orthogonal to φ̂
    (``v[top] == 0``), as the set S_N of Eq. (1) demands."""
    v = np.asarray(v, dtype=float)
    if abs(v[top]) > 1e-12:
        raise ValueError(f"v must be orthogonal to φ̂ = e_{top} (v[{top}] = 0), got {v[top]!r}")
    return beta * basis(len(v), top) + v


def in_s_n(beta: float, v, top: int = 0, tol: float = 1e-12) -> bool:
    """Whether ``v`` lies in S_N(β e_top) of Eq. (1): v·e_top = 0 and max_i v_i < β (for β > 0,
    the largest component of β e_top)."""
    v = np.asarray(v, dtype=float)
    return bool(abs(v[top]) <= tol and v.max() < max(beta, 0.0))


def log_partition(beta, n: int):
    """log Z_β = β + ln(1 + e^{−β}(N−1)) of Eq. (3): the log-sum-exp of β e_k."""
    return np.logaddexp(beta, math.log(_check_n(n) - 1))


def field(beta: float, n: int, top: int = 0) -> np.ndarray:
    """The external field h_β = [1 + (e^β − 1) φ̂] / (e^β + N − 1) of Eq. (3): the softmax of
    β φ̂, i.e. the gradient of log Z at β φ̂."""
    z = beta * basis(n, top)
    p = np.exp(z - z.max())
    return p / p.sum()


def quadratic_form(h) -> np.ndarray:
    """Q(h) = DIAG(h) − h ⊗ h of Eq. (3): the Hessian of log Z where the softmax is h."""
    h = np.asarray(h, dtype=float)
    return np.diag(h) - np.outer(h, h)


def cross_entropy(z, label):
    """The exact cross-entropy L_CE(z | y) = log Σ_i e^{z_i} − z_label, over the last axis."""
    z = np.asarray(z, dtype=float)
    zmax = z.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=-1)) + zmax[..., 0]
    return lse - np.take_along_axis(z, np.asarray(label)[..., None], axis=-1)[..., 0]


def expanded_loss(v, beta: float, top: int, label: int) -> float:
    """Eq. (3) as printed: the cross-entropy of β e_top + v with label ``label``, expanded to
    third order in v around β e_top,

    log Z_β − β φ̂·y + v·(h − y) + ½ v·Q v + ⅙ (v⊙v)·Q v − ⅓ (v·h) v·Q v.
    """
    v = np.asarray(v, dtype=float)
    n = len(v)
    h, y = field(beta, n, top), basis(n, label)
    q = quadratic_form(h)
    qv = q @ v
    return float(log_partition(beta, n) - beta * (top == label) + v @ (h - y) + 0.5 * v @ qv
                 + (v * v) @ qv / 6 - (v @ h) * (v @ qv) / 3)


def expanded_gradient(v, beta: float, top: int, label: int) -> np.ndarray:
    """Gradient of Eq. (3) in the free components of v (component ``top`` is fixed at 0 by
    S_N and is returned as 0): p_i [1 + (v_i − m) + ½((v_i − m)² − σ²)] − y_i, with p = h_β,
    m = p·v and σ² = v·Q v (derived in the module docstring)."""
    v = np.asarray(v, dtype=float)
    n = len(v)
    p, y = field(beta, n, top), basis(n, label)
    d = v - p @ v
    s2 = p @ d ** 2
    g = p * (1 + d + 0.5 * (d ** 2 - s2)) - y
    g[top] = 0.0
    return g


def expanded_hessian(v, beta: float, top: int, label: int) -> np.ndarray:
    """Hessian of Eq. (3) over the N − 1 free components (``top`` removed):
    H_il = p_i [(δ_il − p_l)(1 + v_i − m) − p_l (v_l − m)]."""
    v = np.asarray(v, dtype=float)
    n = len(v)
    p = field(beta, n, top)
    d = v - p @ v
    h = p[:, None] * ((np.eye(n) - p[None, :]) * (1 + d)[:, None] - (p * d)[None, :])
    free = [i for i in range(n) if i != top]
    h = h[np.ix_(free, free)]
    return 0.5 * (h + h.T)


def stationary_kind(v, beta: float, top: int, label: int, tol: float = 1e-9) -> str:
    """``"minimum"``, ``"maximum"`` or ``"saddle"``: the kind of the stationary point ``v`` of
    Eq. (3), from the eigenvalues of :func:`expanded_hessian`."""
    ev = np.linalg.eigvalsh(expanded_hessian(v, beta, top, label))
    if ev.min() > tol:
        return "minimum"
    if ev.max() < -tol:
        return "maximum"
    return "saddle"


def correct_vector(n: int, f: float) -> np.ndarray:
    """v = f (1 − y) for a correct input, φ̂ = y = e_0 (the ansatz of Eq. 4)."""
    v = np.full(_check_n(n), float(f))
    v[0] = 0.0
    return v


def misclassified_vector(n: int, g: float, psi: float) -> np.ndarray:
    """v = g y + ψ (1 − φ̂ − y) for a misclassified input, φ̂ = e_0, y = e_1 (Eq. 5)."""
    v = np.full(_check_n(n, 3), float(psi))
    v[0], v[1] = 0.0, float(g)
    return v


# --------------------------------------------------------------------------------------------
# Correctly classified inputs, Eq. (4)
# --------------------------------------------------------------------------------------------

def _e(beta, n):
    return (n - 1) * np.exp(-np.asarray(beta, dtype=float))


def f_printed(beta, n: int, sign: int = 1):
    """f±(β) of Eq. (4) as printed: (1+E)/(1−E) [−1 ± √(1 + 2e^{−2β}(1−E)/(1+E)²)],
    E = (N−1)e^{−β}; NaN where the root is imaginary."""
    _check_n(n)
    x, e = np.exp(-np.asarray(beta, dtype=float)), _e(beta, n)
    arg = 1 + 2 * x ** 2 * (1 - e) / (1 + e) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1 + e) / (1 - e) * (-1 + sign * np.sqrt(np.where(arg >= 0, arg, np.nan)))


def f_derived(beta, n: int, sign: int = 1):
    """f±(β) from our derivation: (1+E)/(1−E) [−1 ± √(2E − 1)], E = (N−1)e^{−β}, the
    stationary points of Eq. (3) along v = f (1 − y). Real for E ≥ ½, i.e. β ≤ ln(2(N−1));
    NaN elsewhere. At E = 1 the + root is −2 (its limit) and the − root does not exist."""
    _check_n(n)
    e = _e(beta, n)
    disc = np.where(2 * e - 1 >= 0, 2 * e - 1, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (1 + e) / (1 - e) * (-1 + sign * np.sqrt(disc))
        near = np.abs(1 - e) < 1e-7
        if sign > 0:  # (√(2E−1) − 1)/(1 − E) → −1 as E → 1
            out = np.where(near, -(1 + e), out)
        else:
            out = np.where(near, np.nan, out)
    return out[()] if np.ndim(out) == 0 else out


def correct_stationarity(beta, n: int, f):
    """The condition our f± solve, divided by p_i: 1 + c f + ½ c (1 − 2s) f² with
    s = (N−1)/(e^β + N − 1) and c = 1 − s (zero at a stationary point of Eq. 3 on v = f(1−y))."""
    s = (n - 1) / (np.exp(beta) + n - 1)
    c = 1 - s
    return 1 + c * f + 0.5 * c * (1 - 2 * s) * f ** 2


# --------------------------------------------------------------------------------------------
# Misclassified inputs, Eq. (5)
# --------------------------------------------------------------------------------------------

def kappa_printed(beta, n: int, squared: bool = False):
    """κ(β) of Eq. (5) as printed, (1+E)/(1−E′) √(1 + 2(1−E)(1−E′)/(1+E)), E = (N−1)e^{−β},
    E′ = (N−3)e^{−β}; ``squared=True`` puts the square on (1+E) in the denominator, as f± of
    Eq. (4) has it. NaN where the root is imaginary."""
    _check_n(n, 3)
    x = np.exp(-np.asarray(beta, dtype=float))
    e, e3 = (n - 1) * x, (n - 3) * x
    arg = 1 + 2 * (1 - e) * (1 - e3) / ((1 + e) ** 2 if squared else (1 + e))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1 + e) / (1 - e3) * np.sqrt(np.where(arg >= 0, arg, np.nan))


def g_printed(beta, n: int, sign: int = 1, squared: bool = False):
    """g±(β) = −(1−E′)/(1−E) [1 ± κ(β)] of Eq. (5) as printed."""
    x = np.exp(-np.asarray(beta, dtype=float))
    e, e3 = (n - 1) * x, (n - 3) * x
    with np.errstate(invalid="ignore", divide="ignore"):
        return -(1 - e3) / (1 - e) * (1 + sign * kappa_printed(beta, n, squared))


def psi_printed(beta, n: int, sign: int = 1, squared: bool = False):
    """ψ±(β) = 2 [e^{−β}/(1−E) g±(β) − (1+E)/(1−E′)] of Eq. (5) as printed."""
    x = np.exp(-np.asarray(beta, dtype=float))
    e, e3 = (n - 1) * x, (n - 3) * x
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * (x / (1 - e) * g_printed(beta, n, sign, squared) - (1 + e) / (1 - e3))


def misclassified_derived(beta: float, n: int) -> np.ndarray:
    """Every real stationary point (g, ψ) of Eq. (3) on v = g y + ψ (1 − φ̂ − y), our derivation.

    With a = p_y = e^{−β}/(1+E), x = e^{−β}, u = ψ − m, w = g − m, m = x (w + (N−2) u): the
    condition of the other classes, (1+u)² + 1 = σ², and that of the label,
    (1+w)² + 1 = σ² + 2/a, give w = −1 + s R(u), R = √((1+u)² + 2/a), s = ±1, and then
    2 s R ℓ(u) = P(u) with ℓ = 1 + x − x(N−2)u and P a quadratic; squaring gives the quartic
    4 R² ℓ² − P² = 0, whose real roots u (s = sign(P/ℓ)) are the solutions. Returns an array of
    shape (k, 2), k ≤ 4, sorted by g."""
    n = _check_n(n, 3)
    x = math.exp(-beta)
    e = (n - 1) * x
    a = x / (1 + e)
    one_u = np.array([1.0, 1.0])  # 1 + u
    r2 = npoly.polyadd(npoly.polypow(one_u, 2), [2 / a])
    c = np.array([0.0, n - 2.0])  # (N−2) u
    p = npoly.polyadd(npoly.polymul([1 + x], npoly.polyadd(r2, [1.0])),
                      npoly.polymul([x], npoly.polysub(npoly.polypow(c, 2), 2 * c)))
    p = npoly.polyadd(p, [0.0, 0.0, n - 2.0])
    p = npoly.polysub(p, npoly.polymul([(1 + e) / x], npoly.polyadd(npoly.polypow(one_u, 2),
                                                                     [1.0])))
    ell = np.array([1 + x, -x * (n - 2)])
    quartic = npoly.polysub(4 * npoly.polymul(r2, npoly.polypow(ell, 2)), npoly.polypow(p, 2))
    out = []
    for root in np.roots(quartic[::-1]):
        if abs(root.imag) > 1e-7 * max(1.0, abs(root)):
            continue
        u = root.real
        lv, pv = npoly.polyval(u, ell), npoly.polyval(u, p)
        s = 1.0 if pv * lv >= 0 else -1.0
        w = -1 + s * math.sqrt(npoly.polyval(u, r2))
        m = x * (w + (n - 2) * u)
        out.append(_polish(beta, n, w + m, u + m))
    out = np.array(sorted(out), dtype=float).reshape(-1, 2)
    return out


def _reduced_gradient(beta, n, g, psi):
    grad = expanded_gradient(misclassified_vector(n, g, psi), beta, 0, 1)
    return np.array([grad[1], grad[2]])


def _polish(beta, n, g, psi, steps: int = 3):
    """A few Newton steps on the two reduced conditions (numerical Jacobian): the quartic's roots
    carry the rounding of its large coefficients (2/a ~ 2e^β)."""
    z = np.array([g, psi], dtype=float)
    for _ in range(steps):
        r = _reduced_gradient(beta, n, *z)
        h = 1e-6 * max(1.0, np.abs(z).max())
        jac = np.column_stack([(_reduced_gradient(beta, n, *(z + h * e)) -
                                _reduced_gradient(beta, n, *(z - h * e))) / (2 * h)
                               for e in np.eye(2)])
        try:
            step = np.linalg.solve(jac, r)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.abs(step).max() > 1e-3 * max(1.0, np.abs(z).max()):
            break
        z = z - step
    return tuple(z)


# --------------------------------------------------------------------------------------------
# Admissible β (Eqs. 4–5) and thresholds
# --------------------------------------------------------------------------------------------

def margin(beta, *others):
    """β − max(others): positive exactly where the stationary point lies in S_N (its components
    below β); −∞ where one of them does not exist (NaN)."""
    top = np.max(np.stack(np.broadcast_arrays(*others)), axis=0)
    out = np.asarray(beta, dtype=float) - top
    return np.where(np.isfinite(out), out, -np.inf)


def misclassified_margin_derived(beta, n: int) -> np.ndarray:
    """The largest β − max(g, ψ) over our stationary points at each β (−∞ if there is none):
    positive where at least one lies in S_N."""
    out = []
    for b in np.atleast_1d(beta):
        sols = misclassified_derived(float(b), n)
        out.append(max((b - max(g, p) for g, p in sols), default=-np.inf))
    return np.array(out)


def admissible_threshold(fun, lo: float, hi: float, num: int = 4001) -> float:
    """The smallest β₀ in [lo, hi] with ``fun(β) > 0`` for every β in (β₀, hi]: the threshold of
    an admissible set {β : fun(β) > 0} that extends to large β.

    ``fun`` is evaluated on ``num`` grid points; the last sign change is refined by bisection
    (:func:`scipy.optimize.brentq`; across a pole it converges to the pole, which is then the
    edge of the set). Returns ``lo`` when ``fun > 0`` on the whole grid and NaN when
    ``fun(hi) ≤ 0`` (no admissible set reaching ``hi``)."""
    if not hi > lo:
        raise ValueError(f"need lo < hi, got lo={lo!r}, hi={hi!r}")
    grid = np.linspace(lo, hi, num)
    vals = np.asarray(fun(grid), dtype=float)
    ok = vals > 0
    if not ok[-1]:
        return math.nan
    if ok.all():
        return float(lo)
    i = int(np.flatnonzero(~ok)[-1])  # last grid point outside the set
    a, b = grid[i], grid[i + 1]

    def scalar(t):
        v = float(np.asarray(fun(np.array([t])), dtype=float)[0])
        return v if np.isfinite(v) else -1.0

    if scalar(a) > 0:  # coarse grid and fine evaluation disagree: keep the grid's edge
        return float(b)
    return float(optimize.brentq(scalar, a, b, xtol=1e-12))


# --------------------------------------------------------------------------------------------
# The exact loss at the stationary points and the mean-field loss (Fig. C.2)
# --------------------------------------------------------------------------------------------

def correct_loss(beta, n: int, f):
    """Exact cross-entropy of β y + f (1 − y) with label y: log(e^β + (N−1)e^f) − β (NaN where
    f is NaN: no stationary point)."""
    with np.errstate(invalid="ignore"):
        return np.logaddexp(beta, math.log(n - 1) + np.asarray(f, dtype=float)) - beta


def misclassified_loss(beta, n: int, g, psi):
    """Exact cross-entropy of β φ̂ + g y + ψ(1 − φ̂ − y) with label y:
    log(e^β + e^g + (N−2)e^ψ) − g."""
    g, psi = np.asarray(g, dtype=float), np.asarray(psi, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.logaddexp(np.logaddexp(beta, g), math.log(n - 2) + psi) - g


def misclassified_branch(beta, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(g, ψ) of our derivation used for the figures: at each β, the stationary point of
    Eq. (3) that lies in S_N and has the lowest exact loss (NaN where none lies in S_N)."""
    gs, ps = [], []
    for b in np.atleast_1d(beta):
        best, pick = np.inf, (np.nan, np.nan)
        for g, p in misclassified_derived(float(b), n):
            if b > max(g, p):
                loss = float(misclassified_loss(b, n, g, p))
                if loss < best:
                    best, pick = loss, (g, p)
        gs.append(pick[0])
        ps.append(pick[1])
    return np.array(gs), np.array(ps)


def mean_field_loss(loss_correct, loss_wrong, eps_error: float) -> np.ndarray:
    """The mean-field loss of Fig. C.2 on a grid: (1 − ε_error) L(β✓) + ε_error L(β✗), with
    rows indexed by β✗ and columns by β✓ (so it plots as z[β✗, β✓])."""
    if not 0.0 <= eps_error <= 1.0:
        raise ValueError(f"ε_error must lie in [0, 1], got {eps_error!r}")
    return ((1 - eps_error) * np.asarray(loss_correct)[None, :]
            + eps_error * np.asarray(loss_wrong)[:, None])


# --------------------------------------------------------------------------------------------
# Adversarial change of the logit gap, Eqs. (8)–(10) (Fig. C.3)
# --------------------------------------------------------------------------------------------

def gap_change_printed(beta_ok, f_ok, beta_err, g_err, psi_err, n: int, eps_error: float,
                       omega_ok: float, omega_err: float):
    """δ(β✓ − f(β✓)) of Eq. (10) as printed:
    −[(1−ε)Ω✓(β✓−f)² + εΩ✗(β✗−g)²] − 2(N−2)/(N−1) εΩ✗(β✗−g)(g−ψ)."""
    gap_ok = np.asarray(beta_ok) - np.asarray(f_ok)
    gap_err = np.asarray(beta_err) - np.asarray(g_err)
    return (-((1 - eps_error) * omega_ok * gap_ok ** 2 + eps_error * omega_err * gap_err ** 2)
            - 2 * (n - 2) / (n - 1) * eps_error * omega_err * gap_err
            * (np.asarray(g_err) - np.asarray(psi_err)))


def gap_change_derived(beta_ok, f_ok, beta_err, g_err, psi_err, n: int, eps_error: float,
                       omega_ok: float, omega_err: float):
    """δ(β✓ − f(β✓)) from substituting the surrogates into Eq. (9) ourselves. For a misclassified
    logit, ((z·1)² − N z·z)/(N−1) = −[(β−g)² + 2(N−2)/(N−1)(β−g)(g−ψ) + 2(N−2)/(N−1)(g−ψ)²]:
    the printed Eq. (10) lacks the last term."""
    d = np.asarray(g_err) - np.asarray(psi_err)
    return (gap_change_printed(beta_ok, f_ok, beta_err, g_err, psi_err, n, eps_error,
                               omega_ok, omega_err)
            - 2 * (n - 2) / (n - 1) * eps_error * omega_err * d ** 2)


def gap_change_eq8(logits, omega, eps: float) -> float:
    """The change of a correct logit gap under FGSM straight from Eq. (8),
    δz^μ = ε Σ_ν Ω_ν [z^ν·(1 − N y^μ)] z^ν, averaged over the class k = y^μ of the attacked
    input (gap change δz_k − mean_{i≠k} δz_i): the average Eq. (9) takes. ``logits``: (M, N)."""
    z = np.asarray(logits, dtype=float)
    omega = np.asarray(omega, dtype=float)
    n = z.shape[1]
    changes = []
    for k in range(n):
        coef = omega * (z.sum(axis=1) - n * z[:, k])  # Ω_ν z^ν·(1 − N e_k)
        dz = eps * coef @ z
        changes.append(dz[k] - (dz.sum() - dz[k]) / (n - 1))
    return float(np.mean(changes))


def gap_change_eq9(logits, omega, eps: float) -> float:
    """Eq. (9): ε/(N−1) Σ_ν Ω_ν ((z^ν·1)² − N z^ν·z^ν)."""
    z = np.asarray(logits, dtype=float)
    n = z.shape[1]
    return float(eps / (n - 1) * np.sum(np.asarray(omega) * (z.sum(1) ** 2 - n * (z * z).sum(1))))


# --------------------------------------------------------------------------------------------
# Numerical checks: stationary points and minima of Eq. (3), minimum of the exact loss
# --------------------------------------------------------------------------------------------

def _reduced(case: str, n: int):
    if case == "correct":
        return 1, lambda t: correct_vector(n, t[0]), 0
    if case == "misclassified":
        return 2, lambda t: misclassified_vector(n, t[0], t[1]), 1
    raise ValueError(f"case must be 'correct' or 'misclassified', got {case!r}")


def _fd_gradient(fun, t, h):
    t = np.asarray(t, dtype=float)
    return np.array([(fun(t + h * e) - fun(t - h * e)) / (2 * h) for e in np.eye(len(t))])


def numerical_stationary_points(beta: float, n: int, case: str, *, starts: int, seed: int,
                                scale: float | None = None, tol: float = 1e-9) -> np.ndarray:
    """Stationary points of Eq. (3) as printed (:func:`expanded_loss`), found without our
    algebra: :func:`scipy.optimize.root` on a central-difference gradient of the loss restricted
    to the ansatz (v = f(1 − y), or v = g y + ψ(1 − φ̂ − y)), from ``starts`` random points
    (normal, standard deviation ``scale`` × 0.3, 1 or 3 at random; ``scale`` defaults to
    2√(2e^β) + 3, the size of the solutions).
    Eq. (3) is a cubic, so central differences are exact up to rounding. Returns the distinct
    converged points, shape (k, 1) or (k, 2), sorted."""
    dim, vec, label = _reduced(case, n)
    loss = lambda t: expanded_loss(vec(t), beta, 0, label)  # noqa: E731
    scale = 2 * math.sqrt(2 * math.exp(beta)) + 3 if scale is None else scale
    rng = np.random.default_rng(seed)
    found: list[np.ndarray] = []
    for _ in range(starts):
        t0 = rng.normal(0.0, scale * rng.choice([0.3, 1.0, 3.0]), dim)
        size = lambda t: 1e-4 * max(1.0, np.abs(t).max())  # noqa: E731
        sol = optimize.root(lambda t: _fd_gradient(loss, t, size(t)), t0, method="hybr",
                            options={"xtol": 1e-13, "maxfev": 400})
        t = sol.x
        if not np.all(np.isfinite(t)):
            continue
        if np.abs(_fd_gradient(loss, t, size(t))).max() > tol * max(1.0, np.abs(t).max()):
            continue
        if not any(np.abs(t - u).max() < 1e-6 * max(1.0, np.abs(t).max()) for u in found):
            found.append(t)
    return np.array(sorted(map(tuple, found)), dtype=float).reshape(-1, dim)


def numerical_local_minima(beta: float, n: int, case: str, *, starts: int, seed: int,
                           scale: float | None = None) -> np.ndarray:
    """Local minima of Eq. (3) over the whole free space (all N − 1 components of v, not only the
    ansatz), by BFGS from ``starts`` random points; a run that escapes to large ‖v‖ (Eq. 3 is a
    cubic, unbounded below) is dropped. Returns the distinct minima as full vectors v, shape
    (k, N)."""
    label = 0 if case == "correct" else 1
    if case not in ("correct", "misclassified"):
        raise ValueError(f"case must be 'correct' or 'misclassified', got {case!r}")
    scale = 2 * math.sqrt(2 * math.exp(beta)) + 3 if scale is None else scale
    rng = np.random.default_rng(seed)
    free = np.arange(1, n)

    def full(t):
        v = np.zeros(n)
        v[free] = t
        return v

    fun = lambda t: expanded_loss(full(t), beta, 0, label)  # noqa: E731
    jac = lambda t: expanded_gradient(full(t), beta, 0, label)[free]  # noqa: E731
    limit = 50 * scale
    found: list[np.ndarray] = []
    for _ in range(starts):
        t0 = rng.normal(0.0, scale, n - 1)
        res = optimize.minimize(fun, t0, jac=jac, method="BFGS", options={"gtol": 1e-11})
        t = res.x
        if (not np.all(np.isfinite(t)) or np.abs(t).max() > limit
                or np.abs(jac(t)).max() > 1e-7):
            continue
        if np.linalg.eigvalsh(expanded_hessian(full(t), beta, 0, label)).min() <= 0:
            continue
        if not any(np.abs(full(t) - u).max() < 1e-5 * max(1.0, np.abs(t).max()) for u in found):
            found.append(full(t))
    return np.array(found, dtype=float).reshape(-1, n)


def exact_minimum(beta: float, n: int, case: str, *, starts: int, seed: int,
                  floor: float = -60.0) -> dict:
    """Minimise the exact cross-entropy over S_N(β e_0) (free components in [floor, β]) by
    L-BFGS-B from ``starts`` random points. Returns the lowest loss, its vector and whether it
    sits on the boundary of the box: the exact loss has no stationary point inside S_N, so the
    minimiser runs to the edge (v_i → −∞; for a misclassified input also v_y → β), where the
    infimum is 0 (correct) or ln 2 (misclassified)."""
    label = 0 if case == "correct" else 1
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(starts):
        t0 = rng.uniform(floor / 4, beta, n - 1)

        def fun(t):
            z = np.concatenate([[beta], t])
            return float(cross_entropy(z, label))

        res = optimize.minimize(fun, t0, method="L-BFGS-B", bounds=[(floor, beta)] * (n - 1))
        if best is None or res.fun < best.fun:
            best = res
    t = best.x
    on_edge = bool(np.any(np.isclose(t, floor, atol=1e-3)) or np.any(np.isclose(t, beta,
                                                                                 atol=1e-3)))
    return {"loss": float(best.fun), "v": np.concatenate([[0.0], t]), "on_boundary": on_edge,
            "infimum": 0.0 if case == "correct" else math.log(2)}


# --------------------------------------------------------------------------------------------
# Symbolic check of the derivation (sympy)
# --------------------------------------------------------------------------------------------

def symbolic_check() -> dict:
    """Redo the derivation with sympy, for general N (the N − 1 or N − 2 equal components enter
    with their multiplicity), with X = e^β and x = e^{−β} as symbols so that every identity is
    one between rational functions (:func:`sympy.cancel`, fast):

    - ``eq3_is_taylor``: Eq. (3) equals the third-order Taylor polynomial of the exact loss
      (at N = 4, symbolic β and v, label the top class);
    - ``gradient_form``: the gradient of Eq. (3) on each ansatz equals the form of
      :func:`expanded_gradient`, p_i[1 + d + ½(d² − σ²)] − y_i;
    - ``f_derived_solves`` / ``f_printed_solves``: whether the sum and the product of our f±
      (of the printed f±) are those of the roots of the correct-input condition (Vieta);
    - ``correct_condition``: that condition as sympy prints it (× its denominator).
    """
    import sympy as sp

    big_x, x = sp.symbols("X x", positive=True)
    n = sp.Symbol("N", positive=True, integer=True)
    f, g, psi, t = sp.symbols("f g psi t", real=True)
    out = {}

    # Eq. (3) against the Taylor polynomial of log Σ e^z at z = β e_0 (N = 4, X = e^β).
    vs = sp.symbols("v1:4", real=True)
    # log(X + Σ e^{t v}) = log(X + 3) + log(1 + u), u = Σ(e^{t v} − 1)/(X + 3): expand to t³
    u = sum(t * v + (t * v) ** 2 / 2 + (t * v) ** 3 / 6 for v in vs) / (big_x + 3)
    series = sp.Poly(sp.expand(u - u ** 2 / 2 + u ** 3 / 3), t)
    taylor = sum(series.coeff_monomial(t ** k) for k in (1, 2, 3)) + sp.log(big_x + 3)
    h = [big_x / (big_x + 3)] + [1 / (big_x + 3)] * 3
    v = [0, *vs]
    hv = sum(hi * vi for hi, vi in zip(h, v))
    vqv = sum(hi * vi ** 2 for hi, vi in zip(h, v)) - hv ** 2
    vvqv = sum(hi * vi ** 3 for hi, vi in zip(h, v)) - hv * sum(hi * vi ** 2
                                                                for hi, vi in zip(h, v))
    eq3 = sp.log(big_x + 3) + hv + vqv / 2 + vvqv / 6 - hv * vqv / 3  # log Z_β − β φ̂·y + …
    out["eq3_is_taylor"] = sp.cancel(sp.expand(taylor - eq3)) == 0

    pk, a = 1 / (1 + (n - 1) * x), x / (1 + (n - 1) * x)  # softmax of β e_0, x = e^{−β}

    def loss3(groups, label_value):  # (probability, value, multiplicity) per group of classes
        m = sum(p * w * c for p, w, c in groups)
        q = sum(p * w ** 2 * c for p, w, c in groups) - m ** 2
        vv_qv = sum(p * w ** 3 * c for p, w, c in groups) - m * sum(p * w ** 2 * c
                                                                     for p, w, c in groups)
        return m - label_value + q / 2 + vv_qv / 6 - m * q / 3

    def grad_form(groups, idx, is_label):
        m = sum(p * w * c for p, w, c in groups)
        s2 = sum(p * (w - m) ** 2 * c for p, w, c in groups)
        p, w, _ = groups[idx]
        return p * (1 + (w - m) + ((w - m) ** 2 - s2) / 2) - (1 if is_label else 0)

    correct = [(pk, 0, 1), (a, f, n - 1)]
    dlc = sp.diff(loss3(correct, 0), f)
    wrong = [(pk, 0, 1), (a, g, 1), (a, psi, n - 2)]
    lw = loss3(wrong, g)
    out["gradient_form"] = all(sp.cancel(d) == 0 for d in (
        dlc - (n - 1) * grad_form(correct, 1, False),
        sp.diff(lw, g) - grad_form(wrong, 1, True),
        sp.diff(lw, psi) - (n - 2) * grad_form(wrong, 2, False)))

    cond = sp.cancel(dlc / ((n - 1) * a))
    poly = sp.Poly(sp.numer(sp.together(cond)), f)
    c2, c1, c0 = poly.all_coeffs()
    ee = (n - 1) * x
    pre = (1 + ee) / (1 - ee)
    # f± = pre (−1 ± √D): sum −2 pre, product pre² (1 − D)
    for name, disc in (("f_derived_solves", 2 * ee - 1),
                       ("f_printed_solves", 1 + 2 * x ** 2 * (1 - ee) / (1 + ee) ** 2)):
        out[name] = (sp.cancel(-c1 / c2 - (-2 * pre)) == 0
                     and sp.cancel(c0 / c2 - pre ** 2 * (1 - disc)) == 0)
    out["correct_condition"] = str(sp.factor(poly.as_expr()))
    return out
