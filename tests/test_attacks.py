"""Tests of tsrobust.attacks against a reference library, exact solutions and properties."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

from conftest import PYAUTOATTACK, TORCHATTACKS
from tsrobust import attacks
from tsrobust.attacks import (
    ce_objective,
    cw_l2,
    fgsm,
    oracle_objective,
    pgd,
    project_l1_ball,
    robust_accuracy,
    robust_accuracy_of,
    transfer_attack,
)

TOL = 1e-6



def small_net(seed: int, widths=(6, 8), classes: int = 10) -> nn.Module:
    """A tiny conv ReLU net on 3×8×8 images (no padding, like the book's ConvNet)."""
    torch.manual_seed(seed)  # test-local initialisation only; the package never seeds globally
    layers, c = [], 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3), nn.ReLU()]
        c = w
    side = 8 - 2 * len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, classes)).eval()


def images(n=6, seed=0, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, 3, 8, 8, generator=g)


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


# -- reference library ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torchattacks(reference):
    # torchattacks 3.5 imports without torchvision; the package itself never imports it.
    return reference("torchattacks", TORCHATTACKS)


@pytest.mark.parametrize("steps", [1, 7])
def test_pgd_linf_equals_torchattacks(torchattacks, steps):
    model, x = small_net(0), images()
    y = torch.arange(len(x)) % 10
    ref = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=steps, random_start=False)(x, y)
    ours = pgd(ce_objective(model, y), x, eps=8 / 255, alpha=2 / 255, steps=steps, norm="linf",
               random_start=False)
    assert (ours - x).abs().max() > 1e-3  # the attack moved
    torch.testing.assert_close(ours, ref, atol=TOL, rtol=0)


@pytest.mark.parametrize("steps", [1, 7])
def test_pgd_l2_equals_torchattacks(torchattacks, steps):
    model, x = small_net(1), images(seed=3)
    y = torch.arange(len(x)) % 10
    ref = torchattacks.PGDL2(model, eps=0.5, alpha=0.1, steps=steps, random_start=False)(x, y)
    ours = pgd(ce_objective(model, y), x, eps=0.5, alpha=0.1, steps=steps, norm="l2",
               random_start=False)
    assert (ours - x).abs().max() > 1e-3
    torch.testing.assert_close(ours, ref, atol=TOL, rtol=0)


def test_fgsm_equals_torchattacks(torchattacks):
    model, x = small_net(2), images(seed=4)
    y = torch.arange(len(x)) % 10
    ref = torchattacks.FGSM(model, eps=10 / 255)(x, y)
    ours = fgsm(ce_objective(model, y), x, eps=10 / 255)
    torch.testing.assert_close(ours, ref, atol=TOL, rtol=0)


# -- every attack stays in its ball and in [0, 1] -----------------------------------------------

def _norm(d: torch.Tensor, norm: str) -> torch.Tensor:
    d = d.flatten(1)
    return {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[norm]


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 10 / 255, 0.01), ("l2", 0.5, 0.2),
                                            ("l1", 4.0, 1.5)])
def test_pgd_stays_in_ball_and_box(norm, eps, alpha):
    student, teacher = small_net(3), small_net(4)
    x = images(8, seed=5)
    x[0] = 0.0  # pixels on the box faces
    x[1] = 1.0
    with attacks.frozen(student, teacher):
        x_adv = pgd(oracle_objective(student, teacher), x, eps=eps, alpha=alpha, steps=6,
                    norm=norm, generator=gen())
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (_norm(x_adv - x, norm) <= eps * (1 + 1e-5)).all()
    obj = oracle_objective(student, teacher)
    assert (obj(x_adv) > obj(x)).float().mean() >= 0.75  # it ascends the objective


def test_l1_pgd_steps_are_sparse():
    student, teacher = small_net(3), small_net(4)
    x = images(4, seed=6, lo=0.2, hi=0.8)
    x_adv = pgd(oracle_objective(student, teacher), x, eps=50.0, alpha=0.5, steps=1,
                norm="l1", random_start=False, l1_sparsity=0.95)
    moved = ((x_adv - x).abs() > 0).flatten(1).sum(1)
    k = int(np.ceil(0.05 * x[0].numel()))
    assert (moved <= k).all() and (moved > 0).all()
    torch.testing.assert_close(_norm(x_adv - x, "l1"), torch.full((4,), 0.5), atol=1e-5, rtol=0)


def test_fgsm_cw_transfer_stay_in_ball_and_box():
    student, teacher, surrogate = small_net(3), small_net(4), small_net(5)
    x = images(8, seed=7)
    with attacks.frozen(student, teacher):
        xf = fgsm(oracle_objective(student, teacher), x, eps=0.05)
        xc = cw_l2(student, x, lambda z: teacher(z).argmax(1), c=10.0, steps=30, lr=0.05,
                   max_l2=0.3)
    xt = transfer_attack(surrogate, teacher, x, eps=0.05, alpha=0.02, steps=3, generator=gen())
    for x_adv, norm, eps in ((xf, "linf", 0.05), (xc, "l2", 0.3), (xt, "linf", 0.05)):
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert (_norm(x_adv - x, norm) <= eps * (1 + 1e-5)).all()


# -- ℓ1 projection ------------------------------------------------------------------------------

