"""Ma & Ying, *Achieving Adversarial Robustness Requires an Active Teacher* (source B).

The objects of the paper, in its order:

- §3.2–3.3, Fig. 3.2: a teacher with an *uncertain* class U, the conditional (strong) notion of
  adversarial robustness, and two 2-D setups where it and ℓ2 robustness part ways. The max-margin
  linear student is an exact hard-margin SVM in the plane (:func:`max_margin_2d`); areas are exact
  (convex polygons clipped by half-planes).
- §4.1–4.2, Thms 4.2–4.3: parity teachers. An active teacher ("I am a parity") lets the student
  recover S with d + 1 data queries (:func:`learn_parity_active`); a passive teacher leaves the
  student with a fit on μ that is at chance on ν, or with correlation (statistical) queries
  (:func:`learn_parity_sq`, whose cost is the rank of S in its search order). The
  gradient-descent student (:func:`train_parity_gd`) is this book's addition: the paper runs no
  such experiment, it cites work on the hardness of learning neural networks [10, 11, 24].
- Example 4.1: x ∈ [0,1]^100, the teacher compares x1 with x100; dense and sparse least squares
  without bias, the adversarial construction of the text, and integer rounding.
- Example 4.2 and App. A: disks vs textured squares, a small CNN, and a max-pool(3, stride 1)
  prefilter that the teacher's hint ("classify by shape") suggests.

Coordinates of the parity and regression examples are **1-based in the API** where the paper
names them (S ⊂ {1, …, d}; x1 and x100), and arrays are indexed from 0 as usual in numpy.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tsrobust.runtime import choose_device, torch_threads

# --------------------------------------------------------------------------------------------
# §3.2–3.3, Fig. 3.2: conditional robustness in the plane
# --------------------------------------------------------------------------------------------

A, B, U = 1, -1, 0
"""Teacher outputs of §3.2: class A, class B, uncertain (the student only says A or B)."""


def box(x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> np.ndarray:
    """The rectangle [x_lo, x_hi] × [y_lo, y_hi] as a counter-clockwise polygon [4, 2]."""
    return np.array([[x_lo, y_lo], [x_hi, y_lo], [x_hi, y_hi], [x_lo, y_hi]], dtype=float)


FIG32_LEFT_TEACHER = {A: box(0.5, 1, -1, 1), B: box(-1, -0.5, -1, 1)}
"""Fig. 3.2 left, on X = [−1, 1]²: Ω_A = {x1 ≥ 0.5}, Ω_B = {x1 ≤ −0.5}; U in between."""
FIG32_LEFT_MU = {A: box(0.5, 1, 0.5, 1), B: box(-1, -0.5, -1, -0.5)}
"""Fig. 3.2 left: μ is uniform on [0.5, 1]² (class A) ∪ [−1, −0.5]² (class B)."""
FIG32_RIGHT_TEACHER = {A: box(-1, 0, 0, 1), B: box(0, 1, -1, 0)}
"""Fig. 3.2 right: the classes fill the 2nd and 4th quadrants (no margin); U elsewhere. μ is
uniform on Ω_A ∪ Ω_B."""
FIG32_RIGHT_STUDENT = (np.array([-1.0, 1.0]) / math.sqrt(2.0), 0.0)
"""Fig. 3.2 right: a student whose boundary x2 = x1 passes through the origin (says A where
x2 − x1 ≥ 0)."""


def region_teacher(regions: dict, x: np.ndarray) -> np.ndarray:
    """The teacher defined by closed rectangles ``{label: box}``: their label inside, U outside."""
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), U)
    for label, poly in regions.items():
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        inside = np.all((x >= lo) & (x <= hi), axis=1)
        out[inside] = label
    return out


def sample_regions(regions: dict, n: int, rng: np.random.Generator):
    """``n`` points uniform on the union of equal-area rectangles ``{label: box}``, equally many
    per rectangle (the first ones get one more if ``n`` does not divide). Returns (x, y)."""
    labels = list(regions)
    xs, ys = [], []
    for i, label in enumerate(labels):
        m = n // len(labels) + (i < n % len(labels))
        lo, hi = regions[label].min(axis=0), regions[label].max(axis=0)
        xs.append(lo + (hi - lo) * rng.random((m, 2)))
        ys.append(np.full(m, label))
    return np.concatenate(xs), np.concatenate(ys)


def linear_student(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """A linear student: A where w·x + b ≥ 0, B elsewhere (it never says U)."""
    return np.where(np.asarray(x, dtype=float) @ np.asarray(w) + b >= 0, A, B)


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of 2-D points, counter-clockwise, without collinear points (monotone chain)."""
    pts = np.unique(np.asarray(points, dtype=float), axis=0)
    if len(pts) <= 2:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def _closest_on_segment(p, a, b):
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0 else float(np.clip((p - a) @ ab / denom, 0.0, 1.0))
    return a + t * ab


