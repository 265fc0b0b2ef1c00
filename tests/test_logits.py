import numpy as np
import pytest
import torch
from scipy import stats

from conftest import RBO
from tsrobust import logits as L


def _logits(n=200, c=10, seed=0):
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed)) * 3


# -- distributions ---------------------------------------------------------------------------

def test_max_logit_and_gap_by_hand():
    z = np.array([[1.0, 5.0, 3.0], [-2.0, -1.0, -1.5], [4.0, 4.0, 0.0]])
    np.testing.assert_allclose(L.max_logit(z), [5.0, -1.0, 4.0])
    np.testing.assert_allclose(L.logit_gap(torch.tensor(z)), [2.0, 0.5, 0.0])


def test_skew_matches_scipy_and_has_the_planted_sign():
    rng = np.random.default_rng(0)
    for v in (rng.normal(size=500), rng.exponential(size=300), rng.gamma(2.0, size=50)):
        assert L.skew(v) == pytest.approx(stats.skew(v), rel=1e-12)
    right_tail = rng.exponential(size=2000)  # skewness 2
    assert L.skew(right_tail) > 1.5
    assert L.skew(-right_tail) < -1.5
    assert L.skew(torch.tensor(right_tail)) == pytest.approx(L.skew(right_tail))
    with pytest.raises(ValueError, match="constant"):
        L.skew(np.ones(5))


# -- confidence ranks (Fig. 3A-B) -------------------------------------------------------------

def test_confidence_is_the_log_softmax_of_the_top_class_or_the_label():
    z = _logits(20)
    np.testing.assert_allclose(np.exp(L.confidence(z)), torch.softmax(z.double(), 1).max(1).values,
                               rtol=1e-12)
    y = torch.arange(20) % 10
    np.testing.assert_allclose(np.exp(L.confidence(z, y)),
                               torch.softmax(z.double(), 1)[torch.arange(20), y], rtol=1e-12)
    # confident rows whose float32 softmax is exactly 1.0 stay distinct (no ties in the ranks)
    big = torch.tensor([[40.0, 0.0], [50.0, 0.0], [60.0, 0.0]])
    assert (torch.softmax(big, 1).max(1).values == 1).all()
    assert len(set(L.confidence(big))) == 3


