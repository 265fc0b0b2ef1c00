"""The logit model of source C, appendix C: every closed form against something independent."""

import math

import numpy as np
import pytest
import torch

from tsrobust import logit_model as lm

CASES = [(3, 1.0), (3, 3.5), (10, 1.0), (10, 2.5), (10, 3.5), (10, 5.0), (50, 4.0)]


def _lse(z):
    return float(np.log(np.exp(np.asarray(z) - max(z)).sum()) + max(z))


# -- the objects of Eq. (3) -------------------------------------------------------------------

@pytest.mark.parametrize("n,beta", [(2, 0.5), (5, 2.0), (10, 3.5)])
def test_field_and_quadratic_form_are_derivatives_of_log_z(n, beta):
    z0 = beta * lm.basis(n, 2 % n)
    assert lm.log_partition(beta, n) == pytest.approx(_lse(z0), abs=1e-12)
    h, step = lm.field(beta, n, 2 % n), 1e-5
    grad = np.array([(_lse(z0 + step * e) - _lse(z0 - step * e)) / (2 * step) for e in np.eye(n)])
    np.testing.assert_allclose(h, grad, atol=1e-9)
    step = 1e-4
    hess = np.array([[(_lse(z0 + step * (ei + ej)) - _lse(z0 + step * (ei - ej))
                       - _lse(z0 - step * (ei - ej)) + _lse(z0 - step * (ei + ej))) / (4 * step ** 2)
                      for ej in np.eye(n)] for ei in np.eye(n)])
    np.testing.assert_allclose(lm.quadratic_form(h), hess, atol=1e-6)
    # the printed closed form of h_β
    printed = (1 + (math.exp(beta) - 1) * lm.basis(n, 2 % n)) / (math.exp(beta) + n - 1)
    np.testing.assert_allclose(h, printed, rtol=1e-12)


def test_exact_loss_is_torchs_cross_entropy():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 5, (7, 10))
    y = rng.integers(0, 10, 7)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y), reduction="none")
    np.testing.assert_allclose(lm.cross_entropy(z, y), ref.numpy(), rtol=1e-12)
    # the closed forms at the surrogate logits
    v = lm.correct_vector(10, -1.3)
    assert lm.correct_loss(2.0, 10, -1.3) == pytest.approx(
        float(lm.cross_entropy(lm.surrogate_logits(2.0, v), 0)), rel=1e-12)
    v = lm.misclassified_vector(10, 0.7, -2.1)
    assert lm.misclassified_loss(2.0, 10, 0.7, -2.1) == pytest.approx(
        float(lm.cross_entropy(lm.surrogate_logits(2.0, v), 1)), rel=1e-12)


@pytest.mark.parametrize("label", [0, 1])
def test_eq3_is_the_third_order_taylor_polynomial_of_the_exact_loss(label):
    rng = np.random.default_rng(1)
    n, beta = 6, 2.0
    v = rng.normal(size=n)
    v[0] = 0
    errs = [abs(float(lm.cross_entropy(lm.surrogate_logits(beta, t * v), label))
                - lm.expanded_loss(t * v, beta, 0, label)) for t in (0.02, 0.01)]
    assert errs[0] / errs[1] == pytest.approx(16, rel=0.05)  # the remainder is O(‖v‖⁴)


@pytest.mark.parametrize("label", [0, 1])
def test_gradient_and_hessian_of_eq3_match_finite_differences(label):
    rng = np.random.default_rng(2)
    n, beta, step = 7, 1.7, 1e-4
    v = rng.normal(0, 2, n)
    v[0] = 0
    free = np.eye(n)[1:]
    fd = np.array([(lm.expanded_loss(v + step * e, beta, 0, label)
                    - lm.expanded_loss(v - step * e, beta, 0, label)) / (2 * step) for e in free])
    np.testing.assert_allclose(lm.expanded_gradient(v, beta, 0, label)[1:], fd, atol=1e-8)
    fd2 = np.array([(lm.expanded_gradient(v + step * e, beta, 0, label)
                     - lm.expanded_gradient(v - step * e, beta, 0, label))[1:] / (2 * step)
                    for e in free])
    np.testing.assert_allclose(lm.expanded_hessian(v, beta, 0, label), fd2, atol=1e-7)


