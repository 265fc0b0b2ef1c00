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
* ``oracle_adversarial`` (Eq. 3, PGD on the ℓ2 distance between student and teacher outputs) and
  ``adversarial_probe``;
* ``boundary_segment`` (the geometry of 2-D figures) and ``spearman``.

Every random draw takes an explicit ``torch.Generator``; nothing here touches global seeds. The
networks are tiny, so training and measuring run single-threaded on the CPU (``single_threaded``;
``tsrobust.runtime.torch_threads`` restores the thread count afterwards); ``train_on`` trains on
another device (a GPU) and brings the networks back to the CPU for measuring.
"""

from __future__ import annotations

import functools
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
    d: int, thetas, sample_sizes, repeats: int, generator: torch.Generator, *, progress: bool = True
):
    """Analytic population gradient vs Monte Carlo for several angles θ and sample sizes N (source
    D, "An Analytic Formula").

    For each θ (‖w‖ = ‖w*‖ = 1) and N, draws ``repeats`` independent estimates. Returns
    ``(values, arrays)``: arrays ``rms_error[θ, N]`` (root mean square over repeats of
    ‖ĝ_N − g‖), ``mean_stderr[θ, N]`` (the estimates' own standard error, √Σ_i se_i²),
    ``z_max[θ, N]`` (largest |ĝ_i − g_i| / se_i over coordinates and repeats), ``analytic[θ, d]``,
    and ``gating_shift_z[θ]``: ‖Δ‖ / ‖se‖ at the largest N for Δ = ``GATING_ERROR`` × the gating
    term (1/2π)(θ w* − ‖w*‖/‖w‖ sin θ w), a lower bound on how far such an error in the formula
    would move the largest coordinate z-score (max_i |Δ_i|/se_i ≥ ‖Δ‖/‖se‖). Values: the fitted
    log-log slope of the error in N (−½ expected), the largest z-score, the number of z-scores
    and, for that many Gaussian z-scores, the median largest |z| (``z_median_max``) and the
    level reached by chance once in a hundred runs (``z_chance_1pct``; ``max_abs_z_level``).
    """
    thetas = [float(t) for t in thetas]
    sample_sizes = [positive_int("sample size", n) for n in sample_sizes]
    repeats = positive_int("repeats", repeats)
    rms = np.zeros((len(thetas), len(sample_sizes)))
    stderr = np.zeros_like(rms)
    z_max = np.zeros_like(rms)
    analytic = np.zeros((len(thetas), d))
    gating = np.zeros(len(thetas))
    jobs = [(i, j) for i in range(len(thetas)) for j in range(len(sample_sizes))]
    for i, j in tqdm(jobs, desc="gradient check", disable=not progress, leave=False):
        w, w_star = vectors_at_angle(thetas[i], d)
        g = relu_population_gradient(w, w_star)
        analytic[i] = g.numpy()
        gating[i] = float((g - 0.5 * (w - w_star)).norm())
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
              "z_median_max": max_abs_z_level(n_z, 0.5),
              "z_chance_1pct": max_abs_z_level(n_z, 0.99)}
    arrays = {"rms_error": rms, "mean_stderr": stderr, "z_max": z_max, "analytic": analytic,
              "gating_shift_z": GATING_ERROR * gating / stderr[:, -1]}
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


@dataclass(frozen=True)
class Augmentation:
    """Extra training inputs, labelled by the teacher (teacher-target, source A §4.2–4.3).

    kind:
      * ``"gaussian"`` — x + n, n ~ N(0, std² I_d): teacher-agnostic noise in every direction;
      * ``"off_subspace"`` — x + (I − UUᵀ) n: noise only along the weak directions ⊥ 𝒳
        (``basis`` = U);
      * ``"oracle_adversarial"`` — oracle-adversarial examples (Eq. 3) of the current student,
        ℓ2 ball of radius ``eps``, ``attack_steps`` PGD steps, refreshed every ``every`` steps.
    ``fraction``: how many augmented samples per training sample in the batch (≤ 1).
    """

    kind: str
    std: float = 0.0
    eps: float = 0.0
    basis: torch.Tensor | None = None
    attack_steps: int = 10
    every: int = 1
    fraction: float = 1.0

    def __post_init__(self):
        kinds = ("gaussian", "off_subspace", "oracle_adversarial")
        if self.kind not in kinds:
            raise ValueError(f"Augmentation kind must be one of {kinds}, got {self.kind!r}")
        if self.kind == "off_subspace" and self.basis is None:
            raise ValueError("off_subspace augmentation needs the data basis U (basis=...)")
        if self.kind in ("gaussian", "off_subspace") and self.std <= 0:
            raise ValueError(f"{self.kind} augmentation needs std > 0")
        if self.kind == "oracle_adversarial" and self.eps <= 0:
            raise ValueError("oracle_adversarial augmentation needs eps > 0")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {self.fraction}")
        positive_int("every", self.every)
        positive_int("attack_steps", self.attack_steps)


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
    x_extra = None

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
            if augmentation.kind != "oracle_adversarial" or x_extra is None or (
                (step - 1) % augmentation.every == 0
            ):
                x_extra = augmented_inputs(augmentation, xb, student, teacher, generator)
            with torch.no_grad():
                y_extra = teacher(x_extra)
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


def augmented_inputs(
    augmentation: Augmentation,
    x: torch.Tensor,
    student: TwoLayerReLU,
    teacher: TwoLayerReLU,
    generator: torch.Generator,
) -> torch.Tensor:
    """The augmented inputs of one training step (see ``Augmentation``)."""
    m = max(1, int(round(augmentation.fraction * x.shape[0])))
    idx = torch.randperm(x.shape[0], generator=generator)[:m].to(x.device)
    xs = x[idx]
    if augmentation.kind == "oracle_adversarial":
        return oracle_adversarial(student, teacher, xs, eps=augmentation.eps,
                                  steps=augmentation.attack_steps, generator=generator)
    noise = augmentation.std * torch.randn(xs.shape, generator=generator, dtype=DTYPE).to(x.device)
    if augmentation.kind == "off_subspace":
        basis = augmentation.basis.to(x.device)
        noise = noise - noise @ basis @ basis.T
    return xs + noise


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
    (s = 0, Theorem 1) or near it (s > 0: "almost low-rank", Theorem 2)."""
    basis = torch.as_tensor(basis, dtype=DTYPE)
    if off_subspace_std < 0:
        raise ValueError(f"off_subspace_std must be non-negative, got {off_subspace_std}")
    d, d_sub = basis.shape
    x = torch.randn(positive_int("n", n), d_sub, generator=generator, dtype=DTYPE) @ basis.T
    if off_subspace_std > 0:
        noise = off_subspace_std * torch.randn(n, d, generator=generator, dtype=DTYPE)
        x = x + noise - noise @ basis @ basis.T
    return x


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
    was_training = [m.training for m in (student, teacher)]
    student.eval(), teacher.eval()
    try:
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = (student(x + delta) - teacher(x + delta)).pow(2).sum()
            (grad,) = torch.autograd.grad(loss, delta)
            grad = restrict(grad)
            with torch.no_grad():
                if norm == "l2":
                    step = grad / grad.norm(dim=1, keepdim=True).clamp_min(ZERO_NORM)
                else:
                    step = grad.sign()
                delta = project(delta + step_size * step)
    finally:
        for m, t in zip((student, teacher), was_training):
            m.train(t)
    return (x + delta).detach()


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
    """Oracle-adversarial examples (Eq. 3, ℓ2 ball of radius ``eps``) as a probe of a trained
    student: the oracle loss ‖f(x′) − f*(x′)‖² after an unconstrained attack, after an attack
    restricted to the data subspace (in-plane), after a random perturbation of norm ``eps``, and
    on the clean inputs; and how much of each adversarial perturbation leaves 𝒳."""
    x_adv = oracle_adversarial(student, teacher, x, eps=eps, steps=steps)
    x_in = oracle_adversarial(student, teacher, x, eps=eps, steps=steps, basis=basis)
    rand = torch.randn(x.shape, generator=generator, dtype=DTYPE)
    x_rand = x + eps * rand / rand.norm(dim=1, keepdim=True)
    return {
        "loss_clean": oracle_loss(student, teacher, x).numpy(),
        "loss_random": oracle_loss(student, teacher, x_rand).numpy(),
        "loss_in_plane": oracle_loss(student, teacher, x_in).numpy(),
        "loss_adversarial": oracle_loss(student, teacher, x_adv).numpy(),
        "off_fraction_adversarial": off_subspace_fraction(x_adv - x, basis).numpy(),
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
