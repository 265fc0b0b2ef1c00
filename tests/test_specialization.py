"""Tests of the per-layer specialization metrics and ε_in/ε_out (source A §5.2–5.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsrobust.specialization import (
    eps_curves,
    eps_in_out,
    input_patches,
    layer_nc,
    node_variances,
    normalized_correlation,
    patch_basis,
    patch_pca,
    rho_eps_pearson,
    sorted_bnc,
    specialization_at,
    specialization_ratio,
)



def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def convnet(widths, seed):
    from tsrobust.models import ConvNet

    return ConvNet(widths, generator=gen(seed)).eval()


# -- NC per layer ----------------------------------------------------------------------------

def test_layer_nc_equals_normalized_correlation_on_all_maps():
    student, teacher = convnet((6, 5, 4, 3), 1), convnet((5, 4, 4, 2), 2)
    x = torch.rand(13, 3, 32, 32, generator=gen(3))
    ours = layer_nc(student, teacher, x, batch_size=4)  # 4 + 4 + 4 + 1 images
    s_maps, t_maps = student.activations(x), teacher.activations(x)
    assert len(ours) == 4
    for nc, s, t in zip(ours, s_maps, t_maps):
        assert nc.shape == (s.shape[1], t.shape[1])
        torch.testing.assert_close(nc, normalized_correlation(s.detach(), t.detach()),
                                   atol=1e-5, rtol=0)


def test_layer_nc_of_a_net_with_itself_has_unit_diagonal():
    net = convnet((4, 4, 3, 3), 5)
    x = torch.rand(6, 3, 32, 32, generator=gen(6))
    for nc, maps in zip(layer_nc(net, net, x), net.activations(x)):
        alive = maps.detach().transpose(0, 1).flatten(1).var(1) > 1e-6
        torch.testing.assert_close(nc.diagonal()[alive], torch.ones(int(alive.sum())),
                                   atol=1e-5, rtol=0)


def test_layer_nc_rejects_nets_of_different_depth():
    with pytest.raises(ValueError, match="same depth"):
        layer_nc(convnet((3, 3, 3, 3, 3), 1), convnet((3, 3, 3, 3), 2),
                 torch.rand(2, 3, 32, 32, generator=gen()))


def test_sorted_bnc_and_specialization_ratio_hand_computed():
    nc = torch.tensor([[0.95, 0.10, 0.30],   # student 0 → teacher 0, specialized
                       [0.20, 0.85, 0.10],   # student 1: best 0.85, neither
                       [0.10, 0.50, 0.70],   # student 2: best 0.70, unspecialized
                       [0.05, 0.92, 0.60]])  # student 3 → teacher 1, specialized
    torch.testing.assert_close(sorted_bnc(nc), torch.tensor([0.95, 0.92, 0.70]))
    assert specialization_ratio(nc) == pytest.approx(1 / 2)
    # teacher nodes: BNC 0.95, 0.92 (specialized), 0.70 (unspecialized)
    assert specialization_ratio(nc, over="teacher") == pytest.approx(1 / 2)
    assert specialization_ratio(nc, low=0.9, high=0.96) == math.inf
    assert math.isnan(specialization_ratio(torch.full((2, 2), 0.85)))
    with pytest.raises(ValueError):
        specialization_ratio(nc, low=0.9, high=0.8)


# -- patches and PCA -------------------------------------------------------------------------

def test_input_patches_reproduce_the_first_conv_layer():
    x = torch.rand(3, 3, 10, 9, generator=gen(1))
    w = torch.randn(5, 3, 3, 3, generator=gen(2))
    patches = input_patches(x)
    assert patches.shape == (3 * 8 * 7, 27)
    conv = F.conv2d(x, w)  # [3, 5, 8, 7]
    torch.testing.assert_close(patches @ w.flatten(1).T,
                               conv.permute(0, 2, 3, 1).reshape(-1, 5), atol=1e-5, rtol=0)


def test_patch_pca_recovers_a_planted_low_rank_structure():
    """Images that are affine ramps per channel (x[c,i,j] = a_c + b_c i + d_c j) have 3×3 patches in
    a 9-dim subspace; with small noise σ, PCA finds 9 large eigenvalues, the rest ≈ σ², and its
    top-9 eigenvectors span the planted subspace."""
    g = gen(4)
    n, side, sigma = 200, 12, 0.01
    i = torch.arange(side, dtype=torch.float64)
    scale = torch.tensor([1.0, 0.1, 0.1], dtype=torch.float64)  # offset, row and column slopes
    coef = torch.randn(n, 3, 3, generator=g, dtype=torch.float64) * scale
    x = (coef[..., 0, None, None] + coef[..., 1, None, None] * i[:, None]
         + coef[..., 2, None, None] * i[None, :])
    x = x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)
    vals, vecs = patch_pca(x, batch_size=64)
    assert vals.shape == (27,) and vecs.shape == (27, 27)
    assert (vals[:-1] >= vals[1:]).all()
    assert vals[8] > 100 * sigma ** 2 and vals[9:].max() < 2 * sigma ** 2
    # planted basis: per channel, the constant, row-ramp and column-ramp patches
    r = torch.arange(3, dtype=torch.float64)
    basis = []
    for c in range(3):
        for pattern in (torch.ones(3, 3, dtype=torch.float64), r[:, None].expand(3, 3),
                        r[None, :].expand(3, 3)):
            v = torch.zeros(3, 3, 3, dtype=torch.float64)
            v[c] = pattern
            basis.append(v.flatten())
    planted, _ = torch.linalg.qr(torch.stack(basis, 1))
    u = vecs[:, :9]
    residual = planted - u @ (u.T @ planted)
    assert residual.norm() < 1e-2
    # independent check of the spectrum: numpy's covariance of the explicit patch matrix
    p = input_patches(x).numpy()
    ref = np.sort(np.linalg.eigvalsh(np.cov(p.T, bias=True)))[::-1]
    np.testing.assert_allclose(vals.numpy(), ref, rtol=1e-6, atol=1e-12)
    vals_unc, _ = patch_pca(x, center=False)
    ref_unc = np.sort(np.linalg.eigvalsh(p.T @ p / len(p)))[::-1]
    np.testing.assert_allclose(vals_unc.numpy(), ref_unc, rtol=1e-6, atol=1e-12)


# -- ε_in / ε_out ----------------------------------------------------------------------------

def test_eps_in_out_identity_and_hand_case():
    g = gen(7)
    ws = torch.randn(6, 3, 3, 3, generator=g)
    wt = torch.randn(4, 3, 3, 3, generator=g)
    q, _ = torch.linalg.qr(torch.randn(27, 27, generator=g, dtype=torch.float64))
    u = q[:, :17]
    e_in, e_out = eps_in_out(ws, wt, u)
    assert e_in.shape == e_out.shape == (6, 4)
    dw = (ws.flatten(1) / ws.flatten(1).norm(dim=1, keepdim=True)).double()[:, None] - \
         (wt.flatten(1) / wt.flatten(1).norm(dim=1, keepdim=True)).double()[None]
    torch.testing.assert_close(e_in ** 2 + e_out ** 2, dw.pow(2).sum(-1))
    # hand case: U = the first two coordinates of R³
    u2 = torch.eye(3, dtype=torch.float64)[:, :2]
    e_in, e_out = eps_in_out(torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([[3.0, 0.0, 0.0]]), u2)
    # Δw = (0,0,1) − (1,0,0): in-plane part (−1, 0), out-of-plane part 1
    torch.testing.assert_close(e_in, torch.tensor([[1.0]], dtype=torch.float64))
    torch.testing.assert_close(e_out, torch.tensor([[1.0]], dtype=torch.float64))
    # a student filter that is a positive multiple of a teacher filter: both zero
    e_in, e_out = eps_in_out(2.5 * wt[:1], wt[:1], u)
    assert float(e_in) < 1e-6 and float(e_out) < 1e-6


def test_eps_in_out_rejects_bad_bases():
    w = torch.randn(2, 27, generator=gen())
    with pytest.raises(ValueError, match="orthonormal"):
        eps_in_out(w, w, 2 * torch.eye(27)[:, :5])
    with pytest.raises(ValueError, match="basis"):
        eps_in_out(w, w, torch.eye(26)[:, :5])
    with pytest.raises(ValueError, match="all-zero"):
        eps_in_out(torch.zeros(1, 27), w, torch.eye(27)[:, :5])


def test_eps_curves_pick_each_teacher_nodes_best_student():
    nc = torch.tensor([[0.9, 0.1, 0.2],
                       [0.3, 0.8, 0.95]])
    e_in = torch.tensor([[0.1, 0.7, 0.6],
                         [0.5, 0.3, 0.2]])
    e_out = torch.tensor([[1.1, 1.7, 1.6],
                          [1.5, 1.3, 1.2]])
    cin, cout = eps_curves(e_in, e_out, nc)
    # best students: teacher 0 → student 0, teacher 1 → student 1, teacher 2 → student 1
    torch.testing.assert_close(cin, torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(cout, torch.tensor([1.1, 1.2, 1.3]))


def test_rho_eps_pearson_matches_numpy():
    g = gen(9)
    nc = torch.rand(7, 5, generator=g)
    e = -2 * nc + 0.3 * torch.rand(7, 5, generator=g)
    ref = np.corrcoef(nc.flatten().numpy(), e.flatten().numpy())[0, 1]
    assert rho_eps_pearson(nc, e) == pytest.approx(ref, abs=1e-6)
    assert rho_eps_pearson(nc, e) < -0.8
    with pytest.raises(ValueError, match="constant"):
        rho_eps_pearson(nc, torch.ones(7, 5))


def test_dead_teacher_nodes_are_left_out_of_the_summaries():
    """A student that copies the teacher exactly has MBNC 1 in every layer, also when a teacher
    node is dead: a dead node has nothing to copy and must not pull the mean down as BNC 0."""
    import copy

    from tsrobust.models import ConvNet

    teacher = ConvNet((6, 5), generator=torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():  # layer 0, channel 2: never fires (pre-activation ≤ −10 + 27·0.001)
        teacher.convs[0].weight[2] = 0.001
        teacher.convs[0].bias[2] = -10.0
    student = copy.deepcopy(teacher)
    x = torch.rand(40, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    basis = torch.eye(27, dtype=torch.float64)[:, :17]
    acts = teacher.activations(x)
    # in two batches: the moments add up over batches, per layer (layers have different sizes)
    for v, a in zip(node_variances(teacher, x, batch_size=25), acts):
        assert torch.allclose(v, a.double().var(dim=(0, 2, 3), unbiased=False), atol=1e-12)
    m = specialization_at(student, teacher, x, basis)
    assert m["dead_teacher"][0] == 1 and m["dead_student"][0] == 1
    assert m["mbnc"] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert m["nc"][0].shape == (6, 5) and len(m["sorted_bnc"][0]) == 5
    assert m["eps_in_curve"].shape == (5,) and float(m["eps_in_curve"].max()) < 1e-6


def test_patch_basis_is_the_top_of_the_patch_pca_in_float64():
    x = torch.rand(6, 3, 10, 10, generator=gen(2))
    vals, basis = patch_basis(x, 5)
    want_vals, want_vecs = patch_pca(x)
    assert basis.dtype == torch.float64 and basis.shape == (27, 5)
    assert torch.equal(vals, want_vals) and torch.equal(basis, want_vecs[:, :5])
    assert torch.allclose(basis.T @ basis, torch.eye(5, dtype=torch.float64), atol=1e-10)
    with pytest.raises(ValueError, match="rank must be in 1..27"):
        patch_basis(x, 28)


def test_eps_in_out_takes_a_basis_of_another_dtype_and_returns_on_the_filters_device():
    """U comes from the CPU patch PCA in float64; conv weights are float32 (on a GPU in a GPU
    run). The result must not depend on the basis' dtype and lives where the filters live."""
    g = torch.Generator().manual_seed(0)
    ws, wt = torch.randn(5, 3, 3, 3, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    u64 = torch.linalg.qr(torch.randn(27, 6, generator=g, dtype=torch.float64)).Q
    a_in, a_out = eps_in_out(ws, wt, u64)
    b_in, b_out = eps_in_out(ws, wt.double(), u64.float())
    assert a_in.device == ws.device and a_in.dtype == torch.float64
    assert torch.allclose(a_in, b_in, atol=1e-6) and torch.allclose(a_out, b_out, atol=1e-6)


# -- perturbations and the data subspace (§5.4, Table 2) --------------------------------------

def _basis(rank=5, d=27, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q[:, :rank]


def test_off_subspace_distance_against_explicit_patches():
    """Both distances recomputed from input_patches and an explicit (I − UUᵀ)."""
    from tsrobust.specialization import input_patches, off_subspace_distance

    u = _basis()
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(4, 3, 6, 7, generator=g)
    off = torch.eye(27, dtype=torch.float64) - u @ u.T
    for i in range(4):
        p = input_patches(delta[i:i + 1].double())  # [L, 27]
        q = p @ off  # (I − UUᵀ) is symmetric
        mean = q.norm(dim=1).mean()
        share = q.pow(2).sum() / p.pow(2).sum()
        assert math.isclose(float(off_subspace_distance(delta, u, "mean")[i]), float(mean),
                            rel_tol=1e-5)
        assert math.isclose(float(off_subspace_distance(delta, u, "share")[i]), float(share),
                            rel_tol=1e-5)
    with pytest.raises(ValueError, match="how"):
        off_subspace_distance(delta, u, "max")


def test_closer_to_subspace_picks_the_run_with_the_smaller_distance():
    """A perturbation built inside span(U) patch by patch is closer than one off it, whichever
    side of the pair it is on; a tie goes to the first."""
    from tsrobust.specialization import closer_to_subspace

    u = _basis(rank=26)  # nearly everything in span(U): a constant-per-channel image is close
    g = torch.Generator().manual_seed(2)
    rough = torch.randn(3, 3, 8, 8, generator=g)
    smooth = torch.ones(3, 3, 8, 8) * torch.randn(3, 3, 1, 1, generator=g)
    u_smooth = torch.linalg.qr(torch.cat([  # span(U) holds the constant patches of each channel
        torch.kron(torch.eye(3, dtype=torch.float64), torch.ones(9, 1, dtype=torch.float64)),
        torch.randn(27, 2, generator=g, dtype=torch.float64)], 1))[0]
    assert closer_to_subspace(smooth, rough, u_smooth).all()
    assert not closer_to_subspace(rough, smooth, u_smooth).any()
    mixed_a = torch.cat([smooth[:1], rough[1:]])
    mixed_b = torch.cat([rough[:1], smooth[1:]])
    assert closer_to_subspace(mixed_a, mixed_b, u_smooth).tolist() == [True, False, False]
    assert closer_to_subspace(rough, rough, u).all()  # tie → the first


def test_patch_subspace_split_is_an_exact_complementary_projection():
    """Π_in + Π_out = I, each idempotent, the parts orthogonal in the patch-energy inner
    product, and each part's off-subspace share on its side of the threshold; the eigenvalues
    are the shares of the eigen-directions (checked against a brute-force Rayleigh quotient)."""
    from tsrobust.specialization import PatchSubspaceSplit, off_subspace_distance

    u = _basis(rank=17)
    split = PatchSubspaceSplit(u, shape=(3, 8, 8), threshold=0.5)
    assert len(split.eigenvalues) == 192 and 0 < split.n_in < 192
    g = torch.Generator().manual_seed(3)
    delta = torch.randn(5, 3, 8, 8, generator=g)
    d_in, d_out = split.project(delta, "in"), split.project(delta, "out")
    torch.testing.assert_close(d_in + d_out, delta, atol=1e-5, rtol=0)
    torch.testing.assert_close(split.project(d_in, "in"), d_in, atol=1e-4, rtol=0)
    torch.testing.assert_close(split.project(d_out, "out"), d_out, atol=1e-4, rtol=0)
    assert split.project(d_in, "out").abs().max() < 1e-4
    pa = torch.nn.functional.unfold(d_in, 3)
    pb = torch.nn.functional.unfold(d_out, 3)
    assert (pa * pb).sum((1, 2)).abs().max() < 1e-3 * pa.norm() * pb.norm()
    s_in = off_subspace_distance(d_in, u, "share")
    s_out = off_subspace_distance(d_out, u, "share")
    s_rand = off_subspace_distance(delta, u, "share")
    assert (s_in <= 0.5 + 1e-4).all() and (s_out > 0.5 - 1e-4).all()
    assert (s_in < s_rand).all() and (s_out > s_rand).all()
    # the largest and smallest eigenvalues are the extreme shares any image reaches
    assert float(s_rand.max()) <= float(split.eigenvalues[-1]) + 1e-5
    assert float(s_rand.min()) >= float(split.eigenvalues[0]) - 1e-5


def test_patch_subspace_split_rejects_bad_input():
    from tsrobust.specialization import PatchSubspaceSplit

    with pytest.raises(ValueError, match="threshold"):
        PatchSubspaceSplit(_basis(), shape=(3, 8, 8), threshold=1.0)
    with pytest.raises(ValueError, match="basis"):
        PatchSubspaceSplit(_basis(d=12), shape=(3, 8, 8))
    split = PatchSubspaceSplit(_basis(), shape=(3, 8, 8))
    with pytest.raises(ValueError, match="side"):
        split.project(torch.zeros(1, 3, 8, 8), "both")
    with pytest.raises(ValueError, match="delta"):
        split.project(torch.zeros(1, 3, 9, 9), "in")


def test_specialized_counts_on_a_planted_nc_matrix():
    from tsrobust.specialization import specialized_counts

    nc = torch.tensor([[0.95, 0.10, 0.91],   # student 0 specializes to teacher 0 and 2
                       [0.92, 0.20, 0.30],   # student 1 to teacher 0
                       [0.90, 0.85, 0.10],   # exactly 0.9 is not above it
                       [0.00, 0.99, 0.00]])  # student 3 to teacher 1
    assert specialized_counts(nc).tolist() == [2, 1, 1]
    assert specialized_counts(nc, 0.8).tolist() == [3, 2, 1]


def test_uniformity_test_against_scipy(reference):
    from tsrobust.specialization import chi2_sf, uniformity_test

    stats = reference("scipy.stats", "pip install scipy")
    for counts in ([3, 3, 3, 3, 3], [9, 1, 0, 2, 3, 0, 1], [5, 4, 6, 5, 7, 3, 5, 5, 6, 4]):
        stat, df, p = uniformity_test(counts)
        ref = stats.chisquare(counts)
        assert stat == pytest.approx(ref.statistic) and df == len(counts) - 1
        assert p == pytest.approx(ref.pvalue, abs=0.01)
    for df in (3, 10, 44):
        for x in (0.5 * df, df, 2 * df):
            assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), abs=0.01)


def test_uniformity_test_tells_planted_concentrated_counts_from_even_ones():
    from tsrobust.specialization import uniformity_test

    assert uniformity_test([4] * 20)[2] == 1.0
    assert uniformity_test([40] + [0] * 19)[2] < 1e-6
    with pytest.raises(ValueError):
        uniformity_test([0, 0, 0])