def _project_l1_reference(v: np.ndarray, eps: float, x: np.ndarray) -> np.ndarray:
    """Brute force: the QP min ½‖δ − v‖² s.t. ‖δ‖₁ ≤ ε, −x ≤ δ ≤ 1 − x, solved by SLSQP on the
    split δ = p − q (p, q ≥ 0), a smooth problem."""
    from scipy.optimize import minimize

    d = len(v)

    def f(z):
        dd = z[:d] - z[d:]
        return 0.5 * np.sum((dd - v) ** 2)

    def grad(z):
        r = z[:d] - z[d:] - v
        return np.concatenate([r, -r])

    bounds = [(0, 1 - xi) for xi in x] + [(0, xi) for xi in x]
    cons = [{"type": "ineq", "fun": lambda z: eps - z.sum(), "jac": lambda z: -np.ones(2 * d)}]
    best = None
    for start in (np.zeros(2 * d), np.concatenate([np.clip(v, 0, None), np.clip(-v, 0, None)])):
        start = np.clip(start, [b[0] for b in bounds], [b[1] for b in bounds])
        res = minimize(f, start, jac=grad, bounds=bounds, constraints=cons, method="SLSQP",
                       options={"ftol": 1e-15, "maxiter": 1000})
        if best is None or res.fun < best.fun:
            best = res
    return best.x[:d] - best.x[d:]


def test_project_l1_ball_matches_qp_solver(reference):
    reference("scipy.optimize", "pip install -e '.[test]'")
    rng = np.random.default_rng(0)
    cases = 0
    for d in (2, 3, 4, 6):
        for _ in range(12):
            v = rng.normal(scale=rng.choice([0.2, 1.0, 3.0]), size=d)
            x = rng.uniform(0, 1, size=d)
            x[rng.uniform(size=d) < 0.2] = rng.choice([0.0, 1.0])  # some pixels on the faces
            eps = float(rng.choice([0.05, 0.5, 2.0, 10.0]))
            ref = _project_l1_reference(v, eps, x)
            ours = project_l1_ball(torch.tensor(v[None]), eps, torch.tensor(x[None]))[0].numpy()
            np.testing.assert_allclose(ours, ref, atol=1e-6)
            cases += 1
    assert cases == 48


def test_project_l1_ball_grid_oracle_2d():
    """In 2-D, the nearest point of a fine grid of the feasible set is within a grid step."""
    rng = np.random.default_rng(1)
    step = 2e-3
    for _ in range(6):
        x = rng.uniform(0, 1, size=2)
        v = rng.normal(scale=1.0, size=2)
        eps = float(rng.uniform(0.1, 1.0))
        g0 = np.arange(-x[0], 1 - x[0] + step / 2, step)
        g1 = np.arange(-x[1], 1 - x[1] + step / 2, step)
        a, b = np.meshgrid(g0, g1, indexing="ij")
        feasible = np.abs(a) + np.abs(b) <= eps
        dist = np.where(feasible, (a - v[0]) ** 2 + (b - v[1]) ** 2, np.inf)
        i = np.unravel_index(np.argmin(dist), dist.shape)
        grid_best = np.array([a[i], b[i]])
        ours = project_l1_ball(torch.tensor(v[None]), eps, torch.tensor(x[None]))[0].numpy()
        assert np.abs(ours).sum() <= eps + 1e-9
        assert np.sqrt(((ours - v) ** 2).sum()) <= np.sqrt(dist[i]) + 1e-12
        assert np.abs(ours - grid_best).max() <= 3 * step


def test_project_l1_ball_properties_high_dim():
    g = gen(3)
    x = torch.rand(5, 3, 8, 8, generator=g, dtype=torch.float64)
    v = torch.randn(5, 3, 8, 8, generator=g, dtype=torch.float64)
    for eps in (0.5, 5.0, 1e3):
        p = project_l1_ball(v, eps, x)
        assert (p.flatten(1).abs().sum(1) <= eps * (1 + 1e-12)).all()
        assert ((x + p) >= -1e-12).all() and ((x + p) <= 1 + 1e-12).all()
        torch.testing.assert_close(project_l1_ball(p, eps, x), p)  # idempotent
        # variational inequality ⟨v − p, z − p⟩ ≤ 0 for feasible z
        for _ in range(20):
            z = project_l1_ball(torch.randn(v.shape, generator=g, dtype=torch.float64) * 0.3,
                                eps, x)
            assert ((v - p) * (z - p)).flatten(1).sum(1).max() <= 1e-9
    # inside the set: unchanged
    small = 1e-3 * torch.sign(v) * (torch.rand(v.shape, generator=g, dtype=torch.float64))
    small = small.clamp(-x, 1 - x)
    torch.testing.assert_close(project_l1_ball(small, 1e3, x), small)


# -- CW -----------------------------------------------------------------------------------------

def test_cw_l2_finds_the_minimal_perturbation_of_a_linear_classifier():
    """For logits Wx + b the smallest ℓ2 change that flips class y → i is
    margin / ‖w_y − w_i‖ (nearest class boundary); CW must reach it closely, never beat it."""
    g = gen(11)
    d, n = 48, 10
    lin = nn.Linear(d, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(3, d, generator=g) * 0.3)
        lin.bias.zero_()
    model = nn.Sequential(nn.Flatten(), lin)
    x = 0.4 + 0.2 * torch.rand(n, 3, 4, 4, generator=g)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    w = lin.weight.detach()
    dists = []
    for i in range(n):
        others = [k for k in range(3) if k != int(y[i])]
        dists.append(min(float((logits[i, y[i]] - logits[i, k]) / (w[y[i]] - w[k]).norm())
                         for k in others))
    exact = torch.tensor(dists)
    assert exact.max() < 0.2  # the boundary is reachable without touching the box
    x_adv = cw_l2(model, x, lambda z: y, c=5.0, kappa=1e-3, steps=500, lr=0.002)
    found = (x_adv - x).flatten(1).norm(dim=1)
    assert (model(x_adv).argmax(1) != y).all()
    assert (found >= exact * (1 - 1e-4)).all()
    assert (found <= exact * 1.05 + 2e-3).all()
    # a budget below the minimal distance leaves every image unchanged
    x_none = cw_l2(model, x, lambda z: y, c=5.0, steps=100, lr=0.01,
                   max_l2=0.5 * float(exact.min()))
    torch.testing.assert_close(x_none, x)


