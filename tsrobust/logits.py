"""Logit distributions and distillation-target manipulations (Seguin et al., source C, §4.1–4.3).

Statistics of a network's logits (arrays or tensors ``[n, classes]``; they return NumPy):

- :func:`max_logit`, :func:`logit_gap` and :func:`skew` — the shapes of Figs. 1, 2, B.1.
- :func:`confidence`, :func:`class_ranks`, :func:`rank_disagreement` — per-class confidence rank
  orders of two networks and the share of images ranked far apart (Fig. 3A–B).
- :func:`error_rank_fractions` — which rank of the class-average logit vector the errors fall on
  (Fig. 3C).
- :func:`average_overlap` (AO@k of Webber et al. 2010 for two rankings) and
  :func:`logit_average_overlap` (AO@1…AO@C between two networks' logit rank orders, optionally
  with images permuted within their class; Fig. 3D).
- :func:`cosine_neighbours` — nearest images by cosine similarity of the logits (Fig. B.3).

Distillation on clean images (§4.2, App. A.3), tensors in and out:

- :func:`distillation_targets` — one target per image: the teacher's logits averaged over
  ``n_augment`` random crops and flips.
- :func:`fix_k_permute`, :func:`fix_k_average`, :func:`correct_fix_1`, :func:`hybrid` — the
  manipulated targets of Fig. 4 and Table 2.
- :func:`l1_logit_loss` — the L1 distance the student is fit with.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from tsrobust import attacks, runtime
from tsrobust.data import CROP_PADDING, augment

FAR_APART = 0.5
"""Fig. 3A–B: two ranks are *far apart* when they differ by more than this share of the largest
rank."""

MANIPULATIONS = ("permute", "average")
"""The two ways §4.2 treats the classes below the top k."""

TARGET_BATCH = 500
"""Images per teacher forward pass in :func:`distillation_targets`."""


# -- helpers ---------------------------------------------------------------------------------

def _np(a, name: str = "logits", ndim: int = 2) -> np.ndarray:
    """A float64 NumPy copy of an array or tensor, checked to have ``ndim`` dimensions."""
    a = a.detach().to("cpu", torch.float64).numpy() if torch.is_tensor(a) else np.asarray(
        a, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    return a


def _labels(labels, n: int, num_classes: int | None = None) -> np.ndarray:
    y = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one per row, got {y.shape}")
    y = y.astype(np.int64)
    if num_classes is not None and len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    return y


def _check_targets(targets: torch.Tensor, k: int | None = None) -> torch.Tensor:
    if not torch.is_tensor(targets) or targets.ndim != 2 or not targets.is_floating_point():
        raise ValueError("targets must be a float tensor [n, classes] of logits, got "
                         f"{type(targets).__name__} {tuple(getattr(targets, 'shape', ()))}")
    if k is not None and not 1 <= k <= targets.shape[1]:
        raise ValueError(f"k must lie in [1, {targets.shape[1]}] (the number of classes), got {k}")
    return targets


# -- logit distributions (§4.1, Figs. 1, 2) --------------------------------------------------

def max_logit(logits) -> np.ndarray:
    """The largest logit of each row (Fig. 1: its distribution over a data set)."""
    return _np(logits).max(1)


def logit_gap(logits) -> np.ndarray:
    """The *logit gap* of each row: the largest logit minus the second largest (Fig. 2)."""
    z = np.sort(_np(logits), axis=1)
    if z.shape[1] < 2:
        raise ValueError("the logit gap needs at least two classes")
    return z[:, -1] - z[:, -2]


def skew(values) -> float:
    """Sample skewness g₁ = m₃ / m₂^{3/2} with the central moments m of ``values`` (the biased
    estimator, as ``scipy.stats.skew``'s default). Positive: a long right tail, as the source
    reports for the max logits and logit gaps of adversarially trained networks (§4.1)."""
    v = _np(values, "values", 1)
    d = v - v.mean()
    m2 = np.mean(d ** 2)
    if m2 == 0:
        raise ValueError("the skewness of constant values is undefined")
    return float(np.mean(d ** 3) / m2 ** 1.5)


# -- confidence rank orders (Fig. 3A–B) ------------------------------------------------------

def confidence(logits, labels=None) -> np.ndarray:
    """Each row's confidence as its softmax probability, on a log scale: of the predicted class
    (``labels=None``) or of the given label.

    §4.1 ranks "the confidence levels" on the softmax rather than the logits; it does not say of
    which class — we read it as the network's confidence in its answer, the top softmax value.
    Returned as a log-probability in float64, computed as −log1p(Σ_{j≠c} e^{z_j − z_c}): ranks
    are unchanged by the log, and a confident network's top softmax values, which all round to
    1.0 in float32 (and whose ``log_softmax`` rounds to 0 even in float64), stay distinct instead
    of collapsing into ties.
    """
    z = torch.as_tensor(_np(logits))
    c = (z.argmax(1) if labels is None
         else torch.as_tensor(_labels(labels, len(z), z.shape[1])))[:, None]
    # log p_c = -log(1 + Σ_{j≠c} exp(z_j - z_c)) = -softplus(logsumexp_{j≠c}(z_j - z_c)): exact
    # for tiny tails, where log_softmax's 0 - log(1 + 1e-18) rounds to 0
    others = (z - z.gather(1, c)).scatter(1, c, -torch.inf)
    return (-F.softplus(torch.logsumexp(others, 1))).numpy()


def class_ranks(scores, labels) -> np.ndarray:
    """Rank of each image's score among the images of its class (label): 0 for the lowest,
    n_c − 1 for the highest of a class with n_c images; ties share their mean rank (Fig. 3A)."""
    s = _np(scores, "scores", 1)
    y = _labels(labels, len(s))
    ranks = np.empty(len(s))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        ranks[idx] = rankdata(s[idx]) - 1
    return ranks


def rank_disagreement(scores_a, scores_b, labels, *, threshold: float = FAR_APART) -> np.ndarray:
    """Per class, the share of its images whose ranks under two networks are *far apart*
    (Fig. 3A–B): |rank_a − rank_b| > ``threshold`` × (n_c − 1).

    Our reading of "a rank difference of more than half of its maximum value": ranks run from 0 to
    n_c − 1 within each class (:func:`class_ranks`), so the maximum value — of a rank and of a rank
    difference alike — is n_c − 1. Returns one share per class present in ``labels`` (in class
    order); the source's "average of 11.8 % of examples across all classes" is their mean.
    ``scores_*``: per-image confidences, e.g. :func:`confidence` of each network.
    """
    a, b = _np(scores_a, "scores_a", 1), _np(scores_b, "scores_b", 1)
    if a.shape != b.shape:
        raise ValueError(f"the two networks' scores must cover the same images: {a.shape} ≠ "
                         f"{b.shape}")
    y = _labels(labels, len(a))
    ra, rb = class_ranks(a, y), class_ranks(b, y)
    shares = []
    for c in np.unique(y):
        idx = y == c
        shares.append(np.mean(np.abs(ra[idx] - rb[idx]) > threshold * (idx.sum() - 1)))
    return np.asarray(shares)


# -- errors and the class-average logits (Fig. 3C) -------------------------------------------

def error_rank_fractions(logits, labels, error_logits=None) -> np.ndarray:
    """Fig. 3C: for k = 1 … C, the share of wrong predictions that fall on the k-th highest entry
    of the true class's average logit vector.

    The average logit vector of class c is the mean of ``logits`` over the images of label c that
    the network classifies correctly. The errors are the rows of ``error_logits`` (default:
    ``logits``; pass the logits of adversarial images for their errors) whose argmax differs from
    the label; an error on an image of class c predicting class p counts at the rank k of p in
    class c's average vector sorted in decreasing order (k = 1 is usually c itself, so its share
    is near zero; "ST networks often predict their second most probable class": a large share at
    k = 2). Returns C shares summing to 1 (all zero when there is no error).
    """
    z = _np(logits)
    n, num_classes = z.shape
    y = _labels(labels, n, num_classes)
    ze = z if error_logits is None else _np(error_logits, "error_logits")
    if ze.shape != z.shape:
        raise ValueError(f"error_logits must match logits' shape {z.shape}, got {ze.shape}")
    right = z.argmax(1) == y
    means = np.empty((num_classes, num_classes))
    for c in range(num_classes):
        rows = right & (y == c)
        if not rows.any():
            raise ValueError(f"class {c} has no correctly classified image, so no average logit "
                             f"vector: use more images or a better-trained network")
        means[c] = z[rows].mean(0)
    # rank_of[c, p]: 0-based position of class p when class c's average vector is sorted down
    rank_of = np.argsort(np.argsort(-means, axis=1, kind="stable"), axis=1, kind="stable")
    pred = ze.argmax(1)
    wrong = pred != y
    counts = np.bincount(rank_of[y[wrong], pred[wrong]], minlength=num_classes)
    return counts / max(int(wrong.sum()), 1)


# -- average overlap (Fig. 3D) ---------------------------------------------------------------

def average_overlap(a, b, k: int) -> float:
    """AO@k of two rankings (Webber, Moffat & Zobel 2010, source C ref. [40]): the mean over depths
    d = 1 … k of the overlap |A[:d] ∩ B[:d]| / d of their first d items.

    The source writes AO@k = (1/k) Σ_{i=1}^{k} O(k) with O(k) = |L¹_{:k} ∩ L²_{:k}| / k: the summand
    should be O(i), not O(k) — as printed every term is the same and AO@k would be just the
    overlap at depth k. We use O(i), Webber et al.'s definition.

    ``a``, ``b``: sequences of distinct items, best first, each at least ``k`` long.
    """
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    a, b = list(a), list(b)
    if len(a) < k or len(b) < k:
        raise ValueError(f"both rankings need at least k = {k} items, got {len(a)} and {len(b)}")
    if len(set(a)) != len(a) or len(set(b)) != len(b):
        raise ValueError("a ranking must not repeat an item")
    seen_a, seen_b, common, total = set(), set(), 0, 0.0
    for d in range(1, k + 1):
        x, y = a[d - 1], b[d - 1]
        if x == y:
            common += 1
        else:
            common += (x in seen_b) + (y in seen_a)
        seen_a.add(x)
        seen_b.add(y)
        total += common / d
    return total / k


def rank_orders(logits) -> np.ndarray:
    """Each row's classes in decreasing order of logit (ties: the lower class index first)."""
    return np.argsort(-_np(logits), axis=1, kind="stable")