def test_bad_input_fails_with_a_message():
    with pytest.raises(ValueError, match="N must be an integer"):
        lm.field(1.0, 1)
    with pytest.raises(ValueError, match="orthogonal"):
        lm.surrogate_logits(1.0, [0.5, 0.0, 0.0])
    with pytest.raises(ValueError, match="ε_error"):
        lm.mean_field_loss([1.0], [1.0], 1.5)
    with pytest.raises(ValueError, match="N must be an integer ≥ 3"):
        lm.misclassified_derived(3.0, 2)


# -- Eq. (4): correctly classified inputs -----------------------------------------------------

@pytest.mark.parametrize("n,beta", [(3, 0.5), (10, 1.0), (10, 2.5), (10, 2.8), (50, 3.0)])
def test_f_derived_are_the_numerical_stationary_points_of_eq3(n, beta):
    ours = sorted(float(lm.f_derived(beta, n, s)) for s in (1, -1))
    num = lm.numerical_stationary_points(beta, n, "correct", starts=60, seed=0)[:, 0]
    assert len(num) == 2
    np.testing.assert_allclose(num, ours, atol=1e-6, rtol=1e-8)
    for f in ours:  # stationary in the whole space, not only along the ansatz
        g = lm.expanded_gradient(lm.correct_vector(n, f), beta, 0, 0)
        assert np.abs(g).max() < 1e-10


@pytest.mark.parametrize("n", [3, 10, 100])
def test_f_derived_exists_exactly_up_to_log_2_n_minus_1(n):
    edge = math.log(2 * (n - 1))
    assert np.isfinite(lm.f_derived(edge - 1e-3, n, 1))
    assert np.isnan(lm.f_derived(edge + 1e-3, n, 1))
    assert len(lm.numerical_stationary_points(edge + 0.05, n, "correct", starts=20, seed=0)) == 0


@pytest.mark.parametrize("n,beta", [(10, 1.0), (10, 3.5), (3, 2.0)])
def test_printed_f_is_not_a_stationary_point_of_eq3(n, beta):
    for s in (1, -1):
        f = float(lm.f_printed(beta, n, s))
        assert abs(lm.correct_stationarity(beta, n, f)) > 1e-2


# -- Eq. (5): misclassified inputs ------------------------------------------------------------

@pytest.mark.parametrize("n,beta", CASES)
def test_misclassified_derived_are_the_numerical_stationary_points_of_eq3(n, beta):
    ours = lm.misclassified_derived(beta, n)
    num = lm.numerical_stationary_points(beta, n, "misclassified", starts=40, seed=0)
    assert len(ours) == len(num) == 4
    for point in ours:
        dist = np.abs(num - point).max(axis=1).min()
        assert dist < 1e-6 * max(1.0, np.abs(point).max())
        grad = lm.expanded_gradient(lm.misclassified_vector(n, *point), beta, 0, 1)
        assert np.abs(grad).max() < 1e-9


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("n,beta", [(10, 3.5), (10, 5.0), (3, 4.0)])
def test_printed_g_and_psi_are_not_stationary_points_of_eq3(n, beta, squared):
    for s in (1, -1):
        g, p = lm.g_printed(beta, n, s, squared), lm.psi_printed(beta, n, s, squared)
        grad = lm.expanded_gradient(lm.misclassified_vector(n, g, p), beta, 0, 1)
        assert np.abs(grad).max() > 1e-2


def test_eq3_local_minima_of_a_misclassified_input_lie_outside_s_n():
    n, beta = 3, 3.0
    minima = lm.numerical_local_minima(beta, n, "misclassified", starts=30, seed=0)
    assert len(minima) >= 1
    assert not any(lm.in_s_n(beta, v) for v in minima)
    ours = lm.misclassified_derived(beta, n)
    kinds = [lm.stationary_kind(lm.misclassified_vector(n, *p), beta, 0, 1) for p in ours]
    assert kinds.count("minimum") == 1
    (g, p), = ours[[k == "minimum" for k in kinds]]
    assert np.abs(minima - lm.misclassified_vector(n, g, p)).max(axis=1).min() < 1e-6