def _edges(hull):
    if len(hull) == 1:
        return [(hull[0], hull[0])]
    return [(hull[i], hull[(i + 1) % len(hull)]) for i in range(len(hull))]


def max_margin_2d(x: np.ndarray, y: np.ndarray):
    """Hard-margin linear SVM in the plane, solved exactly: returns (w, b, margin), ‖w‖ = 1.

    The max-margin separating line of two linearly separable sets is the perpendicular bisector
    of the closest pair of points of their convex hulls, and the margin is half their distance
    (the dual of the hard-margin SVM is the nearest-points problem of the two hulls). Between two
    disjoint convex polygons the closest pair has a vertex of one polygon on the other's boundary,
    so checking every vertex against every edge finds it. ``y`` holds A (+1) and B (−1); the
    student says A where w·x + b ≥ 0.

    Raises ``ValueError`` if the two classes are not strictly linearly separable.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) != len(y):
        raise ValueError(f"x must be [n, 2] with one label per row; got {x.shape} and {y.shape}")
    if not (np.any(y == A) and np.any(y == B)) or not np.all((y == A) | (y == B)):
        raise ValueError("y must hold both classes, as A (+1) and B (−1), and nothing else")
    hull_a, hull_b = convex_hull(x[y == A]), convex_hull(x[y == B])
    best = (math.inf, None, None)
    for verts, other, a_side in ((hull_a, hull_b, True), (hull_b, hull_a, False)):
        for v in verts:
            for e0, e1 in _edges(other):
                q = _closest_on_segment(v, e0, e1)
                dist = float(np.linalg.norm(v - q))
                if dist < best[0]:
                    best = (dist, v, q) if a_side else (dist, q, v)
    dist, pa, pb = best
    if dist <= 1e-12:
        raise ValueError("the two classes touch or overlap: no separating line with a margin")
    w = (pa - pb) / dist
    b = -float(w @ (pa + pb)) / 2
    margin = dist / 2
    if np.min(y * (x @ w + b)) < margin * (1 - 1e-9) - 1e-12:
        raise ValueError("the two classes are not linearly separable (their hulls intersect)")
    return w, b, margin


def clip_halfplane(poly: np.ndarray, a: np.ndarray, c: float) -> np.ndarray:
    """The convex polygon ``poly`` ∩ {x : a·x ≤ c} (one Sutherland–Hodgman step)."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = float(a @ p) - c, float(a @ q) - c
        if fp <= 0:
            out.append(p)
        if fp * fq < 0:
            out.append(p + fp / (fp - fq) * (q - p))
    return np.array(out).reshape(-1, 2)


def polygon_area(poly: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula); 0 for fewer than 3 vertices."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1))) / 2


def adversarial_area(regions: dict, w: np.ndarray, b: float) -> float:
    """Exact area of the adversarial region of §3.2: points the teacher labels with certainty
    (``regions``: {label: convex polygon}) where the linear student disagrees."""
    w = np.asarray(w, dtype=float)
    # Disagreement on Ω_s: s·(w·x + b) ≤ 0, i.e. (s·w)·x ≤ −s·b.
    return sum(polygon_area(clip_halfplane(poly, s * w, -s * b)) for s, poly in regions.items())


def adversarial_area_grid(regions: dict, w: np.ndarray, b: float, n: int,
                          extent: float = 1.0) -> float:
    """The same area, estimated on the n × n grid of cell centres of [−extent, extent]²."""
    h = 2 * extent / n
    c = -extent + h * (np.arange(n) + 0.5)
    x = np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1).reshape(-1, 2)
    t = region_teacher(regions, x)
    wrong = (t != U) & (linear_student(x, w, b) != t)
    return float(wrong.sum()) * h * h


def l2_robust_radius(regions: dict, w: np.ndarray, b: float) -> float:
    """Smallest signed ℓ2 distance from the labelled ``regions`` to the student's line.

    A linear function attains its minimum over a convex polygon at a vertex, so the minimum over
    vertices of s·(w·x + b)/‖w‖ is exact. Positive r: the student is ℓ2 robust at every radius
    below r on these regions; 0: not ℓ2 robust at any ε > 0; negative: it errs on them.
    """
    w = np.asarray(w, dtype=float)
    norm = float(np.linalg.norm(w))
    return min(float(np.min(s * (poly @ w + b))) / norm for s, poly in regions.items())