def test_cw_margin_hand_computed():
    logits = torch.tensor([[3.0, 1.0, -2.0], [-1.0, -0.5, -3.0]])
    labels = torch.tensor([0, 2])
    torch.testing.assert_close(attacks.cw_margin(logits, labels), torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(attacks.cw_margin(logits, labels, kappa=1.0),
                               torch.tensor([2.0, -1.0]))


# -- objectives, robust accuracy, randomness ---------------------------------------------------

def test_oracle_objective_values_and_zero_gradient_at_agreement():
    s, t = small_net(3), small_net(4)
    x = images(3, seed=8)
    expect = (s(x) - t(x)).norm(dim=1)
    torch.testing.assert_close(oracle_objective(s, t)(x), expect)
    xa = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(oracle_objective(s, s)(xa).sum(), xa)
    assert torch.isfinite(grad).all() and grad.abs().max() == 0


def test_robust_accuracy_of_student_equal_to_teacher_is_one():
    teacher = small_net(4)
    student = copy.deepcopy(teacher)
    x = images(20, seed=9)
    for norm, eps, alpha in (("linf", 10 / 255, 0.01), ("l2", 0.5, 0.1), ("l1", 5.0, 1.0)):
        mu, var = robust_accuracy(student, teacher, x, eps=eps, alpha=alpha, steps=3, norm=norm,
                                  repeats=3, generator=gen())
        assert mu == 1.0 and var == 0.0


def test_robust_accuracy_on_given_subsets_is_the_mean_of_each_subset():
    teacher, student = small_net(4), small_net(6)
    x = images(12, seed=3)
    subsets = [torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7]), torch.tensor([0, 5, 9])]
    clean = lambda xb, g: xb  # noqa: E731
    mu, var = attacks.robust_accuracy_of(student, teacher, x, clean, subsets=subsets)
    each = torch.tensor([attacks.agreement(student, teacher, x[i]).float().mean().item()
                         for i in subsets], dtype=torch.float64)
    assert mu == pytest.approx(float(each.mean())) and var == pytest.approx(float(each.var()))
    with pytest.raises(ValueError, match="non-empty"):
        attacks.robust_accuracy_of(student, teacher, x, clean, subsets=[])


def test_robust_accuracy_drops_under_attack_and_reports_variance():
    teacher, student = small_net(4), small_net(4)
    with torch.no_grad():  # a student close to the teacher: agrees on clean data, not under attack
        for p in student.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen(5)))
    x = images(60, seed=10)
    clean, _ = robust_accuracy(student, teacher, x, eps=0.0, alpha=0.01, steps=0, repeats=1,
                               random_start=False)
    subsets = [torch.randperm(60, generator=gen(s))[:30] for s in range(4)]
    mu, var = robust_accuracy(student, teacher, x, eps=0.1, alpha=0.025, steps=10,
                              generator=gen(), subsets=subsets)
    assert clean > 0.7 and mu < clean - 0.05
    assert var > 0  # random subsets and random starts differ between the repeats
    # μ is the mean of the per-repeat accuracies: recompute by hand with the same generator
    g, accs = gen(), []
    with attacks.frozen(student, teacher):
        for idx in subsets:
            xa = pgd(oracle_objective(student, teacher), x[idx], eps=0.1, alpha=0.025, steps=10,
                     generator=g)
            accs.append(float(attacks.agreement(student, teacher, xa).double().mean()))
    assert mu == pytest.approx(np.mean(accs), abs=1e-12)
    assert var == pytest.approx(np.var(accs, ddof=1), abs=1e-12)


def test_robust_accuracy_restores_model_state():
    teacher, student = small_net(4), small_net(5)
    student.train()
    flags = [p.requires_grad for p in student.parameters()]
    robust_accuracy(student, teacher, images(4), eps=0.03, alpha=0.01, steps=1, generator=gen())
    assert student.training and [p.requires_grad for p in student.parameters()] == flags


@pytest.mark.parametrize("path", ["pgd linf", "pgd l2", "pgd l1", "fgsm", "cw", "transfer",
                                  "robust linf", "robust l2", "robust l1", "robust_of"])
def test_global_rng_untouched_by_every_attack_and_evaluation(path):
    """Random starts of every norm, CW, the transfer attack and the robust-accuracy loops draw
    from their generator only: the global state is neither read nor reseeded."""
    s, t, sur = small_net(3), small_net(4), small_net(5)
    x = images(6)
    obj = oracle_objective(s, t)
    norm = path.split()[-1]
    budget = {"linf": (0.03, 0.01), "l2": (0.5, 0.1), "l1": (4.0, 1.0)}.get(norm, (0.03, 0.01))
    eps, alpha = budget
    calls = {
        "pgd": lambda: pgd(obj, x, eps=eps, alpha=alpha, steps=2, norm=norm, generator=gen()),
        "fgsm": lambda: fgsm(obj, x, eps=eps),
        "cw": lambda: cw_l2(s, x, lambda z: t(z).argmax(1), steps=3),
        "transfer": lambda: transfer_attack(sur, t, x, eps=eps, alpha=alpha, steps=2,
                                            generator=gen()),
        "robust": lambda: robust_accuracy(s, t, x, eps=eps, alpha=alpha, steps=2, norm=norm,
                                          repeats=2, generator=gen()),
        "robust_of": lambda: robust_accuracy_of(
            s, t, x, lambda xb, g: transfer_attack(sur, t, xb, eps=eps, alpha=alpha, steps=1,
                                                   generator=g), repeats=2, generator=gen()),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)  # any state but the one a stray manual_seed(0) would set
        state = torch.get_rng_state()
        calls[path.split()[0]]()
        assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("norm, eps, alpha", [("l2", 2.0, 0.5), ("l1", 10.0, 2.0)])