def test_class_ranks_within_each_class():
    scores = np.array([0.3, 0.1, 0.9, 5.0, 4.0, 0.2])
    labels = np.array([0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(L.class_ranks(scores, labels), [2, 0, 3, 1, 0, 1])


def test_rank_disagreement_by_hand_and_planted():
    # class 0: 5 images, max rank 4, far apart = |Δ| > 2
    a = np.array([0, 1, 2, 3, 4, 0, 1, 2.0])
    b = np.array([4, 1, 2, 3, 0, 0, 1, 2.0])  # images 0 and 4 swap ends: Δ = 4
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(L.rank_disagreement(a, b, y), [2 / 5, 0.0])
    # Δ exactly half the maximum is not "more than half"
    b2 = np.array([2, 1, 0, 3, 4, 0, 1, 2.0])  # Δ = 2 for images 0 and 2
    np.testing.assert_allclose(L.rank_disagreement(a, b2, y), [0.0, 0.0])
    # identical networks never disagree; reversed ones disagree on the outer images
    s = np.random.default_rng(1).normal(size=100)
    yy = np.repeat(np.arange(4), 25)
    assert L.rank_disagreement(s, s, yy).tolist() == [0.0] * 4
    rev = L.rank_disagreement(s, -s, yy)
    assert np.all(rev == 12 / 25)  # |2r - 24| > 12  ⇔  r < 6 or r > 18


# -- error ranks (Fig. 3C) --------------------------------------------------------------------

def test_error_rank_fractions_by_hand():
    # 3 classes; class averages over the correct rows: class 0 → [5, 1, 3] (order 0, 2, 1),
    # class 1 → [2, 6, 1] (order 1, 0, 2)
    z = np.array([[5, 1, 3], [5, 1, 3],          # class 0, right
                  [2, 6, 1],                      # class 1, right
                  [0, 0, 9],                      # class 2, right
                  [1, 0, 4],                      # class 0, predicts 2 → rank 2
                  [0, 2, 8],                      # class 1, predicts 2 → rank 3
                  [1, 3, 0.0]])                   # class 0, predicts 1 → rank 3
    y = np.array([0, 0, 1, 2, 0, 1, 0])
    np.testing.assert_allclose(L.error_rank_fractions(z, y), [0, 1 / 3, 2 / 3])
    # the errors may come from other (e.g. adversarial) logits of the same images
    adv = z.copy()
    adv[:4] = [[0, 9, 0], [5, 1, 3], [2, 6, 1], [0, 0, 9]]  # one more error: class 0 → 1, rank 3
    np.testing.assert_allclose(L.error_rank_fractions(z, y, adv), [0, 1 / 4, 3 / 4])
    with pytest.raises(ValueError, match="no correctly classified"):
        L.error_rank_fractions(z[:2], y[:2])


# -- average overlap (Fig. 3D) ----------------------------------------------------------------

def test_average_overlap_hand_cases():
    assert L.average_overlap("abcde", "abcde", 5) == 1.0
    assert L.average_overlap("abc", "xyz", 3) == 0.0
    # Webber et al.'s example S = abcde, T = bacED (E, D: the items e, d): overlaps at depths
    # 1..5 are 0, 2/2, 3/3, 3/4, 5/5, so AO@5 = 3.75 / 5 = 0.75 (AO@4 = 2.75 / 4, AO@3 = 2 / 3)
    assert L.average_overlap("abcde", "baced", 5) == pytest.approx(0.75)
    assert L.average_overlap("abcde", "baced", 4) == pytest.approx(0.6875)
    assert L.average_overlap("abcde", "baced", 3) == pytest.approx(2 / 3)
    # the source's formula as printed, (1/k) Σ O(k) = O(k), would give 3/4 at k = 4: not ours
    assert L.average_overlap("abcde", "baced", 4) != pytest.approx(0.75)
    with pytest.raises(ValueError):
        L.average_overlap("abc", "abc", 4)
    with pytest.raises(ValueError):
        L.average_overlap("aab", "abc", 2)


def test_average_overlap_equals_rbo_at_p1(reference):
    rbo = reference("rbo", RBO)
    rng = np.random.default_rng(0)
    for n, k in ((5, 5), (10, 10), (10, 4), (20, 7)):
        for _ in range(10):
            a, b = rng.permutation(n).tolist(), rng.permutation(n).tolist()
            # rbo at p = 1 is the average overlap of the whole (equal-length) lists
            want = rbo.RankingSimilarity(a[:k], b[:k]).rbo(p=1.0)
            assert L.average_overlap(a, b, k) == pytest.approx(want, abs=1e-12)
    assert rbo.RankingSimilarity(list("abcde"), list("baced")).rbo(p=1.0) == pytest.approx(0.75)


def test_logit_average_overlap_matches_the_scalar_definition():
    za, zb = _logits(30, 6, seed=1), _logits(30, 6, seed=2)
    curve = L.logit_average_overlap(za, zb)
    oa, ob = L.rank_orders(za), L.rank_orders(zb)
    for k in range(1, 7):
        want = np.mean([L.average_overlap(oa[i], ob[i], k) for i in range(30)])
        assert curve[k - 1] == pytest.approx(want, abs=1e-12)
    np.testing.assert_allclose(L.logit_average_overlap(za, za), np.ones(6))


def test_within_class_permutation_compares_other_images_of_the_class():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 4)
    # rows of one class are identical, different classes have different orders: the permuted
    # comparison of a network with itself is still perfect, unpermuted noise is not
    base = np.stack([np.roll(np.arange(5.0), c) for c in range(3)])
    z = base[y]
    np.testing.assert_allclose(
        L.logit_average_overlap(z, z, labels=y, permute_within_class=True, rng=rng), np.ones(5))
    # with distinct rows, the permuted self-comparison is below 1: no image meets itself
    zn = _logits(12, 5, seed=3).numpy()
    perm = L.logit_average_overlap(zn, zn, labels=y, permute_within_class=True,
                                   rng=np.random.default_rng(0))
    assert perm[0] < 1
    with pytest.raises(ValueError, match="rng"):
        L.logit_average_overlap(zn, zn, labels=y, permute_within_class=True)


# -- nearest neighbours (Fig. B.3) ------------------------------------------------------------

def test_cosine_neighbours_planted():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 10))
    z[7] = 3.0 * z[0]                      # same direction, other scale: cosine 1
    z[9] = z[0] + 0.05 * rng.normal(size=10)
    z[11] = -z[0]                          # opposite: the least similar
    nn = L.cosine_neighbours(z, [0, 5], k=3)
    assert nn.shape == (2, 3)
    assert nn[0, 0] == 7 and nn[0, 1] == 9
    assert 0 not in nn[0] and 5 not in nn[1]
    full = L.cosine_neighbours(z, [0], k=49)[0]
    assert full[-1] == 11
    # brute force
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    sims = {j: u[5] @ u[j] for j in range(50) if j != 5}
    assert nn[1].tolist() == sorted(sims, key=sims.get, reverse=True)[:3]