def logit_average_overlap(logits_a, logits_b, *, labels=None, permute_within_class=False,
                          rng: np.random.Generator | None = None) -> np.ndarray:
    """AO@k for k = 1 … C between the logit rank orders of two networks, averaged over images
    (Fig. 3D): entry k − 1 is the mean over images of :func:`average_overlap` of the two rows'
    :func:`rank_orders` at depth k.

    ``permute_within_class`` (Fig. 3D's dashed lines; needs ``labels`` and ``rng``): network b's
    rows are shuffled among the images of the same label before the comparison, so each image of
    network a meets another image of its class. The shuffle is a random cyclic shift of a random
    order of each class (a derangement): no image is compared with itself.
    """
    za, zb = _np(logits_a, "logits_a"), _np(logits_b, "logits_b")
    if za.shape != zb.shape:
        raise ValueError(f"the two networks' logits must have one shape: {za.shape} ≠ {zb.shape}")
    n, num_classes = za.shape
    if permute_within_class:
        if labels is None or rng is None:
            raise ValueError("permute_within_class needs the labels and an rng "
                             "(np.random.default_rng(seed))")
        y = _labels(labels, n)
        other = np.arange(n)
        for c in np.unique(y):
            order = rng.permutation(np.flatnonzero(y == c))
            if len(order) < 2:
                raise ValueError(f"class {c} has one image: nothing to permute it with")
            other[order] = np.roll(order, 1)
        zb = zb[other]
    # position of each class in each row's rank order; class c is in both top-d lists iff
    # max(position_a, position_b) < d, so the overlap at depth d counts the classes whose deeper
    # position is below d: a cumulative count of those positions
    pos_a = np.argsort(rank_orders(za), axis=1)
    pos_b = np.argsort(rank_orders(zb), axis=1)
    deepest = np.maximum(pos_a, pos_b)
    counts = np.zeros((n, num_classes))
    np.add.at(counts, (np.arange(n)[:, None], deepest), 1)
    depth = np.arange(1, num_classes + 1)
    overlap = np.cumsum(counts, axis=1) / depth  # [n, depth]
    ao = np.cumsum(overlap, axis=1) / depth
    return ao.mean(0)


