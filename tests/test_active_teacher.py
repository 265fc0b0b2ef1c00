"""Tests of tsrobust.active_teacher (Ma & Ying): each against a hand case, an identity, a
reference solver or an exhaustive check."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from tsrobust import active_teacher as at

# --------------------------------------------------------------------------------------------
# Fig. 3.2: max-margin student, exact areas
# --------------------------------------------------------------------------------------------


def test_max_margin_two_points_and_two_squares_by_hand():
    w, b, m = at.max_margin_2d(np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([at.A, at.B]))
    np.testing.assert_allclose(w, [1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert b == pytest.approx(0.0) and m == pytest.approx(math.sqrt(2))
    # The corners of the two squares of μ (Fig. 3.2 left): closest points (.5,.5) and (-.5,-.5),
    # so the boundary is x1 + x2 = 0 with margin |(.5,.5)| = 1/√2.
    x = np.vstack([at.FIG32_LEFT_MU[at.A], at.FIG32_LEFT_MU[at.B]])
    y = np.array([at.A] * 4 + [at.B] * 4)
    w, b, m = at.max_margin_2d(x, y)
    np.testing.assert_allclose(w, [1 / math.sqrt(2)] * 2, atol=1e-12)
    assert b == pytest.approx(0.0, abs=1e-12) and m == pytest.approx(1 / math.sqrt(2))


def test_max_margin_vertex_against_edge_by_hand():
    # A = segment from (0,1) to (2,1); B = the point (1,-1): closest pair (1,1)–(1,-1).
    x = np.array([[0.0, 1.0], [2.0, 1.0], [1.0, -1.0]])
    w, b, m = at.max_margin_2d(x, np.array([at.A, at.A, at.B]))
    np.testing.assert_allclose(w, [0.0, 1.0], atol=1e-12)
    assert b == pytest.approx(0.0, abs=1e-12) and m == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_max_margin_matches_a_generic_qp_solver(seed):
    """Hard-margin SVM primal, min ½‖w‖² s.t. y(w·x + b) ≥ 1, by scipy's SLSQP."""
    rng = np.random.default_rng(seed)
    xa = rng.normal(size=(15, 2)) + np.array([2.0, 1.0])
    xb = rng.normal(size=(15, 2)) - np.array([2.0, 1.0])
    x, y = np.vstack([xa, xb]), np.array([1] * 15 + [-1] * 15)
    if np.min(y * (x @ np.array([2.0, 1.0]))) <= 0.5:  # keep clearly separable draws
        x, y = x[y * (x @ np.array([2.0, 1.0])) > 0.5], y[y * (x @ np.array([2.0, 1.0])) > 0.5]
    w, b, m = at.max_margin_2d(x, y)
    res = minimize(lambda p: 0.5 * p[:2] @ p[:2], x0=np.array([1.0, 1.0, 0.0]), method="SLSQP",
                   constraints={"type": "ineq", "fun": lambda p: y * (x @ p[:2] + p[2]) - 1},
                   options={"ftol": 1e-12, "maxiter": 500})
    assert res.success
    w_qp, b_qp = res.x[:2], res.x[2]
    norm = np.linalg.norm(w_qp)
    assert m == pytest.approx(1 / norm, rel=1e-5)
    np.testing.assert_allclose(w, w_qp / norm, atol=1e-5)
    assert b == pytest.approx(b_qp / norm, abs=1e-5)