# -- manipulations (§4.2) ---------------------------------------------------------------------

def _multiset_rows(t):
    return t.sort(1).values


@pytest.mark.parametrize("k", range(1, 11))
def test_fix_k_permute_keeps_the_top_k_and_the_values(k):
    t = _logits(64)
    out = L.fix_k_permute(t, k, torch.Generator().manual_seed(k))
    top = t.topk(k, 1)
    assert torch.equal(out.gather(1, top.indices), top.values)
    assert torch.equal(_multiset_rows(out), _multiset_rows(t))
    assert torch.equal(out.topk(k, 1).indices.sort(1).values, top.indices.sort(1).values)
    if k <= 8:  # the rest moved (two or more classes below the top k): some row changed
        assert not torch.equal(out, t)
    else:  # one or no value below the top k: nothing to move
        assert torch.equal(out, t)


@pytest.mark.parametrize("k", range(1, 11))
def test_fix_k_average_keeps_the_top_k_and_the_sum(k):
    t = _logits(64)
    out = L.fix_k_average(t, k)
    top = t.topk(k, 1)
    assert torch.equal(out.gather(1, top.indices), top.values)
    torch.testing.assert_close(out.sum(1), t.sum(1))
    mask = torch.ones_like(t, dtype=torch.bool).scatter_(1, top.indices, False)
    rest = out[mask].view(64, 10 - k)
    if k < 10:
        assert torch.allclose(rest, rest[:, :1].expand_as(rest))  # one value below the top k


def test_fix_k_permute_is_uniform_over_the_remaining_classes():
    # one row, k = 1: each of the 9 other values lands on each of the 9 other classes ~1/9
    t = torch.arange(10.0)[None].repeat(9000, 1)
    out = L.fix_k_permute(t, 1, torch.Generator().manual_seed(0))
    assert (out[:, 9] == 9).all()
    share = (out[:, :9] == 0).float().mean(0)  # where the smallest value went
    assert torch.allclose(share, torch.full((9,), 1 / 9), atol=0.02)


def test_fix_k_rejects_bad_k():
    for bad in (0, 11):
        with pytest.raises(ValueError, match="k must lie"):
            L.fix_k_average(_logits(4), bad)