@pytest.mark.parametrize("case,infimum", [("correct", 0.0), ("misclassified", math.log(2))])
def test_the_exact_loss_has_no_minimum_inside_s_n(case, infimum):
    out = lm.exact_minimum(3.0, 5, case, starts=5, seed=0)
    assert out["loss"] == pytest.approx(infimum, abs=1e-3)
    if case == "misclassified":  # v_y pressed against β, the edge of S_N
        assert out["on_boundary"] and out["v"][1] == pytest.approx(3.0, abs=1e-3)


# -- thresholds --------------------------------------------------------------------------------

def test_threshold_finder_on_functions_with_known_roots():
    assert lm.admissible_threshold(lambda b: b - 2.0, 0.0, 10.0) == pytest.approx(2.0, abs=1e-10)
    # a pole: the set starts at the pole
    assert lm.admissible_threshold(lambda b: 1 / (b - 1.5), 0.0, 10.0, num=1000) == pytest.approx(
        1.5, abs=1e-9)
    # two crossings: the last one counts
    assert lm.admissible_threshold(lambda b: (b - 1) * (b - 3), 0.0, 5.0) == pytest.approx(3.0,
                                                                                        abs=1e-9)
    assert lm.admissible_threshold(lambda b: b + 1, 0.0, 5.0) == 0.0
    assert math.isnan(lm.admissible_threshold(lambda b: -b, 0.0, 5.0))
    with pytest.raises(ValueError):
        lm.admissible_threshold(lambda b: b, 1.0, 1.0)


def test_margin_is_minus_infinity_where_a_root_is_missing():
    m = lm.margin(np.array([1.0, 2.0]), np.array([0.5, np.nan]), np.array([0.2, 0.0]))
    assert m[0] == pytest.approx(0.5) and m[1] == -np.inf


# -- Eqs. (8)–(10) -----------------------------------------------------------------------------

def test_gap_change_derived_is_eq8_on_a_set_of_surrogate_logits():
    n, eps, eps_error = 5, 0.1, 0.2
    b_ok, f, b_err, g, p = 2.0, -1.2, 3.0, 0.8, -0.6
    logits = []
    for k in range(n):  # a class-balanced set: 4 correct and 1 misclassified logit per class
        for _ in range(4):
            logits.append(b_ok * lm.basis(n, k) + f * (1 - lm.basis(n, k)))
        y = (k + 1) % n
        logits.append(b_err * lm.basis(n, k) + g * lm.basis(n, y)
                      + p * (1 - lm.basis(n, k) - lm.basis(n, y)))
    logits = np.array(logits)
    omega = np.full(len(logits), 1 / len(logits))  # Σ_ν∈✓ εΩ_ν = (1 − ε_error) ε
    direct = lm.gap_change_eq8(logits, omega, eps)
    assert direct == pytest.approx(lm.gap_change_eq9(logits, omega, eps), rel=1e-12)
    ours = lm.gap_change_derived(b_ok, f, b_err, g, p, n, eps_error, eps, eps)
    printed = lm.gap_change_printed(b_ok, f, b_err, g, p, n, eps_error, eps, eps)
    assert direct == pytest.approx(float(ours), rel=1e-12)
    assert abs(direct - float(printed)) > 1e-3


def test_mean_field_loss_is_the_weighted_sum_on_the_grid():
    z = lm.mean_field_loss(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0]), 0.25)
    assert z.shape == (2, 3)
    assert z[1, 2] == pytest.approx(0.75 * 3.0 + 0.25 * 20.0)


# -- the symbolic derivation ------------------------------------------------------------------

def test_symbolic_derivation():
    out = lm.symbolic_check()
    assert out["eq3_is_taylor"]
    assert out["gradient_form"]
    assert out["f_derived_solves"]
    assert not out["f_printed_solves"]