def test_max_margin_refuses_overlapping_classes():
    x = np.array([[0.0, 0.0], [2.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="separable|touch"):
        at.max_margin_2d(x, np.array([1, 1, -1, -1]))
    with pytest.raises(ValueError, match="both classes"):
        at.max_margin_2d(x, np.array([1, 1, 1, 1]))


def test_adversarial_area_of_the_diagonal_student_by_hand():
    # Student x1 + x2 ≥ 0 → A. On Ω_A = [.5,1]×[−1,1] it errs where x2 < −x1: ∫_{.5}^{1}(1 − x1)
    # dx1 = 1/8; the same on Ω_B: 1/4 in all.
    w = np.array([1.0, 1.0]) / math.sqrt(2)
    assert at.adversarial_area(at.FIG32_LEFT_TEACHER, w, 0.0) == pytest.approx(0.25)
    assert at.adversarial_area_grid(at.FIG32_LEFT_TEACHER, w, 0.0, 400) == pytest.approx(
        0.25, abs=0.01)
    # The teacher's own boundary (x1 = 0) makes no error.
    assert at.adversarial_area(at.FIG32_LEFT_TEACHER, np.array([1.0, 0.0]), 0.0) == 0.0
    assert at.l2_robust_radius(at.FIG32_LEFT_MU, w, 0.0) == pytest.approx(1 / math.sqrt(2))


def test_right_panel_is_strongly_robust_but_not_l2_robust():
    w, b = at.FIG32_RIGHT_STUDENT
    assert at.adversarial_area(at.FIG32_RIGHT_TEACHER, w, b) == 0.0
    assert at.l2_robust_radius(at.FIG32_RIGHT_TEACHER, w, b) == 0.0
    # Within ε of the line x2 = x1 near the origin: a right triangle of area ε² in each quadrant
    # (for ε ≤ 1/√2), so the ℓ2-robust accuracy is 1 − ε² < 1 for every ε > 0.
    for eps in (1e-3, 0.1, 0.5, 0.7):
        assert at.l2_robust_fraction(at.FIG32_RIGHT_TEACHER, w, b, eps) == pytest.approx(
            1 - eps**2)


@pytest.mark.parametrize("n", [401, 801])
def test_right_panel_grid_error_is_the_one_cell_at_the_origin(n):
    # Both closed quadrants contain the origin; region_teacher labels it B (the later region)
    # and the student's line passes through it (says A): exactly one cell of area h², centred
    # at the origin when n is odd. An even grid has no cell centre on the line inside Ω_A ∪ Ω_B.
    w, b = at.FIG32_RIGHT_STUDENT
    h2 = (2 / n) ** 2
    assert at.region_teacher(at.FIG32_RIGHT_TEACHER, np.zeros((1, 2)))[0] == at.B
    assert at.linear_student(np.zeros((1, 2)), w, b)[0] == at.A
    assert at.adversarial_area_grid(at.FIG32_RIGHT_TEACHER, w, b, n) == pytest.approx(h2)
    assert at.adversarial_area_grid(at.FIG32_RIGHT_TEACHER, w, b, n + 1) == 0.0


def test_polygon_clip_and_area_against_monte_carlo():
    rng = np.random.default_rng(0)
    poly = at.box(-1, 2, 0, 1)
    a, c = np.array([1.0, 2.0]), 1.0
    exact = at.polygon_area(at.clip_halfplane(poly, a, c))
    pts = np.array([-1, 0]) + np.array([3, 1]) * rng.random((200_000, 2))
    mc = 3 * np.mean(pts @ a <= c)
    assert exact == pytest.approx(mc, abs=0.02)
    assert at.polygon_area(at.clip_halfplane(poly, a, -100.0)) == 0.0


# --------------------------------------------------------------------------------------------
# Parity: Thms 4.2–4.3
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 7, 16, 64, 100])
def test_active_learner_recovers_random_parity_with_d_plus_1_queries(d):
    rng = np.random.default_rng(d)
    for _ in range(5):
        S = at.random_parity_set(d, int(rng.integers(1, d + 1)), rng)
        teacher = at.ParityTeacher(d, S)
        assert at.learn_parity_active(teacher, d) == S
        assert teacher.n_queries == d + 1


def test_parity_by_hand_and_bad_sets():
    x = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(at.parity(x, {1, 3}), [0, 1, 1])
    np.testing.assert_array_equal(at.parity(x, {2}), [0, 1, 0])
    np.testing.assert_array_equal(at.parity(x, {1, 2, 3}), [0, 0, 1])
    for bad in (set(), {0}, {4}):
        with pytest.raises(ValueError, match="1-based"):
            at.parity(x, bad)


def test_passive_fit_is_perfect_on_mu_and_at_chance_on_nu():
    d = 10
    x_nu = at.hypercube(d)
    assert len(np.unique(x_nu, axis=0)) == 2**d
    rng = np.random.default_rng(1)
    for size in range(1, d + 1):
        S = at.random_parity_set(d, size, rng)
        alpha = at.fit_on_mu(at.ParityTeacher(d, S), d)
        np.testing.assert_allclose(alpha, np.eye(d)[0], atol=1e-12)  # h(x) = x1
        x_mu = at.mu_parity_points(d)
        assert np.all(at.linear_threshold(alpha, x_mu) == at.parity(x_mu, S))
        acc_nu = np.mean(at.linear_threshold(alpha, x_nu) == at.parity(x_nu, S))
        assert acc_nu == (1.0 if S == {1} else 0.5)