def test_robust_accuracy_attacks_in_the_given_norm(monkeypatch, norm, eps, alpha):
    """ℓ2 and ℓ1 robust accuracy: PGD of that norm and budget makes the examples, the score is
    the agreement on them, and it is below the clean agreement (a student equal to the teacher
    scores 1.0 whatever the attack does, so that test cannot tell)."""
    teacher, student = small_net(4), small_net(4)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen(5)))
    x = images(40, seed=10)
    clean = float(attacks.agreement(student, teacher, x).double().mean())
    made, real = [], attacks.pgd

    def spy(objective, xb, **kw):
        made.append((xb, kw, real(objective, xb, **kw)))
        return made[-1][2]

    monkeypatch.setattr(attacks, "pgd", spy)
    mu, _ = robust_accuracy(student, teacher, x, eps=eps, alpha=alpha, steps=5, norm=norm,
                            generator=gen(), l1_sparsity=0.95, batch_size=len(x))
    (xb, kw, xa), = made
    assert (kw["norm"], kw["eps"], kw["alpha"], kw["steps"], kw["l1_sparsity"]) == (
        norm, eps, alpha, 5, 0.95)
    assert torch.equal(xb, x) and (_norm(xa - x, norm) <= eps * (1 + 1e-5)).all()
    assert mu == pytest.approx(float(attacks.agreement(student, teacher, xa).double().mean()),
                               abs=1e-12)
    assert mu < clean - 0.05


def test_randomness_only_from_the_generator():
    s, t = small_net(3), small_net(4)
    x = images(4)
    state = torch.get_rng_state()
    a = pgd(oracle_objective(s, t), x, eps=0.03, alpha=0.01, steps=2, generator=gen(7))
    b = pgd(oracle_objective(s, t), x, eps=0.03, alpha=0.01, steps=2, generator=gen(7))
    c = pgd(oracle_objective(s, t), x, eps=0.03, alpha=0.01, steps=2, generator=gen(8))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="Generator"):
        pgd(oracle_objective(s, t), x, eps=0.03, alpha=0.01, steps=1)


def test_transfer_attack_evaluated_on_the_target():
    teacher = small_net(4)
    x = images(30, seed=12)
    # attacking the target itself as "surrogate" is the white-box attack: same examples
    target = small_net(6)
    white = pgd(oracle_objective(target, teacher), x, eps=0.1, alpha=0.02, steps=5,
                generator=gen(2))
    trans = transfer_attack(target, teacher, x, eps=0.1, alpha=0.02, steps=5, generator=gen(2))
    torch.testing.assert_close(white, trans)
    # a surrogate's examples, shown to the target: the target's agreement on them, which is
    # neither the surrogate's own (white-box) score nor the target's white-box score
    surrogate = small_net(7)
    kw = dict(eps=0.1, alpha=0.02, steps=5)

    def transfer(xb, g):
        return transfer_attack(surrogate, teacher, xb, generator=g, **kw)

    mu, _ = robust_accuracy_of(target, teacher, x, transfer, generator=gen())
    x_adv = transfer_attack(surrogate, teacher, x, generator=gen(), **kw)
    by_hand = float(attacks.agreement(target, teacher, x_adv).double().mean())
    assert mu == pytest.approx(by_hand, abs=1e-12)
    surrogate_own = float(attacks.agreement(surrogate, teacher, x_adv).double().mean())
    white_box, _ = robust_accuracy(target, teacher, x, generator=gen(), **kw)
    assert surrogate_own < mu and white_box < mu  # the test tells the three apart
    # a target equal to the teacher agrees with it everywhere, whatever the surrogate did
    twin, _ = robust_accuracy_of(copy.deepcopy(teacher), teacher, x, transfer, generator=gen())
    assert twin == 1.0


@pytest.mark.parametrize("norm, eps, alpha", [("linf", 10 / 255, 0.01), ("l2", 0.5, 0.1),
                                              ("l1", 5.0, 1.0)])
def test_chunked_gradients_give_the_one_pass_iterates(norm, eps, alpha):
    s, t = small_net(3).double(), small_net(4).double()
    x = images(10, seed=2).double()
    sizes = []

    def objective(z):
        sizes.append(len(z))
        return oracle_objective(s, t)(z)

    kw = dict(eps=eps, alpha=alpha, steps=4, norm=norm, random_start=True)
    one = pgd(objective, x, generator=gen(5), **kw)
    sizes.clear()
    chunked = pgd(objective, x, generator=gen(5), chunk_size=3, **kw)
    assert sizes == [3, 3, 3, 1] * 4  # every step's gradient taken 3 images at a time
    torch.testing.assert_close(chunked, one, atol=1e-12, rtol=0)
    torch.testing.assert_close(fgsm(objective, x, eps=eps, chunk_size=4),
                               fgsm(objective, x, eps=eps), atol=1e-12, rtol=0)


