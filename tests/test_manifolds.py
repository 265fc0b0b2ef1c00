"""MFTMA against cases with known answers: Cover's points, the ℓ₂ balls of Chung et al. (2018)
in closed form, an independent quadratic-programming solver, and properties."""

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

from tsrobust import manifolds as M

PHI, CDF = stats.norm.pdf, stats.norm.cdf


# -- the exact ℓ₂ ball (independent of the package's solver) ---------------------------------
# The manifold {(s, 1) : ‖s‖ ≤ R} makes the feasible set the cone v₀ ≥ R‖v‖. With r = ‖t‖ the
# projection of T = (t, t₀) is T itself when t₀ ≥ R r (interior), 0 when t₀ ≤ −r/R (T in the
# polar cone: embedded, anchor s̃ = t/t₀) and otherwise the nearest point of the cone's edge
# (touching: F = (R r − t₀)² / (1 + R²), anchor on the sphere at −R t̂).

def _ball_f(t, R):
    r, t0 = np.linalg.norm(t[:-1]), t[-1]
    if t0 >= R * r:
        return 0.0
    if t0 <= -r / R:
        return r * r + t0 * t0
    return (R * r - t0) ** 2 / (1 + R * R)


def _ball_anchor(t, R):
    r, t0 = np.linalg.norm(t[:-1]), t[-1]
    return t[:-1] / t0 if t0 <= -r / R else -R * t[:-1] / r


def _gauss_sq(a, b, c):
    """∫_a^b φ(t) (c − t)² dt."""
    i0 = CDF(b) - CDF(a)
    i1 = PHI(a) - PHI(b)
    i2 = i0 + (a * PHI(a) if np.isfinite(a) else 0.0) - (b * PHI(b) if np.isfinite(b) else 0.0)
    return c * c * i0 - 2 * c * i1 + i2


def exact_ball(R, D):
    """Capacity and radius R_M of D-dimensional ℓ₂ balls of radius R: the mean-field averages
    of the three regimes above, integrated over r ~ χ_D and t₀ ~ N(0, 1)."""
    def inv_alpha(r):
        return (_gauss_sq(-r / R, R * r, R * r) / (1 + R * R)
                + _gauss_sq(-np.inf, -r / R, 0.0) + r * r * CDF(-r / R))

    def radius_sq(r):  # ∫_{-∞}^{-a} φ(t)/t² dt = φ(a)/a − Φ(−a)  (by parts)
        embedded = r * R * PHI(r / R) - r * r * CDF(-r / R)
        return R * R * (1 - CDF(-r / R)) + embedded

    chi = stats.chi(D)
    lo, hi = chi.ppf(1e-13), chi.isf(1e-13)  # the χ_D mass, narrow at large D
    inv = integrate.quad(lambda r: chi.pdf(r) * inv_alpha(r), lo, hi, limit=200)[0]
    r2 = integrate.quad(lambda r: chi.pdf(r) * radius_sq(r), lo, hi, limit=200)[0]
    return 1 / inv, np.sqrt(r2)


def segment(R):
    return np.array([[R], [-R]])


def polygon(R, m=360):
    a = 2 * np.pi * np.arange(m) / m
    return R * np.stack([np.cos(a), np.sin(a)], 1)


def sphere(R, m=800):
    """A Fibonacci lattice on the 2-sphere: near-uniform points."""
    i = np.arange(m) + 0.5
    z = 1 - 2 * i / m
    phi = np.pi * (1 + 5 ** 0.5) * i
    rho = np.sqrt(1 - z * z)
    return R * np.stack([rho * np.cos(phi), rho * np.sin(phi), z], 1)


def _t(n, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d + 1))


# -- one projection --------------------------------------------------------------------------