def test_walsh_hadamard_matches_the_definition():
    d = 4
    x = at.hypercube(d)
    h = np.random.default_rng(0).normal(size=2**d)
    coef = at.walsh_hadamard(h)
    for size in range(0, d + 1):
        for S in itertools.combinations(range(1, d + 1), size):
            chi = (-1.0) ** (x[:, list(np.array(S, dtype=int) - 1)].sum(1) if S else 0)
            assert coef[at.subset_to_index(S)] == pytest.approx(np.mean(h * chi))
    assert np.sum(coef**2) == pytest.approx(np.mean(h**2))  # Parseval


def test_sq_learner_cost_matches_the_closed_form_and_the_budget():
    d = 9
    rng = np.random.default_rng(2)
    for size in range(1, d + 1):
        S = at.random_parity_set(d, size, rng)
        oracle = at.CorrelationOracle(at.ParityTeacher(d, S), 0.1, rng)
        found, used = at.learn_parity_sq(oracle, d, budget=10**6)
        assert found == S and used == at.sq_queries_needed(d, S) == oracle.n_queries
    assert at.sq_queries_needed(d, set(range(1, d + 1))) == 2 ** (d - 1)  # the last candidate
    S = frozenset({1, 2, 3})
    found, used = at.learn_parity_sq(at.CorrelationOracle(at.ParityTeacher(d, S), 0.1, rng),
                                     d, budget=5)
    assert found is None and used == 5


def test_sq_lower_bound_by_hand():
    # 4α²(N − 1): for |S| = d/2 at d = 16 there are C(15, 7) = 6435 teachers of that size.
    assert at.sq_lower_bound(math.comb(15, 7), 0.05) == pytest.approx(0.01 * 6434)
    assert at.sq_lower_bound(1, 0.05) == 0.0


def test_adversarial_oracle_stays_within_tolerance():
    d, tol = 8, 0.05
    teacher = at.ParityTeacher(d, {1, 4, 6})
    oracle = at.CorrelationOracle(teacher, tol, np.random.default_rng(0), adversarial=True)
    rng = np.random.default_rng(3)
    for _ in range(30):
        table = rng.integers(0, 2, size=2**d)
        feature = lambda x, t=table: t[(x.astype(np.int64) << np.arange(d)).sum(1)]  # noqa: E731
        exact = np.mean(table * at.parity(at.hypercube(d), teacher.S))
        assert abs(oracle(feature) - exact) <= tol + 1e-12


def test_sq_student_pays_the_same_against_the_adversarial_oracle():
    # The chapter runs the student against uniform noise; the lower bound assumes an adversary.
    # This student only tells 1/2 from 1/4 (α < 1/8), so its count is the same against both.
    d, tol = 8, 0.1
    rng = np.random.default_rng(4)
    for size in range(1, d + 1):
        S = at.random_parity_set(d, size, rng)
        adversary = at.CorrelationOracle(at.ParityTeacher(d, S), tol, rng, adversarial=True)
        found, used = at.learn_parity_sq(adversary, d, budget=10**6)
        assert found == S and used == at.sq_queries_needed(d, S)


def test_gradient_descent_learns_a_one_bit_parity_and_stops_at_the_budget():
    out = at.train_parity_gd(8, {1}, width=32, batch=64, lr=0.1, budget=2000, seed=0,
                             progress=False)
    assert out["steps"] is not None and out["curve_acc"][-1] >= 0.95
    out = at.train_parity_gd(8, {1, 2, 3, 4, 5, 6, 7, 8}, width=8, batch=8, lr=0.1, budget=30,
                             seed=0, progress=False, eval_every=10)
    assert out["steps"] is None and out["curve_steps"][-1] == 30


# --------------------------------------------------------------------------------------------
# Example 4.1
# --------------------------------------------------------------------------------------------


def _dense_student(seed=0):
    rng = np.random.default_rng(seed)
    x, y = at.sample_41(200, rng)
    return at.least_squares(x, y), rng


def test_sample_41_is_balanced_and_labelled_by_the_teacher():
    x, y = at.sample_41(500, np.random.default_rng(0))
    assert x.shape == (1000, 100) and np.all((x >= 0) & (x <= 1))
    assert np.sum(y == -1) == np.sum(y == 1) == 500
    np.testing.assert_array_equal(y, np.where(x[:, 0] > x[:, 99], -1, 1))