def test_robust_accuracy_attacks_cpu_chunks_by_default():
    s, t = small_net(3), small_net(4)
    x = images(2 * attacks.CPU_CHUNK + 5, seed=1)
    sizes = []

    def clean(xb, g):
        sizes.append(len(xb))
        return xb

    attacks.robust_accuracy_of(s, t, x, clean)
    assert sizes == [attacks.CPU_CHUNK, attacks.CPU_CHUNK, 5]
    sizes.clear()
    attacks.robust_accuracy_of(s, t, x, clean, batch_size=len(x))
    assert sizes == [len(x)]


def test_bad_inputs_fail_fast():
    s, t = small_net(3), small_net(4)
    obj = oracle_objective(s, t)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd(obj, images() * 2, eps=0.1, alpha=0.01, steps=1, random_start=False)
    with pytest.raises(ValueError, match="norm"):
        pgd(obj, images(), eps=0.1, alpha=0.01, steps=1, norm="l3", random_start=False)
    with pytest.raises(ValueError, match="one loss per sample"):
        pgd(lambda z: obj(z).sum(), images(), eps=0.1, alpha=0.01, steps=1, random_start=False)
    with pytest.raises(ValueError, match="eps"):
        fgsm(obj, images(), eps=-1.0)
    with pytest.raises(ValueError, match="repeats"):
        robust_accuracy(s, t, images(), eps=0.1, alpha=0.01, steps=1, repeats=0, generator=gen())
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            pgd(obj, images(), eps=0.1, alpha=0.01, steps=1, random_start=False, chunk_size=bad)
        with pytest.raises(ValueError, match="chunk_size"):
            fgsm(obj, images(), eps=0.1, chunk_size=bad)
        with pytest.raises(ValueError, match="batch_size"):
            robust_accuracy(s, t, images(), eps=0.1, alpha=0.01, steps=1, batch_size=bad,
                            generator=gen())


# -- precision ---------------------------------------------------------------------------------

def test_unknown_precision_is_refused():
    s, t = small_net(3), small_net(4)
    for call in (lambda: pgd(oracle_objective(s, t), images(), eps=0.1, alpha=0.01, steps=1,
                             random_start=False, precision="fp16"),
                 lambda: fgsm(oracle_objective(s, t), images(), eps=0.1, precision="half"),
                 lambda: robust_accuracy(s, t, images(), eps=0.1, alpha=0.01, steps=1,
                                         generator=gen(), precision=None)):
        with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32'"):
            call()


