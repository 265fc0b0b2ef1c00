"""tsrobust.ccat: λ(δ) and ỹ against hand-computed values, the confidence attack's ball, a CCAT
batch, and the training hook (source A §5.6)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tsrobust import ccat
from tsrobust import training as T
from tsrobust.models import ConvNet

EPS = 10 / 255


def _net(seed, widths=(4, 4, 3, 3)):
    return ConvNet(widths, generator=torch.Generator().manual_seed(seed)).eval()


def _images(n, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _delta(size: float, n_pixels_at_size: int = 1):
    """A perturbation of one image whose largest |pixel| is ``size`` (a few pixels at it, the
    rest smaller)."""
    d = torch.full((1, 3, 4, 4), size / 3)
    d.view(-1)[:n_pixels_at_size] = -size  # the sign must not matter
    return d


@pytest.mark.parametrize("rho", [5, 10, 20])
def test_transition_by_hand(rho):
    # ‖δ‖∞ = 0: λ = 1; = ε/2: λ = (1/2)^ρ; = ε or beyond: λ = 0
    assert ccat.transition(torch.zeros(1, 3, 4, 4), EPS, rho).item() == 1.0
    assert ccat.transition(_delta(EPS / 2), EPS, rho).item() == pytest.approx(0.5 ** rho,
                                                                             rel=1e-5)
    assert ccat.transition(_delta(EPS / 4, 3), EPS, rho).item() == pytest.approx(0.75 ** rho,
                                                                                rel=1e-5)
    for size in (EPS, 1.5 * EPS, 3 * EPS):
        assert ccat.transition(_delta(size), EPS, rho).item() == 0.0
    with pytest.raises(ValueError):
        ccat.transition(_delta(0.01), 0.0, rho)


def test_calibrated_labels_by_hand():
    labels = torch.tensor([2, 0, 1])
    lam = torch.tensor([1.0, 0.5, 0.0])
    y = ccat.calibrated_labels(labels, lam, 4)
    want = torch.tensor([[0.0, 0.0, 1.0, 0.0],          # λ = 1: the one-hot label
                         [0.625, 0.125, 0.125, 0.125],  # λ = ½: ½·onehot + ½·¼
                         [0.25, 0.25, 0.25, 0.25]])     # λ = 0: uniform
    assert torch.allclose(y, want)
    # ‖δ‖∞ = ε/2 with ρ = 10: λ = 1/1024, ỹ_y = 1/1024 + (1 − 1/1024)/10
    lam = ccat.transition(_delta(EPS / 2), EPS, 10)
    y = ccat.calibrated_labels(torch.tensor([3]), lam, 10)
    assert y[0, 3].item() == pytest.approx(1 / 1024 + (1023 / 1024) / 10, rel=1e-5)
    assert y[0, 0].item() == pytest.approx((1023 / 1024) / 10, rel=1e-5)


def test_soft_cross_entropy_is_cross_entropy_for_one_hot_and_mean_nll_for_uniform():
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 9, 2, 2])
    onehot = F.one_hot(labels, 10).float()
    assert ccat.soft_cross_entropy(logits, onehot).item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-6)
    uniform = torch.full((5, 10), 0.1)
    assert ccat.soft_cross_entropy(logits, uniform).item() == pytest.approx(
        (-F.log_softmax(logits, 1).mean(1)).mean().item(), rel=1e-6)


def test_logit_gap_objective_is_the_largest_absolute_logit_difference():
    student, teacher, x = _net(1), _net(2), _images(4)
    want = (student(x) - teacher(x)).abs().max(1).values
    assert torch.allclose(ccat.logit_gap_objective(student, teacher)(x), want)


def test_confidence_attack_stays_in_its_ball_and_raises_the_gap():
    student, teacher, x = _net(1), _net(2), _images(6)
    radius = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    g = torch.Generator().manual_seed(0)
    x_adv = ccat.confidence_attack(student, teacher, x, eps=EPS, alpha=0.01, steps=8,
                                   radius=radius, generator=g)
    size = (x_adv - x).flatten(1).abs().amax(1)
    assert (size <= radius * EPS + 1e-6).all()
    assert torch.equal(x_adv[0], x[0])  # radius 0: no move
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    gap = ccat.logit_gap_objective(student, teacher)
    assert (gap(x_adv)[1:] > gap(x)[1:]).all()
    # the full ball: sign steps reach ‖δ‖∞ = ε
    full = ccat.confidence_attack(student, teacher, x, eps=EPS, alpha=0.01, steps=8,
                                  generator=torch.Generator().manual_seed(0))
    assert torch.allclose((full - x).flatten(1).abs().amax(1), torch.full((6,), EPS), atol=1e-6)


def test_ccat_batch_clean_part_one_hot_adversarial_part_calibrated():
    student, teacher, x = _net(1), _net(2), _images(8)
    g = torch.Generator().manual_seed(0)
    inputs, target = ccat.ccat_batch(student, teacher, x, eps=EPS, alpha=0.01, steps=4, rho=10,
                                     clean_fraction=0.5, random_radius=True, generator=g)
    labels = teacher(x).argmax(1)
    assert torch.equal(inputs[:4], x[:4])
    assert torch.equal(target[:4], F.one_hot(labels[:4], 10).float())
    lam = ccat.transition(inputs[4:] - x[4:], EPS, 10)
    assert torch.allclose(target[4:], ccat.calibrated_labels(labels[4:], lam, 10))
    assert torch.allclose(target.sum(1), torch.ones(8))
    assert 0 < lam.max() and lam.min() < 1  # random radii: λ is neither all 0 nor all 1
    # attacked inside the full ε: every adversarial target is (almost exactly) uniform
    _, target = ccat.ccat_batch(student, teacher, x, eps=EPS, alpha=0.01, steps=8, rho=10,
                                clean_fraction=0.5, random_radius=False,
                                generator=torch.Generator().manual_seed(0))
    assert torch.allclose(target[4:], torch.full((4, 10), 0.1), atol=1e-4)


def _train(ccat_cfg, target="label", **kw):
    student, teacher = _net(3), _net(4)
    T.train_student(student, teacher, _images(16), target=target, epochs=1, lr=1e-2,
                    batch_size=8, generator=torch.Generator().manual_seed(0), progress=False,
                    ccat=ccat_cfg, **kw)
    return student.state_dict()


def _cfg(**kw):
    return {**dict(eps=EPS, alpha=0.01, steps=2, rho=10, clean_fraction=0.5,
                   random_radius=True), **kw}


def test_train_student_ccat_trains_on_its_batches():
    """All clean (clean_fraction 1): CCAT is label training exactly; half adversarial: the
    student ends elsewhere — so the hook feeds ccat_batch's images and targets to the loss."""
    plain = _train(None)
    all_clean = _train(_cfg(clean_fraction=1.0))
    half = _train(_cfg())
    assert all(torch.allclose(plain[k], all_clean[k], atol=1e-6) for k in plain)
    assert any(not torch.allclose(plain[k], half[k], atol=1e-4) for k in plain)