def test_construction_flips_the_dense_student_at_the_predicted_eps_and_never_the_teacher():
    alpha, rng = _dense_student()
    nu = rng.random((500, 100))
    x = nu[at.predict_41(alpha, nu) == at.teacher_41(nu)]
    eps = at.flipping_eps(alpha, x)
    before = at.predict_41(alpha, x)
    above = at.adversarial_41(alpha, x, eps * (1 + 1e-6) + 1e-12)
    below = at.adversarial_41(alpha, x, eps * (1 - 1e-6))
    assert np.all(at.predict_41(alpha, above) != before)
    assert np.all(at.predict_41(alpha, below) == before)
    # x1 and x100 are untouched, so the teacher keeps its label at every ε.
    for scale in (0.5, 1.0, 10.0, 1000.0):
        adv = at.adversarial_41(alpha, x, eps * scale)
        np.testing.assert_array_equal(adv[:, [0, 99]], x[:, [0, 99]])
        np.testing.assert_array_equal(at.teacher_41(adv), at.teacher_41(x))
    # The formula against a bisection on the student's output.
    np.testing.assert_allclose(at.flipping_eps_search(alpha, x[:100]), eps[:100], rtol=1e-9)


def test_flippable_in_cube_against_the_extreme_point():
    alpha, rng = _dense_student(1)
    x = rng.random((300, 100))
    claim = at.flippable_in_cube(alpha, x)
    # Extreme point: every middle coordinate at the end of [0,1] that pushes toward the other class.
    toward_up = (x @ alpha < 0)[:, None]
    up = np.where(alpha[1:-1] > 0, 1.0, 0.0)
    extreme = x.copy()
    extreme[:, 1:-1] = np.where(toward_up, up, 1.0 - up)
    flips = at.predict_41(alpha, extreme) != at.predict_41(alpha, x)
    np.testing.assert_array_equal(claim, flips)
    assert 0 < claim.mean() <= 1


def test_sparse_least_squares_tends_to_the_population_solution():
    # Population normal equations: [[1/3, 1/4], [1/4, 1/3]] α = (−1/6, 1/6) → α = (−2, 2).
    x, y = at.sample_41(50_000, np.random.default_rng(0), d=2)
    alpha = at.least_squares(x, y, support=(1, 2))
    np.testing.assert_allclose(alpha, [-2.0, 2.0], atol=0.05)


def test_sparse_error_exact_by_hand_and_against_monte_carlo():
    assert at.sparse_error_exact(-2.0, 2.0) == 0.0  # the rounded student is exact
    # a1 = −2.01, a100 = 1.98: wrong on x1 < x100 < (2.01/1.98) x1, a triangle of area
    # ½(1 − 1.98/2.01).
    assert at.sparse_error_exact(-2.01, 1.98) == pytest.approx(0.5 * (1 - 1.98 / 2.01))
    rng = np.random.default_rng(0)
    x = rng.random((400_000, 100))
    alpha = np.zeros(100)
    alpha[0], alpha[-1] = -1.7, 2.3
    assert at.error_rate(alpha, x) == pytest.approx(at.sparse_error_exact(-1.7, 2.3), abs=2e-3)


def test_paper_point_is_wrong_exactly_when_a1_plus_1_01_a100_is_negative():
    # Example 4.1's point x1 = 1, x100 = 1.01 (teacher: 1): the sparse student says −1 iff
    # α1 + 1.01·α100 < 0, i.e. (α1 < 0 < α100) iff |α1| > 1.01·|α100|.
    point = np.zeros((1, 100))
    point[0, 0], point[0, -1] = 1.0, 1.01
    assert at.teacher_41(point)[0] == 1
    for a1, a100 in [(-2.01, 1.98), (-2.04, 2.05), (-2.0, 2.0), (-2.03, 2.0)]:
        alpha = np.zeros(100)
        alpha[0], alpha[-1] = a1, a100
        wrong = at.predict_41(alpha, point)[0] != 1
        assert wrong == (a1 + 1.01 * a100 < 0) == (abs(a1) > 1.01 * abs(a100))


# --------------------------------------------------------------------------------------------
# Example 4.2
# --------------------------------------------------------------------------------------------


def _lattice_points_in_disk(r):
    return sum(1 for i in range(-r, r + 1) for j in range(-r, r + 1) if i * i + j * j <= r * r)