@pytest.mark.parametrize("flags, precision, dtype", [
    (frozenset({"avx512_bf16"}), "auto", torch.bfloat16),
    (frozenset({"amx_bf16"}), "auto", torch.bfloat16),
    (frozenset({"avx2", "avx512f"}), "auto", torch.float32),  # no native bf16: fp32
    (frozenset({"avx512_bf16"}), "fp32", torch.float32),
])
def test_attack_precision_sets_the_dtype_of_activations(monkeypatch, flags, precision, dtype):
    from tsrobust import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    s, t = small_net(3), small_net(4)
    seen = []
    for net in (s, t):
        net[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x = images(5)
    out = pgd(oracle_objective(s, t), x, eps=0.1, alpha=0.01, steps=2, generator=gen(),
              precision=precision, chunk_size=3)
    assert len(seen) == 8 and set(seen) == {dtype}  # 2 steps × 2 chunks × 2 nets
    assert out.dtype == torch.float32  # the perturbation stays fp32
    seen.clear()
    robust_accuracy(s, t, x, eps=0.1, alpha=0.01, steps=1, generator=gen(), precision=precision)
    assert seen and set(seen) == {dtype}  # the attack and the agreement check
    seen.clear()
    cw_l2(s, x, lambda z: t(z).argmax(1), steps=1, precision=precision)
    assert seen and set(seen) == {dtype}
    seen.clear()
    fgsm(oracle_objective(s, t), x, eps=0.1, precision=precision)
    assert len(seen) == 2 and set(seen) == {dtype}
    seen.clear()
    transfer_attack(s, t, x, eps=0.1, alpha=0.01, steps=1, generator=gen(), precision=precision)
    assert len(seen) == 2 and set(seen) == {dtype}


def test_cpu_chunk_doubles_for_bf16():
    x = images(2)
    assert attacks.cpu_chunk(x) == attacks.cpu_chunk(x, "fp32") == attacks.CPU_CHUNK
    assert attacks.cpu_chunk(x, "bf16") == 2 * attacks.CPU_CHUNK


def test_bf16_robust_accuracy_equals_fp32_within_sampling_noise():
    """On a trained student, bf16 PGD finds as many adversarial examples as fp32 PGD: the two
    robust accuracies differ by less than 3 binomial standard errors of their difference."""
    from tsrobust.models import ConvNet
    from tsrobust.training import train_student

    teacher, student = ConvNet((6, 8), generator=gen(1)), ConvNet((6, 8), generator=gen(2))
    x_train = torch.rand(256, 3, 32, 32, generator=gen(3))
    train_student(student, teacher, x_train, epochs=5, lr=3e-3, batch_size=32, generator=gen(0),
                  progress=False)
    n = 400
    x = torch.rand(n, 3, 32, 32, generator=gen(4))
    clean = float(attacks.agreement(student, teacher, x).float().mean())
    acc = {p: robust_accuracy(student, teacher, x, eps=4 / 255, alpha=1 / 255, steps=10,
                              generator=gen(5), precision=p)[0] for p in ("fp32", "bf16")}
    p_bar = (acc["fp32"] + acc["bf16"]) / 2
    bound = 3 * (2 * p_bar * (1 - p_bar) / n) ** 0.5
    # the test has power: the attack moves the accuracy by much more than the bound
    assert 0.1 < p_bar < 0.9 and clean - acc["fp32"] > 2 * bound
    assert abs(acc["bf16"] - acc["fp32"]) <= bound


# -- in-plane / out-of-plane attacks (§5.4, Table 2) --------------------------------------

def _patch_basis(rank=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(27, 27, generator=g, dtype=torch.float64))
    return q[:, :rank]


def test_pgd_in_out_splits_two_runs_by_their_distance_to_the_subspace():
    """x_in and x_out are the two PGD runs from the generator's next two starts, x_in the one with
    the smaller off-subspace distance per image, and x_first the first run."""
    from tsrobust.specialization import off_subspace_distance

    student, teacher, x, u = small_net(0), small_net(1), images(8), _patch_basis()
    obj = oracle_objective(student, teacher)
    kw = dict(eps=8 / 255, alpha=2 / 255, steps=3)
    x_in, x_out, x_first = attacks.pgd_in_out(obj, x, u, generator=gen(5), **kw)
    g = gen(5)
    run_a = attacks.pgd(obj, x, generator=g, **kw)
    run_b = attacks.pgd(obj, x, generator=g, **kw)
    torch.testing.assert_close(x_first, run_a)
    assert not torch.equal(run_a, run_b)  # different random starts
    d_a, d_b = (off_subspace_distance(r - x, u) for r in (run_a, run_b))
    a_in = d_a <= d_b
    assert 0 < int(a_in.sum()) < len(x)  # both cases occur on these images
    for i in range(len(x)):
        torch.testing.assert_close(x_in[i], (run_a if a_in[i] else run_b)[i])
        torch.testing.assert_close(x_out[i], (run_b if a_in[i] else run_a)[i])
    assert (off_subspace_distance(x_in - x, u) <= off_subspace_distance(x_out - x, u)).all()


@pytest.mark.parametrize("side", ["in", "out"])
def test_pgd_projected_stays_in_its_subspace_and_eps_ball(side):
    """Images away from 0 and 1 (no clip): the perturbation is a fixed point of the side's
    projection, its off-subspace share on the side's side of the threshold, and ‖δ‖∞ ≤ ε; on
    images with saturated pixels it stays in the ε-ball and the box."""
    from tsrobust.specialization import PatchSubspaceSplit, off_subspace_distance

    u = _patch_basis()
    split = PatchSubspaceSplit(u, shape=(3, 8, 8))
    student, teacher = small_net(0), small_net(1)
    obj = oracle_objective(student, teacher)
    eps = 8 / 255
    x = images(6, lo=0.2, hi=0.8)
    x_adv = attacks.pgd_projected(obj, x, split, side, eps=eps, alpha=2 / 255, steps=4,
                                  generator=gen(2))
    delta = x_adv - x
    assert delta.abs().max() <= eps + 1e-6 and delta.abs().max() > eps / 4
    torch.testing.assert_close(split.project(delta, side), delta, atol=1e-5, rtol=0)
    other = "out" if side == "in" else "in"
    assert split.project(delta, other).abs().max() < 1e-5
    share = off_subspace_distance(delta, u, "share")
    assert ((share <= 0.5) if side == "in" else (share > 0.5)).all()
    x_sat = images(6)  # pixels near 0 and 1: clipped, still in the ball and the box
    x_adv = attacks.pgd_projected(obj, x_sat, split, side, eps=eps, alpha=2 / 255, steps=4,
                                  generator=gen(2))
    assert (x_adv - x_sat).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    # the attack works: it moves the loss up from the clean point
    assert obj(x_adv).mean() > obj(x_sat).mean()


# -- APGD and adversarial accuracy (source C §3) -------------------------------------------------

APGD_EPS = 4 / 255
"""ℓ∞ budget of the APGD tests: the trained net below keeps about half its clean accuracy."""


@pytest.fixture(scope="module")
def autopgd(reference):
    return reference("pyautoattack.autopgd_base", PYAUTOATTACK)


@pytest.fixture(scope="module")
def trained():
    """A small conv net trained for a few seconds on 10 noisy image classes (8×8 templates):
    ``(model, x_test, y_test)``, clean accuracy about 60 %, robust accuracy at ε = 4/255 about
    30 %: some images break, some do not."""
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(10, 3, 8, 8, generator=g)

    def draw(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return 0.3 * templates[y] + 0.7 * torch.rand(n, 3, 8, 8, generator=g), y

    x_train, y_train = draw(2000)
    x_test, y_test = draw(300)
    model = small_net(0).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(5):
        for idx in torch.randperm(2000, generator=g).split(100):
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval().requires_grad_(False)
    clean = float((model(x_test).argmax(1) == y_test).float().mean())
    assert 0.5 < clean < 0.9
    return model, x_test, y_test


class _Recorder(nn.Module):
    """The wrapped model, recording every input it is shown."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.model(x)


def _reference_run(autopgd, model, x, y, *, loss, eps, norm, steps, restarts, seed=0):
    """pyautoattack's APGD on (x, y): its output, every input it showed the model, and the step
    size of every iteration (read from the running code: it keeps them in a local variable)."""
    import inspect
    import sys

    rec = _Recorder(model)
    attack = autopgd.APGDAttack(rec, n_iter=steps, norm={"linf": "Linf", "l2": "L2"}[norm],
                                n_restarts=restarts, eps=eps, seed=seed, loss=loss,
                                rho=attacks.APGD_RHO, device="cpu")
    fn = autopgd.APGDAttack.attack_single_run
    lines, first = inspect.getsourcelines(fn)
    target = first + next(i for i, line in enumerate(lines) if "a = 0.75 if i > 0" in line)
    steps_seen = []

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == target:
            steps_seen.append(frame.f_locals["step_size"].flatten().clone())
        return local

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local if frame.f_code is fn.__code__ else None)
    try:
        out = attack.perturb(x, y)
    finally:
        sys.settrace(previous)
    return out, rec.seen, steps_seen


@pytest.mark.parametrize("norm, loss, eps", [("linf", "ce", APGD_EPS), ("linf", "dlr", APGD_EPS),
                                             ("l2", "ce", 0.25)])
def test_apgd_follows_pyautoattack_iterate_by_iterate(autopgd, trained, norm, loss, eps):
    """Same model, images, budget and seed: every point at which the model is evaluated, every
    step size and the returned examples equal the official code's, over two restarts."""
    model, x, y = trained
    steps, restarts = 30, 2
    ref_out, ref_seen, ref_steps = _reference_run(autopgd, model, x, y, loss=loss, eps=eps,
                                                  norm=norm, steps=steps, restarts=restarts)
    rec, trace = _Recorder(model), []
    ours = attacks.apgd(rec, x, y, loss=loss, eps=eps, norm=norm, steps=steps,
                        restarts=restarts, generator=gen(0), trace=trace)
    assert len(trace) == restarts and len(rec.seen) == len(ref_seen) == 1 + restarts * (steps + 1)
    for a, b in zip(rec.seen, ref_seen):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=0)
    assert len(ref_steps) == restarts * steps
    for r, t in enumerate(trace):  # restart r attacks the images not broken before it
        assert torch.equal(t["step_size"], torch.stack(ref_steps[r * steps:(r + 1) * steps]))
    assert len(set(trace[0]["step_size"][-1].tolist())) > 1  # the schedule differs per image
    torch.testing.assert_close(ours, ref_out, atol=1e-7, rtol=0)
    robust = float((model(ours).argmax(1) == y).float().mean())
    clean = float((model(x).argmax(1) == y).float().mean())
    assert 0 < robust < clean - 0.1  # the attack breaks some images, not all


def test_apgd_robust_accuracy_is_the_references_within_sampling_noise(autopgd, trained):
    """Other random starts (our seed 1, the reference's seed 0), 100 steps: the robust accuracies
    agree within three standard errors of a difference of two binomial proportions."""
    model, x, y = trained
    for loss in ("ce", "dlr"):
        ref, _, _ = _reference_run(autopgd, model, x, y, loss=loss, eps=APGD_EPS, norm="linf",
                                   steps=100, restarts=1)
        ours = attacks.apgd(model, x, y, loss=loss, eps=APGD_EPS, steps=100, generator=gen(1))
        p_ref = float((model(ref).argmax(1) == y).float().mean())
        p_ours = float((model(ours).argmax(1) == y).float().mean())
        se = np.sqrt(2 * p_ref * (1 - p_ref) / len(x))
        assert abs(p_ours - p_ref) <= 3 * se, (loss, p_ours, p_ref)


def test_apgd_checkpoints_are_the_papers_and_the_references(autopgd, trained, monkeypatch):
    """N = 100: p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), at ⌈p_j N⌉
    (computed here in hundredths). Other N: the iterations at which the official code checks."""
    p, prev, want = 22, 0, []
    while p <= 100:
        want.append(p)
        p, prev = p + max(p - prev - 3, 6), p
    assert attacks.apgd_checkpoints(100) == tuple(want) == (22, 41, 57, 70, 80, 87, 93, 99)
    model, x, y = trained
    ok = model(x).argmax(1) == y  # images the attack runs on
    for steps in (5, 13, 40):
        calls = []
        check = autopgd.APGDAttack.check_oscillation
        monkeypatch.setattr(autopgd.APGDAttack, "check_oscillation",
                            lambda self, *a, **k: (calls.append(a[1] + 1), check(self, *a, **k))[1])
        autopgd.APGDAttack(model, n_iter=steps, eps=APGD_EPS, device="cpu").perturb(x[ok][:4],
                                                                                   y[ok][:4])
        monkeypatch.undo()
        assert calls and attacks.apgd_checkpoints(steps) == tuple(calls)


def test_apgd_step_size_starts_at_2eps_and_only_halves_at_checkpoints(trained):
    model, x, y = trained
    trace = []
    attacks.apgd(model, x, y, loss="dlr", eps=APGD_EPS, steps=100, generator=gen(), trace=trace)
    sizes = trace[0]["step_size"]  # [steps, images]: the step size of each iteration
    assert torch.all(sizes[0] == 2 * APGD_EPS)
    ratio = sizes[1:] / sizes[:-1]
    changed = (ratio != 1).any(1).nonzero().squeeze(1) + 1  # first iteration with a new size
    assert set(changed.tolist()) <= set(attacks.apgd_checkpoints(100))
    assert changed.numel() > 2 and bool(((ratio == 1) | (ratio == 0.5)).all())


def test_dlr_loss_by_hand():
    z = torch.tensor([[1.0, 3.0, 2.0, 0.5],
                      [1.0, 3.0, 2.0, 0.5],
                      [4.0, 4.0, 0.0, 0.0]])
    y = torch.tensor([1, 0, 0])
    # y the largest: −(3 − 2)/(3 − 1); y not: −(1 − 3)/(3 − 1); a tie for the top: −(4 − 4)/4
    want = torch.tensor([-0.5, 1.0, 0.0])
    torch.testing.assert_close(attacks.dlr_loss(z, y), want)
    # invariant to a shift and a positive scale of the logits
    torch.testing.assert_close(attacks.dlr_loss(3 * z + 7, y), want)
    with pytest.raises(ValueError, match="C ≥ 3"):
        attacks.dlr_loss(z[:, :2], y)


@pytest.mark.parametrize("norm, eps", [("linf", 8 / 255), ("l2", 0.5)])
def test_apgd_stays_in_the_ball_and_the_box(trained, norm, eps):
    model, x, y = trained
    x = x.clone()
    x[:, :, :2] = 0.0  # pixels on the faces of the box
    x[:, :, -2:] = 1.0
    for loss in ("ce", "dlr"):
        adv = attacks.apgd(model, x, y, loss=loss, eps=eps, norm=norm, steps=20, restarts=2,
                           generator=gen())
        d = (adv - x).flatten(1)
        size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
        assert float(size.max()) <= eps + 1e-6 and float(size.max()) > 0.5 * eps
        assert float(adv.min()) >= 0 and float(adv.max()) <= 1
        # changed images are misclassified; the others were not broken
        changed = d.abs().amax(1) > 0
        assert bool((model(adv[changed]).argmax(1) != y[changed]).all())


def test_adversarial_accuracy_is_autoattacks_and_at_most_apgd_ce_alone(reference, trained):
    """APGD-CE then APGD-DLR on the survivors: the robust images are exactly those of the
    official AutoAttack with these two attacks (seed 0), no more than APGD-CE alone leaves, and
    the DLR stage breaks some that CE did not."""
    aa = reference("pyautoattack", PYAUTOATTACK)
    model, x, y = trained
    adv, robust = attacks.apgd_ce_dlr(model, x, y, eps=APGD_EPS, steps=50, restarts=2,
                                      batch_size=len(x))
    ref = aa.AutoAttack(model, attacks=["apgd-ce", "apgd-dlr"], version="custom", eps=APGD_EPS,
                        seed=0)
    ref.apgd.n_iter, ref.apgd.n_restarts = 50, 2  # "custom" keeps the constructor's 5 restarts
    ref.apgd.n_iter_2, ref.apgd.n_iter_min, ref.apgd.size_decr = 11, 3, 1  # as for 50 steps
    ref_adv, _ = ref.run_standard_evaluation(x, y, batch_size=len(x))
    assert torch.equal(robust, model(ref_adv).argmax(1) == y)
    torch.testing.assert_close(adv, ref_adv, atol=1e-7, rtol=0)
    ce = attacks.apgd(model, x, y, loss="ce", eps=APGD_EPS, steps=50, restarts=2)
    ce_robust = model(ce).argmax(1) == y
    assert not bool((robust & ~ce_robust).any())
    assert int(robust.sum()) < int(ce_robust.sum())
    acc = attacks.adversarial_accuracy(model, x, y, eps=APGD_EPS, steps=50, restarts=2,
                                       batch_size=len(x))
    assert acc == float(robust.float().mean()) <= float(ce_robust.float().mean())
    assert bool((model(adv[~robust]).argmax(1) != y[~robust]).all())


def test_apgd_uses_only_its_generator_and_restores_the_model():
    model = small_net(2)
    bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                       nn.Linear(4 * 36, 10)).train()
    stats = bn[1].running_mean.clone()
    x, y = images(8), torch.arange(8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        state = torch.get_rng_state()
        a = attacks.apgd(model, x, y, eps=0.05, steps=5, generator=gen(3))
        attacks.apgd_ce_dlr(bn, x, y, eps=0.05, steps=5)
        assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, attacks.apgd(model, x, y, eps=0.05, steps=5, generator=gen(3)))
    assert not torch.equal(a, attacks.apgd(model, x, y, eps=0.05, steps=5, generator=gen(4)))
    # BatchNorm ran on its running statistics (eval mode) and the model got its mode back
    assert bn.training and torch.equal(bn[1].running_mean, stats)
    assert all(p.requires_grad for p in bn.parameters())
    with pytest.raises(ValueError, match="loss must be one of"):
        attacks.apgd(model, x, y, loss="cw", eps=0.05)
    with pytest.raises(ValueError, match="norm must be one of"):
        attacks.apgd(model, x, y, eps=0.05, norm="l1")


class _Flicker(nn.Module):
    """A two-class model that is right on every call but one: on call ``flip`` it predicts
    class 1 for every image (its logits still depend on x, so APGD has a gradient)."""

    def __init__(self, flip: int):
        super().__init__()
        self.flip, self.calls = flip, 0

    def forward(self, x):
        self.calls += 1
        bias = torch.tensor([0.0, 5.0] if self.calls == self.flip else [5.0, 0.0])
        return 0.01 * x.flatten(1)[:, :2] + bias


def test_apgd_an_image_misclassified_at_any_iterate_stays_broken():
    # misclassified only at one iterate mid-run: it counts as broken, and its adversarial example
    # is that iterate (not x, which the model classifies correctly)
    x, y = torch.rand(3, 1, 4, 4), torch.zeros(3, dtype=torch.long)
    for flip in (3, 4, 5):
        model = _Flicker(flip)
        x_adv = attacks.apgd(model, x, y, eps=0.1, steps=8,
                             generator=torch.Generator().manual_seed(0))
        assert model.calls > flip  # the flip happened before the last iterate
        assert (x_adv != x).flatten(1).any(1).all(), flip
        assert (x_adv - x).abs().max() <= 0.1 + 1e-6