# -- nearest neighbours in logit space (Fig. B.3) --------------------------------------------

def cosine_neighbours(logits, seeds, k: int = 5) -> np.ndarray:
    """Indices of the ``k`` images whose logit vectors have the largest cosine similarity to each
    seed image's (the seed itself excluded), most similar first: ``[len(seeds), k]`` (Fig. B.3)."""
    z = _np(logits)
    seeds = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if not 1 <= k < len(z):
        raise ValueError(f"k must lie in [1, {len(z) - 1}] (images other than the seed), got {k}")
    if len(seeds) and (seeds.min() < 0 or seeds.max() >= len(z)):
        raise ValueError(f"seed indices must lie in [0, {len(z)}), got {seeds}")
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("a zero logit vector has no direction: cosine similarity undefined")
    u = z / norms
    sim = u[seeds] @ u.T
    sim[np.arange(len(seeds)), seeds] = -np.inf
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


# -- distillation targets and their manipulations (§4.2, App. A.3) ---------------------------

@torch.no_grad()
def distillation_targets(teacher, x: torch.Tensor, *, n_augment: int,
                         generator: torch.Generator, crop_padding: int = CROP_PADDING,
                         flip: bool = True, precision: str = "fp32",
                         batch_size: int = TARGET_BATCH) -> torch.Tensor:
    """One logit target per image (App. A.3): the teacher's logits averaged over ``n_augment``
    random augmentations of the image — shifts of up to ``crop_padding`` pixels (a crop of the
    zero-padded image) and horizontal flips, the source's training augmentations (App. A.2); no
    rotation. Returns float32 ``[len(x), classes]`` on the teacher's device.

    The source averages "across several batches and data augmentations" because its teacher saw
    each batch with batch statistics; ours runs in eval mode (running statistics, frozen), so only
    the augmentations vary. ``generator`` (on the teacher's device) draws them;
    ``precision``: of the teacher's forward passes (:func:`tsrobust.runtime.autocast`).
    """
    if n_augment < 1:
        raise ValueError(f"n_augment must be ≥ 1, got {n_augment}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    device = next(teacher.parameters()).device
    x = x.to(device)
    total = None
    with attacks.frozen(teacher), runtime.autocast(device, precision):
        for _ in range(n_augment):
            out = torch.cat([teacher(augment(xb, generator, crop_padding=crop_padding, flip=flip,
                                             rotation_deg=0.0)).float()
                             for xb in x.split(batch_size)])
            total = out if total is None else total + out
    return total / n_augment


def fix_k_permute(targets: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """§4.2 "fix-k (permute)": in each row keep the k largest values at their classes and move the
    other C − k values to the other C − k classes by a uniform random permutation (one per row,
    drawn from ``generator``, on ``targets``' device). The row's values (as a multiset) are kept;
    the inter-class information below the top k is destroyed."""
    _check_targets(targets, k)
    vals, idx = targets.sort(dim=1, descending=True, stable=True)
    n, c = targets.shape
    perm = torch.rand(n, c - k, generator=generator, device=targets.device).argsort(1)
    out = torch.empty_like(targets)
    out.scatter_(1, idx[:, :k], vals[:, :k])
    out.scatter_(1, idx[:, k:], vals[:, k:].gather(1, perm))
    return out


def fix_k_average(targets: torch.Tensor, k: int) -> torch.Tensor:
    """§4.2 "fix-k (average)": in each row keep the k largest values at their classes and set the
    other C − k to their mean (the row's sum is kept)."""
    _check_targets(targets, k)
    vals, idx = targets.sort(dim=1, descending=True, stable=True)
    rest = vals[:, k:]
    out = torch.empty_like(targets)
    out.scatter_(1, idx[:, :k], vals[:, :k])
    out.scatter_(1, idx[:, k:], rest.mean(1, keepdim=True).expand_as(rest))
    return out


def correct_fix_1(targets: torch.Tensor, labels: torch.Tensor, *, manipulation: str = "permute",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """§4.2 "correct-fix-1": the fix-1 targets (``manipulation`` ``"permute"``, which needs
    ``generator``, or ``"average"``), then, in each row where the teacher is wrong (its argmax is
    not the label), the values of the predicted class and of the label swapped — so the target's
    argmax becomes the label. Rows the teacher gets right are the fix-1 rows unchanged; with the
    same ``generator`` state the result differs from :func:`fix_k_permute` ``(targets, 1)`` in
    exactly the misclassified rows."""
    _check_targets(targets)
    if manipulation not in MANIPULATIONS:
        raise ValueError(f"manipulation must be one of {MANIPULATIONS}, got {manipulation!r}")
    y = torch.as_tensor(labels, device=targets.device).long()
    if y.shape != (len(targets),) or (len(y) and (y.min() < 0 or y.max() >= targets.shape[1])):
        raise ValueError(f"labels must be {len(targets)} class indices in [0, {targets.shape[1]})")
    if manipulation == "permute":
        if generator is None:
            raise ValueError("correct_fix_1 with manipulation='permute' needs a generator")
        out = fix_k_permute(targets, 1, generator)
    else:
        out = fix_k_average(targets, 1)
    pred = targets.argmax(1)
    wrong = torch.nonzero(pred != y)[:, 0]
    top, at_label = out[wrong, pred[wrong]], out[wrong, y[wrong]]
    out[wrong, pred[wrong]] = at_label
    out[wrong, y[wrong]] = top
    return out


def hybrid(values_from: torch.Tensor, order_from: torch.Tensor) -> torch.Tensor:
    """§4.2 "hybrid ST-AT": each row takes its sorted *values* from ``values_from`` (the AT
    teacher's logits) and its *class order* from ``order_from`` (the ST teacher's): the j-th largest
    AT value goes to the ST teacher's j-th ranked class."""
    _check_targets(values_from)
    _check_targets(order_from)
    if values_from.shape != order_from.shape:
        raise ValueError(f"the two teachers' targets must have one shape: "
                         f"{tuple(values_from.shape)} ≠ {tuple(order_from.shape)}")
    vals = values_from.sort(dim=1, descending=True, stable=True).values
    order = order_from.argsort(dim=1, descending=True, stable=True)
    return torch.empty_like(vals).scatter_(1, order.to(vals.device), vals)


def l1_logit_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """App. A.3's logit distillation loss: the mean absolute difference between the student's
    logits and the targets, over images and classes (``torch.nn.L1Loss``'s default reduction; the
    source names the L1 loss, not its reduction)."""
    if student_logits.shape != targets.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and targets "
                         f"{tuple(targets.shape)} must have one shape")
    return F.l1_loss(student_logits.float(), targets.float())
