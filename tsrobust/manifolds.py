"""Mean-field manifold capacity, radius and dimension (MFTMA; source C §4.2, Fig. 5, App. A.4).

The replica mean-field theory of Chung, Lee & Sompolinsky (2018, *Classification and geometry of
general perceptual manifolds*, PRX 8, 031003) gives the capacity α_M = P/N of P point-cloud
*manifolds* in N dimensions: the largest load at which random binary labels of whole manifolds are
still linearly separable. Cohen, Chung, Lee & Sompolinsky (2020, Nat. Commun. 11, 746) apply it
to the representations of deep networks. Source C uses *exemplar manifolds*: each manifold is one
image's ℓ∞-ball perturbations (ε = 8/255) seen at one layer.

For one manifold with points s_j ∈ ℝ^D, measured from its center in units of the center's norm,
write S_j = (s_j, 1) ∈ ℝ^{D+1} and draw Gaussian T = (t, t₀) ∈ ℝ^{D+1}. With margin κ = 0
(the only case here)

    F(T) = min_V ‖V − T‖²  subject to  V · S_j ≥ 0 for every j,          α_M⁻¹ = ⟨F(T)⟩_T

(PRX Eqs. 16–17; source App. A.4.1 writes the same as ⟨[t₀ + t·s̃]₊² / (1 + ‖s̃‖²)⟩ with the
opposite sign of T, which has the same law). The feasible set {V : V·S_j ≥ 0} is the polar of
the cone spanned by the −S_j, so by Moreau's decomposition V* = T + Σ_j α_j S_j with
α = argmin_{α ≥ 0} ‖Σ_j α_j S_j + T‖ — non-negative least squares (``scipy.optimize.nnls``) —
and F = ‖Σ_j α_j S_j‖². The *anchor point* is S̃(T) = Σ_j α_j S_j / Σ_j α_j = (s̃, 1), a convex
combination of the manifold's points; where T already satisfies every constraint (α = 0, F = 0),
s̃ is the point with the smallest overlap t·s_j (PRX's interior regime). From the anchor points
(PRX Eqs. 28–29, source App. A.4.2):

    R_M = sqrt(⟨‖s̃(T)‖²⟩_T),        D_M = ⟨(t · ŝ(T))²⟩_T,  ŝ = s̃ / ‖s̃‖.

:func:`manifold_analysis` prepares a list of point clouds as Cohen et al. (2020) do: subtract the
mean of all points, optionally project out a low-rank subspace of the manifold centers (see its
docstring for how ours differs), then per manifold subtract its center, divide by the center's
norm, and work in the span of its points (the Gaussian components orthogonal to that span do not
enter F). The summary over P manifolds is the capacity 1 / mean(1/α_i) and the means of R and D,
as in the reference implementation of Stephenson et al. (2019, source C ref. [43]).

That implementation differs from the papers' formulas in two places, and we follow the papers:
it takes R_M after subtracting the mean anchor point, and D_M = D · ⟨t̂·ŝ⟩² rather than
⟨(t·ŝ)²⟩. For the symmetric manifolds of the known cases (balls) the two agree in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from scipy.stats import norm

N_T = 200
"""Gaussian samples T per manifold (the reference implementation's examples use 200-300)."""

RANK_TOL = 1e-10
"""Singular values below this share of the largest are taken as zero when a manifold's points
are reduced to their span."""

PROGRESS_MIN = 20_000
"""A progress bar is shown when manifolds × samples reach this many projections."""


@dataclass(frozen=True)
class ManifoldGeometry:
    """The MFTMA measures of P manifolds: the summaries and the per-manifold values."""

    capacity: float
    """α_M = 1 / mean_i(1 / α_i): P/N at the separability transition (2 for points, Cover)."""
    radius: float
    """Mean over manifolds of R_M (in units of each manifold's center norm)."""
    dimension: float
    """Mean over manifolds of D_M."""
    center_correlation: float
    """Mean |cosine| between pairs of manifold centers, each measured from the centers' mean
    (before any center subspace is projected out)."""
    capacities: np.ndarray
    radii: np.ndarray
    dimensions: np.ndarray


def anchor_point(points: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    """The anchor point s̃(T) ∈ ℝ^D and F(T) for one manifold and one T = (t, t₀).

    ``points``: [m, D], the manifold measured from its center in units of the center norm (the
    center direction is the implicit coordinate 1). ``t``: [D + 1], its last entry t₀.
    """
    pts = np.asarray(points, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    m, d = pts.shape
    if t.shape != (d + 1,):
        raise ValueError(f"t must have {d + 1} entries (the points' {d} and t₀), got {t.shape}")
    overlap = pts @ t[:d]
    if overlap.min() + t[d] >= 0:  # T satisfies every constraint: V = T, F = 0 (interior)
        return pts[np.argmin(overlap)], 0.0
    a = np.vstack([pts.T, np.ones((1, m))])  # columns S_j = (s_j, 1)
    alpha, _ = nnls(a, -t, maxiter=50 * max(m, 10))
    lam = alpha.sum()
    if lam <= 0:  # on the boundary to rounding: treat as interior
        return pts[np.argmin(overlap)], 0.0
    push = a @ alpha  # V* − T
    return push[:d] / lam, float(push @ push)


def manifold_capacity(points: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    """α_M, R_M and D_M of one manifold (see the module docstring), averaged over the rows of
    ``t`` ([n_t, D + 1], standard Gaussian, last column t₀). ``points``: [m, D] as for
    :func:`anchor_point`."""
    pts = np.asarray(points, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 2 or len(t) == 0:
        raise ValueError(f"t must be [n_t, D + 1] with n_t ≥ 1, got shape {t.shape}")
    d = pts.shape[1]
    anchors = np.empty((len(t), d))
    f = np.empty(len(t))
    for i, ti in enumerate(t):
        anchors[i], f[i] = anchor_point(pts, ti)
    mean_f = f.mean()
    capacity = np.inf if mean_f == 0 else 1.0 / mean_f
    sq = (anchors ** 2).sum(1)
    radius = float(np.sqrt(sq.mean()))
    norms = np.sqrt(sq)
    proj = np.divide((t[:, :d] * anchors).sum(1), norms, out=np.zeros(len(t)), where=norms > 0)
    return float(capacity), radius, float(np.mean(proj ** 2))


def ball_capacity(radius: float, dimension: float) -> float:
    """α_Ball(R, D) of source App. A.4.2: the capacity of D-dimensional ℓ₂ balls of radius R in
    the large-D limit, α⁻¹ = ∫_{-∞}^{R√D} Dt₀ (R√D − t₀)² / (1 + R²), in closed form
    ((a² + 1) Φ(a) + a φ(a)) / (1 + R²) with a = R√D. α_MFT ≈ α_Ball(R_M, D_M) for manifolds at
    random positions and orientations; at R = 0 it is 2, the capacity of points."""
    if radius < 0 or dimension < 0:
        raise ValueError(f"radius and dimension must be ≥ 0, got {radius}, {dimension}")
    a = radius * np.sqrt(dimension)
    return float((1 + radius ** 2) / ((a ** 2 + 1) * norm.cdf(a) + a * norm.pdf(a)))


def center_correlation(centers: np.ndarray) -> float:
    """Mean |cosine| over pairs of rows of ``centers`` ([P, N]) after subtracting their mean
    (Cohen et al. 2020's center correlation ρ_center; source Fig. 5D)."""
    c = np.asarray(centers, dtype=np.float64)
    c = c - c.mean(0)
    n = np.linalg.norm(c, axis=1)
    if len(c) < 2 or (n == 0).any():
        raise ValueError("center correlation needs two or more distinct centers")
    u = c / n[:, None]
    cos = np.abs(u @ u.T)
    p = len(c)
    return float((cos.sum() - np.trace(cos)) / (p * (p - 1)))


def _check_clouds(point_clouds) -> list[np.ndarray]:
    """The clouds as NumPy arrays in their own float dtype: a layer's activations (e.g. 50 points
    × 65,536 features × 50 manifolds) are converted to float64 one manifold at a time."""
    clouds = [x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
              for x in point_clouds]
    if not all(np.issubdtype(x.dtype, np.floating) for x in clouds):
        clouds = [x.astype(np.float64) for x in clouds]
    if len(clouds) < 2:
        raise ValueError(f"manifold analysis needs two or more manifolds, got {len(clouds)}")
    dims = {x.shape[1] if x.ndim == 2 else None for x in clouds}
    if None in dims or len(dims) != 1 or any(len(x) == 0 for x in clouds):
        raise ValueError("point_clouds must be arrays [points, features], each with at least one "
                         f"point and all with the same number of features; got shapes "
                         f"{sorted({x.shape for x in clouds})[:5]}")
    if not all(np.isfinite(x).all() for x in clouds):
        raise ValueError("point_clouds contain NaN or infinite values")
    return clouds


def manifold_analysis(point_clouds, *, n_t: int = N_T, seed: int = 0, center_rank: int = 0,
                      progress: bool = True) -> ManifoldGeometry:
    """MFTMA capacity, radius, dimension and center correlation of P manifolds (source Fig. 5).

    ``point_clouds``: P arrays or tensors [points, features] (one per manifold, e.g. one image's
    perturbations through one layer, flattened; float32 is fine, each manifold is converted to
    float64 in turn, so only the input itself must fit in memory). ``n_t`` Gaussian samples per manifold come from
    ``np.random.default_rng(seed)``, so a call is reproducible.

    Preparation, as Cohen et al. (2020): the mean of all points is subtracted. ``center_rank`` = K
    > 0 then projects every point off the K leading principal directions of the (mean-subtracted)
    centers, removing their shared structure. Cohen et al. instead choose K and the subspace by
    minimizing the centers' residual correlation (a manifold optimization); the source
    (App. A.4.2) projects into "the null spaces of manifold centers" in their manner. Ours is the
    PCA version of that step, off by default. Each manifold is then measured from its own center
    in units of the center's norm, in the span of its points.
    """
    clouds = _check_clouds(point_clouds)
    if n_t < 1:
        raise ValueError(f"n_t must be ≥ 1, got {n_t}")
    p, n_features = len(clouds), clouds[0].shape[1]
    if not 0 <= center_rank < min(p, n_features):
        raise ValueError(f"center_rank must lie in [0, {min(p, n_features)}), got {center_rank}")
    origin = sum(x.sum(0, dtype=np.float64) for x in clouds) / sum(len(x) for x in clouds)
    centers = np.stack([x.mean(0, dtype=np.float64) for x in clouds]) - origin
    if (np.linalg.norm(centers, axis=1) == 0).any():
        raise ValueError(f"manifold {np.flatnonzero(np.linalg.norm(centers, axis=1) == 0)[0]}'s "
                         "center is the mean of all points, the origin of the analysis: its "
                         "capacity is undefined")
    rho = center_correlation(centers)
    basis = None
    if center_rank:
        _, _, vt = np.linalg.svd(centers - centers.mean(0), full_matrices=False)
        basis = vt[:center_rank]

    rng = np.random.default_rng(seed)
    from tqdm.auto import tqdm

    out = np.empty((p, 3))
    for i in tqdm(range(p), desc="manifolds", disable=not progress or p * n_t < PROGRESS_MIN):
        x = clouds[i].astype(np.float64) - origin
        if basis is not None:
            x = x - (x @ basis.T) @ basis
        c = x.mean(0)
        scale = np.linalg.norm(c)
        if scale == 0:
            raise ValueError(f"manifold {i}'s center is at the origin of the analysis (the mean "
                             "of all points, or the projected-out center subspace): its capacity "
                             "is undefined; use more manifolds or a smaller center_rank")
        s = (x - c) / scale
        u, sv, _ = np.linalg.svd(s, full_matrices=False)
        rank = int((sv > RANK_TOL * sv[0]).sum()) if len(sv) and sv[0] > 0 else 0
        u = u[:, :rank]
        # each axis's sign fixed (largest entry positive), so that the same points get the same
        # coordinates, and hence meet the same Gaussian samples, whatever signs the SVD returns
        u = u * np.sign(u[np.abs(u).argmax(0), np.arange(rank)])
        coords = u * sv[:rank]  # the points in an orthonormal basis of their span
        t = rng.standard_normal((n_t, rank + 1))
        out[i] = manifold_capacity(coords, t)
    a, r, d = out.T
    return ManifoldGeometry(capacity=float(1.0 / np.mean(1.0 / a)), radius=float(r.mean()),
                            dimension=float(d.mean()), center_correlation=rho,
                            capacities=a, radii=r, dimensions=d)
