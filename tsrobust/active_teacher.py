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

from tsrobust.params import Setting
from tsrobust.runtime import torch_threads

# --------------------------------------------------------------------------------------------
# Chapter settings
# --------------------------------------------------------------------------------------------

CH08_SETTINGS = {
    # §3.3, Fig. 3.2
    "n_2d": Setting(int, smoke=200, gpu=200, paper=200, min=2,
                    doc="training points of μ in the 2-D example of Fig. 3.2 (left), half per "
                        "square; the paper does not say how many"),
    "grid_2d": Setting(int, smoke=401, gpu=801, paper=801, min=11,
                       doc="grid points per axis for the numerical check of the areas"),
    # §4.1–4.2, parity
    "parity_d_max": Setting(int, smoke=64, gpu=256, paper=256, min=2,
                            doc="largest dimension d for the active-teacher parity learner"),
    "sq_d": Setting(int, smoke=12, gpu=16, paper=16, min=2, max=20,
                    doc="dimension d of the statistical-query experiment (ν enumerated: 2^d)"),
    "sq_tolerance": Setting(float, smoke=0.05, gpu=0.05, paper=0.05, min=0.0, max=0.12,
                            doc="tolerance α of the correlation oracle (< 1/8 for the learner)"),
    "sq_budget": Setting(int, smoke=1000, gpu=10000, paper=10000, min=1,
                         doc="statistical queries the student may ask before giving up"),
    "gd_d": Setting(int, smoke=30, gpu=50, paper=50, min=2,
                    doc="dimension d of the gradient-descent parity experiment"),
    "gd_sizes": Setting(tuple, smoke=(1, 2, 3, 4, 5), gpu=(1, 2, 3, 4, 5, 6),
                        paper=(1, 2, 3, 4, 5, 6), min=1, doc="sizes |S| tried by gradient descent"),
    "gd_repeats": Setting(int, smoke=1, gpu=3, paper=3, min=1,
                          doc="random teachers (and initialisations) per size |S|"),
    "gd_budget": Setting(int, smoke=5000, gpu=30000, paper=30000, min=1,
                         doc="SGD steps the gradient-descent student may take"),
    "gd_width": Setting(int, smoke=128, gpu=128, paper=128, min=1,
                        doc="hidden width of the gradient-descent student (one ReLU layer)"),
    "gd_batch": Setting(int, smoke=64, gpu=64, paper=64, min=1,
                        doc="fresh samples of ν per SGD step"),
    "gd_lr": Setting(float, smoke=0.1, gpu=0.1, paper=0.1, min=0.0,
                     doc="SGD learning rate of the gradient-descent student"),
    "gd_target": Setting(float, smoke=0.95, gpu=0.95, paper=0.95, min=0.5, max=1.0,
                         doc="accuracy on ν at which the gradient-descent student counts as done"),
    # Example 4.1
    "n_per_class": Setting(int, smoke=1000, gpu=1000, paper=1000, min=1,
                           doc="training samples per class in Example 4.1 (paper: 1000)"),
    "n_nu": Setting(int, smoke=20000, gpu=200000, paper=200000, min=1,
                    doc="samples of ν (uniform cube) for the error rates of Example 4.1"),
    # Example 4.2, App. A
    "image_size": Setting(int, smoke=48, gpu=100, paper=100, min=16,
                          doc="side of the square images in Example 4.2 (paper: 100)"),
    "radius_range": Setting(tuple, smoke=(6, 12), gpu=(12, 25), paper=(12, 25), min=1,
                            doc="integer range [r_min, r_max] of the radius / half side "
                                "(paper: [12, 25] ≈ [a/8, a/4])"),
    "n_train": Setting(int, smoke=1000, gpu=1000, paper=1000, min=2,
                       doc="training images of Example 4.2, half squares and half disks"),
    "n_eval": Setting(int, smoke=400, gpu=1000, paper=1000, min=1,
                      doc="fresh test (μ) and adversarial (ν) images per evaluation"),
    "epochs": Setting(int, smoke=10, gpu=10, paper=10, min=1, doc="training epochs (paper: 10)"),
    "batch_size": Setting(int, smoke=50, gpu=50, paper=50, min=1, doc="batch size (paper: 50)"),
    "lr": Setting(float, smoke=1e-3, gpu=1e-3, paper=1e-3, min=0.0, doc="Adam learning rate"),
    "eval_every": Setting(int, smoke=20, gpu=10, paper=10, min=1,
                          doc="SGD steps between two evaluations on fresh images"),
    "channels": Setting(tuple, smoke=(8, 16, 32), gpu=(16, 32, 64), paper=(16, 32, 64), min=1,
                        doc="channels of the 3 conv layers (App. A.2 gives none: our choice)"),
    "kernel_size": Setting(int, smoke=3, gpu=3, paper=3, min=1,
                           doc="kernel of the conv layers (App. A.2 gives none: our choice)"),
    "torch_threads": Setting(int, smoke=1, gpu=0, paper=1, min=0,
                             doc="CPU threads for the CNN (0: torch's default)"),
    "device": Setting(str, smoke="cpu", gpu="auto", paper="cpu", choices=("cpu", "cuda", "auto"),
                      doc="where the CNN trains; auto: cuda if available (the paper used a CPU)"),
}
"""Parameters of chapter 08 (see :func:`tsrobust.params.resolve`)."""


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
    (with 'same' padding), ReLU activations and 2×2 pools are our choices. With ``prefilter`` the input first
    goes through :func:`maxpool_prefilter` (Fig. 4.3 right).
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