def l2_robust_fraction(regions: dict, w: np.ndarray, b: float, eps: float) -> float:
    """Exact fraction of the (uniform) mass of ``regions`` that the student classifies correctly
    with an ℓ2 margin > ``eps``: ℓ2-robust accuracy of a linear student at radius eps."""
    w = np.asarray(w, dtype=float)
    norm = float(np.linalg.norm(w))
    total = sum(polygon_area(p) for p in regions.values())
    # Robust on Ω_s: s·(w·x + b) ≥ eps·‖w‖, i.e. (−s·w)·x ≤ s·b − eps·‖w‖.
    kept = sum(polygon_area(clip_halfplane(p, -s * w, s * b - eps * norm))
               for s, p in regions.items())
    return kept / total


# --------------------------------------------------------------------------------------------
# §4.1–4.2: parity teachers, passive and active
# --------------------------------------------------------------------------------------------

MAX_ENUMERATED_D = 20
"""Largest d for which ν (uniform on {0,1}^d) is enumerated exactly."""


def _check_subset(S, d: int) -> frozenset:
    S = frozenset(int(i) for i in S)
    if not S or min(S) < 1 or max(S) > d:
        raise ValueError(
            f"S must be a non-empty subset of {{1, …, {d}}} (1-based), got {sorted(S)}")
    return S


def parity(x: np.ndarray, S) -> np.ndarray:
    """f_S(x) = (Σ_{i∈S} x_i) mod 2, eq. (4.1); ``S`` holds 1-based coordinates, x is [n, d]."""
    x = np.asarray(x)
    S = _check_subset(S, x.shape[-1])
    cols = np.array(sorted(S)) - 1
    return (x[..., cols].sum(axis=-1) % 2).astype(np.int64)


def random_parity_set(d: int, size: int, rng: np.random.Generator) -> frozenset:
    """A uniformly random S ⊂ {1, …, d} with |S| = ``size`` and 1 ∈ S: a teacher of (4.3)."""
    if not 1 <= size <= d:
        raise ValueError(f"size must be in [1, d] = [1, {d}], got {size}")
    rest = rng.choice(np.arange(2, d + 1), size=size - 1, replace=False)
    return frozenset([1, *map(int, rest)])


class ParityTeacher:
    """A parity teacher f_S that answers data queries T(x) and counts them (Thm 4.3)."""

    def __init__(self, d: int, S):
        self.d = int(d)
        self.S = _check_subset(S, self.d)
        self.n_queries = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x))
        if x.shape[1] != self.d or not np.isin(x, (0, 1)).all():
            raise ValueError(f"queries must be points of {{0,1}}^{self.d}, got shape {x.shape}")
        self.n_queries += len(x)
        return parity(x, self.S)


def learn_parity_active(teacher: ParityTeacher, d: int) -> frozenset:
    """Thm 4.3: told "I am a parity", the student queries T(0) and T(e_i), i = 1…d (d + 1 data
    queries), and i ∈ S exactly when T(e_i) ≠ T(0)."""
    queries = np.vstack([np.zeros((1, d), dtype=np.int64), np.eye(d, dtype=np.int64)])
    labels = teacher(queries)
    return frozenset(int(i) + 1 for i in np.flatnonzero(labels[1:] != labels[0]))


def mu_parity_points(d: int) -> np.ndarray:
    """The support of μ in Thm 4.2: (0, …, 0) and (1, 0, …, 0)."""
    x = np.zeros((2, d), dtype=np.int64)
    x[1, 0] = 1
    return x


def fit_on_mu(teacher: ParityTeacher, d: int) -> np.ndarray:
    """The passive student of Thm 4.2: minimum-norm least squares on the two points of μ.

    The student h(x) = 1[αᵀx ≥ 1/2] fits μ exactly; for every teacher of (4.3) α = e_1, i.e.
    h(x) = x_1, whatever the rest of S is.
    """
    x = mu_parity_points(d)
    alpha, *_ = np.linalg.lstsq(x.astype(float), teacher(x).astype(float), rcond=None)
    return alpha