@pytest.mark.parametrize("distribution", ["mu", "nu"])
def test_shapes_fit_the_canvas_and_texture_sits_only_where_it_should(distribution):
    size, rr = 40, (5, 10)
    s = at.sample_shapes(300, distribution=distribution, size=size, radius_range=rr,
                         rng=np.random.default_rng(0))
    assert s.images.shape == (300, size, size) and s.images.dtype == np.float32
    assert set(np.unique(s.images)) <= {0.0, 0.5, 1.0}
    rows, cols = np.indices((size, size))
    even = (rows + cols) % 2 == 0
    for img, kind, r, (ci, cj), tex in zip(s.images, s.labels, s.radius, s.centre, s.textured):
        assert rr[0] <= r <= rr[1] and r <= ci <= size - 2 - r and r <= cj <= size - 2 - r
        inside = img > 0
        # Whole shape on the canvas: its pixel count is the unclipped shape's.
        full = (2 * r + 1) ** 2 if kind == at.SQUARE else _lattice_points_in_disk(r)
        assert inside.sum() == full
        ii, jj = np.nonzero(inside)
        assert (ii.min(), ii.max(), jj.min(), jj.max()) == (ci - r, ci + r, cj - r, cj + r)
        # Texture: exactly the even pixels of a textured shape, nothing elsewhere.
        np.testing.assert_array_equal(img == 0.5, inside & even & tex)
        np.testing.assert_array_equal(img == 1.0, inside & ~(even & tex))
        # μ textures the squares, ν the disks.
        assert tex == ((kind == at.SQUARE) == (distribution == "mu"))


def test_balanced_training_set_and_canvas_check():
    s = at.sample_shapes(10, distribution="mu", size=100, radius_range=(12, 25),
                         rng=np.random.default_rng(0), balanced=True)
    assert np.sum(s.labels == at.SQUARE) == 5
    with pytest.raises(ValueError, match="does not fit"):
        at.sample_shapes(4, distribution="mu", size=30, radius_range=(5, 15),
                         rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="'mu' or 'nu'"):
        at.sample_shapes(4, distribution="test", size=30, radius_range=(5, 10),
                         rng=np.random.default_rng(0))


def test_maxpool_prefilter_removes_the_texture_of_a_square():
    size, r = 40, 8
    for centre, corner_textured in (((20, 21), False), ((20, 20), True)):
        args = ([at.SQUARE, at.SQUARE], [r, r], [centre, centre], [True, False])
        textured, plain = torch.from_numpy(at.draw_shapes(*args, size=size))
        assert not torch.equal(textured, plain)
        ft, fp = at.maxpool_prefilter(torch.stack([textured, plain]))
        diff = torch.nonzero(ft != fp).tolist()
        if not corner_textured:
            # The centre's row + column is odd, so are the corners: texture gone everywhere.
            assert diff == []
        else:
            # A textured corner pixel is the only shape pixel in the window of its diagonal
            # outside neighbour: those 4 pixels keep 0.5, every other pixel is the plain one.
            ci, cj = centre
            corners = sorted([ci + si * (r + 1), cj + sj * (r + 1)]
                             for si in (-1, 1) for sj in (-1, 1))
            assert sorted(diff) == corners
            assert all(float(ft[i, j]) == 0.5 for i, j in corners)


def test_cnn_shapes_and_a_short_training_log():
    model = at.ShapeCNN((4, 4, 4), 3, prefilter=True, generator=torch.Generator().manual_seed(0))
    assert model(torch.zeros(3, 24, 24)).shape == (3, 2)
    log = at.train_shape_cnn(prefilter=False, size=24, radius_range=(3, 6), n_train=20, n_eval=10,
                             epochs=2, batch_size=10, lr=1e-3, eval_every=3, channels=(2, 2, 2),
                             kernel_size=3, seed=0, progress=False)
    np.testing.assert_array_equal(log["steps"], [0, 3, 4])
    assert all(0 <= a <= 1 for a in [*log["test_acc"], *log["adv_acc"]])


def test_cnn_device_names_are_checked_before_training():
    # The CNN's device goes through tsrobust.runtime.choose_device (tested in test_runtime):
    # an unknown name, or CUDA on a machine without it, fails before any training.
    args = dict(prefilter=False, size=24, radius_range=(3, 6), n_train=20, n_eval=10, epochs=1,
                batch_size=10, lr=1e-3, eval_every=3, channels=(2, 2, 2), kernel_size=3, seed=0,
                progress=False)
    with pytest.raises(ValueError, match="device"):
        at.train_shape_cnn(device="tpu", **args)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            at.train_shape_cnn(device="cuda", **args)
    log = at.train_shape_cnn(device="auto", **args)
    np.testing.assert_array_equal(log["steps"], [0, 2])


def test_same_seed_same_init_with_or_without_prefilter():
    a = at.ShapeCNN(generator=torch.Generator().manual_seed(5))
    b = at.ShapeCNN(prefilter=True, generator=torch.Generator().manual_seed(5))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