def test_anchor_point_matches_a_general_qp_solver():
    """F(T) = min ‖V − T‖² s.t. V·S_j ≥ 0, solved by SLSQP, against the NNLS route."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        m, d = rng.integers(2, 8), rng.integers(1, 5)
        pts = rng.normal(size=(m, d)) * rng.uniform(0.2, 2)
        t = rng.normal(size=d + 1)
        s = np.hstack([pts, np.ones((m, 1))])
        res = optimize.minimize(lambda v: np.sum((v - t) ** 2), t, jac=lambda v: 2 * (v - t),
                                constraints=[{"type": "ineq", "fun": lambda v: s @ v,
                                              "jac": lambda v: s}],
                                method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
        assert res.success
        anchor, f = M.anchor_point(pts, t)
        assert f == pytest.approx(res.fun, abs=1e-7)
        # KKT: with T outside the cone, F = [−T·S̃]₊² / ‖S̃‖² at the anchor S̃ = (s̃, 1)
        big_s = np.append(anchor, 1.0)
        assert f == pytest.approx(max(-t @ big_s, 0) ** 2 / (big_s @ big_s), abs=1e-9)


def test_segment_projection_is_exact_and_polygon_close():
    """A segment [−R, R] is the 1-D ball: F and the anchor agree with the closed form in every
    regime; a 360-gon is within its inscribed-circle error of the disc."""
    for R in (0.3, 1.0, 2.5):
        for t in _t(300, 1, seed=1):
            anchor, f = M.anchor_point(segment(R), t)
            assert f == pytest.approx(_ball_f(t, R), abs=1e-10)
            np.testing.assert_allclose(anchor, _ball_anchor(t, R), atol=1e-9)
    seen = set()
    for t in _t(300, 2, seed=2):
        anchor, f = M.anchor_point(polygon(1.0), t)
        assert f == pytest.approx(_ball_f(t, 1.0), rel=1e-3, abs=1e-4)
        np.testing.assert_allclose(anchor, _ball_anchor(t, 1.0), atol=2e-2)
        r = np.linalg.norm(t[:2])
        seen.add("interior" if t[2] >= r else "embedded" if t[2] <= -r else "touching")
    assert seen == {"interior", "embedded", "touching"}


# -- one manifold ----------------------------------------------------------------------------

@pytest.mark.parametrize("d,points", [(1, segment(1.0)), (2, polygon(1.0)), (3, sphere(1.0))])
def test_unit_balls_have_capacity_two_over_d_plus_one(d, points):
    """Chung, Lee & Sompolinsky: ℓ₂ balls of radius 1 in D dimensions have α = 2 / (D + 1)
    (1, 2/3, 1/2). The Monte-Carlo estimate's relative standard error at 4000 samples is ≤ 1.5 %
    (measured over seeds), the tolerance 5 %; D_M = ⟨‖t‖²⟩ = D for balls."""
    n = 4000 if d < 3 else 1500
    alpha, radius, dim = M.manifold_capacity(points, _t(n, d, seed=3))
    assert alpha == pytest.approx(2 / (d + 1), rel=0.05 if d < 3 else 0.07)
    assert exact_ball(1.0, d)[0] == pytest.approx(2 / (d + 1), rel=1e-6)  # the helper agrees
    assert dim == pytest.approx(d, rel=0.06)
    assert radius == pytest.approx(exact_ball(1.0, d)[1], rel=0.03)


@pytest.mark.parametrize("R", [0.25, 0.5, 2.0])
@pytest.mark.parametrize("d", [1, 2])
def test_balls_match_the_exact_capacity_and_radius(R, d):
    pts = segment(R) if d == 1 else polygon(R)
    alpha, radius, _ = M.manifold_capacity(pts, _t(4000, d, seed=4))
    want_alpha, want_radius = exact_ball(R, d)
    assert alpha == pytest.approx(want_alpha, rel=0.05)
    assert radius == pytest.approx(want_radius, rel=0.03)
    # the embedded regime pulls R_M below R: at R = 2 the difference is resolved
    if R == 2.0:
        assert radius < 0.92 * R


def test_capacity_falls_and_radius_grows_with_the_radius():
    t = _t(2000, 2, seed=5)
    out = [M.manifold_capacity(polygon(R, 60), t) for R in (0.1, 0.3, 1.0, 3.0, 10.0)]
    alphas, radii = [o[0] for o in out], [o[1] for o in out]
    assert all(a > b for a, b in zip(alphas, alphas[1:]))
    assert all(a < b for a, b in zip(radii, radii[1:]))
    # between points (2) and the limit R → ∞, where F = ‖t‖² + [t₀]₋²: α → 1 / (D + 1/2)
    assert alphas[0] < 2 and alphas[-1] > 1 / 2.5


def test_ball_capacity_formula():
    """Source A.4.2's α_Ball: its closed form against the integral it writes, 2 at R = 0, and
    the limit it approximates: the exact D-ball at large D with R√D fixed."""
    for R, D in ((0.0, 5), (0.3, 4), (1.0, 2), (0.1, 100)):
        a = R * np.sqrt(D)
        inv = integrate.quad(lambda t0: PHI(t0) * (a - t0) ** 2, -np.inf, a)[0] / (1 + R * R)
        assert M.ball_capacity(R, D) == pytest.approx(1 / inv, rel=1e-8)
    assert M.ball_capacity(0.0, 10) == pytest.approx(2.0)
    assert M.ball_capacity(0.05, 400) == pytest.approx(exact_ball(0.05, 400)[0], rel=0.01)
    assert M.ball_capacity(1.0, 2) != pytest.approx(exact_ball(1.0, 2)[0], rel=0.005)


# -- many manifolds --------------------------------------------------------------------------

def test_random_points_have_capacity_two():
    """Cover: P random points in N dimensions are separable up to P = 2N. Each one-point
    manifold has F = [−t₀]₊², mean 1/2; with 40 × 1000 samples the standard error of α is 0.02."""
    x = np.random.default_rng(0).normal(size=(40, 1, 50))
    g = M.manifold_analysis(list(x), n_t=1000, seed=0, progress=False)
    assert g.capacity == pytest.approx(2.0, abs=0.1)
    assert g.radius == 0 and g.dimension == 0
    assert (g.capacities > 1.6).all() and (g.capacities < 2.6).all()


def test_random_discs_match_the_exact_ball():
    """Discs of radius R_i at random centers and orientations in N = 40: the capacity is the
    exact disc capacity at each disc's radius in units of its center norm measured from the mean
    of all points (computed here independently of the package)."""
    rng = np.random.default_rng(1)
    p, n = 16, 40
    centers = rng.normal(size=(p, n))
    radii = rng.uniform(0.3, 1.5, size=p) * np.linalg.norm(centers, axis=1)
    clouds = []
    for c, r in zip(centers, radii):
        plane, _ = np.linalg.qr(rng.normal(size=(n, 2)))
        clouds.append(c + polygon(r, 72) @ plane.T)
    origin = centers.mean(0)  # a regular polygon's mean is its center
    rel = radii / np.linalg.norm(centers - origin, axis=1)
    exact = np.array([exact_ball(r, 2) for r in rel])
    g = M.manifold_analysis(clouds, n_t=1200, seed=2, progress=False)
    np.testing.assert_allclose(g.capacities, exact[:, 0], rtol=0.1)
    assert g.capacity == pytest.approx(1 / np.mean(1 / exact[:, 0]), rel=0.03)
    assert g.radius == pytest.approx(exact[:, 1].mean(), rel=0.03)
    assert g.dimension == pytest.approx(2.0, rel=0.05)


def test_larger_centers_at_fixed_radius_raise_capacity():
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(10, 30))
    offsets = [rng.normal(size=(12, 30)) * 0.3 for _ in range(10)]
    out = [M.manifold_analysis([s * c + o for c, o in zip(centers, offsets)], n_t=300, seed=0,
                               progress=False) for s in (0.5, 1.0, 2.0, 4.0)]
    caps = [g.capacity for g in out]
    assert all(a < b for a, b in zip(caps, caps[1:]))
    assert caps[-1] < 2  # points' capacity is the limit
    radii = [g.radius for g in out]  # in units of the center norm
    assert all(a > b for a, b in zip(radii, radii[1:]))


def test_center_correlation_by_hand_and_center_projection():
    # centers ±e1, ±e2: of the six pairs, two are opposite (|cos| 1), four orthogonal
    c = np.array([[1, 0], [-1, 0], [0, 1], [0, -1.0]])
    assert M.center_correlation(c) == pytest.approx(1 / 3)
    # centers on one shared axis u plus orthogonal parts: center_rank = 1 removes u, and gives
    # the analysis of the clouds built without it
    rng = np.random.default_rng(4)
    n, p = 40, 12
    u = np.zeros(n)
    u[0] = 1.0
    own = rng.normal(size=(p, n))
    own[:, 0] = 0
    shift = rng.normal(size=p) * 20
    shift -= shift.mean()
    # centered, and uncorrelated with the shifts over manifolds: then u is exactly the leading
    # principal direction of the centers
    own -= own.mean(0)
    own -= np.outer(shift, shift @ own) / (shift @ shift)
    clouds_own = []
    for c in own:
        noise = rng.normal(size=(8, n)) * 0.2
        noise[:, 0] = 0
        clouds_own.append(c + noise - noise.mean(0))  # the cloud's mean is exactly c
    with_axis = [x + a * u for x, a in zip(clouds_own, shift)]
    g_axis = M.manifold_analysis(with_axis, n_t=200, seed=0, progress=False)
    g_proj = M.manifold_analysis(with_axis, n_t=200, seed=0, center_rank=1, progress=False)
    g_own = M.manifold_analysis(clouds_own, n_t=200, seed=0, progress=False)
    assert g_axis.center_correlation > 0.5 > g_own.center_correlation
    np.testing.assert_allclose(g_proj.capacities, g_own.capacities, rtol=1e-8)
    assert g_axis.capacity > g_proj.capacity  # the shared axis had inflated the center norms


def test_translation_and_rotation_invariance():
    """The analysis is measured from the mean of all points: moving or rotating every point alike
    changes nothing (same seed, so the same Gaussian samples)."""
    rng = np.random.default_rng(5)
    clouds = [rng.normal(size=(6, 20)) * 0.5 + rng.normal(size=20) for _ in range(8)]
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    base = M.manifold_analysis(clouds, n_t=100, seed=1, progress=False)
    moved = M.manifold_analysis([x + 50.0 for x in clouds], n_t=100, seed=1, progress=False)
    turned = M.manifold_analysis([x @ q for x in clouds], n_t=100, seed=1, progress=False)
    for g in (moved, turned):
        np.testing.assert_allclose(g.capacities, base.capacities, rtol=1e-6)
        np.testing.assert_allclose(g.radii, base.radii, rtol=1e-6)
        assert g.center_correlation == pytest.approx(base.center_correlation, rel=1e-9)


def test_reproducible_and_rejects_bad_input():
    x = [np.random.default_rng(i).normal(size=(5, 8)) + 3 * i for i in range(4)]
    a = M.manifold_analysis(x, n_t=50, seed=7, progress=False)
    b = M.manifold_analysis(x, n_t=50, seed=7, progress=False)
    c = M.manifold_analysis(x, n_t=50, seed=8, progress=False)
    assert a.capacity == b.capacity and a.capacity != c.capacity
    # float32 activations, as arrays or tensors, are analysed in float64 per manifold
    f32 = M.manifold_analysis([torch.tensor(v, dtype=torch.float32) for v in x], n_t=50, seed=7,
                              progress=False)
    np.testing.assert_allclose(f32.capacities, a.capacities, rtol=1e-4)
    with pytest.raises(ValueError, match="two or more"):
        M.manifold_analysis(x[:1])
    with pytest.raises(ValueError, match="same number of features"):
        M.manifold_analysis([x[0], x[1][:, :5]])
    with pytest.raises(ValueError, match="NaN"):
        M.manifold_analysis([x[0], np.full((3, 8), np.nan)])
    with pytest.raises(ValueError, match="origin"):  # two manifolds mirrored about their mean
        M.manifold_analysis([np.ones((2, 3)), -np.ones((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="center_rank"):
        M.manifold_analysis(x, center_rank=4)