def linear_threshold(alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """h(x) = 1[αᵀx ≥ 1/2] (0/1 labels)."""
    return (np.asarray(x) @ alpha >= 0.5).astype(np.int64)


def hypercube(d: int) -> np.ndarray:
    """All 2^d points of {0,1}^d, [2^d, d] uint8 (ν of Thm 4.2, enumerated)."""
    if not 1 <= d <= MAX_ENUMERATED_D:
        raise ValueError(f"d must be in [1, {MAX_ENUMERATED_D}] to enumerate {{0,1}}^d, got {d}")
    k = np.arange(2**d, dtype=np.int64)[:, None]
    return ((k >> np.arange(d)) & 1).astype(np.uint8)


def walsh_hadamard(values: np.ndarray) -> np.ndarray:
    """Fourier (Walsh–Hadamard) coefficients ĥ(S) = E_x[h(x)·(−1)^{f_S(x)}] over {0,1}^d.

    ``values[k]`` is h at the point whose coordinate i is bit i of k (as :func:`hypercube`);
    the output is indexed the same way by the indicator bits of S. Fast transform, O(d 2^d).
    """
    f = np.array(values, dtype=float)
    n = len(f)
    if n & (n - 1) or n == 0:
        raise ValueError(f"need 2^d values, got {n}")
    h = 1
    while h < n:
        f = f.reshape(-1, 2, h)
        f = np.stack([f[:, 0] + f[:, 1], f[:, 0] - f[:, 1]], axis=1).reshape(-1)
        h *= 2
    return f / n


def subset_to_index(S) -> int:
    """The bit mask of a 1-based S (bit i−1 for coordinate i): its index in
    :func:`walsh_hadamard`."""
    return sum(1 << (i - 1) for i in S)


class CorrelationOracle:
    """The feature query of §4.1: STAT(T, ν) returns E_{x∼ν}[h(x) T(x)] within tolerance α.

    ν is uniform on {0,1}^d, enumerated exactly (d ≤ ``MAX_ENUMERATED_D``). The answer is the
    exact value plus a perturbation in [−α, α]: uniform noise drawn from ``rng``, or, with
    ``adversarial=True``, the answer E[h]/2 that a teacher uncorrelated with h would give
    whenever it lies within α of the truth (the adversary behind the lower bound of Thm 4.1).
    """

    def __init__(self, teacher: ParityTeacher, tolerance: float, rng: np.random.Generator,
                 adversarial: bool = False):
        if tolerance < 0:
            raise ValueError(f"tolerance must be ≥ 0, got {tolerance}")
        self.x = hypercube(teacher.d)
        self.labels = parity(self.x, teacher.S)
        self.tolerance, self.rng, self.adversarial = float(tolerance), rng, adversarial
        self.n_queries = 0

    def __call__(self, feature) -> float:
        h = np.asarray(feature(self.x), dtype=float)
        self.n_queries += 1
        exact = float(np.mean(h * self.labels))
        if self.adversarial and abs(exact - h.mean() / 2) <= self.tolerance:
            return float(h.mean() / 2)
        return exact + self.tolerance * float(self.rng.uniform(-1, 1))


def parity_candidates(d: int):
    """Teachers of (4.3) in the order the SQ student tries them: by size, then lexicographic."""
    for size in range(1, d + 1):
        for rest in itertools.combinations(range(2, d + 1), size - 1):
            yield frozenset((1, *rest))


def learn_parity_sq(oracle: CorrelationOracle, d: int, budget: int):
    """An active student with feature queries only (§4.1): for each candidate S′ of (4.3) in turn,
    ask the correlation E_ν[f_S′(x) T(x)] (1/2 if S′ = S, 1/4 otherwise) and stop when the answer
    exceeds 3/8. Returns (S′ or None if the budget ran out, queries used)."""
    if oracle.tolerance >= 1 / 8:
        raise ValueError(
            f"the tolerance must be < 1/8 to tell 1/2 from 1/4, got {oracle.tolerance}")
    start = oracle.n_queries
    for candidate in parity_candidates(d):
        if oracle.n_queries - start >= budget:
            return None, oracle.n_queries - start
        if oracle(lambda x, c=candidate: parity(x, c)) > 3 / 8:
            return candidate, oracle.n_queries - start
    return None, oracle.n_queries - start


def sq_queries_needed(d: int, S) -> int:
    """Queries :func:`learn_parity_sq` uses for teacher S: the rank of S in
    :func:`parity_candidates`, by the combinatorial number system (closed form)."""
    S = _check_subset(S, d)
    if 1 not in S:
        raise ValueError("teachers of (4.3) contain coordinate 1")
    k = len(S)
    before = sum(math.comb(d - 1, j - 1) for j in range(1, k))
    # Lexicographic rank of the (k−1)-subset rest of {2..d} (shifted to {0..d−2}).
    rest = sorted(i - 2 for i in S if i != 1)
    n, rank, prev = d - 1, 0, -1
    for pos, c in enumerate(rest):
        left = k - 1 - pos - 1
        for skipped in range(prev + 1, c):
            rank += math.comb(n - skipped - 1, left)
        prev = c
    return before + rank + 1


def sq_lower_bound(n_candidates: int, tolerance: float) -> float:
    """Queries any SQ student needs against the adversarial oracle to single out one of
    ``n_candidates`` parities: a query h moves the answer by ĥ(S)/2 and Σ_S ĥ(S)² ≤ 1
    (Parseval), so at most 1/(4α²) candidates answer outside tolerance; hence
    ≥ 4α²·(n_candidates − 1) queries."""
    return 4 * tolerance**2 * (n_candidates - 1)


def _torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from ``rng`` (so one seed drives numpy and torch)."""
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def train_parity_gd(d: int, S, *, width: int, batch: int, lr: float, budget: int, seed,
                    eval_every: int = 50, n_eval: int = 2000, target: float = 0.95,
                    progress: bool = True) -> dict:
    """A student that learns T = f_S from samples of ν by gradient descent: the book's addition
    to §4.1 (the paper runs no such experiment; it cites [10, 11, 24] on the hardness of learning
    neural networks and [34] on failures of gradient-based learning).

    A one-hidden-layer ReLU network of ``width`` units on the ±1 encoding of x, hinge loss on ±1
    labels, plain SGD with ``batch`` fresh samples of ν per step (online: no sample is reused).
    Every ``eval_every`` steps the accuracy on a fixed set of ``n_eval`` samples of ν is measured;
    training stops when it reaches ``target`` or after ``budget`` steps. ``seed``: an int or a
    tuple of ints (numpy seed sequence). Returns {"steps": steps to reach the target or None,
    "curve_steps", "curve_acc"}.
    """
    S = _check_subset(S, d)
    rng = np.random.default_rng(seed)
    gen = _torch_generator(rng)
    model = nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, 1))
    _init_(model, gen)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def draw(n):
        x = rng.integers(0, 2, size=(n, d))
        y = 1 - 2 * parity(x, S)  # ±1
        return torch.from_numpy(1.0 - 2.0 * x).float(), torch.from_numpy(y).float()

    x_eval, y_eval = draw(n_eval)
    curve_steps, curve_acc, reached = [], [], None
    with torch_threads(1), tqdm(total=budget, desc=f"SGD, parity of |S| = {len(S)} bits",
                               disable=not progress, leave=False) as bar:
        for step in range(budget + 1):
            if step % eval_every == 0 or step == budget:
                with torch.no_grad():
                    acc = float((torch.sign(model(x_eval)[:, 0]) == y_eval).float().mean())
                curve_steps.append(step)
                curve_acc.append(acc)
                if acc >= target:
                    reached = step
                    break
            if step == budget:
                break
            x, y = draw(batch)
            opt.zero_grad()
            loss = torch.clamp(1 - y * model(x)[:, 0], min=0).mean()
            loss.backward()
            opt.step()
            bar.update(1)
    return {"steps": reached, "curve_steps": np.array(curve_steps),
            "curve_acc": np.array(curve_acc)}


# --------------------------------------------------------------------------------------------
# Example 4.1: the teacher compares x1 with x100
# --------------------------------------------------------------------------------------------

EX41_DIM = 100
"""Dimension of Example 4.1; x1 and x100 are columns 0 and 99."""


def teacher_41(x: np.ndarray) -> np.ndarray:
    """Example 4.1: y = −1 if x1 > x100, y = 1 if x1 ≤ x100."""
    x = np.asarray(x)
    return np.where(x[:, 0] > x[:, -1], -1, 1)


def sample_41(n_per_class: int, rng: np.random.Generator, d: int = EX41_DIM):
    """``n_per_class`` points of each class, uniform on its half of [0,1]^d (Example 4.1).

    Uniform on {x1 > x100}: draw the pair and put the larger value in x1 (and vice versa).
    Returns (x [2n, d], y [2n]) with class −1 first.
    """
    if d < 2:
        raise ValueError(f"d must be ≥ 2, got {d}")
    x = rng.random((2 * n_per_class, d))
    hi = np.maximum(x[:, 0], x[:, -1])
    lo = np.minimum(x[:, 0], x[:, -1])
    neg = np.arange(2 * n_per_class) < n_per_class
    x[:, 0] = np.where(neg, hi, lo)
    x[:, -1] = np.where(neg, lo, hi)
    return x, teacher_41(x)


def least_squares(x: np.ndarray, y: np.ndarray, support=None) -> np.ndarray:
    """Linear regression without bias, ŷ = αᵀx (4.6); with ``support`` (1-based coordinates,
    e.g. (1, 100) for the sparse model (4.7)) only those coefficients are fitted, the others
    are 0."""
    x = np.asarray(x, dtype=float)
    cols = np.arange(x.shape[1]) if support is None else np.array(sorted(support)) - 1
    coef, *_ = np.linalg.lstsq(x[:, cols], np.asarray(y, dtype=float), rcond=None)
    alpha = np.zeros(x.shape[1])
    alpha[cols] = coef
    return alpha


def predict_41(alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The student's label: 1 where αᵀx ≥ 0, −1 elsewhere (ties go to 1, like the teacher's)."""
    return np.where(np.asarray(x) @ alpha >= 0, 1, -1)


def flipping_eps(alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Smallest ε of Example 4.1's construction that flips the student: |αᵀx| / Σ_{i=2}^{99}|α_i|.

    (The text writes αᵀx / Σ|α_i| for x1 > x100, where αᵀx < 0 for a correct student; the move
    is toward the other side, so the magnitude is meant.) ``inf`` if α_2…α_99 are all zero.
    """
    denom = np.abs(alpha[1:-1]).sum()
    margin = np.abs(np.asarray(x) @ alpha)
    return margin / denom if denom > 0 else np.full(margin.shape, np.inf)


def adversarial_41(alpha: np.ndarray, x: np.ndarray, eps) -> np.ndarray:
    """The construction of Example 4.1: keep x1 and x100, move x_i, i = 2…99, by ε·sign(α_i)
    toward the other class: x̂_i = x_i − ε·sign(αᵀx)·sign(α_i). The teacher's label cannot change.
    ``eps`` is a scalar or one value per row; the result may leave [0,1]^100, as in the text."""
    x = np.array(x, dtype=float)
    eps = np.broadcast_to(np.asarray(eps, dtype=float), (len(x),))
    direction = np.where(x @ alpha >= 0, -1.0, 1.0)
    x[:, 1:-1] += (eps * direction)[:, None] * np.sign(alpha[1:-1])[None, :]
    return x


def flippable_in_cube(alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether some change of x2…x99 *inside* [0,1]^100 flips the student (exact: push each
    coordinate to the end of [0, 1] that moves αᵀx toward the other class)."""
    x = np.asarray(x, dtype=float)
    score = x @ alpha
    a = alpha[1:-1]
    mid = x[:, 1:-1]
    # Largest increase of αᵀx: α_i > 0 → x_i to 1, α_i < 0 → x_i to 0; decrease: the opposite.
    up = (np.clip(a, 0, None) * (1 - mid) + np.clip(-a, 0, None) * mid).sum(axis=1)
    down = (np.clip(a, 0, None) * mid + np.clip(-a, 0, None) * (1 - mid)).sum(axis=1)
    return np.where(score >= 0, score - down < 0, score + up >= 0)


def error_rate(alpha: np.ndarray, x: np.ndarray) -> float:
    """Fraction of ``x`` on which the student disagrees with the teacher of Example 4.1."""
    return float(np.mean(predict_41(alpha, x) != teacher_41(x)))


def sparse_error_exact(a1: float, a100: float) -> float:
    """Exact error under ν (uniform cube) of ŷ = a1·x1 + a100·x100: the area of the unit square
    where sign(a1·x1 + a100·x100) and sign(x100 − x1) differ (convex pieces, clipped exactly)."""
    square = box(0, 1, 0, 1)
    w = np.array([a1, a100], dtype=float)
    # Teacher 1 (x100 − x1 ≥ 0) but student −1 (w·x < 0); and teacher −1 but student 1.
    t_pos = clip_halfplane(square, np.array([1.0, -1.0]), 0.0)
    t_neg = clip_halfplane(square, np.array([-1.0, 1.0]), 0.0)
    return (polygon_area(clip_halfplane(t_pos, w, 0.0))
            + polygon_area(clip_halfplane(t_neg, -w, 0.0)))


def flipping_eps_search(alpha: np.ndarray, x: np.ndarray, hi: float = 100.0,
                        iters: int = 60) -> np.ndarray:
    """The flipping ε of Example 4.1's construction found by bisection on the student's output
    (an independent check of :func:`flipping_eps`); ``inf`` where ``hi`` does not flip."""
    x = np.asarray(x, dtype=float)
    before = predict_41(alpha, x)
    lo_e = np.zeros(len(x))
    hi_e = np.full(len(x), hi)
    flips_at_hi = predict_41(alpha, adversarial_41(alpha, x, hi_e)) != before
    for _ in range(iters):
        mid = (lo_e + hi_e) / 2
        flipped = predict_41(alpha, adversarial_41(alpha, x, mid)) != before
        hi_e = np.where(flipped, mid, hi_e)
        lo_e = np.where(flipped, lo_e, mid)
    return np.where(flips_at_hi, hi_e, np.inf)


# --------------------------------------------------------------------------------------------
# Example 4.2: disks vs textured squares (§4.2, App. A)
# --------------------------------------------------------------------------------------------

DISK, SQUARE = 0, 1
"""Class labels of Example 4.2."""
TEXTURE_VALUE = 0.5
"""App. A.1: a textured shape pixel (x, y) with x + y even takes 0.5 instead of 1."""


@dataclass(frozen=True)
class Shapes:
    """A batch of Example 4.2 images with what generated them."""

    images: np.ndarray  # [n, size, size] float32 in [0, 1]
    labels: np.ndarray  # [n] int64: DISK or SQUARE
    radius: np.ndarray  # [n] radius (disk) or half side (square)
    centre: np.ndarray  # [n, 2] (row, column) of the centre pixel
    textured: np.ndarray  # [n] bool


def draw_shapes(kind, radius, centre, textured, size: int) -> np.ndarray:
    """Render shapes on a ``size``×``size`` black canvas (App. A.1).

    A square of half side r centred at (i, j) covers [i − r, i + r] × [j − r, j + r]; a disk of
    radius r covers the pixels with (i' − i)² + (j' − j)² ≤ r². Shape pixels are 1, or
    ``TEXTURE_VALUE`` where the shape is textured and the pixel's row + column is even.
    """
    kind, radius = np.asarray(kind), np.asarray(radius)
    centre, textured = np.asarray(centre), np.asarray(textured, dtype=bool)
    rows = np.arange(size)[None, :, None]
    cols = np.arange(size)[None, None, :]
    di = rows - centre[:, 0, None, None]
    dj = cols - centre[:, 1, None, None]
    r = radius[:, None, None]
    square = (np.abs(di) <= r) & (np.abs(dj) <= r)
    disk = di**2 + dj**2 <= r**2
    inside = np.where(kind[:, None, None] == SQUARE, square, disk)
    even = (rows + cols) % 2 == 0
    value = np.where(textured[:, None, None] & even, TEXTURE_VALUE, 1.0)
    return np.where(inside, value, 0.0).astype(np.float32)


def sample_shapes(n: int, *, distribution: str, size: int, radius_range, rng: np.random.Generator,
                  balanced: bool = False) -> Shapes:
    """Sample ``n`` images of Example 4.2 from μ (``"mu"``) or ν (``"nu"``) (§4.2, App. A.1).

    μ: squares textured, disks plain (training and test data); ν: squares plain, disks textured
    (the adversarial distribution). The radius / half side r is uniform on the integers of
    ``radius_range``; the centre is uniform on the integers [r, size − 2 − r] in each axis, as in
    App. A.1 ("half side 20 → x and y uniform within [20, 78]" on a 100-pixel canvas). Squares
    have probability 1/2, or exactly half of the images are squares if ``balanced`` (the training
    set: 500 + 500).
    """
    if distribution not in ("mu", "nu"):
        raise ValueError(f"distribution must be 'mu' or 'nu', got {distribution!r}")
    r_min, r_max = (int(v) for v in radius_range)
    if not 1 <= r_min <= r_max or size - 2 - 2 * r_max < 0:
        raise ValueError(
            f"radius_range {tuple(radius_range)} does not fit a {size}-pixel canvas: need "
            f"1 ≤ r_min ≤ r_max ≤ (size − 2) / 2 = {(size - 2) // 2}"
        )
    if balanced:
        labels = np.array([SQUARE] * (n // 2) + [DISK] * (n - n // 2))
        labels = rng.permutation(labels)
    else:
        labels = np.where(rng.random(n) < 0.5, SQUARE, DISK)
    radius = rng.integers(r_min, r_max + 1, size=n)
    high = size - 2 - radius  # inclusive upper end of the centre's range
    centre = np.stack([rng.integers(radius, high + 1), rng.integers(radius, high + 1)], axis=1)
    textured = (labels == SQUARE) if distribution == "mu" else (labels == DISK)
    images = draw_shapes(labels, radius, centre, textured, size)
    return Shapes(images, labels.astype(np.int64), radius, centre, textured)


def maxpool_prefilter(images: torch.Tensor) -> torch.Tensor:
    """The teacher-informed low-pass filter of §4.2: max pooling, kernel 3, stride 1.

    Padding 1 (with −∞, i.e. the max over the window's pixels inside the image) keeps the canvas
    size; the source does not say which padding it used. Input [B, 1, H, W] or [B, H, W].
    """
    squeeze = images.ndim == 3
    x = images[:, None] if squeeze else images
    out = nn.functional.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    return out[:, 0] if squeeze else out


class ShapeCNN(nn.Module):
    """The student of Example 4.2 (App. A.2): 3 conv layers with 2 max pools between them, a
    global average pool and a linear layer to 2 classes.

    App. A.2 names these layers but gives no layer sizes we could use: channels, kernel size
    (with 'same' padding), ReLU activations and 2×2 pools are our choices. With ``prefilter`` the
    input first goes through :func:`maxpool_prefilter` (Fig. 4.3 right).
    """

    def __init__(self, channels=(16, 32, 64), kernel_size: int = 3, prefilter: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"channels must give the 3 conv layers' widths, got {channels!r}")
        c1, c2, c3 = (int(c) for c in channels)
        pad = kernel_size // 2
        self.prefilter = prefilter
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, kernel_size, padding=pad), nn.ReLU(),
        )
        self.head = nn.Linear(c3, 2)
        _init_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x[:, None]
        if self.prefilter:
            x = maxpool_prefilter(x)
        return self.head(self.features(x).mean(dim=(2, 3)))


def _init_(module: nn.Module, generator: torch.Generator | None):
    """PyTorch's default initialisation of Conv/Linear layers, drawn from ``generator``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            fan_in = layer.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    """Fraction of ``images`` the model classifies as ``labels``."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start:start + batch]).to(_model_device(model))
        pred = model(x).argmax(dim=1).cpu().numpy()
        correct += int((pred == labels[start:start + batch]).sum())
    return correct / len(images)


@torch.no_grad()
def correct_probability(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The model's softmax probability of the true class, per image."""
    model.eval()
    x = torch.from_numpy(images).to(_model_device(model))
    p = torch.softmax(model(x), dim=1).cpu().numpy()
    return p[np.arange(len(labels)), labels]


def train_shape_cnn(*, prefilter: bool, size: int, radius_range, n_train: int, n_eval: int,
                    epochs: int, batch_size: int, lr: float, eval_every: int, channels,
                    kernel_size: int, seed, panel: Shapes | None = None, threads: int = 1,
                    device: str = "cpu", progress: bool = True) -> dict:
    """Train the Example 4.2 student on μ and follow its test (μ) and adversarial (ν) accuracy.

    As App. A: ``n_train`` training images of μ (half squares), cross-entropy, Adam(``lr``,
    betas 0.9, 0.999), ``epochs`` epochs of batches of ``batch_size``. At step 0, every
    ``eval_every`` steps and after the last step, ``n_eval`` *fresh* images of μ and of ν are
    drawn and classified. If ``panel`` is given, the probability of the true class on its images
    is recorded at each evaluation (for the slider figure). ``seed``: an int or a tuple of ints;
    the same seed gives the same training images whatever ``prefilter`` is. ``threads``: torch
    CPU threads (0: torch's default), see :func:`tsrobust.runtime.torch_threads`; ``device``:
    ``"cpu"``, ``"cuda"`` or ``"auto"``, see :func:`tsrobust.runtime.choose_device`
    (initialisation and data are drawn on the CPU either way).

    Returns a dict of arrays: ``steps``, ``test_acc``, ``adv_acc``, ``train_loss`` (mean over
    the steps since the last evaluation) and, with a panel, ``panel_prob`` [evaluations, panel].
    """
    rng = np.random.default_rng(seed)
    gen = _torch_generator(rng)
    dev = choose_device(device)
    model = ShapeCNN(channels, kernel_size, prefilter=prefilter, generator=gen).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    loss_fn = nn.CrossEntropyLoss()
    train = sample_shapes(n_train, distribution="mu", size=size, radius_range=radius_range,
                          rng=rng, balanced=True)
    x_train = torch.from_numpy(train.images).to(dev)
    y_train = torch.from_numpy(train.labels).to(dev)
    log = {"steps": [], "test_acc": [], "adv_acc": [], "train_loss": [], "panel_prob": []}
    losses: list[float] = []

    def evaluate(step):
        test = sample_shapes(n_eval, distribution="mu", size=size, radius_range=radius_range,
                             rng=rng)
        adv = sample_shapes(n_eval, distribution="nu", size=size, radius_range=radius_range,
                            rng=rng)
        log["steps"].append(step)
        log["test_acc"].append(accuracy(model, test.images, test.labels))
        log["adv_acc"].append(accuracy(model, adv.images, adv.labels))
        log["train_loss"].append(float(np.mean(losses)) if losses else float("nan"))
        losses.clear()
        if panel is not None:
            log["panel_prob"].append(correct_probability(model, panel.images, panel.labels))

    steps_per_epoch = math.ceil(n_train / batch_size)
    total = epochs * steps_per_epoch
    step = 0
    label = "CNN, max-pool prefilter" if prefilter else "CNN, raw images"
    with torch_threads(threads), tqdm(total=total, desc=label, disable=not progress) as bar:
        evaluate(step)
        for _ in range(epochs):
            order = torch.randperm(n_train, generator=gen)
            for start in range(0, n_train, batch_size):
                idx = order[start:start + batch_size].to(dev)
                model.train()
                opt.zero_grad()
                loss = loss_fn(model(x_train[idx]), y_train[idx])
                loss.backward()
                opt.step()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                if step % eval_every == 0 or step == total:
                    evaluate(step)
                    bar.set_postfix(test=log["test_acc"][-1], adv=log["adv_acc"][-1])
    out = {k: np.asarray(v) for k, v in log.items() if k != "panel_prob"}
    if panel is not None:
        out["panel_prob"] = np.stack(log["panel_prob"])
    return out
