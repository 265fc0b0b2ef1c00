"""tsrobust.robust_features: Eq. 35 by hand, its optimisation lowers it, the starting images."""

from __future__ import annotations

import pytest
import torch

from tsrobust import robust_features as rf
from tsrobust.models import ConvNet


def _net(seed, widths=(4, 4, 3, 3)):
    return ConvNet(widths, generator=torch.Generator().manual_seed(seed)).eval()


def _images(n, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_representation_is_the_flattened_last_conv_map():
    model, x = _net(1), _images(2)
    rep = rf.representation(model, x)
    assert rep.shape == (2, 3 * 24 * 24)
    # the linear read-out of that representation gives the logits
    assert torch.allclose(model.fc(rep), model(x), atol=1e-5)


def test_objective_by_hand_and_zero_at_the_target():
    model, teacher, x, z = _net(1), _net(2), _images(3), _images(3, seed=5)
    obj = rf.robust_feature_objective(model, teacher, x, alpha=0.5)
    want = (0.5 * (teacher(z) - teacher(x)).pow(2).sum(1)
            + (rf.representation(model, z) - rf.representation(model, x)).pow(2).sum(1))
    assert torch.allclose(obj(z), want, rtol=1e-5)
    assert torch.allclose(obj(x), torch.zeros(3), atol=1e-6)
    only_rep = rf.robust_feature_objective(model, teacher, x, alpha=0.0)(z)
    assert torch.allclose(only_rep, (rf.representation(model, z)
                                     - rf.representation(model, x)).pow(2).sum(1), rtol=1e-5)


@pytest.mark.parametrize("start", rf.STARTS)
def test_optimisation_lowers_its_objective(start):
    model, teacher, x = _net(1), _net(2), _images(6)
    x0 = rf.start_images(x, start, torch.Generator().manual_seed(7))
    assert not torch.equal(x0, x)
    x_r, history = rf.robust_features(model, teacher, x, x0, steps=30, lr=0.01)
    assert len(history) == 31
    assert history[-1] < 0.5 * history[0]
    obj = rf.robust_feature_objective(model, teacher, x)
    assert obj(x_r).mean().item() == pytest.approx(history[-1], rel=1e-5)
    assert x_r.min() >= 0 and x_r.max() <= 1
    assert not torch.equal(x_r, x)  # it did not start at (or jump to) the target itself


def test_image_starts_are_other_images_of_the_set():
    x = _images(7)
    start = rf.start_images(x, "image", torch.Generator().manual_seed(3))
    rows = [next(j for j in range(7) if torch.equal(start[i], x[j])) for i in range(7)]
    assert sorted(rows) == list(range(7))  # a permutation of the set
    assert all(r != i for i, r in enumerate(rows))  # no image starts from itself
    with pytest.raises(ValueError, match="start must be one of"):
        rf.start_images(x, "blank", torch.Generator())
