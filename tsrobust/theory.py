"""The theory toys of the teacher-student setting (source D, Tian's talk; source A, Yang et al.
§3–4): their formulas, networks and measurements.

* ``relu_population_gradient`` — the closed-form population gradient of one ReLU node under
  Gaussian input (source D, slide "An Analytic Formula"); ``relu_gradient_monte_carlo``, its
  Monte-Carlo estimate, and ``gradient_check``, the two side by side;
* ``TwoLayerReLU`` teacher / student networks with bias (source A §3.2, Fig. 1a), their
  construction (``make_teacher``, ``make_student``) and ``train_two_layer`` (ℓ2 loss on the
  teacher's outputs, SGD, full batch or minibatch, optionally with an ``Augmentation``, §4.3);
* specialization measures: normalized correlations per node, the L-shape data of Corollary 1
  (``l_shape``) and its footnote-4 split (``fan_out_by_specialization``);
* inputs in / near a d′-dimensional subspace 𝒳 of R^d (``low_rank_inputs``), ``projected_angle``
  (Theorem 2), ``paired_eps_in_out`` (Eq. 2, measured as in §5.3, one student per teacher node);
* ``oracle_adversarial`` (Eq. 3, PGD on the ℓ2 distance between student and teacher outputs),
  ``data_adversarial`` (Eq. 4, PGD against the original input's label) and
  ``adversarial_probe``; label- and teacher-target training (§4.2, ``Augmentation``) and the
  talk's teacher-agnostic / teacher-aware augmentations of a data set;
* the theorems' hypotheses and bounds measured on a trained run: ‖g₁‖∞ (``hidden_gradient``),
  observation, Theorem 2 (``theorem2_report``), Corollary 1 (``corollary1_report``), the talk's
  gradient condition (``slide_alignment_bound``) and ε-alignment (``eps_alignment``);
* ``boundary_segment`` (the geometry of 2-D figures) and ``spearman``.

Every random draw takes an explicit ``torch.Generator``; nothing here touches global seeds. The
networks are tiny, so training and measuring run single-threaded on the CPU (``single_threaded``;
``tsrobust.runtime.torch_threads`` restores the thread count afterwards); ``train_on`` trains on
another device (a GPU) and brings the networks back to the CPU for measuring.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tsrobust.results import fmt
from tsrobust.runtime import torch_threads
from tsrobust.specialization import (SPECIALIZED_NC, UNSPECIALIZED_NC, best_nc,
                                     normalized_correlation)
from tsrobust.training import MOMENTUM  # the package's one SGD momentum (0.9)

DTYPE = torch.float64
"""The toys are tiny; double precision keeps ε_in, ε_out and angles clean near convergence."""

MC_CHUNK = 200_000
"""Samples per chunk in the Monte-Carlo gradient estimate (bounds memory, not accuracy)."""

ZERO_NORM = 1e-12
"""Below this norm a (projected) weight vector counts as zero: its angle is undefined (NaN)."""


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------


def make_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A ``torch.Generator`` for stream ``stream`` of experiment seed ``seed``.

    Different streams of the same seed are independent (``numpy.random.SeedSequence``), so one
    seed gives every experiment its own reproducible randomness.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def single_threaded(fn):
    """Run ``fn`` on one intra-op torch thread (the thread count is restored afterwards): the
    toys' matrices are too small to gain from splitting them over threads."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads(1):
            return fn(*args, **kwargs)
    return wrapper


def _vector(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=DTYPE).detach().clone()
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite entries")
    return t