def torch_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (cuda if available) as a torch device."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but no CUDA GPU is available; "
                         "use 'cpu' or 'auto'")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {name!r}")
    return torch.device(name)


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
    CPU threads (0: torch's default), see :func:`torch_threads`; ``device``: see
    :func:`torch_device` (initialisation and data are drawn on the CPU either way).

    Returns a dict of arrays: ``steps``, ``test_acc``, ``adv_acc``, ``train_loss`` (mean over
    the steps since the last evaluation) and, with a panel, ``panel_prob`` [evaluations, panel].
    """
    rng = np.random.default_rng(seed)
    gen = _torch_generator(rng)
    dev = torch_device(device)
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


# --------------------------------------------------------------------------------------------
# The experiments of chapter 08 (each returns (values, arrays) for tsrobust.results.record)
# --------------------------------------------------------------------------------------------

STREAM_FIG32, STREAM_PARITY, STREAM_SQ, STREAM_GD, STREAM_41, STREAM_42 = range(6)
"""Random streams: experiment k uses ``np.random.default_rng((seed, k))``, so each one is
reproducible on its own, whatever ran before it."""

FIG32_EPS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
"""Radii at which the ℓ2-robust accuracy of both students of Fig. 3.2 is reported."""
FIG32_RIGHT_N = (10, 100, 1000, 10000)
"""Sample sizes at which a max-margin student is fitted on the no-margin setup (Fig. 3.2 right)."""


def fig32_experiment(cfg) -> tuple[dict, dict]:
    """Fig. 3.2, both panels: the max-margin student on μ (left), adversarial areas (exact and
    on a grid), ℓ2 robustness radii and ℓ2-robust accuracies of both students."""
    rng = np.random.default_rng((cfg.seed, STREAM_FIG32))
    x, y = sample_regions(FIG32_LEFT_MU, cfg.n_2d, rng)
    w, b, margin = max_margin_2d(x, y)
    w_r, b_r = FIG32_RIGHT_STUDENT
    right_margins = []
    for n in FIG32_RIGHT_N:
        xr, yr = sample_regions(FIG32_RIGHT_TEACHER, n, rng)
        right_margins.append(max_margin_2d(xr, yr)[2])
    values = {
        "left_w": w.tolist(), "left_b": b, "left_svm_margin": margin,
        "left_angle_deg": math.degrees(math.atan2(w[1], w[0])),
        "left_adv_area": adversarial_area(FIG32_LEFT_TEACHER, w, b),
        "left_adv_area_grid": adversarial_area_grid(FIG32_LEFT_TEACHER, w, b, cfg.grid_2d),
        "left_certain_area": sum(polygon_area(p) for p in FIG32_LEFT_TEACHER.values()),
        "left_l2_radius_mu": l2_robust_radius(FIG32_LEFT_MU, w, b),
        "left_l2_robust_acc": [l2_robust_fraction(FIG32_LEFT_MU, w, b, e) for e in FIG32_EPS],
        "right_adv_area": adversarial_area(FIG32_RIGHT_TEACHER, w_r, b_r),
        "right_adv_area_grid": adversarial_area_grid(FIG32_RIGHT_TEACHER, w_r, b_r, cfg.grid_2d),
        "right_l2_radius_mu": l2_robust_radius(FIG32_RIGHT_TEACHER, w_r, b_r),
        "right_l2_robust_acc": [l2_robust_fraction(FIG32_RIGHT_TEACHER, w_r, b_r, e)
                                for e in FIG32_EPS],
        "right_n": list(FIG32_RIGHT_N), "right_svm_margins": right_margins,
        "eps": list(FIG32_EPS),
    }
    return values, {"left_x": x, "left_y": y}


def parity_dims(d_max: int) -> list[int]:
    """Dimensions 2, 4, 8, … up to ``d_max`` (and ``d_max`` itself)."""
    dims = [2**k for k in range(1, int(math.log2(d_max)) + 1)]
    return dims if dims[-1] == d_max else [*dims, d_max]


def parity_active_experiment(cfg) -> dict:
    """Thm 4.3 for d = 2, 4, …, ``parity_d_max``: a random teacher of (4.3) (random size), the
    active student's queries and whether it recovered S exactly."""
    rng = np.random.default_rng((cfg.seed, STREAM_PARITY))
    rows = []
    for d in parity_dims(cfg.parity_d_max):
        S = random_parity_set(d, int(rng.integers(1, d + 1)), rng)
        teacher = ParityTeacher(d, S)
        found = learn_parity_active(teacher, d)
        rows.append({"d": d, "size": len(S), "queries": teacher.n_queries,
                     "recovered": found == S})
    return {"rows": rows}


def parity_passive_experiment(cfg) -> dict:
    """Thm 4.2, the passive fit: for |S| = 1…``sq_d``, least squares on the two points of μ,
    its accuracy on μ and its exact accuracy on ν (all 2^d points)."""
    rng = np.random.default_rng((cfg.seed, STREAM_PARITY))
    d = cfg.sq_d
    x_nu = hypercube(d)
    rows = []
    for size in range(1, d + 1):
        S = random_parity_set(d, size, rng)
        teacher = ParityTeacher(d, S)
        alpha = fit_on_mu(teacher, d)
        x_mu = mu_parity_points(d)
        rows.append({
            "size": size, "S": sorted(S), "alpha_nonzero": int(np.sum(np.abs(alpha) > 1e-9)),
            "acc_mu": float(np.mean(linear_threshold(alpha, x_mu) == parity(x_mu, S))),
            "acc_nu": float(np.mean(linear_threshold(alpha, x_nu) == parity(x_nu, S))),
        })
    return {"d": d, "rows": rows}


def sq_experiment(cfg, progress: bool = True) -> dict:
    """§4.1: the feature-query student against a random teacher of each size |S|, with the
    budget ``sq_budget``; its expected cost and the lower bound for any SQ student.

    Candidates are tried by size, so a teacher of size k + 1 always costs more queries than one of
    size k: after the first size that exhausts the budget the larger sizes are not run (their
    cost is the closed form :func:`sq_queries_needed`).
    """
    rng = np.random.default_rng((cfg.seed, STREAM_SQ))
    d, budget, tol = cfg.sq_d, cfg.sq_budget, cfg.sq_tolerance
    rows, exhausted = [], False
    for size in tqdm(range(1, d + 1), desc="feature-query student", disable=not progress):
        n_class = math.comb(d - 1, size - 1)
        before = sum(math.comb(d - 1, j - 1) for j in range(1, size))
        row = {"size": size, "n_teachers": n_class, "expected": before + (n_class + 1) / 2,
               "lower_bound": sq_lower_bound(n_class, tol), "run": not exhausted}
        S = random_parity_set(d, size, rng)
        row["S"] = sorted(S)
        row["needed"] = sq_queries_needed(d, S)
        if not exhausted:
            oracle = CorrelationOracle(ParityTeacher(d, S), tol, rng)
            found, used = learn_parity_sq(oracle, d, budget)
            row.update(queries=used, recovered=found == S)
            exhausted = found is None
        rows.append(row)
    # Parseval check behind the lower bound: for a few features h (random ones, and ORs of the
    # first coordinates), how many parities answer outside the tolerance (|ĥ(S)|/2 > α)?
    # At most 1/(4α²) can.
    x = hypercube(d)
    features = [rng.integers(0, 2, size=len(x)) for _ in range(10)]
    features += [x[:, :m].max(axis=1) for m in range(1, d + 1)]
    most = max(int(np.sum(np.abs(walsh_hadamard(h)[1:]) / 2 > tol)) for h in features)
    return {"d": d, "budget": budget, "tolerance": tol, "rows": rows,
            "max_far_parities_per_query": most, "parseval_bound": 1 / (4 * tol**2)}


def gd_experiment(cfg, progress: bool = True) -> tuple[dict, dict]:
    """The book's gradient-descent addition to §4.1 (not an experiment of the paper): SGD steps
    until :func:`train_parity_gd` reaches ``gd_target`` on ν, for each size in ``gd_sizes`` and
    ``gd_repeats`` random teachers, at the single dimension ``gd_d``, within ``gd_budget``
    steps."""
    rng = np.random.default_rng((cfg.seed, STREAM_GD))
    rows, arrays = [], {}
    jobs = [(size, rep) for size in cfg.gd_sizes for rep in range(cfg.gd_repeats)]
    for size, rep in tqdm(jobs, desc="gradient-descent student", disable=not progress):
        if size > cfg.gd_d:
            raise ValueError(f"gd_sizes holds {size} > gd_d = {cfg.gd_d}")
        S = random_parity_set(cfg.gd_d, size, rng)
        out = train_parity_gd(cfg.gd_d, S, width=cfg.gd_width, batch=cfg.gd_batch, lr=cfg.gd_lr,
                              budget=cfg.gd_budget, seed=(cfg.seed, STREAM_GD, size, rep),
                              target=cfg.gd_target, progress=progress)
        rows.append({"size": size, "repeat": rep, "S": sorted(S), "steps": out["steps"],
                     "final_acc": float(out["curve_acc"][-1])})
        arrays[f"curve_steps_{size}_{rep}"] = out["curve_steps"]
        arrays[f"curve_acc_{size}_{rep}"] = out["curve_acc"]
    return {"d": cfg.gd_d, "budget": cfg.gd_budget, "rows": rows}, arrays


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


EX41_SHOWN = 5
"""Adversarial examples of the dense student shown as 10×10 images."""
EX41_SEARCHED = 1000
"""Points on which the flipping ε of the formula is checked against a bisection search."""
EX41_RESAMPLES = 20
"""Fresh training sets on which the sparse fit is repeated to measure its spread."""


def example41_experiment(cfg) -> tuple[dict, dict]:
    """Example 4.1: dense, sparse and rounded students; the adversarial construction; error rates
    under ν (uniform on the cube, where the teacher is certain everywhere)."""
    rng = np.random.default_rng((cfg.seed, STREAM_41))
    x, y = sample_41(cfg.n_per_class, rng)
    dense = least_squares(x, y)
    sparse = least_squares(x, y, support=(1, EX41_DIM))
    rounded = np.round(sparse)
    nu = rng.random((cfg.n_nu, EX41_DIM))
    # The construction on points of ν that the dense student classifies correctly.
    ok = predict_41(dense, nu) == teacher_41(nu)
    pts = nu[ok]
    eps = flipping_eps(dense, pts)
    eps_search = flipping_eps_search(dense, pts[:EX41_SEARCHED])
    adv = adversarial_41(dense, pts, eps * (1 + 1e-6))
    # Shown: points at the 10%, 30%, 50%, 70%, 90% quantiles of the flipping ε.
    order = np.argsort(eps)
    shown = order[(np.linspace(0.1, 0.9, EX41_SHOWN) * (len(order) - 1)).astype(int)]
    # The sparse student's adversarial examples: the thin wedge between x100 = x1 and its line.
    wedge = predict_41(sparse, nu) != teacher_41(nu)
    # Spread of the sparse coefficients over fresh training sets (only x1 and x100 matter).
    refits = np.array([least_squares(*sample_41(cfg.n_per_class, rng, d=2), support=(1, 2))
                       for _ in range(EX41_RESAMPLES)])
    paper_point = np.zeros((1, EX41_DIM))
    paper_point[0, 0], paper_point[0, -1] = 1.0, 1.01
    values = {
        "n_train": len(x), "dense_alpha_1": dense[0], "dense_alpha_100": dense[-1],
        "dense_sum_abs_middle": float(np.abs(dense[1:-1]).sum()),
        "dense_max_abs_middle": float(np.abs(dense[1:-1]).max()),
        "sparse_alpha_1": sparse[0], "sparse_alpha_100": sparse[-1],
        "sparse_alpha_seed_std": float(refits.std(axis=0, ddof=1).mean()),
        "rounded_alpha_1": rounded[0], "rounded_alpha_100": rounded[-1],
        "train_err_dense": error_rate(dense, x), "train_err_sparse": error_rate(sparse, x),
        "err_nu_dense": error_rate(dense, nu), "err_nu_sparse": error_rate(sparse, nu),
        "err_nu_rounded": error_rate(rounded, nu),
        "err_nu_sparse_exact": sparse_error_exact(sparse[0], sparse[-1]),
        "err_nu_rounded_exact": sparse_error_exact(rounded[0], rounded[-1]),
        "err_nu_paper_sparse_exact": sparse_error_exact(-2.01, 1.98),
        "n_attacked": int(len(pts)),
        "eps_median": float(np.median(eps)), "eps_min": float(eps.min()),
        "eps_max": float(eps.max()),
        "eps_formula_vs_search_max_diff": float(np.max(np.abs(eps[:EX41_SEARCHED] - eps_search))),
        "flipped_at_eps": float(np.mean(predict_41(dense, adv) != predict_41(dense, pts))),
        "teacher_flipped": float(np.mean(teacher_41(adv) != teacher_41(pts))),
        "adv_in_cube": float(np.mean(np.all((adv >= 0) & (adv <= 1), axis=1))),
        "flippable_in_cube": float(np.mean(flippable_in_cube(dense, pts))),
        "sparse_wedge_fraction": float(wedge.mean()),
        "paper_point_sparse_ours": int(predict_41(sparse, paper_point)[0]),
        "paper_point_teacher": int(teacher_41(paper_point)[0]),
        "sparse_flip_eps_inf": bool(np.all(np.isinf(flipping_eps(sparse, pts[:10])))),
    }
    arrays = {
        "dense_alpha": dense, "sparse_alpha": sparse, "shown_x": pts[shown],
        "shown_adv": adv[shown], "shown_eps": eps[shown],
        "wedge_x": nu[wedge][:EX41_SHOWN],
    }
    return values, arrays


EX42_PANEL = 8
"""Images of μ and of ν followed through training in the slider figure (each)."""


def example42_panel(cfg) -> tuple[Shapes, Shapes]:
    """A fixed panel of ``EX42_PANEL`` images of μ and of ν (4 squares and 4 disks each)."""
    rng = np.random.default_rng((cfg.seed, STREAM_42, 1))
    size, rr = cfg.image_size, cfg.radius_range
    return (sample_shapes(EX42_PANEL, distribution="mu", size=size, radius_range=rr, rng=rng,
                          balanced=True),
            sample_shapes(EX42_PANEL, distribution="nu", size=size, radius_range=rr, rng=rng,
                          balanced=True))


def example42_experiment(cfg, prefilter: bool, progress: bool = True) -> tuple[dict, dict]:
    """Example 4.2 / Fig. 4.3: train the CNN on μ (raw or max-pool prefiltered) and follow its
    test and adversarial accuracy on fresh images; same training images for both variants."""
    mu_panel, nu_panel = example42_panel(cfg)
    panel = Shapes(*(np.concatenate([getattr(mu_panel, f), getattr(nu_panel, f)])
                     for f in Shapes.__dataclass_fields__))
    log = train_shape_cnn(
        prefilter=prefilter, size=cfg.image_size, radius_range=cfg.radius_range,
        n_train=cfg.n_train, n_eval=cfg.n_eval, epochs=cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, eval_every=cfg.eval_every, channels=cfg.channels,
        kernel_size=cfg.kernel_size, seed=(cfg.seed, STREAM_42), panel=panel,
        threads=cfg.torch_threads, device=cfg.device, progress=progress)
    values = {"final_test_acc": float(log["test_acc"][-1]),
              "final_adv_acc": float(log["adv_acc"][-1]), "steps": int(log["steps"][-1])}
    arrays = dict(log, panel_images=panel.images, panel_labels=panel.labels,
                  panel_textured=panel.textured)
    return values, arrays


# --------------------------------------------------------------------------------------------
# Figures of chapter 08
# --------------------------------------------------------------------------------------------


def plot_fig32(fig32_values: dict, fig32_arrays: dict, grid: int = 400):
    """Fig. 3.2, both panels: teacher regions, adversarial region, training data, students."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    c = np.linspace(-1, 1, grid)
    g1, g2 = np.meshgrid(c, c)
    pts = np.stack([g1.ravel(), g2.ravel()], axis=1)
    w_l, b_l = np.array(fig32_values["left_w"]), fig32_values["left_b"]
    w_r, b_r = FIG32_RIGHT_STUDENT
    panels = ((axes[0], FIG32_LEFT_TEACHER, w_l, b_l, "left"),
              (axes[1], FIG32_RIGHT_TEACHER, w_r, b_r, "right"))
    for ax, regions, w, b, side in panels:
        for label, poly in regions.items():
            ax.add_patch(Polygon(poly, closed=True, alpha=0.15,
                                 color="tab:blue" if label == A else "tab:orange",
                                 label=f"Ω_{'A' if label == A else 'B'} (teacher certain)"))
        t = region_teacher(regions, pts)
        wrong = ((t != U) & (linear_student(pts, w, b) != t)).reshape(g1.shape)
        ax.contourf(g1, g2, wrong.astype(float), levels=[0.5, 1.5], colors=["0.35"], alpha=0.7)
        xs = np.linspace(-1, 1, 2)
        if abs(w[1]) > 1e-12:
            ax.plot(xs, -(w[0] * xs + b) / w[1], color="red", lw=2, label="student boundary")
        area = fig32_values[f"{side}_adv_area"]
        ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", xlabel="x1", ylabel="x2")
        ax.set_title(f"{side}: adversarial area {area:.3f} (grey)")
    x, y = fig32_arrays["left_x"], fig32_arrays["left_y"]
    axes[0].scatter(*x[y == A].T, s=6, color="tab:blue", label="μ, class A")
    axes[0].scatter(*x[y == B].T, s=6, color="tab:orange", label="μ, class B")
    axes[0].legend(loc="lower right", fontsize=7)
    axes[1].legend(loc="lower left", fontsize=7)
    fig.suptitle("Fig. 3.2: ℓ2 robust but not adversarially robust (left), and the reverse (right)")
    fig.tight_layout()
    return fig


def plot_query_costs(sq: dict, gd: dict):
    """Cost of the passive-teacher students of §4.1 against |S|: feature queries and SGD steps."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    rows = sq["rows"]
    sizes = [r["size"] for r in rows]
    ax1.semilogy(sizes, [r["expected"] for r in rows], "k--", label="our student, mean over S")
    bound = [(r["size"], r["lower_bound"]) for r in rows if r["lower_bound"] > 0]
    ax1.semilogy(*zip(*bound), ":", color="tab:green",
                 label="any SQ student told |S|: ≥ 4α²(#teachers of that size − 1)")
    run = [r for r in rows if r["run"]]
    ok = [r for r in run if r["recovered"]]
    ax1.semilogy([r["size"] for r in ok], [r["queries"] for r in ok], "o", color="tab:blue",
                 label="run: S recovered")
    failed = [r for r in run if not r["recovered"]]
    ax1.semilogy([r["size"] for r in failed], [r["queries"] for r in failed], "x", ms=10,
                 color="tab:red", label="run: budget exhausted")
    ax1.axhline(sq["budget"], color="tab:red", lw=1, label=f"budget {sq['budget']}")
    ax1.set(xlabel="|S| (size of the teacher's parity)", ylabel="feature queries",
            title=f"Feature (statistical) queries, d = {sq['d']}, α = {sq['tolerance']}")
    ax1.legend(fontsize=7)
    ax1.xaxis.get_major_locator().set_params(integer=True)
    grows = gd["rows"]
    for r in grows:
        reached = r["steps"] is not None
        ax2.semilogy(r["size"], r["steps"] if reached else gd["budget"],
                     "o" if reached else "x", color="tab:blue" if reached else "tab:red", ms=8)
    ax2.axhline(gd["budget"], color="tab:red", lw=1, label=f"budget {gd['budget']} steps")
    ax2.set(xlabel="|S|", ylabel="SGD steps to reach the target accuracy on ν",
            title=f"SGD on samples of ν, d = {gd['d']} (x: budget exhausted)")
    ax2.legend(fontsize=7)
    ax2.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def plot_coefficients(arrays: dict):
    """Fig. 4.1 left: the dense and the sparse student's coefficients α_i."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.6))
    i = np.arange(1, EX41_DIM + 1)
    ax.bar(i, arrays["dense_alpha"], color="tab:blue", label="dense (all 100 coordinates)")
    ax.plot([1, EX41_DIM], arrays["sparse_alpha"][[0, -1]], "o", color="tab:red", ms=8,
            label="sparse (x1 and x100 only)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="coordinate i", ylabel="α_i",
           title="Example 4.1: least-squares coefficients (Fig. 4.1 left)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_41_examples(arrays: dict):
    """Fig. 4.1 right: points of ν, their adversarial examples and the perturbation as 10×10
    images (x1 top left, x100 bottom right), and points where the sparse student errs."""
    import matplotlib.pyplot as plt

    xs, advs, eps = arrays["shown_x"], arrays["shown_adv"], arrays["shown_eps"]
    alpha, sparse, wedge = arrays["dense_alpha"], arrays["sparse_alpha"], arrays["wedge_x"]
    n = max(len(xs), len(wedge), 1)
    fig, axes = plt.subplots(4, n, figsize=(2.2 * n, 9.4), squeeze=False)
    lo, hi = min(0.0, float(advs.min(initial=0))), max(1.0, float(advs.max(initial=1)))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for k in range(len(xs)):
        x, adv = xs[k:k + 1], advs[k:k + 1]
        y, before, after = teacher_41(x)[0], predict_41(alpha, x)[0], predict_41(alpha, adv)[0]
        axes[0, k].imshow(x[0].reshape(10, 10), cmap="gray", vmin=lo, vmax=hi)
        axes[0, k].set_title(f"x: teacher {y:+d}, dense {before:+d}", fontsize=8)
        axes[1, k].imshow(adv[0].reshape(10, 10), cmap="gray", vmin=lo, vmax=hi)
        axes[1, k].set_title(f"x̂: teacher {teacher_41(adv)[0]:+d}, dense {after:+d}",
                             fontsize=8)
        axes[2, k].imshow((adv[0] - x[0]).reshape(10, 10), cmap="coolwarm",
                          vmin=-float(eps.max()), vmax=float(eps.max()))
        axes[2, k].set_title(f"x̂ − x: ±ε, ε = {eps[k]:.3f}", fontsize=8)
    for k in range(len(wedge)):
        w = wedge[k:k + 1]
        axes[3, k].imshow(w[0].reshape(10, 10), cmap="gray", vmin=0, vmax=1)
        axes[3, k].set_title(f"x1={w[0, 0]:.3f}, x100={w[0, -1]:.3f}\nteacher "
                             f"{teacher_41(w)[0]:+d}, sparse {predict_41(sparse, w)[0]:+d}",
                             fontsize=7)
    for row, name in enumerate(("x", "x̂ (dense flipped)", "x̂ − x", "sparse errs")):
        axes[row, 0].set_ylabel(name)
    fig.suptitle("Example 4.1: the attack on the dense student (rows 1–3) and the sparse "
                 "student's errors (row 4)")
    fig.tight_layout()
    return fig


def plot_shapes_grid(mu: Shapes, nu: Shapes, n: int = 6):
    """Fig. 4.2: images of μ and ν, raw and after the max-pool prefilter."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, n, figsize=(1.9 * n, 8.2), squeeze=False)
    rows = (("μ", mu.images, mu.labels), ("ν", nu.images, nu.labels))
    for r, (name, images, labels) in enumerate(rows):
        filtered = maxpool_prefilter(torch.from_numpy(images[:n])).numpy()
        for k in range(n):
            kind = "square" if labels[k] == SQUARE else "disk"
            for rr, img, tag in ((r, images[k], ""), (r + 2, filtered[k], ", max-pooled")):
                ax = axes[rr, k]
                ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"{name}: {kind}{tag}", fontsize=7)
    fig.suptitle("Fig. 4.2: training/test distribution μ (row 1), adversarial ν (row 2), and "
                 "both after max-pool(3, stride 1) (rows 3–4)")
    fig.tight_layout()
    return fig


