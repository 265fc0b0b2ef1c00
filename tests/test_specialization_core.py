"""Tests of the specialization core: normalized correlation, best NC and MBNC (source A §5.2)."""

import numpy as np
import pytest
import torch

from tsrobust.specialization import VARIANCE_FLOOR, best_nc, mbnc, normalized_correlation


def test_hand_computed_pearson():
    # x = (1, 2, 3, 4), y = (1, 3, 2, 4): centred sums Σdx·dy = 4, Σdx² = Σdy² = 5 → ρ = 0.8.
    s = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    t = torch.tensor([[1.0], [3.0], [2.0], [4.0]])
    assert normalized_correlation(s, t).item() == pytest.approx(0.8, abs=1e-6)


def test_perfect_and_anti_correlation_matrix_layout():
    # student nodes: a = (1, 2, 3), b = (3, 2, 1); teacher nodes: c = (2, 4, 6), e = (0, 0, 1)
    s = torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    t = torch.tensor([[2.0, 0.0], [4.0, 0.0], [6.0, 1.0]])
    nc = normalized_correlation(s, t)
    assert nc.shape == (2, 2)  # [K_student, K_teacher]
    # corr(a, e): a centred (−1, 0, 1), e centred (−1/3, −1/3, 2/3) → 1 / (√2 · √(2/3)) = √3/2
    expected = torch.tensor([[1.0, np.sqrt(3) / 2], [-1.0, -np.sqrt(3) / 2]])
    assert torch.allclose(nc, expected.float(), atol=1e-6)


def test_dead_node_gets_zero_not_nan():
    s = torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])  # node 0 is dead (constant 0)
    t = torch.tensor([[1.0], [2.0], [4.0]])
    nc = normalized_correlation(s, t)
    assert torch.isfinite(nc).all()
    assert nc[0, 0].item() == 0.0
    # a constant *teacher* node too
    nc2 = normalized_correlation(t, torch.full((3, 1), 5.0))
    assert nc2.item() == 0.0


def test_matches_numpy_corrcoef_on_random_data():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(200, 4)), rng.normal(size=(200, 3))
    t[:, 0] += 0.7 * s[:, 1]
    nc = normalized_correlation(s, t).numpy()  # numpy input is accepted
    ref = np.corrcoef(s.T, t.T)[:4, 4:]
    assert np.allclose(nc, ref, atol=1e-5)


def test_affine_invariance_and_symmetry():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(100, 3, generator=g), torch.randn(100, 2, generator=g)
    nc = normalized_correlation(s, t)
    assert torch.allclose(normalized_correlation(3.0 * s + 7.0, t), nc, atol=1e-5)
    assert torch.allclose(normalized_correlation(-s, t), -nc, atol=1e-5)
    assert torch.allclose(normalized_correlation(t, s), nc.T, atol=1e-6)


def test_conv_maps_positions_are_samples():
    # B = 2 images, K = 2 channels, 1 × 2 positions: samples are (image, position) pairs.
    s = torch.zeros(2, 2, 1, 2)
    s[0, 0, 0] = torch.tensor([1.0, 2.0])
    s[1, 0, 0] = torch.tensor([3.0, 4.0])  # channel 0 over samples: 1, 2, 3, 4
    s[0, 1, 0] = torch.tensor([4.0, 3.0])
    s[1, 1, 0] = torch.tensor([2.0, 1.0])  # channel 1: 4, 3, 2, 1
    t = torch.zeros(2, 1, 1, 2)
    t[0, 0, 0] = torch.tensor([1.0, 3.0])
    t[1, 0, 0] = torch.tensor([2.0, 4.0])  # teacher: 1, 3, 2, 4
    nc = normalized_correlation(s, t)
    assert nc.shape == (2, 1)
    assert nc[0, 0].item() == pytest.approx(0.8, abs=1e-6)
    assert nc[1, 0].item() == pytest.approx(-0.8, abs=1e-6)
    flat_s = s.permute(0, 2, 3, 1).reshape(-1, 2)
    flat_t = t.permute(0, 2, 3, 1).reshape(-1, 1)
    assert torch.allclose(nc, normalized_correlation(flat_s, flat_t))


def test_bad_shapes_fail_with_a_message():
    with pytest.raises(ValueError, match="same samples"):
        normalized_correlation(torch.zeros(5, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        normalized_correlation(torch.zeros(5), torch.zeros(5))


def test_best_nc_and_mbnc_hand_case():
    nc = torch.tensor([[0.1, 0.9, -0.3], [0.5, 0.2, 0.4]])  # 2 students × 3 teachers
    assert torch.allclose(best_nc(nc), torch.tensor([0.5, 0.9, 0.4]))
    assert mbnc(nc) == pytest.approx(0.6)


def test_variance_floor_value():
    # a nearly-constant node (variance below the floor) cannot produce a huge correlation
    s = torch.tensor([[0.0], [1e-6], [0.0], [1e-6]])
    t = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    nc = normalized_correlation(s, t).item()
    assert 0.0 <= nc < 0.01
    assert VARIANCE_FLOOR == 1e-7