def positive_int(name: str, value) -> int:
    """``value`` as an ``int`` if it is a positive integer (not a bool); else ``ValueError``
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def angle_between(a, b) -> float:
    """Angle θ ∈ [0, π] between two non-zero vectors."""
    a, b = _vector(a, "a"), _vector(b, "b")
    na, nb = a.norm(), b.norm()
    if na < ZERO_NORM or nb < ZERO_NORM:
        raise ValueError("the angle is undefined for a zero vector")
    return float(torch.arccos((a @ b / (na * nb)).clamp(-1.0, 1.0)))


def vectors_at_angle(theta: float, d: int, *, norm_w: float = 1.0, norm_w_star: float = 1.0):
    """A pair (w, w*) in R^d with angle ``theta`` between them: w* = ‖w*‖ e1, w in span(e1, e2)."""
    d = positive_int("d", d)
    if d < 2:
        raise ValueError("d must be at least 2 to place two vectors at an arbitrary angle")
    if not 0.0 <= theta <= math.pi:
        raise ValueError(f"theta must lie in [0, π], got {theta}")
    w_star = torch.zeros(d, dtype=DTYPE)
    w_star[0] = norm_w_star
    w = torch.zeros(d, dtype=DTYPE)
    w[0], w[1] = norm_w * math.cos(theta), norm_w * math.sin(theta)
    return w, w_star


# ----------------------------------------------------------------------------------------------
# 1. Population gradient of one ReLU node (source D, slide "An Analytic Formula")
# ----------------------------------------------------------------------------------------------


def relu_population_gradient(w, w_star) -> torch.Tensor:
    """E_x~N(0,I) ∇_w ½(σ(w*ᵀx) − σ(wᵀx))², σ = ReLU (source D, "An Analytic Formula", N = 1).

    The closed form (Tian 2017) is

        E[∇_w J] = ½ (w − w*) + (1/2π) (θ w* − ‖w*‖/‖w‖ · sin θ · w),

    with θ the angle between w and w*. The first term is the linear part (alone it would give
    global convergence); the second comes from the ReLU gating. The slide writes the factor as
    ``‖w*_X‖``; no X enters the expectation, and the factor is the teacher norm ‖w*‖ (which is
    what ``gradient_check`` tests against Monte Carlo). With ‖w‖ = ‖w*‖ = 1, w* = e₁ and
    w = cos θ e₁ + sin θ e₂ the two non-zero components are

        along w*:  ½(cos θ − 1) + (θ − sin θ cos θ)/2π,     along e₂:  ½ sin θ − sin²θ/2π.

    ``w`` must be non-zero; ``w_star = 0`` gives ½ w. Returns a float64 tensor of the shape of
    ``w``.
    """
    w, w_star = _vector(w, "w"), _vector(w_star, "w_star")
    if w.shape != w_star.shape:
        raise ValueError(f"w and w_star must have the same shape: {tuple(w.shape)} vs "
                         f"{tuple(w_star.shape)}")
    norm_w, norm_star = w.norm(), w_star.norm()
    if norm_w < ZERO_NORM:
        raise ValueError("w must be non-zero: the gradient is not defined at w = 0")
    if norm_star < ZERO_NORM:
        return 0.5 * w
    cos = (w @ w_star / (norm_w * norm_star)).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    return 0.5 * (w - w_star) + (theta * w_star - norm_star / norm_w * torch.sin(theta) * w) / (
        2 * math.pi
    )


def relu_gradient_monte_carlo(w, w_star, n_samples: int, generator: torch.Generator):
    """Monte-Carlo estimate of ``relu_population_gradient``: the mean of the per-sample gradient

        ∇_w ½(σ(w*ᵀx) − σ(wᵀx))² = (σ(wᵀx) − σ(w*ᵀx)) · 1[wᵀx > 0] · x,   x ~ N(0, I),

    over ``n_samples`` draws. Returns ``(mean, standard_error)``, both per coordinate; the error of
    the mean shrinks as 1/√n.
    """
    w, w_star = _vector(w, "w"), _vector(w_star, "w_star")
    n_samples = positive_int("n_samples", n_samples)
    d = w.numel()
    total = torch.zeros(d, dtype=DTYPE)
    total_sq = torch.zeros(d, dtype=DTYPE)
    done = 0
    while done < n_samples:
        m = min(MC_CHUNK, n_samples - done)
        x = torch.randn(m, d, generator=generator, dtype=DTYPE)
        pre = x @ w
        g = (torch.relu(pre) - torch.relu(x @ w_star)) * (pre > 0)
        per_sample = g[:, None] * x
        total += per_sample.sum(0)
        total_sq += per_sample.pow(2).sum(0)
        done += m
    mean = total / n_samples
    var = (total_sq / n_samples - mean.pow(2)).clamp_min(0.0) * n_samples / max(n_samples - 1, 1)
    return mean, (var / n_samples).sqrt()


def max_abs_z_level(n: int, prob: float) -> float:
    """The level that the largest of ``n`` independent |N(0, 1)| values stays below with
    probability ``prob``: Φ⁻¹((1 + prob^{1/n}) / 2). ``prob = 0.5`` gives the median largest
    |z| expected from sampling noise alone; ``prob = 0.99`` a level exceeded by chance once in a
    hundred runs."""
    n = positive_int("n", n)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie in (0, 1), got {prob}")
    tail = -math.expm1(math.log(prob) / n)  # P(one |z| exceeds the level)
    return -statistics.NormalDist().inv_cdf(tail / 2)


GATING_ERROR = 0.1
"""Relative error of the gating term used to show what the Monte-Carlo check can detect."""


@single_threaded
def gradient_check(
    d: int, thetas, sample_sizes, repeats: int, generator: torch.Generator, *,
    norm_w: float = 1.0, norm_w_star: float = 1.0, progress: bool = True
):
    """Analytic population gradient vs Monte Carlo for several angles θ and sample sizes N (source
    D, "An Analytic Formula").

    For each θ (at norms ‖w‖ = ``norm_w``, ‖w*‖ = ``norm_w_star``) and N, draws ``repeats``
    independent estimates. Returns ``(values, arrays)``: arrays ``rms_error[θ, N]`` (root mean
    square over repeats of ‖ĝ_N − g‖), ``mean_stderr[θ, N]`` (the estimates' own standard error,
    √Σ_i se_i²), ``z_max[θ, N]`` (largest |ĝ_i − g_i| / se_i over coordinates and repeats),
    ``analytic[θ, d]``, ``gating_shift_z[θ]``: ‖Δ‖ / ‖se‖ at the largest N for Δ =
    ``GATING_ERROR`` × the gating term (1/2π)(θ w* − ‖w*‖/‖w‖ sin θ w), a lower bound on how far
    such an error in the formula would move the largest coordinate z-score (max_i |Δ_i|/se_i ≥
    ‖Δ‖/‖se‖), and ``norm_factor_shift_z[θ]``, the same for the formula with the factor
    ‖w*‖/‖w‖ replaced by 1 (zero at equal norms, where the check cannot tell the two apart).
    Values: the norms, the fitted log-log slope of the error in N (−½ expected), the largest
    z-score, the number of z-scores and, for that many Gaussian z-scores, the median largest |z|
    (``z_median_max``) and the level reached by chance once in a hundred runs
    (``z_chance_1pct``; ``max_abs_z_level``).
    """
    thetas = [float(t) for t in thetas]
    sample_sizes = [positive_int("sample size", n) for n in sample_sizes]
    repeats = positive_int("repeats", repeats)
    if norm_w <= 0 or norm_w_star <= 0:
        raise ValueError(f"norms must be positive, got {norm_w} and {norm_w_star}")
    rms = np.zeros((len(thetas), len(sample_sizes)))
    stderr = np.zeros_like(rms)
    z_max = np.zeros_like(rms)
    analytic = np.zeros((len(thetas), d))
    gating = np.zeros(len(thetas))
    factor = np.zeros(len(thetas))
    jobs = [(i, j) for i in range(len(thetas)) for j in range(len(sample_sizes))]
    for i, j in tqdm(jobs, desc="gradient check", disable=not progress, leave=False):
        w, w_star = vectors_at_angle(thetas[i], d, norm_w=norm_w, norm_w_star=norm_w_star)
        g = relu_population_gradient(w, w_star)
        analytic[i] = g.numpy()
        gating[i] = float((g - 0.5 * (w - w_star)).norm())
        factor[i] = abs(norm_w_star / norm_w - 1) * math.sin(thetas[i]) * norm_w / (2 * math.pi)
        errs, ses, zs = [], [], []
        for _ in range(repeats):
            mean, se = relu_gradient_monte_carlo(w, w_star, sample_sizes[j], generator)
            errs.append(float((mean - g).norm()))
            ses.append(float(se.norm()))
            zs.append(float(((mean - g).abs() / se.clamp_min(1e-300)).max()))
        rms[i, j] = math.sqrt(np.mean(np.square(errs)))
        stderr[i, j] = float(np.mean(ses))
        z_max[i, j] = max(zs)
    slope = float(np.polyfit(np.log(sample_sizes), np.log(rms.mean(0)), 1)[0]) if len(
        sample_sizes
    ) > 1 else float("nan")
    n_z = len(thetas) * len(sample_sizes) * repeats * d
    values = {"loglog_slope": slope, "z_max": float(z_max.max()), "thetas": thetas,
              "sample_sizes": sample_sizes, "repeats": repeats, "d": d, "n_z": n_z,
              "norm_w": float(norm_w), "norm_w_star": float(norm_w_star),
              "z_median_max": max_abs_z_level(n_z, 0.5),
              "z_chance_1pct": max_abs_z_level(n_z, 0.99)}
    arrays = {"rms_error": rms, "mean_stderr": stderr, "z_max": z_max, "analytic": analytic,
              "gating_shift_z": GATING_ERROR * gating / stderr[:, -1],
              "norm_factor_shift_z": factor / stderr[:, -1]}
    return values, arrays


# ----------------------------------------------------------------------------------------------
# 2. Two-layer ReLU teacher and student (source A §3.2, Fig. 1a; source D "Simple 2D experiments")
# ----------------------------------------------------------------------------------------------


class TwoLayerReLU(nn.Module):
    """f(x) = Σ_j v_j σ(w̃_jᵀx + b_j): a two-layer ReLU network with bias (source A §3.2).

    ``hidden`` holds the input weights w̃_j (rows of ``hidden.weight``) and biases b_j, so the
    augmented weight of node j is w_j = [w̃_j; b_j] ∈ R^{d+1}; ``fan_out`` holds the fan-out
    weights v_j ∈ R^C (columns of ``fan_out.weight``). The output layer has no bias.
    """

    def __init__(self, d: int, k: int, c: int = 1):
        super().__init__()
        self.d, self.k, self.c = (positive_int("d", d), positive_int("k", k),
                                  positive_int("c", c))
        self.hidden = nn.Linear(d, k, dtype=DTYPE)
        self.fan_out = nn.Linear(k, c, bias=False, dtype=DTYPE)

    def hidden_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden activations σ(w̃_jᵀx + b_j), [N, K]."""
        return torch.relu(self.hidden(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fan_out(self.hidden_acts(x))

    def augmented_weights(self) -> torch.Tensor:
        """w_j = [w̃_j; b_j] for every hidden node, [K, d+1] (detached)."""
        return torch.cat([self.hidden.weight, self.hidden.bias[:, None]], 1).detach()

    def fan_out_norms(self) -> torch.Tensor:
        """‖v_j‖ for every hidden node, [K] (detached)."""
        return self.fan_out.weight.detach().norm(dim=0)


def make_teacher(
    d: int,
    k: int,
    c: int,
    generator: torch.Generator,
    *,
    bias_range: float = 0.5,
    fan_out_decay: float = 0.0,
) -> TwoLayerReLU:
    """A teacher whose ReLU boundaries cross the data (source D, "Assumptions on Teacher Network").

    Input weights w̃*_j are random unit vectors (distinct teacher nodes); biases are uniform in
    ±``bias_range`` so that each boundary w̃*_jᵀx + b_j = 0 passes within ``bias_range`` of the
    origin, i.e. is *visible* in standard-Gaussian data. Fan-out weights v*_j are random unit
    vectors in R^C scaled by 1/j^p with p = ``fan_out_decay`` (p = 0: equally strong nodes; p > 0:
    the weak-teacher experiment of source D, ‖v*_j‖ ∝ 1/j^p).
    """
    if bias_range < 0 or fan_out_decay < 0:
        raise ValueError("bias_range and fan_out_decay must be non-negative")
    net = TwoLayerReLU(d, k, c)
    with torch.no_grad():
        w = torch.randn(k, d, generator=generator, dtype=DTYPE)
        net.hidden.weight.copy_(w / w.norm(dim=1, keepdim=True))
        bias = 2 * torch.rand(k, generator=generator, dtype=DTYPE) - 1
        net.hidden.bias.copy_(bias * bias_range)
        v = torch.randn(c, k, generator=generator, dtype=DTYPE)
        v = v / v.norm(dim=0, keepdim=True)
        strength = torch.arange(1, k + 1, dtype=DTYPE).pow(-fan_out_decay)
        net.fan_out.weight.copy_(v * strength[None, :])
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def make_student(
    d: int, k: int, c: int, generator: torch.Generator, *, init_scale: float = 1.0
) -> TwoLayerReLU:
    """An (over-realized) student: PyTorch's default uniform initialisation, drawn from
    ``generator`` and multiplied by ``init_scale``."""
    if init_scale <= 0:
        raise ValueError(f"init_scale must be positive, got {init_scale}")
    net = TwoLayerReLU(d, k, c)
    with torch.no_grad():
        for layer in (net.hidden, net.fan_out):
            bound = 1.0 / math.sqrt(layer.in_features)
            for p in layer.parameters():
                p.copy_((2 * torch.rand(p.shape, generator=generator, dtype=DTYPE) - 1)
                        * bound * init_scale)
    return net


def gaussian_inputs(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """n samples of x ~ N(0, I_d) (full-rank input, source D)."""
    return torch.randn(positive_int("n", n), positive_int("d", d), generator=generator,
                       dtype=DTYPE)


AUGMENTATION_KINDS = ("gaussian", "off_subspace", "oracle_adversarial", "data_adversarial")
AUGMENTATION_TARGETS = ("teacher", "label")


@dataclass(frozen=True)
class Augmentation:
    """Extra training inputs x′ made from the batch during training (source A §4.2–4.3).

    kind:
      * ``"gaussian"`` — x + n, n ~ N(0, std² I_d): teacher-agnostic noise in every direction;
      * ``"off_subspace"`` — x + (I − UUᵀ) n: noise only along the weak directions ⊥ 𝒳
        (``basis`` = U);
      * ``"oracle_adversarial"`` — oracle-adversarial examples (Eq. 3) of the current student,
        ℓ2 ball of radius ``eps``, ``attack_steps`` PGD steps, refreshed every ``every`` steps;
      * ``"data_adversarial"`` — data-adversarial examples (Eq. 4) of the current student, same
        ball, steps and refresh.
    target (§4.2): ``"teacher"`` trains on (x′, f*(x′)) (*teacher-target*), ``"label"`` on
    (x′, y) with y = f*(x) the label of the original input (*label-target*).
    ``fraction``: how many augmented samples per training sample in the batch (≤ 1).
    """

    kind: str
    std: float = 0.0
    eps: float = 0.0
    basis: torch.Tensor | None = None
    attack_steps: int = 10
    every: int = 1
    fraction: float = 1.0
    target: str = "teacher"

    def __post_init__(self):
        if self.kind not in AUGMENTATION_KINDS:
            raise ValueError(f"Augmentation kind must be one of {AUGMENTATION_KINDS}, got "
                             f"{self.kind!r}")
        if self.target not in AUGMENTATION_TARGETS:
            raise ValueError(f"Augmentation target must be one of {AUGMENTATION_TARGETS}, got "
                             f"{self.target!r}")
        if self.kind == "off_subspace" and self.basis is None:
            raise ValueError("off_subspace augmentation needs the data basis U (basis=...)")
        if self.kind in ("gaussian", "off_subspace") and self.std <= 0:
            raise ValueError(f"{self.kind} augmentation needs std > 0")
        if self.adversarial and self.eps <= 0:
            raise ValueError(f"{self.kind} augmentation needs eps > 0")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {self.fraction}")
        positive_int("every", self.every)
        positive_int("attack_steps", self.attack_steps)

    @property
    def adversarial(self) -> bool:
        """Whether the extra inputs come from an attack (kept for ``every`` steps)."""
        return self.kind in ("oracle_adversarial", "data_adversarial")


@dataclass
class TrainHistory:
    """What ``train_two_layer`` records every ``record_every`` steps (step 0 included): the step,
    the training loss on the whole training set, and a copy of the student's parameters."""

    steps: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)

    def student_at(self, index: int) -> TwoLayerReLU:
        """The student as it was at record ``index``."""
        snap = self.snapshots[index]
        k, d = snap["hidden.weight"].shape
        net = TwoLayerReLU(d, k, snap["fan_out.weight"].shape[0])
        net.load_state_dict(snap)
        return net


def l2_loss(student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """½ ‖f(x) − f*(x)‖², averaged over samples (the ℓ2 loss of source D and §3)."""
    return 0.5 * (student(x) - teacher(x)).pow(2).sum(1).mean()


@single_threaded
def train_two_layer(
    student: TwoLayerReLU,
    teacher: TwoLayerReLU,
    x_train: torch.Tensor,
    *,
    steps: int,
    lr: float,
    generator: torch.Generator,
    batch_size: int | None = None,
    record_every: int = 100,
    augmentation: Augmentation | None = None,
    progress: bool = True,
    desc: str = "train student",
) -> TrainHistory:
    """Train ``student`` in place on the teacher's outputs f*(x) with the ℓ2 loss (SGD, momentum
    ``MOMENTUM`` = 0.9). ``batch_size=None``: full-batch gradient descent (the "GD" of source D's
    weight update rule); otherwise minibatches drawn with ``generator`` ("SGD"). With
    ``augmentation``, each step also trains on augmented inputs labelled by the teacher (§4.3).

    SGD with momentum keeps every update in the span of past gradients, so with data in a
    subspace 𝒳 the out-of-plane weight components stay at their initial values (Theorem 1); Adam
    would rescale coordinates and break this, which is why it is not used here.
    """
    steps = positive_int("steps", steps)
    record_every = positive_int("record_every", record_every)
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if x_train.ndim != 2 or x_train.shape[1] != student.d or student.d != teacher.d:
        raise ValueError(
            f"x_train must be [N, {teacher.d}] and student/teacher must share the input dimension;"
            f" got x_train {tuple(x_train.shape)}, student d={student.d}, teacher d={teacher.d}"
        )
    n = x_train.shape[0]
    if batch_size is not None:
        batch_size = min(positive_int("batch_size", batch_size), n)
    x_train = x_train.to(DTYPE)
    with torch.no_grad():
        y_train = teacher(x_train)
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=MOMENTUM)
    history = TrainHistory()
    x_extra = y_extra = None

    def record(step):
        with torch.no_grad():
            history.steps.append(step)
            history.loss.append(float(0.5 * (student(x_train) - y_train).pow(2).sum(1).mean()))
            history.snapshots.append(
                {k: v.detach().to("cpu", copy=True) for k, v in student.state_dict().items()})

    record(0)
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False):
        if batch_size is None:
            xb, yb = x_train, y_train
        else:
            idx = torch.randint(n, (batch_size,), generator=generator).to(x_train.device)
            xb, yb = x_train[idx], y_train[idx]
        if augmentation is not None:
            if not augmentation.adversarial or x_extra is None or (
                (step - 1) % augmentation.every == 0
            ):
                x_extra, y_extra = augmented_batch(augmentation, xb, yb, student, teacher,
                                                   generator)
            xb, yb = torch.cat([xb, x_extra]), torch.cat([yb, y_extra])
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * (student(xb) - yb).pow(2).sum(1).mean()
        loss.backward()
        opt.step()
        if step % record_every == 0 or step == steps:
            record(step)
            if not math.isfinite(history.loss[-1]):
                raise FloatingPointError(
                    f"training diverged by step {step}: lower the learning rate (now {lr})")
    return history


def train_on(device, student: TwoLayerReLU, teacher: TwoLayerReLU, x_train: torch.Tensor,
             **kwargs) -> TrainHistory:
    """``train_two_layer`` on ``device`` ("cpu", "cuda", …); the networks are moved there for the
    run and back to the CPU afterwards, so every measurement after training runs on the CPU."""
    student.to(device), teacher.to(device)
    try:
        return train_two_layer(student, teacher, x_train.to(device), **kwargs)
    finally:
        student.cpu(), teacher.cpu()


def augmented_batch(
    augmentation: Augmentation,
    x: torch.Tensor,
    y: torch.Tensor,
    student: TwoLayerReLU,
    teacher: TwoLayerReLU,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The augmented inputs of one training step and their targets (see ``Augmentation``): made
    from a random ``fraction`` of the batch ``x`` with labels ``y`` = f*(x)."""
    m = max(1, int(round(augmentation.fraction * x.shape[0])))
    idx = torch.randperm(x.shape[0], generator=generator)[:m].to(x.device)
    xs, ys = x[idx], y[idx]
    attack = dict(eps=augmentation.eps, steps=augmentation.attack_steps, generator=generator)
    if augmentation.kind == "oracle_adversarial":
        x_extra = oracle_adversarial(student, teacher, xs, **attack)
    elif augmentation.kind == "data_adversarial":
        x_extra = data_adversarial(student, xs, ys, **attack)
    else:
        noise = augmentation.std * torch.randn(xs.shape, generator=generator,
                                               dtype=DTYPE).to(x.device)
        if augmentation.kind == "off_subspace":
            basis = augmentation.basis.to(x.device)
            noise = noise - noise @ basis @ basis.T
        x_extra = xs + noise
    if augmentation.target == "label":
        return x_extra, ys
    with torch.no_grad():
        return x_extra, teacher(x_extra)


def teacher_agnostic_augmentation(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Aug(D) of source D ("Polynomial Complexity", teacher-agnostic): every input x together
    with x ± δ e_i for each coordinate axis e_i, (2d + 1)|D| inputs — the slide's |D′|. The
    slide's figures are lost; the axis pairs are this book's reading of that count."""
    x = torch.as_tensor(x, dtype=DTYPE)
    if delta <= 0:
        raise ValueError(f"delta must be positive, got {delta}")
    d = x.shape[1]
    steps = delta * torch.cat([torch.eye(d, dtype=DTYPE), -torch.eye(d, dtype=DTYPE)])
    return torch.cat([x, (x[:, None, :] + steps[None]).reshape(-1, d)])


def teacher_aware_augmentation(x: torch.Tensor, teacher: TwoLayerReLU,
                               delta: float) -> torch.Tensor:
    """Teacher-aware augmentation (source D, "Lesson 2"): every input x together with
    x ± δ ŵ*_j along the normal ŵ*_j = w̃*_j/‖w̃*_j‖ of each teacher boundary, (2K* + 1)|D|
    inputs. It needs the teacher's weights (hence *teacher-aware*); the slide gives only its
    bound (no √d) and sample complexity (linear in d), so the construction is this book's."""
    x = torch.as_tensor(x, dtype=DTYPE)
    if delta <= 0:
        raise ValueError(f"delta must be positive, got {delta}")
    w = teacher.hidden.weight.detach()
    normals = w / w.norm(dim=1, keepdim=True)
    steps = delta * torch.cat([normals, -normals])
    return torch.cat([x, (x[:, None, :] + steps[None]).reshape(-1, x.shape[1])])


# ----------------------------------------------------------------------------------------------
# 3. Specialization measures (source D "L-shape curve"; source A §3.2, Eq. 2, §5.3)
# ----------------------------------------------------------------------------------------------


def node_correlations(student: TwoLayerReLU, teacher: TwoLayerReLU,
                      x: torch.Tensor) -> torch.Tensor:
    """Normalized correlation NC[k, j] of student node k and teacher node j on inputs ``x``."""
    with torch.no_grad():
        return normalized_correlation(student.hidden_acts(x), teacher.hidden_acts(x))


ACTIVE_MIN = 0.01
"""A node active on less than this fraction of the data is *dead* there; one active on more than
1 − ACTIVE_MIN is *always on* (linear on the data). Neither has its boundary inside the data, so
neither is *observed* in the sense of source A's footnote 1, and Corollary 1 says nothing about
its fan-out weight."""

NODE_CLASSES = ("boundary in data", "dead", "always on")


def active_fraction(net: TwoLayerReLU, x: torch.Tensor) -> np.ndarray:
    """Fraction of the inputs ``x`` on which each hidden node is active (w̃ᵀx + b > 0), [K]."""
    with torch.no_grad():
        return (net.hidden(x) > 0).to(DTYPE).mean(0).numpy()


def node_class(active: np.ndarray) -> np.ndarray:
    """Index into ``NODE_CLASSES`` for each node, from its ``active_fraction``."""
    active = np.asarray(active)
    return np.where(active < ACTIVE_MIN, 1, np.where(active > 1 - ACTIVE_MIN, 2, 0))


def l_shape(student: TwoLayerReLU, teacher: TwoLayerReLU, x: torch.Tensor) -> dict:
    """Per student node: its best correlation to any teacher node and its fan-out norm ‖v_k‖.

    Corollary 1 / source D "L-shape curve at convergence": at convergence, student nodes with
    large fan-out are specialized (correlation ≈ 1), unspecialized nodes have fan-out ≈ 0. The
    corollary is about nodes whose boundary lies in the data (``node_class`` 0); dead and
    always-on nodes are flagged so a figure can tell them apart. Also returned: each node's best
    correlation to another *student* node (``partner_corr``): two unspecialized students that
    copy each other and cancel in the output are the case source A's footnote 2 leaves open.
    """
    nc = node_correlations(student, teacher, x)
    with torch.no_grad():
        ss = normalized_correlation(student.hidden_acts(x), student.hidden_acts(x))
    ss.fill_diagonal_(-1.0)
    active = active_fraction(student, x)
    return {
        "best_corr": nc.max(dim=1).values.numpy().astype(float),
        "best_teacher": nc.argmax(dim=1).numpy(),
        "fan_out_norm": student.fan_out_norms().numpy().astype(float),
        "active_fraction": active,
        "node_class": node_class(active),
        "partner_corr": ss.max(dim=1).values.numpy().astype(float),
    }


def best_nc_over_training(history: TrainHistory, teacher: TwoLayerReLU,
                          x: torch.Tensor) -> np.ndarray:
    """Per teacher node, the best NC over student nodes at every record of ``history``,
    [n_records, K_teacher]."""
    return np.stack([
        best_nc(node_correlations(history.student_at(i), teacher, x)).numpy()
        for i in range(len(history.snapshots))
    ]).astype(float)


def random_subspace(d: int, d_sub: int, generator: torch.Generator) -> torch.Tensor:
    """An orthonormal basis U ∈ R^{d×d′} of a uniformly random d′-dimensional subspace of R^d."""
    d, d_sub = positive_int("d", d), positive_int("d_sub", d_sub)
    if d_sub > d:
        raise ValueError(f"d_sub (= {d_sub}) must not exceed d (= {d})")
    q, r = torch.linalg.qr(torch.randn(d, d_sub, generator=generator, dtype=DTYPE))
    return q * torch.sign(torch.diagonal(r))[None, :]


def complement_basis(basis: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the orthogonal complement of span(``basis``), [d, d − d′]."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    d, d_sub = basis.shape
    u, _, _ = torch.linalg.svd(basis, full_matrices=True)
    return u[:, d_sub:]


def low_rank_inputs(
    n: int, basis: torch.Tensor, generator: torch.Generator, *, off_subspace_std: float = 0.0
) -> torch.Tensor:
    """x = U z + (I − UUᵀ) n, z ~ N(0, I_d′), n ~ N(0, s² I_d): data in the subspace 𝒳 = span(U)
    (s = 0, Theorem 1) or near it (s > 0: "almost low-rank", Theorem 2). The noise is drawn for
    every s (and multiplied by s), so runs that differ only in s see the same z and the same
    noise directions."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    if off_subspace_std < 0:
        raise ValueError(f"off_subspace_std must be non-negative, got {off_subspace_std}")
    d, d_sub = basis.shape
    x = torch.randn(positive_int("n", n), d_sub, generator=generator, dtype=DTYPE) @ basis.T
    noise = off_subspace_std * torch.randn(n, d, generator=generator, dtype=DTYPE)
    return x + noise - noise @ basis @ basis.T


def projected_angle(w_student, w_teacher, basis) -> torch.Tensor:
    """θ^𝒰 of Theorem 2: the angle between Proj_𝒰[w̃_k] and Proj_𝒰[w̃*_j], 𝒰 = span(``basis``).

    ``w_student`` and ``w_teacher`` are [..., d] (paired row by row), ``basis`` is [d, m] with
    orthonormal columns. Returns angles in radians; NaN where a projection is zero.
    """
    ws = torch.as_tensor(w_student, dtype=DTYPE)
    wt = torch.as_tensor(w_teacher, dtype=DTYPE)
    basis = torch.as_tensor(basis, dtype=DTYPE)
    if ws.shape != wt.shape or ws.shape[-1] != basis.shape[0]:
        raise ValueError(
            f"w_student {tuple(ws.shape)} and w_teacher {tuple(wt.shape)} must have the same shape "
            f"with last dimension = basis rows ({basis.shape[0]})"
        )
    ps, pt = ws @ basis, wt @ basis  # coordinates in the subspace: same angles as the projections
    ns, nt = ps.norm(dim=-1), pt.norm(dim=-1)
    cos = ((ps * pt).sum(-1) / (ns * nt)).clamp(-1.0, 1.0)
    angle = torch.arccos(cos)
    return torch.where((ns < ZERO_NORM) | (nt < ZERO_NORM), torch.full_like(angle, float("nan")),
                       angle)


def paired_eps_in_out(w_student, w_teacher, basis):
    """ε_in and ε_out of Eq. 2 for *paired* rows, measured as in §5.3: with
    Δw = w_k/‖w_k‖ − w*_j/‖w*_j‖,

        ε_in = ‖UUᵀ Δw‖,   ε_out = ‖(I − UUᵀ) Δw‖.

    ``w_student``/``w_teacher`` are [..., D] (paired row by row: row i of one with row i of the
    other; ``tsrobust.specialization.eps_in_out`` gives every student-teacher pair instead),
    ``basis`` U is [D, m] orthonormal.
    For weights with bias use ``augmented_basis`` (the bias coordinate is always in-plane, since
    the augmented input [x̃; 1] has a constant last coordinate). Returns ``(eps_in, eps_out)``.
    """
    ws = torch.as_tensor(w_student, dtype=DTYPE)
    wt = torch.as_tensor(w_teacher, dtype=DTYPE)
    basis = torch.as_tensor(basis, dtype=DTYPE)
    if ws.shape != wt.shape or ws.shape[-1] != basis.shape[0]:
        raise ValueError(
            f"w_student {tuple(ws.shape)} and w_teacher {tuple(wt.shape)} must have the same shape "
            f"with last dimension = basis rows ({basis.shape[0]})"
        )
    if (ws.norm(dim=-1) < ZERO_NORM).any() or (wt.norm(dim=-1) < ZERO_NORM).any():
        raise ValueError("paired_eps_in_out needs non-zero weight vectors (they are "
                         "normalized)")
    delta = ws / ws.norm(dim=-1, keepdim=True) - wt / wt.norm(dim=-1, keepdim=True)
    inside = delta @ basis @ basis.T
    return inside.norm(dim=-1), (delta - inside).norm(dim=-1)


def augmented_basis(basis: torch.Tensor) -> torch.Tensor:
    """Basis of the in-plane subspace for augmented weights w = [w̃; b]: [[U, 0], [0, 1]]."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    d, m = basis.shape
    out = torch.zeros(d + 1, m + 1, dtype=DTYPE)
    out[:d, :m] = basis
    out[d, m] = 1.0
    return out


def specialization_report(
    student: TwoLayerReLU, teacher: TwoLayerReLU, x: torch.Tensor, basis: torch.Tensor
) -> dict:
    """For every teacher node j and its best student k (highest NC on ``x``): best NC, projected
    angles inside 𝒳 and in its complement (Theorem 2, on w̃), ε_in and ε_out (Eq. 2, on the
    augmented weights [w̃; b]), and the student's fan-out norm. All arrays have length K_teacher.
    """
    nc = node_correlations(student, teacher, x)
    k_best = nc.argmax(dim=0)
    ws, wt = student.hidden.weight.detach()[k_best], teacher.hidden.weight.detach()
    comp = complement_basis(basis)
    e_in, e_out = paired_eps_in_out(student.augmented_weights()[k_best],
                                    teacher.augmented_weights(), augmented_basis(basis))
    return {
        "best_nc": best_nc(nc).numpy().astype(float),
        "best_student": k_best.numpy(),
        "angle_in": projected_angle(ws, wt, basis).numpy(),
        "angle_out": projected_angle(ws, wt, comp).numpy() if comp.shape[1] else
        np.full(teacher.k, np.nan),
        "eps_in": e_in.numpy(),
        "eps_out": e_out.numpy(),
        "fan_out_norm": student.fan_out_norms()[k_best].numpy(),
    }


# ----------------------------------------------------------------------------------------------
# 4. Oracle-adversarial examples (source A, Eq. 3)
# ----------------------------------------------------------------------------------------------


def _pgd(objective, nets, x: torch.Tensor, *, eps: float, steps: int, norm: str,
         step_size: float | None, basis: torch.Tensor | None,
         generator: torch.Generator | None) -> torch.Tensor:
    """Projected gradient ascent of ``objective(x′)`` (a scalar, summed over samples) over the
    ball B(x, ε); the one PGD of the oracle- and data-adversarial examples (Eqs. 3–4). ``nets``
    are put in eval mode for the search and restored afterwards. See ``oracle_adversarial``
    for the other arguments."""
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    steps = positive_int("steps", steps)
    step_size = 2.5 * eps / steps if step_size is None else step_size
    if step_size <= 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    x = x.detach().to(DTYPE)
    proj = None if basis is None else torch.as_tensor(basis, dtype=DTYPE).to(x.device)

    def restrict(delta):
        return delta if proj is None else delta @ proj @ proj.T

    def project(delta):
        delta = restrict(delta)
        if norm == "l2":
            n = delta.norm(dim=1, keepdim=True).clamp_min(ZERO_NORM)
            return delta * (eps / n).clamp(max=1.0)
        return delta.clamp(-eps, eps)

    if generator is None:
        delta = torch.zeros_like(x)
    elif norm == "l2":
        delta = restrict(torch.randn(x.shape, generator=generator, dtype=DTYPE).to(x.device))
        delta = 0.5 * eps * delta / delta.norm(dim=1, keepdim=True).clamp_min(ZERO_NORM)
    else:
        start = torch.rand(x.shape, generator=generator, dtype=DTYPE).to(x.device)
        delta = project(0.5 * eps * (2 * start - 1))
    was_training = [m.training for m in nets]
    for m in nets:
        m.eval()
    try:
        for _ in range(steps):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(x + delta), delta)
            grad = restrict(grad)
            with torch.no_grad():
                if norm == "l2":
                    step = grad / grad.norm(dim=1, keepdim=True).clamp_min(ZERO_NORM)
                else:
                    step = grad.sign()
                delta = project(delta + step_size * step)
    finally:
        for m, t in zip(nets, was_training):
            m.train(t)
    return (x + delta).detach()


def oracle_adversarial(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    *,
    eps: float,
    steps: int,
    norm: str = "l2",
    step_size: float | None = None,
    basis: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Oracle-adversarial examples (Eq. 3): x′ = argmax_{x′ ∈ B(x, ε)} ‖f(x′) − f*(x′)‖²,
    by projected gradient ascent back-propagating through both student and teacher.

    ``norm``: "l2" (steps along the normalized gradient, projection onto the ℓ2 ball) or "linf"
    (signed-gradient steps, clipping). ``step_size`` defaults to 2.5 ε / steps. With ``basis`` U
    the perturbation is kept in span(U) (an *in-plane* attack). With ``generator``, the search
    starts from a uniformly random point of the ball's surface direction (ℓ2) / box (ℓ∞) scaled
    by ε/2; without, it starts at x. Inputs are unbounded (no box constraint).
    """
    return _pgd(lambda xa: (student(xa) - teacher(xa)).pow(2).sum(), (student, teacher), x,
                eps=eps, steps=steps, norm=norm, step_size=step_size, basis=basis,
                generator=generator)


def data_adversarial(
    student: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int,
    norm: str = "l2",
    step_size: float | None = None,
    basis: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Data-adversarial examples (Eq. 4): x′ = argmax_{x′ ∈ B(x, ε)} ‖f(x′) − y‖² with y the
    label of the *original* input (here y = f*(x), the teacher taken as constant on the ball, as
    §4.2 does), back-propagating through the student only. Arguments as ``oracle_adversarial``.
    """
    y = y.detach().to(DTYPE)
    return _pgd(lambda xa: (student(xa) - y).pow(2).sum(), (student,), x, eps=eps, steps=steps,
                norm=norm, step_size=step_size, basis=basis, generator=generator)


def oracle_loss(student: nn.Module, teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample ‖f(x) − f*(x)‖², [N]."""
    with torch.no_grad():
        return (student(x) - teacher(x)).pow(2).sum(1)


def off_subspace_fraction(delta: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """‖(I − UUᵀ) δ‖ / ‖δ‖ per row of ``delta``: how much of a perturbation leaves 𝒳 = span(U).
    A random direction gives about √((d − d′)/d)."""
    delta = torch.as_tensor(delta, dtype=DTYPE)
    basis = torch.as_tensor(basis, dtype=DTYPE)
    out = delta - delta @ basis @ basis.T
    return out.norm(dim=1) / delta.norm(dim=1).clamp_min(ZERO_NORM)


def adversarial_probe(student, teacher, x, basis, *, eps: float, steps: int,
                      generator: torch.Generator) -> dict:
    """Adversarial examples as a probe of a trained student (ℓ2 ball of radius ``eps``): the
    oracle loss ‖f(x′) − f*(x′)‖² after an unconstrained oracle-adversarial attack (Eq. 3), after
    one restricted to the data subspace (in-plane), after a data-adversarial attack (Eq. 4,
    against y = f*(x)), after a random perturbation of norm ``eps``, and on the clean inputs;
    and how much of each perturbation leaves 𝒳."""
    x_adv = oracle_adversarial(student, teacher, x, eps=eps, steps=steps)
    x_in = oracle_adversarial(student, teacher, x, eps=eps, steps=steps, basis=basis)
    with torch.no_grad():
        y = teacher(x)
    x_data = data_adversarial(student, x, y, eps=eps, steps=steps)
    rand = torch.randn(x.shape, generator=generator, dtype=DTYPE)
    x_rand = x + eps * rand / rand.norm(dim=1, keepdim=True)
    return {
        "loss_clean": oracle_loss(student, teacher, x).numpy(),
        "loss_random": oracle_loss(student, teacher, x_rand).numpy(),
        "loss_in_plane": oracle_loss(student, teacher, x_in).numpy(),
        "loss_data_adversarial": oracle_loss(student, teacher, x_data).numpy(),
        "loss_adversarial": oracle_loss(student, teacher, x_adv).numpy(),
        "off_fraction_adversarial": off_subspace_fraction(x_adv - x, basis).numpy(),
        "off_fraction_data_adversarial": off_subspace_fraction(x_data - x, basis).numpy(),
        "off_fraction_random": off_subspace_fraction(x_rand - x, basis).numpy(),
    }


# ----------------------------------------------------------------------------------------------
# 5. Geometry for the 2-D figures
# ----------------------------------------------------------------------------------------------


def boundary_segment(w, b: float, lim: float):
    """The part of the ReLU boundary w₁x + w₂y + b = 0 inside the square [−lim, lim]².

    Returns ``((x0, y0), (x1, y1))`` or ``None`` if the line misses the square (or w = 0).
    """
    w = _vector(w, "w")
    if w.numel() != 2:
        raise ValueError(f"boundary_segment needs a 2-D weight, got {w.numel()} entries")
    w1, w2, b = float(w[0]), float(w[1]), float(b)
    if math.hypot(w1, w2) < ZERO_NORM:
        return None
    tol = 1e-12 * max(1.0, lim)
    points = []
    for edge in (-lim, lim):
        if abs(w2) > ZERO_NORM:  # x = edge
            y = -(w1 * edge + b) / w2
            if -lim - tol <= y <= lim + tol:
                points.append((edge, y))
        if abs(w1) > ZERO_NORM:  # y = edge
            x = -(w2 * edge + b) / w1
            if -lim - tol <= x <= lim + tol:
                points.append((x, edge))
    unique = []
    for p in points:
        if all(math.hypot(p[0] - q[0], p[1] - q[1]) > 1e-9 for q in unique):
            unique.append(p)
    if len(unique) < 2:
        return None
    # the two points farthest apart (a corner can be found twice)
    pairs = [(a, c) for i, a in enumerate(unique) for c in unique[i + 1:]]
    return max(pairs, key=lambda pc: math.hypot(pc[0][0] - pc[1][0], pc[0][1] - pc[1][1]))


# ----------------------------------------------------------------------------------------------
# 6. Rank correlation (source D, "Weak teacher nodes are slow to learn")
# ----------------------------------------------------------------------------------------------


def average_ranks(a) -> np.ndarray:
    """Ranks 0 … n−1 of the entries of ``a``, ties sharing their average rank."""
    a = np.asarray(a, dtype=float)
    ranks = np.empty(len(a))
    ranks[np.argsort(a, kind="stable")] = np.arange(len(a))
    for v in np.unique(a):
        ranks[a == v] = ranks[a == v].mean()
    return ranks


def spearman(a, b) -> float:
    """Spearman rank correlation of two equally long samples (ties get average ranks)."""
    ra, rb = average_ranks(a), average_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


# ----------------------------------------------------------------------------------------------
# 7. The footnote-4 split of student nodes (source A §5.4, footnote 4; Corollary 1)
# ----------------------------------------------------------------------------------------------

# SPECIALIZED_NC = 0.9 and UNSPECIALIZED_NC = 0.8 (imported from ``tsrobust.specialization``):
# source A, §5.4 footnote 4 calls a node specialized if its NC is larger than 0.9 and
# unspecialized if it is smaller than 0.8; nodes in between are neither.


def fan_out_by_specialization(best_corr, fan_out_norm, node_class) -> dict:
    """Source A footnote 4 applied to the student nodes whose boundary lies in the data
    (``node_class`` 0; Corollary 1 is about these): *specialized* if the best NC to a teacher
    node is larger than ``SPECIALIZED_NC`` (0.9), *unspecialized* if smaller than
    ``UNSPECIALIZED_NC`` (0.8), *in between* otherwise. Per group the count and the mean fan-out
    norm ‖v_k‖, and the largest fan-out of the unspecialized nodes; a mean or maximum over an
    empty group is ``None`` (shown as ``results.MISSING``)."""
    corr, fan = np.asarray(best_corr, dtype=float), np.asarray(fan_out_norm, dtype=float)
    boundary = np.asarray(node_class) == 0
    groups = {"specialized": boundary & (corr > SPECIALIZED_NC),
              "unspecialized": boundary & (corr < UNSPECIALIZED_NC)}
    groups["between"] = boundary & ~groups["specialized"] & ~groups["unspecialized"]
    out = {}
    for name, keep in groups.items():
        out[f"n_{name}"] = int(keep.sum())
        out[f"mean_fan_out_{name}"] = float(fan[keep].mean()) if keep.any() else None
    unspec = groups["unspecialized"]
    out["max_fan_out_unspecialized"] = float(fan[unspec].max()) if unspec.any() else None
    return out


def fan_out_sentence(split: dict) -> str:
    """A ``fan_out_by_specialization`` split in words (markdown)."""
    return (f"{split['n_specialized']} specialized (NC > {SPECIALIZED_NC}) with mean fan-out "
            f"**{fmt(split['mean_fan_out_specialized'])}**, {split['n_between']} in between "
            f"with **{fmt(split['mean_fan_out_between'])}**, and {split['n_unspecialized']} "
            f"unspecialized (NC < {UNSPECIALIZED_NC}) with **"
            f"{fmt(split['mean_fan_out_unspecialized'])}** (largest "
            f"{fmt(split['max_fan_out_unspecialized'])})")


# ----------------------------------------------------------------------------------------------
# 8. The theorems' hypotheses and bounds on a trained run (source A §3.2 with appendix A.4–A.7;
#    source D, "Polynomial Complexity for 2-layered Network" and "Lesson 2")
# ----------------------------------------------------------------------------------------------

OBSERVE_BAND = 0.05
"""Node j counts as *observed* by node k (source A, footnote 1: ∂E_j ∩ E_k ≠ ∅) when k is
active at some input of the data region lying within distance 0.05 of j's boundary."""

DATA_REGION_QUANTILE = 0.9
"""Gaussian inputs have unbounded support, so the data region R of Theorem 2 is taken as the
inputs whose norms inside 𝒳 and across it are both within their 90 % quantiles over the sample;
‖g₁‖∞ is measured over the sample inputs in R, and R's radii enter the bounds."""

LEMMA3_CONSTANT = 10.0
"""M = 10/r · √(m/2π) (source A, Lemma 3), the explicit form of Theorem 2's M_j(𝒰) = O(1/r)."""

OBSERVER_SETS = 2000
"""Corollary 1 holds for every set of C observers with an invertible Q, so the smallest ‖Q⁻¹‖₁
over sets is the tightest bound; at most 2000 sets are tried (largest fan-outs first)."""


def hidden_gradient(student: TwoLayerReLU, teacher: TwoLayerReLU, x: torch.Tensor):
    """g₁(x): the gradient of ½‖f(x) − f*(x)‖² with respect to each student hidden node's
    pre-activation, 1[w̃_kᵀx + b_k > 0] · v_kᵀ(f(x) − f*(x)) (source A §3.2, Fig. 1a), [N, K].
    Theorem 2 and Corollary 1 assume ‖g₁‖∞ ≤ ε over the data region."""
    with torch.no_grad():
        pre = student.hidden(x)
        out = student.fan_out(torch.relu(pre))
        return ((out - teacher(x)) @ student.fan_out.weight) * (pre > 0)


def data_region(x: torch.Tensor, basis, quantile: float = DATA_REGION_QUANTILE):
    """The data region R (see ``DATA_REGION_QUANTILE``): returns ``(inside, rho_in, rho_out)``,
    the mask of the inputs ``x`` in R and R's radii inside 𝒳 = span(``basis``) and across it."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must lie in (0, 1], got {quantile}")
    inside = x @ basis
    n_in, n_out = inside.norm(dim=1), (x - inside @ basis.T).norm(dim=1)
    rho_in = float(torch.quantile(n_in, quantile))
    rho_out = float(torch.quantile(n_out, quantile))
    return (n_in <= rho_in) & (n_out <= rho_out), rho_in, rho_out


def observation(w: torch.Tensor, b: torch.Tensor, net: TwoLayerReLU, x: torch.Tensor,
                band: float = OBSERVE_BAND) -> torch.Tensor:
    """``observed[j, k]``: the boundary w̃_jᵀx + b_j = 0 of node j (rows of ``w``, entries of
    ``b``) is observed by hidden node k of ``net`` on the inputs ``x``: k is active at some
    input within distance ``band`` of that boundary (source A, footnote 1), [J, K]."""
    w, b = torch.as_tensor(w, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE)
    with torch.no_grad():
        near = ((x @ w.T + b).abs() / w.norm(dim=1).clamp_min(ZERO_NORM)) <= band  # [N, J]
        active = net.hidden(x) > 0  # [N, K]
    return (near.T.to(DTYPE) @ active.to(DTYPE)) > 0


def projected_sines(w_a, w_b, basis) -> torch.Tensor:
    """sin θ^𝒰 for every pair (row a of ``w_a``, row b of ``w_b``), θ^𝒰 the angle between their
    projections onto 𝒰 = span(``basis``) (Theorem 2), [A, B]; NaN where a projection is zero."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    pa = torch.as_tensor(w_a, dtype=DTYPE) @ basis
    pb = torch.as_tensor(w_b, dtype=DTYPE) @ basis
    na, nb = pa.norm(dim=1), pb.norm(dim=1)
    cos = ((pa @ pb.T) / (na[:, None] * nb[None, :]).clamp_min(ZERO_NORM ** 2)).clamp(-1, 1)
    sines = (1 - cos.pow(2)).clamp_min(0).sqrt()
    zero = (na[:, None] < ZERO_NORM) | (nb[None, :] < ZERO_NORM)
    return torch.where(zero, torch.full_like(sines, float("nan")), sines)


def lemma3_factor(r, dim: int, eps: float, alpha):
    """M = 10/r′ · √(m/2π) of Lemma 3 (m = ``dim``), with r′ = r − 5ε/|α| the radius left once
    Lemma 4's balls of radius 5ε/|α| around the boundary points must fit in R; infinite where
    r′ ≤ 0 or α = 0 (no ball fits: the lemma gives no bound)."""
    r, alpha = np.asarray(r, dtype=float), np.abs(np.asarray(alpha, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        r_left = r - 5 * eps / alpha
        m = LEMMA3_CONSTANT / r_left * math.sqrt(dim / (2 * math.pi))
    return np.where((r_left > 0) & (alpha > 0), m, np.inf)


def theorem2_bound(eps: float, alpha, r, dim: int, k_total: int):
    """Theorem 2's bound sin θ^𝒰_jk′ ≤ M_j(𝒰) K ε / |α_jk| with M from ``lemma3_factor`` (r: the
    radius of 𝒰 ∩ R ∩ ∂E_j, m = dim 𝒰), K = ``k_total`` hidden nodes of teacher and student,
    ε = ‖g₁‖∞ and α_jk = v*_jᵀ v_k for a student k that observes teacher node j."""
    alpha = np.abs(np.asarray(alpha, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = lemma3_factor(r, dim, eps, alpha) * k_total * eps / alpha
    return np.where(np.isnan(alpha), np.nan, bound)


def corollary1_bound(eps: float, q_inv_norm, r, dim: int, k_total: int, c0):
    """Corollary 1's bound as its proof (appendix A.7) derives it:
    ‖v_k′‖∞ ≤ ‖Q⁻¹‖₁ M_k′(𝒰) K ε / c₀, with ‖Q⁻¹‖₁ the largest absolute *column* sum of Q⁻¹
    (= ‖Q⁻ᵀ‖∞, the largest row sum of Q⁻ᵀ), c₀ a lower bound on sin θ^𝒰 between node k′ and
    every other node, and M from ``lemma3_factor`` with r′ = r (ignoring the shrink 5ε/|α| of
    Lemma 4 only lowers the bound). The main text states it for ‖v_k′‖₂, which follows from
    the proof only with an extra factor √C."""
    q_inv_norm, c0 = np.asarray(q_inv_norm, dtype=float), np.asarray(c0, dtype=float)
    m = lemma3_factor(r, dim, 0.0, np.ones_like(c0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c0 > 0, q_inv_norm * m * k_total * eps / c0, np.inf)


def slide_alignment_bound(g_inf: float, alpha, k_total: int, d: int, *, aware: bool = False):
    """The alignment ε that source D's gradient condition guarantees for the run's own
    ‖g₁‖∞ = ``g_inf``: solving ‖g₁‖∞ ≤ α ε / (5 K^{3/2} √d) for ε gives
    ε = 5 K^{3/2} √d ‖g₁‖∞ / |α| (teacher-agnostic augmentation); the teacher-aware condition
    has no √d ("Lesson 2")."""
    alpha = np.abs(np.asarray(alpha, dtype=float))
    root_d = 1.0 if aware else math.sqrt(d)
    with np.errstate(divide="ignore"):
        return 5 * k_total ** 1.5 * root_d * g_inf / alpha


def alignment_errors(w_s, b_s, w_t, b_t):
    """ε-alignment of source D ("Student Specialization": sin θ̃_jk ≤ ε and |b_j − b*_k| ≤ ε) for
    every teacher node j (rows of ``w_t``) and student node k (rows of ``w_s``), with each node
    scaled to ‖w̃‖ = 1 (a ReLU node's boundary does not change with a positive scale). Returns
    ``(sine, bias_gap)``, both [J, K]."""
    w_s, w_t = torch.as_tensor(w_s, dtype=DTYPE), torch.as_tensor(w_t, dtype=DTYPE)
    b_s, b_t = torch.as_tensor(b_s, dtype=DTYPE), torch.as_tensor(b_t, dtype=DTYPE)
    ns, nt = w_s.norm(dim=1).clamp_min(ZERO_NORM), w_t.norm(dim=1).clamp_min(ZERO_NORM)
    sine = projected_sines(w_t, w_s, torch.eye(w_t.shape[1], dtype=DTYPE))
    gap = ((b_t / nt)[:, None] - (b_s / ns)[None, :]).abs()
    return sine, gap


def eps_alignment(student: TwoLayerReLU, teacher: TwoLayerReLU) -> dict:
    """Per teacher node j, the smallest ε for which some student node is ε-aligned with it,
    min_k max(sin θ̃_jk, |b̂_k − b̂*_j|) (``alignment_errors``), that student, and its sine and
    bias gap; arrays of length K_teacher."""
    sine, gap = alignment_errors(student.hidden.weight.detach(), student.hidden.bias.detach(),
                                 teacher.hidden.weight.detach(), teacher.hidden.bias.detach())
    err = torch.maximum(torch.nan_to_num(sine, nan=1.0), gap)
    k = err.argmin(dim=1)
    rows = torch.arange(teacher.k)
    return {"error": err[rows, k].numpy(), "student": k.numpy(),
            "sine": sine[rows, k].numpy(), "bias_gap": gap[rows, k].numpy()}


def min_q_inverse_norm(fan_outs) -> float:
    """The smallest ‖Q⁻¹‖₁ (largest absolute column sum) over square matrices Q made of C of the
    columns of ``fan_outs`` [C, n] (the fan-out weights of n observers), trying at most
    ``OBSERVER_SETS`` sets, largest-norm columns first; infinite if no set is invertible."""
    v = torch.as_tensor(fan_outs, dtype=DTYPE)
    c, n = v.shape
    if n < c:
        return math.inf
    order = v.norm(dim=0).argsort(descending=True).tolist()
    sets = list(itertools.islice(itertools.combinations(order, c), OBSERVER_SETS))
    q = v[:, torch.as_tensor(np.array(sets))].permute(1, 0, 2)  # [sets, C, C]
    inv, info = torch.linalg.inv_ex(q)
    norms = inv.abs().sum(dim=1).amax(dim=1)  # largest column sum
    norms = torch.where(info == 0, norms, torch.full_like(norms, math.inf))
    return float(norms.min())


def _weights(net: TwoLayerReLU):
    return net.hidden.weight.detach(), net.hidden.bias.detach()


def _offset_radius(w, b, basis, rho_in: float) -> np.ndarray:
    """Radius of the (m−1)-ball in which node boundaries w̃ᵀx + b = 0 cut the in-plane ball of
    radius ``rho_in`` of 𝒳 = span(``basis``): √(ρ² − δ²), δ = |b| / ‖Uᵀw̃‖; 0 if it misses."""
    norm = (w @ basis).norm(dim=1).clamp_min(ZERO_NORM)
    offset = (b.abs() / norm).numpy()
    return np.sqrt(np.clip(rho_in ** 2 - offset ** 2, 0.0, None))


def theorem2_report(student: TwoLayerReLU, teacher: TwoLayerReLU, x: torch.Tensor, basis,
                    best_student=None) -> dict:
    """Theorem 2 of source A measured on a trained run, per teacher node j.

    Hypotheses: ε = ‖g₁‖∞ over the inputs ``x`` in the data region R (``data_region``); the
    students k that observe j (``observation``) and, of these, the one with the largest
    |α_jk| = |v*_jᵀ v_k| (``observer``, ``alpha``; NaN if j is unobserved). Conclusion: for
    𝒰 = 𝒳 = span(``basis``) ("in") and its complement ("out"), the smallest sin θ^𝒰_jk′ over
    all students k′ (``sin_in_min``/``sin_out_min``; the theorem says *some* k′, which need not
    be the observer), and the bound M K ε / α (``bound_in``/``bound_out``) with r the radius of
    𝒰 ∩ R ∩ ∂E_j: the chord √(ρ_in² − δ_j²) of R's in-plane ball cut by j's boundary (δ_j its
    distance from the centre) inside 𝒳, and ρ_out across it (a slice through a point of the
    boundary). With ``best_student`` (one index per teacher node, e.g. the best-NC student) also
    the sines of that pairing (``sin_in_best``/``sin_out_best``). Also the in-plane ε-alignment
    error (``align_in_min``, source D's definition on the reduced weights (Uᵀw̃, b)) and the
    alignment the talk's gradient condition guarantees for this ε in d′ dimensions
    (``slide_in``, ``slide_alignment_bound``)."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    comp = complement_basis(basis)
    d_sub, k_total = basis.shape[1], teacher.k + student.k
    inside, rho_in, rho_out = data_region(x, basis)
    xr = x[inside]
    eps = float(hidden_gradient(student, teacher, xr).abs().max())
    (wt, bt), (ws, bs) = _weights(teacher), _weights(student)
    observed = observation(wt, bt, student, xr)
    alpha_all = (teacher.fan_out.weight.detach().T @ student.fan_out.weight.detach()).abs()
    alpha_obs = torch.where(observed, alpha_all, torch.zeros_like(alpha_all))
    observer = alpha_obs.argmax(dim=1)
    alpha = np.where(observed.any(dim=1).numpy(), alpha_obs.amax(dim=1).numpy(), np.nan)
    r_in = _offset_radius(wt, bt, basis, rho_in)
    r_out = np.where(r_in > 0, rho_out, 0.0)
    out = {"eps": eps, "k_total": k_total, "rho_in": rho_in, "rho_out": rho_out,
           "alpha": alpha, "observer": observer.numpy(),
           "n_observers": observed.sum(dim=1).numpy(), "r_in": r_in, "r_out": r_out,
           "bound_in": theorem2_bound(eps, alpha, r_in, d_sub, k_total),
           "bound_out": theorem2_bound(eps, alpha, r_out, comp.shape[1], k_total),
           "slide_in": slide_alignment_bound(eps, alpha, k_total, d_sub)}
    rows = torch.arange(teacher.k)
    for name, sub in (("in", basis), ("out", comp)):
        sines = projected_sines(wt, ws, sub) if sub.shape[1] else torch.full(
            (teacher.k, student.k), float("nan"), dtype=DTYPE)
        out[f"sin_{name}_min"] = np.nanmin(np.where(np.isnan(sines.numpy()), np.inf,
                                                    sines.numpy()), axis=1)
        out[f"sin_{name}_min"][~np.isfinite(out[f"sin_{name}_min"])] = np.nan
        if best_student is not None:
            out[f"sin_{name}_best"] = sines[rows, torch.as_tensor(best_student)].numpy()
    sine, gap = alignment_errors(ws @ basis, bs, wt @ basis, bt)
    out["align_in_min"] = torch.maximum(torch.nan_to_num(sine, nan=1.0), gap).amin(1).numpy()
    return out


def corollary1_report(student: TwoLayerReLU, teacher: TwoLayerReLU, x: torch.Tensor,
                      basis) -> dict:
    """Corollary 1 of source A measured on a trained run, per student node k′, in 𝒰 = 𝒳 =
    span(``basis``): ε = ‖g₁‖∞ over the data region R (as ``theorem2_report``), c₀ = the smallest
    sin θ^𝒳 between k′ and every other teacher or student node, the other students observing
    k′ and the smallest ‖Q⁻¹‖₁ over sets of C of them (``min_q_inverse_norm``), r = the chord of
    R's in-plane ball cut by k′'s boundary, the bound ``corollary1_bound`` on ‖v_k′‖∞, and the
    measured ‖v_k′‖∞ and ‖v_k′‖₂. All arrays have length K_student."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    k_total = teacher.k + student.k
    inside, rho_in, _ = data_region(x, basis)
    xr = x[inside]
    eps = float(hidden_gradient(student, teacher, xr).abs().max())
    (wt, _), (ws, bs) = _weights(teacher), _weights(student)
    observed = observation(ws, bs, student, xr)
    observed.fill_diagonal_(False)  # a node does not observe itself
    to_students = projected_sines(ws, ws, basis)
    to_students.fill_diagonal_(float("nan"))
    others = torch.cat([projected_sines(ws, wt, basis), to_students], dim=1).numpy()
    c0 = np.nanmin(np.where(np.isnan(others), np.inf, others), axis=1)
    v = student.fan_out.weight.detach()
    q_norm = np.array([min_q_inverse_norm(v[:, observed[k]]) for k in range(student.k)])
    r = _offset_radius(ws, bs, basis, rho_in)
    return {"eps": eps, "k_total": k_total, "c0": c0, "q_inv_norm": q_norm, "r": r,
            "n_observers": observed.sum(dim=1).numpy(),
            "bound": corollary1_bound(eps, q_norm, r, basis.shape[1], k_total, c0),
            "fan_out_inf": v.abs().amax(dim=0).numpy(), "fan_out_l2": v.norm(dim=0).numpy()}