def plot_fig43(raw: dict, pooled: dict, title: str | None = None):
    """Fig. 4.3: test (μ) and adversarial (ν) accuracy over training, raw and prefiltered."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    if title:
        fig.suptitle(title)
    for ax, log, name in ((axes[0], raw, "raw images"), (axes[1], pooled, "max-pool prefilter")):
        ax.plot(log["steps"], log["test_acc"], "-o", ms=3, label="test (fresh μ)")
        ax.plot(log["steps"], log["adv_acc"], "-o", ms=3, label="adversarial (fresh ν)")
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set(xlabel="training step (batch)", title=f"Fig. 4.3: {name}", ylim=(-0.02, 1.02))
        ax.legend()
    axes[0].set_ylabel("accuracy")
    fig.tight_layout()
    return fig


def slider_figure(raw: dict, pooled: dict):
    """A plotly figure with a slider over evaluation steps: the accuracy curves up to the step
    (top) and the probability each student gives the true class of the panel images (bottom)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = raw["steps"]
    if not np.array_equal(steps, pooled["steps"]):
        raise ValueError("the two runs must be evaluated at the same steps")
    labels = raw["panel_labels"]
    textured = raw["panel_textured"]
    n_mu = len(labels) // 2
    names = [f"{'μ' if k < n_mu else 'ν'} {k % n_mu + 1}: "
             f"{'textured ' if textured[k] else ''}{'square' if labels[k] == SQUARE else 'disk'}"
             for k in range(len(labels))]
    fig = make_subplots(rows=2, cols=1, row_heights=[0.45, 0.55], vertical_spacing=0.18,
                        subplot_titles=("accuracy on fresh images",
                                        "probability of the true class, panel images"))
    curves = (("raw: test", raw["test_acc"], "tab:blue", "solid"),
              ("raw: adversarial", raw["adv_acc"], "tab:blue", "dot"),
              ("max-pool: test", pooled["test_acc"], "tab:red", "solid"),
              ("max-pool: adversarial", pooled["adv_acc"], "tab:red", "dot"))
    colors = {"tab:blue": "#1f77b4", "tab:red": "#d62728"}

    def traces(i):
        out = [go.Scatter(x=steps[: i + 1], y=acc[: i + 1], name=name, mode="lines+markers",
                          line=dict(color=colors[c], dash=dash)) for name, acc, c, dash in curves]
        out += [go.Bar(x=names, y=raw["panel_prob"][i], name="raw",
                       marker_color=colors["tab:blue"]),
                go.Bar(x=names, y=pooled["panel_prob"][i], name="max-pool",
                       marker_color=colors["tab:red"])]
        return out

    for tr, row in zip(traces(len(steps) - 1), (1, 1, 1, 1, 2, 2)):
        fig.add_trace(tr, row=row, col=1)
    fig.frames = [go.Frame(data=traces(i), name=str(int(s))) for i, s in enumerate(steps)]
    fig.update_layout(
        height=720, barmode="group", title="Example 4.2 over training (slide the step)",
        sliders=[dict(active=len(steps) - 1, currentvalue=dict(prefix="step "),
                      steps=[dict(label=str(int(s)), method="animate",
                                  args=[[str(int(s))], dict(mode="immediate",
                                                            frame=dict(duration=0, redraw=True),
                                                            transition=dict(duration=0))])
                             for s in steps])])
    fig.update_xaxes(range=[0, float(steps[-1])], title_text="training step", row=1, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], title_text="accuracy", row=1, col=1)
    fig.update_yaxes(range=[0, 1], title_text="P(true class)", row=2, col=1)
    return fig


def markdown_table(columns: dict, digits: int = 4):
    """A dict of equally long columns as a markdown table (for display in the notebook)."""
    from IPython.display import Markdown

    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    if any(len(c) != n for c in columns.values()):
        raise ValueError("all columns must have the same length")

    def fmt(v):
        if v is None:
            text = "—"
        elif isinstance(v, (float, np.floating)):
            text = f"{float(v):.{digits}g}"
        elif isinstance(v, (list, tuple)):
            text = "{" + ", ".join(map(str, v)) + "}"
        else:
            text = str(v)
        return text.replace("|", "\\|")  # a bare | would end the cell

    lines = ["| " + " | ".join(fmt(k) for k in names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(fmt(columns[k][i]) for k in names) + " |" for i in range(n)]
    return Markdown("\n".join(lines))
