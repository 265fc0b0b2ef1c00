"""Tests of ``tsrobust.theory`` (source D's toys, source A §3–4)."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from tsrobust import results
from tsrobust import theory as T

# ---------------------------------------------------------------- population gradient (source D)


@pytest.mark.parametrize("theta_deg", [20.0, 60.0, 90.0, 135.0, 170.0])
def test_gradient_formula_matches_monte_carlo(theta_deg):
    # unequal norms exercise the ‖w*‖/‖w‖ factor
    w, w_star = T.vectors_at_angle(math.radians(theta_deg), 4, norm_w=1.3, norm_w_star=0.7)
    g = T.relu_population_gradient(w, w_star)
    mean, se = T.relu_gradient_monte_carlo(w, w_star, 400_000, T.make_generator(11, int(theta_deg)))
    z = (mean - g).abs() / se
    assert z.max() < 5.0, f"analytic vs MC differ by {z.max():.1f} standard errors"


def test_gradient_formula_random_directions():
    gen = torch.Generator().manual_seed(3)
    for trial in range(3):
        w, w_star = torch.randn(6, generator=gen, dtype=torch.float64), torch.randn(
            6, generator=gen, dtype=torch.float64)
        g = T.relu_population_gradient(w, w_star)
        mean, se = T.relu_gradient_monte_carlo(w, w_star, 300_000, T.make_generator(5, trial))
        assert ((mean - g).abs() / se).max() < 5.0


def test_monte_carlo_error_shrinks_like_one_over_sqrt_n():
    w, w_star = T.vectors_at_angle(math.radians(70.0), 4, norm_w=0.8, norm_w_star=1.2)
    g = T.relu_population_gradient(w, w_star)
    gen = T.make_generator(7, 0)

    def rms(n, repeats=8):
        errs = [float((T.relu_gradient_monte_carlo(w, w_star, n, gen)[0] - g).norm())
                for _ in range(repeats)]
        return math.sqrt(np.mean(np.square(errs)))

    ratio = rms(2_000) / rms(200_000)  # 100× the samples → 10× smaller error
    assert 5.0 < ratio < 20.0, ratio


def test_monte_carlo_check_detects_a_wrong_formula():
    # the linear term alone (no ReLU gating) is far outside the MC error bars
    w, w_star = T.vectors_at_angle(math.radians(90.0), 3)
    mean, se = T.relu_gradient_monte_carlo(w, w_star, 200_000, T.make_generator(1, 1))
    wrong = 0.5 * (w - w_star)
    assert ((mean - wrong).abs() / se).max() > 20.0


def test_gradient_hand_cases():
    u = torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64)
    # at the teacher: zero
    assert torch.allclose(T.relu_population_gradient(u, u), torch.zeros(3, dtype=torch.float64),
                          atol=1e-7)
    # θ = 0, different norms: the linear regime, ½(a − b) u
    assert torch.allclose(T.relu_population_gradient(2 * u, 0.5 * u), 0.75 * u, atol=1e-7)
    # θ = π: the two half-spaces never overlap, so only ½ E[σ(wᵀx)...] = ½ w remains
    assert torch.allclose(T.relu_population_gradient(-2 * u, u), -u, atol=1e-7)
    # w* = 0: ½ w
    assert torch.allclose(T.relu_population_gradient(u, torch.zeros(3)), 0.5 * u)
    # θ = π/2, unit norms: ½(w − w*) + (1/2π)(π/2 w* − w)
    w, w_star = T.vectors_at_angle(math.pi / 2, 2)
    expected = 0.5 * (w - w_star) + (math.pi / 2 * w_star - w) / (2 * math.pi)
    assert torch.allclose(T.relu_population_gradient(w, w_star), expected)


def test_gradient_bad_input():
    with pytest.raises(ValueError, match="non-zero"):
        T.relu_population_gradient(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="same shape"):
        T.relu_population_gradient(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="positive integer"):
        T.relu_gradient_monte_carlo(torch.ones(3), torch.ones(3), 0, T.make_generator(0))


def test_gradient_check_slope():
    values, arrays = T.gradient_check(3, [math.pi / 3, 2 * math.pi / 3], [500, 5_000, 50_000], 6,
                                      T.make_generator(2, 2), progress=False)
    assert -0.65 < values["loglog_slope"] < -0.35
    assert arrays["rms_error"].shape == (2, 3)
    assert values["n_z"] == 2 * 3 * 6 * 3
    assert values["z_median_max"] < values["z_chance_1pct"]
    # a 10 % gating error at 120° moves the z-scores more than at 60° (larger gating term)
    assert arrays["gating_shift_z"].shape == (2,) and 0 < arrays["gating_shift_z"][0] < \
        arrays["gating_shift_z"][1]


def test_gradient_components_in_the_plane():
    # the components Figure 1.1 plots and its caption states (unit norms, w* = e1)
    for theta in np.linspace(0.05, math.pi - 0.05, 7):
        g = T.relu_population_gradient(*T.vectors_at_angle(theta, 2))
        along = 0.5 * (math.cos(theta) - 1) + (theta - math.sin(theta) * math.cos(theta)) / (
            2 * math.pi)
        across = 0.5 * math.sin(theta) - math.sin(theta) ** 2 / (2 * math.pi)
        assert float(g[0]) == pytest.approx(along) and float(g[1]) == pytest.approx(across)


def test_max_abs_z_level():
    # one |N(0, 1)|: its median is Φ⁻¹(0.75)
    assert T.max_abs_z_level(1, 0.5) == pytest.approx(0.6744897501960817)
    levels = [T.max_abs_z_level(n, 0.5) for n in (1, 10, 100, 1000)]
    assert levels == sorted(levels) and T.max_abs_z_level(800, 0.99) > levels[-1] - 1
    gen = np.random.default_rng(0)
    simulated = np.median(np.abs(gen.standard_normal((4000, 50))).max(1))
    assert T.max_abs_z_level(50, 0.5) == pytest.approx(simulated, abs=0.05)
    with pytest.raises(ValueError, match="prob"):
        T.max_abs_z_level(10, 1.0)


# ---------------------------------------------------------------- networks and training


def test_make_generator_streams():
    a = torch.rand(3, generator=T.make_generator(4, 1))
    assert torch.equal(a, torch.rand(3, generator=T.make_generator(4, 1)))
    assert not torch.equal(a, torch.rand(3, generator=T.make_generator(4, 2)))
    assert not torch.equal(a, torch.rand(3, generator=T.make_generator(5, 1)))
    with pytest.raises(ValueError, match="seed"):
        T.make_generator(-1)


def test_teacher_construction():
    t = T.make_teacher(6, 5, 3, T.make_generator(0), bias_range=0.25, fan_out_decay=1.5)
    assert torch.allclose(t.hidden.weight.norm(dim=1), torch.ones(5, dtype=torch.float64))
    assert (t.hidden.bias.abs() <= 0.25).all()
    expected = torch.arange(1, 6, dtype=torch.float64).pow(-1.5)
    assert torch.allclose(t.fan_out_norms(), expected)  # ‖v*_j‖ ∝ 1/j^p
    assert not any(p.requires_grad for p in t.parameters())


def test_student_at_teacher_has_zero_loss_and_gradient():
    teacher = T.make_teacher(5, 4, 2, T.make_generator(0))
    student = copy.deepcopy(teacher)
    for p in student.parameters():
        p.requires_grad_(True)
    x = T.gaussian_inputs(300, 5, T.make_generator(1))
    loss = T.l2_loss(student, teacher, x)
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad.abs().max().item() == 0.0 for p in student.parameters())
    hist = T.train_two_layer(student, teacher, x, steps=20, lr=0.1, generator=T.make_generator(2),
                           record_every=10, progress=False)
    assert max(hist.loss) == 0.0
    assert torch.equal(student.hidden.weight, teacher.hidden.weight)


def test_training_learns_and_is_reproducible():
    def run(batch_size):
        g = T.make_generator(3, 0)
        teacher = T.make_teacher(4, 3, 2, g)
        student = T.make_student(4, 9, 2, g)
        x = T.gaussian_inputs(400, 4, g)
        hist = T.train_two_layer(student, teacher, x, steps=300, lr=0.1, generator=g,
                               batch_size=batch_size, record_every=100, progress=False)
        return hist, student
    h1, s1 = run(None)
    h2, s2 = run(None)
    assert h1.steps == [0, 100, 200, 300]
    assert h1.loss[-1] < 0.05 * h1.loss[0]
    assert h1.loss == h2.loss and torch.equal(s1.hidden.weight, s2.hidden.weight)
    hb, _ = run(64)  # minibatch SGD learns too
    assert hb.loss[-1] < 0.1 * hb.loss[0]
    # snapshots restore the recorded students
    assert torch.equal(h1.student_at(3).hidden.weight, s1.hidden.weight)
    assert not torch.equal(h1.student_at(0).hidden.weight, s1.hidden.weight)


def test_train_student_bad_input():
    g = T.make_generator(0)
    teacher, student = T.make_teacher(3, 2, 1, g), T.make_student(3, 4, 1, g)
    with pytest.raises(ValueError, match="x_train"):
        T.train_two_layer(student, teacher, torch.zeros(10, 4), steps=1, lr=0.1, generator=g)
    with pytest.raises(ValueError, match="lr"):
        T.train_two_layer(student, teacher, torch.zeros(10, 3), steps=1, lr=0.0, generator=g)
    with pytest.raises(ValueError, match="steps"):
        T.train_two_layer(student, teacher, torch.zeros(10, 3), steps=0, lr=0.1, generator=g)
    with pytest.raises(ValueError, match="kind"):
        T.Augmentation("mixup")
    with pytest.raises(ValueError, match="basis"):
        T.Augmentation("off_subspace", std=0.1)


def test_node_classes_and_l_shape_fields():
    g = T.make_generator(0)
    teacher = T.make_teacher(3, 2, 1, g)
    student = T.make_student(3, 3, 1, g)
    with torch.no_grad():
        student.hidden.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]))
        student.hidden.bias.copy_(torch.tensor([0.0, -100.0, 100.0]))
    x = T.gaussian_inputs(500, 3, g)
    shape = T.l_shape(student, teacher, x)
    assert shape["node_class"].tolist() == [0, 1, 2]  # boundary in data, dead, always on
    assert shape["best_corr"][1] == 0.0  # a dead node correlates with nothing
    assert np.allclose(shape["fan_out_norm"], student.fan_out_norms().numpy())


def test_best_nc_over_training_ends_at_final_value():
    g = T.make_generator(1)
    teacher, student = T.make_teacher(3, 2, 2, g), T.make_student(3, 6, 2, g)
    x = T.gaussian_inputs(200, 3, g)
    hist = T.train_two_layer(student, teacher, x, steps=40, lr=0.1, generator=g, record_every=20,
                           progress=False)
    curves = T.best_nc_over_training(hist, teacher, x)
    assert curves.shape == (3, 2)
    final = T.best_nc(T.node_correlations(student, teacher, x)).numpy()
    assert np.allclose(curves[-1], final)


# ---------------------------------------------------------------- low-rank geometry (source A)


def test_subspace_bases():
    g = T.make_generator(0)
    u = T.random_subspace(7, 3, g)
    assert torch.allclose(u.T @ u, torch.eye(3, dtype=torch.float64), atol=1e-12)
    c = T.complement_basis(u)
    assert c.shape == (7, 4)
    assert torch.allclose(c.T @ c, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(u.T @ c, torch.zeros(3, 4, dtype=torch.float64), atol=1e-12)
    a = T.augmented_basis(u)
    assert a.shape == (8, 4) and a[7, 3] == 1.0 and torch.equal(a[:7, :3], u)
    with pytest.raises(ValueError, match="exceed"):
        T.random_subspace(3, 4, g)


def test_low_rank_inputs_lie_in_or_near_the_subspace():
    g = T.make_generator(0)
    u = T.random_subspace(6, 2, g)
    x = T.low_rank_inputs(2000, u, g)
    assert (x - x @ u @ u.T).abs().max() < 1e-12
    assert torch.linalg.matrix_rank(x).item() == 2
    near = T.low_rank_inputs(20000, u, g, off_subspace_std=0.1)
    resid = near - near @ u @ u.T
    # 4 out-of-plane dimensions of std 0.1: E‖r‖² = 4 · 0.01
    assert resid.pow(2).sum(1).mean().item() == pytest.approx(0.04, rel=0.05)


def test_projected_angle_hand_cases():
    e12 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    e3 = torch.tensor([[0.0], [0.0], [1.0]], dtype=torch.float64)
    ws = torch.tensor([[1.0, 0.0, 5.0], [1.0, 0.0, 1.0]])
    wt = torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, -1.0]])
    inside = T.projected_angle(ws, wt, e12)
    assert inside[0].item() == pytest.approx(math.pi / 4)
    assert inside[1].item() == pytest.approx(0.0, abs=1e-7)
    outside = T.projected_angle(ws, wt, e3)
    assert math.isnan(outside[0].item())  # the teacher has no out-of-plane part
    assert outside[1].item() == pytest.approx(math.pi)


def test_paired_eps_in_out_hand_case_and_identities():
    e12 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    ws, wt = torch.tensor([3.0, 0.0, 3.0]), torch.tensor([2.0, 0.0, 0.0])
    e_in, e_out = T.paired_eps_in_out(ws, wt, e12)
    # Δw = (1/√2 − 1, 0, 1/√2)
    assert e_in.item() == pytest.approx(1 - 1 / math.sqrt(2))
    assert e_out.item() == pytest.approx(1 / math.sqrt(2))
    # perfect specialization up to a positive scale: ε_in = ε_out = 0
    e_in0, e_out0 = T.paired_eps_in_out(5 * wt, wt, e12)
    assert e_in0.item() == pytest.approx(0.0) and e_out0.item() == pytest.approx(0.0)
    # Pythagoras: ε_in² + ε_out² = ‖Δw‖²
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    i, o = T.paired_eps_in_out(a, b, e12)
    delta = a / a.norm(dim=1, keepdim=True) - b / b.norm(dim=1, keepdim=True)
    assert torch.allclose(i**2 + o**2, delta.double().norm(dim=1) ** 2)
    with pytest.raises(ValueError, match="non-zero"):
        T.paired_eps_in_out(torch.zeros(3), wt, e12)


def test_report_of_a_student_equal_to_the_teacher():
    g = T.make_generator(2)
    teacher = T.make_teacher(5, 3, 2, g)
    u = T.random_subspace(5, 2, g)
    x = T.low_rank_inputs(3000, u, g)
    rep = T.specialization_report(copy.deepcopy(teacher), teacher, x, u)
    assert np.allclose(rep["best_nc"], 1.0, atol=1e-5)
    assert np.allclose(rep["eps_in"], 0.0) and np.allclose(rep["eps_out"], 0.0)
    assert np.allclose(rep["angle_in"], 0.0, atol=1e-6)
    assert np.allclose(rep["angle_out"], 0.0, atol=1e-6)


def test_theorem_1_out_of_plane_weights_never_move_on_subspace_data():
    g = T.make_generator(4)
    teacher, student = T.make_teacher(6, 3, 2, g), T.make_student(6, 8, 2, g)
    u = T.random_subspace(6, 2, g)
    comp = T.complement_basis(u)
    before = student.hidden.weight.detach() @ comp
    x = T.low_rank_inputs(500, u, g)
    T.train_two_layer(student, teacher, x, steps=100, lr=0.1, generator=g, batch_size=50,
                    progress=False)
    after = student.hidden.weight.detach() @ comp
    assert (after - before).abs().max() < 1e-12
    # … whereas data that leave the subspace (noise augmentation) do move them
    T.train_two_layer(student, teacher, x, steps=20, lr=0.1, generator=g, progress=False,
                    augmentation=T.Augmentation("off_subspace", std=0.3, basis=u))
    assert (student.hidden.weight.detach() @ comp - after).abs().max() > 1e-4


# ---------------------------------------------------------------- oracle-adversarial (Eq. 3)


def _linear(weights):
    layer = nn.Linear(len(weights), 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights], dtype=torch.float64))
    return layer


def test_oracle_adversarial_solves_the_linear_case():
    # student f(x) = aᵀx, teacher f* = 0: the maximiser of (aᵀx′)² over the ball is known
    a = torch.tensor([3.0, -4.0, 0.0], dtype=torch.float64)
    student, teacher = _linear(a.tolist()), _linear([0.0, 0.0, 0.0])
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    eps = 0.5
    s = torch.sign(x @ a)
    x2 = T.oracle_adversarial(student, teacher, x, eps=eps, steps=30, norm="l2")
    assert torch.allclose(x2, x + eps * s[:, None] * a / a.norm(), atol=1e-6)
    xinf = T.oracle_adversarial(student, teacher, x, eps=eps, steps=30, norm="linf")
    assert torch.allclose(xinf[:, :2], x[:, :2] + eps * s[:, None] * torch.sign(a[:2]), atol=1e-9)
    expected = (x @ a).abs() + eps * a.abs().sum()
    assert torch.allclose(T.oracle_loss(student, teacher, xinf), expected**2)


def test_oracle_adversarial_stays_in_the_ball_and_the_subspace():
    g = T.make_generator(0)
    teacher, student = T.make_teacher(5, 3, 2, g), T.make_student(5, 6, 2, g)
    u = T.random_subspace(5, 2, g)
    x = T.gaussian_inputs(50, 5, g)
    clean = T.oracle_loss(student, teacher, x)
    for norm in ("l2", "linf"):
        xa = T.oracle_adversarial(student, teacher, x, eps=0.3, steps=10, norm=norm, generator=g)
        size = (xa - x).norm(dim=1) if norm == "l2" else (xa - x).abs().amax(dim=1)
        assert (size <= 0.3 + 1e-9).all()
        assert T.oracle_loss(student, teacher, xa).mean() > clean.mean()
    xin = T.oracle_adversarial(student, teacher, x, eps=0.3, steps=10, basis=u)
    assert T.off_subspace_fraction(xin - x, u).max() < 1e-9
    with pytest.raises(ValueError, match="norm"):
        T.oracle_adversarial(student, teacher, x, eps=0.3, steps=1, norm="l1")


def test_off_subspace_fraction_hand_case():
    e1 = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    d = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(T.off_subspace_fraction(d, e1), torch.tensor([0.8, 0.0, 1.0],
                                                                        dtype=torch.float64))


# ---------------------------------------------------------------- figures and statistics


def test_boundary_segment_hand_cases():
    assert T.boundary_segment([1.0, 0.0], 0.0, 1.0) == ((0.0, -1.0), (0.0, 1.0)) or \
        T.boundary_segment([1.0, 0.0], 0.0, 1.0) == ((-0.0, -1), (-0.0, 1))
    (p, q) = T.boundary_segment([1.0, 1.0], 0.0, 1.0)  # the anti-diagonal, corner to corner
    assert sorted([p, q]) == [(-1, 1.0), (1.0, -1)]
    assert T.boundary_segment([1.0, 1.0], 5.0, 1.0) is None  # misses the square
    assert T.boundary_segment([0.0, 0.0], 1.0, 1.0) is None
    p, q = T.boundary_segment([0.0, 2.0], 1.0, 2.0)  # y = −0.5
    assert p[1] == pytest.approx(-0.5) and q[1] == pytest.approx(-0.5)
    assert abs(p[0] - q[0]) == pytest.approx(4.0)


# ------------------------------------------------------------ footnote-4 split, rank correlation


def test_fan_out_split_follows_footnote_4():
    corr = [0.99, 0.95, 0.85, 0.5, 0.2, 0.99]
    fan = [1.0, 0.6, 0.4, 0.02, 0.04, 3.0]
    node_class = [0, 0, 0, 0, 0, 1]  # the last node is dead: not counted
    split = T.fan_out_by_specialization(corr, fan, node_class)
    assert (split["n_specialized"], split["n_between"], split["n_unspecialized"]) == (2, 1, 2)
    assert split["mean_fan_out_specialized"] == pytest.approx(0.8)
    assert split["mean_fan_out_unspecialized"] == pytest.approx(0.03)
    assert split["max_fan_out_unspecialized"] == pytest.approx(0.04)
    none_unspecialized = T.fan_out_by_specialization([0.95], [1.0], [0])
    assert none_unspecialized["mean_fan_out_unspecialized"] is None
    assert none_unspecialized["max_fan_out_unspecialized"] is None
    assert f"with **{results.MISSING}**" in T.fan_out_sentence(none_unspecialized)


def test_spearman_against_hand_case_and_scipy(reference):
    assert T.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert T.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.allclose(T.average_ranks([5, 1, 5, 2]), [2.5, 0, 2.5, 1])
    assert math.isnan(T.spearman([1, 2, 3], [5, 5, 5]))  # every node copied at the same step
    stats = reference("scipy.stats", "pip install -e '.[test]'")
    a, b = [0.3, 0.1, 0.1, 0.9, 0.5], [200, 150, 400, 150, 50]
    assert T.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)


def test_one_sgd_momentum_and_no_chapter_here():
    from tsrobust import training

    assert T.MOMENTUM is training.MOMENTUM  # one SGD momentum for the package
    assert not hasattr(T, "CH01_SETTINGS") and not hasattr(T, "CH02_SETTINGS")


# ------------------------------------------- the theorems' hypotheses and bounds (source A, D)


def test_gradient_check_at_unequal_norms_can_tell_the_norm_factor():
    thetas, sizes = [math.pi / 3, 2 * math.pi / 3], [1_000, 100_000]
    equal, arrays_eq = T.gradient_check(3, thetas, sizes, 3, T.make_generator(0), progress=False)
    assert np.all(arrays_eq["norm_factor_shift_z"] == 0.0)  # ‖w*‖/‖w‖ = 1: nothing to tell
    values, arrays = T.gradient_check(3, thetas, sizes, 3, T.make_generator(0), norm_w=1.5,
                                      norm_w_star=0.6, progress=False)
    assert (values["norm_w"], values["norm_w_star"]) == (1.5, 0.6)
    assert values["z_max"] < 6.0  # the formula with ‖w*‖/‖w‖ passes at unequal norms
    assert np.all(arrays["norm_factor_shift_z"] > 10.0)  # the factor 1 would be seen
    w, w_star = T.vectors_at_angle(thetas[0], 3, norm_w=1.5, norm_w_star=0.6)
    g = T.relu_population_gradient(w, w_star)
    assert np.allclose(arrays["analytic"][0], g.numpy())
    # planted: the formula with the factor 1 instead of ‖w*‖/‖w‖ fails against Monte Carlo
    wrong = g + (0.6 / 1.5 - 1) * math.sin(thetas[0]) * w / (2 * math.pi)
    mean, se = T.relu_gradient_monte_carlo(w, w_star, 200_000, T.make_generator(9))
    assert ((mean - g).abs() / se).max() < 5.0 and ((mean - wrong).abs() / se).max() > 10.0
    with pytest.raises(ValueError, match="norms"):
        T.gradient_check(3, thetas, sizes, 2, T.make_generator(0), norm_w=0.0, progress=False)


def test_hidden_gradient_is_the_backpropagated_gradient():
    g = T.make_generator(0)
    teacher, student = T.make_teacher(4, 3, 2, g), T.make_student(4, 5, 2, g)
    x = T.gaussian_inputs(30, 4, g)
    pre = student.hidden(x)
    pre.retain_grad()
    (0.5 * (student.fan_out(torch.relu(pre)) - teacher(x)).pow(2).sum()).backward()
    assert torch.allclose(T.hidden_gradient(student, teacher, x), pre.grad)
    assert T.hidden_gradient(copy.deepcopy(teacher), teacher, x).abs().max() == 0.0


def test_data_region_quantiles():
    g = T.make_generator(1)
    u = T.random_subspace(6, 2, g)
    x = T.low_rank_inputs(5000, u, g, off_subspace_std=0.1)
    inside, rho_in, rho_out = T.data_region(x, u, 0.9)
    # two independent 90 % quantiles: about 81 % of the inputs lie in R
    assert 0.78 < inside.double().mean().item() < 0.84
    assert rho_in == pytest.approx(math.sqrt(-2 * math.log(0.1)), rel=0.05)  # χ with 2 dof
    assert 0.1 < rho_out < 0.4  # ≈ 0.1 × χ with 4 dof
    with pytest.raises(ValueError, match="quantile"):
        T.data_region(x, u, 0.0)


def test_observation_hand_case():
    # node j's boundary is x₁ = 0; observer 0 is active where x₂ > 0, observer 1 where x₂ > 5
    w, b = torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])
    net = T.TwoLayerReLU(2, 2, 1)
    with torch.no_grad():
        net.hidden.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
        net.hidden.bias.copy_(torch.tensor([0.0, -5.0]))
    x = torch.tensor([[0.01, 1.0], [0.01, -1.0], [2.0, 6.0]], dtype=torch.float64)
    assert T.observation(w, b, net, x).tolist() == [[True, False]]  # (2, 6) is far from x₁ = 0
    assert T.observation(w, b, net, x, band=3.0).tolist() == [[True, True]]


def test_projected_sines_hand_case():
    e12 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.0, 7.0], [0.0, 0.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 0.0], [-2.0, 0.0, 0.0]])
    s = T.projected_sines(a, b, e12)
    assert s[0, 0].item() == pytest.approx(math.sqrt(0.5))
    assert s[0, 1].item() == pytest.approx(0.0, abs=1e-7)  # anti-parallel: sin θ = 0
    assert math.isnan(s[1, 0].item())  # the first row of a has no part in the plane


def test_bound_formulas():
    m = T.lemma3_factor(2.0, 4, 0.0, 1.0)
    assert m == pytest.approx(10 / 2.0 * math.sqrt(4 / (2 * math.pi)))
    # Lemma 4 shrinks r by 5ε/|α|; nothing is left when that exceeds r, or when α = 0
    assert T.lemma3_factor(2.0, 4, 0.1, 0.5) == pytest.approx(10 * math.sqrt(4 / (2 * math.pi)))
    assert T.lemma3_factor(2.0, 4, 0.2, 0.5) == np.inf
    assert T.lemma3_factor(2.0, 4, 0.1, 0.0) == np.inf
    bound = T.theorem2_bound(0.01, np.array([0.5, np.nan, -0.5]), 2.0, 4, 30)
    expected = T.lemma3_factor(2.0, 4, 0.01, 0.5) * 30 * 0.01 / 0.5
    assert bound[0] == pytest.approx(expected) and math.isnan(bound[1])
    assert bound[2] == pytest.approx(expected)  # |α|
    # the bound is linear in ε (once the shrink of r is negligible) and ∝ 1/r
    assert T.theorem2_bound(1e-6, 1.0, 4.0, 4, 30) == pytest.approx(
        0.5 * T.theorem2_bound(2e-6, 1.0, 4.0, 4, 30), rel=1e-5)
    assert T.theorem2_bound(1e-6, 1.0, 4.0, 4, 30) == pytest.approx(
        0.5 * T.theorem2_bound(1e-6, 1.0, 2.0, 4, 30), rel=1e-5)
    cor = T.corollary1_bound(0.01, np.array([3.0, 3.0]), 2.0, 4, 30, np.array([0.5, 0.0]))
    assert cor[0] == pytest.approx(3.0 * T.lemma3_factor(2.0, 4, 0.0, 1.0) * 30 * 0.01 / 0.5)
    assert cor[1] == np.inf  # c₀ = 0: a node aligned with another is not covered
    assert T.slide_alignment_bound(0.01, 0.5, 16, 9) == pytest.approx(5 * 64 * 3 * 0.01 / 0.5)
    assert T.slide_alignment_bound(0.01, 0.5, 16, 9, aware=True) == pytest.approx(
        5 * 64 * 0.01 / 0.5)


def test_eps_alignment_measures_angle_and_bias():
    teacher = T.make_teacher(2, 2, 1, T.make_generator(3))
    with torch.no_grad():  # boundaries x₁ = −0.1 and x₂ = 0.2
        teacher.hidden.weight.copy_(torch.eye(2))
        teacher.hidden.bias.copy_(torch.tensor([0.1, -0.2]))
    student = copy.deepcopy(teacher)
    with torch.no_grad():  # a positive scale changes no boundary
        student.hidden.weight.mul_(3.0), student.hidden.bias.mul_(3.0)
    assert np.allclose(T.eps_alignment(student, teacher)["error"], 0.0, atol=1e-7)
    phi = 0.2
    rot = torch.tensor([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]],
                       dtype=torch.float64)
    with torch.no_grad():
        student.hidden.weight.copy_(teacher.hidden.weight @ rot.T)
        student.hidden.bias.copy_(teacher.hidden.bias + torch.tensor([0.5, 0.0]))
    out = T.eps_alignment(student, teacher)
    assert out["sine"][1] == pytest.approx(math.sin(phi))
    assert out["bias_gap"][0] == pytest.approx(0.5)  # ‖w̃*‖ = 1
    assert out["error"][0] == pytest.approx(max(math.sin(phi), 0.5))
    assert out["student"].tolist() == [0, 1]


def test_min_q_inverse_norm():
    assert T.min_q_inverse_norm(torch.eye(3)) == pytest.approx(1.0)
    # inverse of diag(2, 4) has column sums 0.5 and 0.25
    assert T.min_q_inverse_norm(torch.tensor([[2.0, 0.0], [0.0, 4.0]])) == pytest.approx(0.5)
    # the singular pair (parallel columns) is skipped; the best invertible pair is used
    v = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    assert T.min_q_inverse_norm(v) == pytest.approx(1.0)
    assert T.min_q_inverse_norm(torch.tensor([[1.0], [0.0]])) == math.inf  # one observer, C = 2
    # the column-sum norm, not the row-sum one: Q⁻¹ = [[1, −1], [0, 1]] has column sums 1, 2
    q = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert T.min_q_inverse_norm(q) == pytest.approx(2.0)


def test_theorem2_and_corollary1_reports():
    g = T.make_generator(5)
    teacher = T.make_teacher(6, 3, 2, g)
    u = T.random_subspace(6, 3, g)
    x = T.low_rank_inputs(3000, u, g, off_subspace_std=0.1)
    copy_rep = T.theorem2_report(copy.deepcopy(teacher), teacher, x, u,
                                 best_student=np.arange(3))
    assert copy_rep["eps"] == 0.0 and copy_rep["k_total"] == 6
    assert np.allclose(copy_rep["sin_in_min"], 0.0, atol=1e-6)
    assert np.allclose(copy_rep["sin_out_best"], 0.0, atol=1e-6)
    assert np.allclose(copy_rep["bound_in"][np.isfinite(copy_rep["alpha"])], 0.0)
    assert copy_rep["rho_out"] > 0 and np.all(copy_rep["r_in"] <= copy_rep["rho_in"])
    student = T.make_student(6, 8, 2, g)
    rep = T.theorem2_report(student, teacher, x, u)
    assert rep["eps"] > 0 and rep["sin_in_min"].shape == (3,) and "sin_in_best" not in rep
    assert np.all(rep["bound_in"][np.isfinite(rep["alpha"])] > 0)
    assert np.all(rep["slide_in"][np.isfinite(rep["alpha"])] > 0)
    cor = T.corollary1_report(student, teacher, x, u)
    assert cor["bound"].shape == (8,) and cor["eps"] == pytest.approx(rep["eps"])
    assert np.allclose(cor["fan_out_inf"], student.fan_out.weight.detach().abs().amax(0).numpy())
    assert np.all(cor["c0"] >= 0) and np.all(cor["n_observers"] <= 7)


def test_data_adversarial_solves_the_linear_case_and_ignores_the_teacher():
    a = torch.tensor([3.0, -4.0, 0.0], dtype=torch.float64)
    student = _linear(a.tolist())
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[10.0], [-10.0]], dtype=torch.float64)
    s = torch.sign(x @ a - y[:, 0])
    x2 = T.data_adversarial(student, x, y, eps=0.5, steps=30)
    assert torch.allclose(x2, x + 0.5 * s[:, None] * a / a.norm(), atol=1e-6)


def test_label_and_teacher_targets_of_augmented_batches():
    g = T.make_generator(0)
    teacher, student = T.make_teacher(4, 2, 1, g), T.make_student(4, 3, 1, g)
    x = T.gaussian_inputs(20, 4, g)
    with torch.no_grad():
        y = teacher(x)
    for kind in ("oracle_adversarial", "data_adversarial"):
        aug = T.Augmentation(kind, eps=0.5, attack_steps=3)
        x_t, y_t = T.augmented_batch(aug, x, y, student, teacher, T.make_generator(1))
        assert torch.allclose(y_t, teacher(x_t))  # teacher-target: f*(x′)
        label = T.Augmentation(kind, eps=0.5, attack_steps=3, target="label")
        x_l, y_l = T.augmented_batch(label, x, y, student, teacher, T.make_generator(1))
        assert torch.equal(x_l, x_t)
        # label-target: the label of the original input (the batch is drawn in random order)
        originals = torch.randperm(20, generator=T.make_generator(1))
        assert torch.equal(y_l, y[originals])
        assert ((x_l - x[originals]).norm(dim=1) <= 0.5 + 1e-9).all()
        assert not torch.allclose(y_l, y_t)
    with pytest.raises(ValueError, match="target"):
        T.Augmentation("gaussian", std=0.1, target="oracle")
    hist = T.train_two_layer(student, teacher, x, steps=5, lr=0.05, generator=g, progress=False,
                             augmentation=T.Augmentation("data_adversarial", eps=0.3,
                                                         attack_steps=2, target="label"))
    assert len(hist.loss) == 2


def test_teacher_agnostic_and_aware_augmentations():
    g = T.make_generator(0)
    teacher = T.make_teacher(5, 3, 1, g)
    x = T.gaussian_inputs(4, 5, g)
    agnostic = T.teacher_agnostic_augmentation(x, 0.1)
    assert agnostic.shape == ((2 * 5 + 1) * 4, 5)  # the slide's |D′| = (2d + 1)|D|
    assert torch.equal(agnostic[:4], x)
    assert torch.allclose(agnostic[4] - x[0], 0.1 * torch.eye(5, dtype=torch.float64)[0])
    aware = T.teacher_aware_augmentation(x, teacher, 0.1)
    assert aware.shape == ((2 * 3 + 1) * 4, 5)
    steps = (aware[4:4 + 6] - x[0]).norm(dim=1)
    assert torch.allclose(steps, torch.full((6,), 0.1, dtype=torch.float64))
    # the steps run along the teacher's normals: they change the teacher's pre-activations only
    normal = teacher.hidden.weight[0] / teacher.hidden.weight[0].norm()
    assert torch.allclose(aware[4] - x[0], 0.1 * normal)
    with pytest.raises(ValueError, match="delta"):
        T.teacher_agnostic_augmentation(x, 0.0)