@pytest.mark.parametrize("manipulation", L.MANIPULATIONS)
def test_correct_fix_1_changes_exactly_the_misclassified_rows(manipulation):
    t = _logits(300)
    y = torch.randint(0, 10, (300,), generator=torch.Generator().manual_seed(5))
    y[:100] = t[:100].argmax(1)  # a third right, the rest mostly wrong
    wrong = t.argmax(1) != y
    assert 0 < wrong.sum() < 300
    g = dict(generator=torch.Generator().manual_seed(1)) if manipulation == "permute" else {}
    out = L.correct_fix_1(t, y, manipulation=manipulation, **g)
    fix1 = (L.fix_k_permute(t, 1, torch.Generator().manual_seed(1)) if manipulation == "permute"
            else L.fix_k_average(t, 1))
    changed = (out != fix1).any(1)
    assert torch.equal(changed, wrong)
    assert torch.equal(out.argmax(1), y)  # every row now classified as its label
    assert torch.equal(_multiset_rows(out), _multiset_rows(fix1))
    assert torch.equal(out.max(1).values, t.max(1).values)  # the teacher's confidence is kept


def test_hybrid_has_at_values_in_st_order():
    at, st = _logits(50, seed=1), _logits(50, seed=2) * 5
    out = L.hybrid(at, st)
    np.testing.assert_array_equal(L.rank_orders(out), L.rank_orders(st))
    assert torch.equal(out.sort(1).values, at.sort(1).values)
    assert not torch.equal(out, at)
    # hand case
    out = L.hybrid(torch.tensor([[1.0, 3.0, 2.0]]), torch.tensor([[0.5, -1.0, 7.0]]))
    assert out.tolist() == [[2.0, 1.0, 3.0]]


# -- distillation targets and loss (App. A.3) -------------------------------------------------

class _Linear(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 8 * 8, 4)
        torch.nn.init.normal_(self.fc.weight, generator=torch.Generator().manual_seed(seed))

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_distillation_targets_without_augmentation_are_the_logits():
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    net = _Linear()
    t = L.distillation_targets(net, x, n_augment=3, generator=torch.Generator(),
                               crop_padding=0, flip=False, batch_size=4)
    torch.testing.assert_close(t, net(x).detach())
    assert net.training and all(p.requires_grad for p in net.parameters())  # restored


def test_distillation_targets_average_the_flips():
    # flips only: a linear teacher's average tends to the mean of its logits on x and flip(x);
    # each image's flip count is Binomial(n, 1/2), so the error shrinks like 1/sqrt(n)
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    net = _Linear()
    with torch.no_grad():
        a, b = net(x), net(x.flip(-1))
    want = (a + b) / 2
    t = L.distillation_targets(net, x, n_augment=400, generator=torch.Generator().manual_seed(1),
                               crop_padding=0, flip=True)
    spread = (a - b).abs() / 2
    assert ((t - want).abs() <= 4 * spread / 400 ** 0.5 + 1e-5).all()
    assert not torch.allclose(t, a)
    one = L.distillation_targets(net, x, n_augment=1, generator=torch.Generator().manual_seed(1),
                                 crop_padding=0, flip=True)
    assert all(torch.allclose(r, p) or torch.allclose(r, q) for r, p, q in zip(one, a, b))
    with pytest.raises(ValueError, match="n_augment"):
        L.distillation_targets(net, x, n_augment=0, generator=torch.Generator())


def test_l1_logit_loss_by_hand():
    s = torch.tensor([[1.0, 2.0], [0.0, -1.0]], requires_grad=True)
    t = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    loss = L.l1_logit_loss(s, t)
    assert loss.item() == pytest.approx((1 + 0 + 1 + 2) / 4)
    loss.backward()
    assert s.grad.tolist() == [[0.25, 0.0], [-0.25, -0.25]]
    with pytest.raises(ValueError, match="one shape"):
        L.l1_logit_loss(s, t[:1])


def test_rank_orders_ties_lower_index_first():
    assert L.rank_orders(np.array([[1.0, 3.0, 3.0, 0.0]])).tolist() == [[1, 2, 0, 3]]