def test_train_student_refuses_a_bad_ccat_configuration():
    with pytest.raises(ValueError, match="exactly the keys"):
        _train({"eps": EPS})
    with pytest.raises(ValueError, match="target='label'"):
        _train(_cfg(), target="logit")
    with pytest.raises(ValueError, match="not both"):
        _train(_cfg(), adversarial=dict(norm="linf", eps=EPS, alpha=0.01, steps=1))


def test_train_student_fits_the_student_on_ccat_batch_images(monkeypatch):
    """The hook must train on ccat_batch's images (not the clean batch it was given): a stand-in
    returns blank images, and the student's first layer must see them in training."""
    seen = []

    def fake(student, teacher, x, **kw):
        return torch.zeros_like(x), torch.full((len(x), 10), 0.1)

    monkeypatch.setattr(ccat, "ccat_batch", fake)
    student, teacher = _net(3), _net(4)
    student.convs[0].register_forward_hook(
        lambda mod, inp, out: seen.append((mod.training, bool((inp[0] == 0).all()))))
    T.train_student(student, teacher, _images(16), target="label", epochs=1, lr=1e-2,
                    batch_size=8, generator=torch.Generator().manual_seed(0), progress=False,
                    ccat=_cfg())
    trained = [blank for training, blank in seen if training]
    assert trained and all(trained)
