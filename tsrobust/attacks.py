"""Adversarial attacks in the teacher-student setting (source A §4.2, Eq. 3, and §5.4).

An *oracle-adversarial* example maximizes a loss between the student f and the teacher f* at the
perturbed point itself (Eq. 3): ``x′ = argmax_{x′ ∈ B(x, ε)} L[f(x′), f*(x′)]``, so the attack
back-propagates through both networks. No attack library accepts such a teacher-evaluated loss,
so the attacks here take an *objective*: a closure ``objective(x) -> [B]`` (one loss per sample)
that they maximize. :func:`oracle_objective` (ℓ2 distance between the two nets' logits, §5.4) and
:func:`ce_objective` (cross-entropy to fixed labels, the conventional data-adversarial loss, Eq. 4)
build the two common ones.

- :func:`pgd`: projected gradient ascent in an ℓ∞, ℓ2 or ℓ1 ball (Madry et al.), with a uniform
  random start; the ℓ1 version takes sparse steps (the largest ``1 − l1_sparsity`` fraction of
  gradient coordinates, as in Tramèr & Boneh's SLIDE) and projects exactly onto the ℓ1 ball
  intersected with the image box (:func:`project_l1_ball`).
- :func:`fgsm`: one signed-gradient step of size ε (Goodfellow et al.).
- :func:`cw_l2`: the Carlini-Wagner ℓ2 margin attack (tanh box, Adam), made oracle-aware: the
  label the student must keep is the teacher's label *at the perturbed point*.
- :func:`transfer_attack`: black box: PGD against an independently trained surrogate student; the
  examples are then shown to the target student.
- :func:`robust_accuracy`: §5.4's robust accuracy — the fraction of adversarial examples on which
  the student's argmax agrees with the teacher's — over repeated evaluations → (μ, σ²).
- :func:`apgd` (Auto-PGD, Croce & Hein 2020) on the cross-entropy or the DLR loss
  (:func:`dlr_loss`), and source C's *adversarial accuracy* (§3): APGD-CE, then APGD-DLR on the
  survivors (:func:`apgd_ce_dlr`, :func:`adversarial_accuracy`). These attack a classifier
  against data labels, not a student against a teacher.

Every attack differentiates with ``torch.autograd.grad`` with respect to the input only, returns
images in [0, 1] inside the ε-ball, and draws randomness only from the ``torch.Generator`` it is
given (the global RNG is never used or reseeded). The inner loops never read a value back to the
host, so they queue asynchronously on a GPU.

``precision`` (:data:`tsrobust.runtime.PRECISIONS`): the networks' forward and backward passes run
in fp32, or under bfloat16 autocast (``"bf16"``; ``"auto"``: where the device has native bf16
units, see :func:`tsrobust.runtime.resolve_precision`). The perturbation, its updates and the
projections stay fp32 either way; the default is fp32.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from tsrobust import runtime
from tsrobust.specialization import closer_to_subspace

NORMS = ("linf", "l2", "l1")
"""Balls :func:`pgd` projects onto."""
DIVISION_EPS = 1e-10
"""Added to a gradient's ℓ2 norm before dividing by it (the same guard as torchattacks' PGDL2)."""
L1_SPARSITY = 0.99
"""ℓ1 PGD moves only the coordinates whose |gradient| is in the top 1 % (Tramèr & Boneh 2019:
the 99th percentile); the step is spread evenly over them (ℓ1 norm of the step = α)."""
LOGIT_DIST_FLOOR = 1e-12
"""The squared logit distance is floored here before its square root, so that its gradient is 0
(not NaN) where student and teacher agree exactly."""
CW_C = 1.0
"""CW: weight of the margin term against the squared ℓ2 size of the perturbation."""
CW_KAPPA = 0.0
"""CW: confidence κ; the margin term stops pushing once the wrong class leads by κ."""
CW_STEPS = 50
"""CW: Adam steps (no binary search over c; the source gives no CW settings)."""
CW_LR = 0.01
"""CW: Adam learning rate in tanh space."""
EVAL_BATCH = 2000
"""Images attacked at once in :func:`robust_accuracy` and friends on an accelerator (a CPU uses
:func:`cpu_chunk`): a GPU left with batches of 500 of these small nets idles between kernels;
2000 CIFAR images under PGD keep well under a gigabyte of activations."""
CPU_CHUNK = 64
"""On a CPU, fp32 images per forward/backward pass of an attack (bf16: twice as many, the same
bytes of activations; see :func:`cpu_chunk`): :func:`robust_accuracy_of` attacks batches of this
size, and oracle-adversarial training passes it to :func:`pgd` as ``chunk_size``. Much larger
passes can be slower per image (a layer's activations no longer stay in cache, and the allocator
returns and re-faults their pages every step), much smaller ones too (each pass is a round of
small kernels, and on several threads a round of waits for the slowest);
``python -m tsrobust.bench --chunk-sweep 16 32 256`` measures this."""
ATANH_CLAMP = 1 - 1e-6
"""CW: pixels are mapped to tanh space via atanh(clamp(2x − 1, ±ATANH_CLAMP)) so that black or
white pixels get a finite pre-image."""

Objective = Callable[[torch.Tensor], torch.Tensor]


# -- objectives ------------------------------------------------------------------------------

def oracle_objective(student, teacher) -> Objective:
    """Per-sample ℓ2 distance between student and teacher logits, ``‖f(x) − f*(x)‖₂`` (§5.4).

    Maximizing it gives the oracle-adversarial examples of Eq. 3 (the gradient flows through both
    networks). Put both models in eval mode first (see :func:`frozen`).
    """

    def objective(x: torch.Tensor) -> torch.Tensor:
        diff = student(x).float() - teacher(x).float()
        return diff.pow(2).sum(1).clamp_min(LOGIT_DIST_FLOOR).sqrt()

    return objective


def ce_objective(model, y: torch.Tensor) -> Objective:
    """Per-sample cross-entropy of ``model``'s logits to fixed labels ``y`` (Eq. 4: the
    conventional, data-adversarial loss)."""

    def objective(x: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x).float(), y, reduction="none")

    return objective


@contextlib.contextmanager
def frozen(*models):
    """Eval mode and ``requires_grad=False`` for ``models`` inside the block; restored after.

    Attacks only need gradients with respect to the input: freezing the parameters spares autograd
    the bookkeeping for weight gradients.
    """
    saved = [(m.training, [p.requires_grad for p in m.parameters()]) for m in models]
    for m in models:
        m.eval().requires_grad_(False)
    try:
        yield models
    finally:
        for m, (mode, flags) in zip(models, saved):
            m.train(mode)
            for p, f in zip(m.parameters(), flags):
                p.requires_grad_(f)


# -- checks ----------------------------------------------------------------------------------

def _check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Fail fast on non-images. The [0, 1] range is checked on the CPU only: on an accelerator
    reading the range back would stall the queue once per attack (i.e. per training batch)."""
    if not torch.is_tensor(x) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError(f"{name} must be a float tensor [B, ...] of images in [0, 1]")
    if x.device.type != "cpu" or x.numel() == 0:
        return x.detach()
    lo, hi = torch.aminmax(x.detach())
    if float(lo) < 0 or float(hi) > 1:
        raise ValueError(
            f"{name} must lie in [0, 1] (got values in [{float(lo):.3g}, {float(hi):.3g}]); "
            f"attack un-normalized images and put any normalization inside the model"
        )
    return x.detach()


def _check_budget(eps, alpha=None, steps=None):
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
        raise ValueError(f"eps must be a number ≥ 0, got {eps!r}")
    if alpha is not None and (not isinstance(alpha, (int, float)) or not alpha > 0):
        raise ValueError(f"alpha (the step size) must be a number > 0, got {alpha!r}")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")


def _per_sample(loss: torch.Tensor, batch: int) -> torch.Tensor:
    if loss.shape != (batch,):
        raise ValueError(
            f"the objective must return one loss per sample, shape ({batch},); got "
            f"{tuple(loss.shape)} (use reduction='none')"
        )
    return loss


def _view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector ``[B]`` shaped to broadcast against ``like`` ``[B, ...]``."""
    return v.view(-1, *([1] * (like.ndim - 1)))


def _check_chunk(chunk_size):
    if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool)
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be an int ≥ 1 or None, got {chunk_size!r}")


def _input_grad(objective: Objective, x_adv: torch.Tensor, precision: str = "fp32",
                chunk_size: int | None = None) -> torch.Tensor:
    """Gradient of ``objective(x).sum()`` with respect to the input only (in ``x_adv``'s dtype),
    the objective run in ``precision`` (resolved), ``chunk_size`` inputs at a time (all at once
    for ``None``)."""
    if chunk_size is not None and len(x_adv) > chunk_size:
        return torch.cat([_input_grad(objective, xc, precision) for xc in x_adv.split(chunk_size)])
    x_adv = x_adv.detach().requires_grad_(True)
    with runtime.autocast(x_adv.device, precision):
        loss = _per_sample(objective(x_adv), len(x_adv))
    (grad,) = torch.autograd.grad(loss.float().sum(), x_adv)
    return grad


def cpu_chunk(x: torch.Tensor, precision: str = "fp32") -> int | None:
    """The ``chunk_size`` for attacking ``x`` in ``precision``: on a CPU :data:`CPU_CHUNK` for
    fp32 and twice that for bf16 (half the bytes per activation: the same cache footprint, and
    bigger tiles for the bf16 kernels); ``None`` (the whole batch in one pass) on an
    accelerator."""
    if x.device.type != "cpu":
        return None
    return 2 * CPU_CHUNK if runtime.resolve_precision(precision, x.device) == "bf16" else CPU_CHUNK


# -- ℓ1 projection ---------------------------------------------------------------------------

def project_l1_ball(delta: torch.Tensor, eps: float, x: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean projection of each ``delta[i]`` onto ``{‖δ‖₁ ≤ ε} ∩ {x[i] + δ ∈ [0, 1]}``.

    The box ``−x ≤ δ ≤ 1 − x`` contains 0, so the projection is, coordinate-wise,
    ``δ_j(λ) = clip(sign(v_j) · max(|v_j| − λ, 0), −x_j, 1 − x_j)`` for the smallest ``λ ≥ 0`` with
    ``‖δ(λ)‖₁ ≤ ε`` (KKT conditions of the separable problem). ``‖δ(λ)‖₁ = Σ_j clamp(|v_j| − λ,
    0, c_j)``, with ``c_j`` the room in the direction of ``v_j``, is piecewise linear and
    non-increasing in λ; sorting its breakpoints gives λ exactly (no iteration). Computed in
    float64; returns ``delta``'s dtype and shape.
    """
    _check_budget(eps)
    if delta.shape != x.shape:
        raise ValueError(f"delta {tuple(delta.shape)} and x {tuple(x.shape)} must have one shape")
    shape, dtype = delta.shape, delta.dtype
    v = delta.detach().reshape(len(delta), -1).to(torch.float64)
    xf = x.detach().reshape(len(x), -1).to(torch.float64)
    a = v.abs()
    room = torch.where(v >= 0, 1 - xf, xf).clamp_min(0)  # c_j: how far δ_j may go along sign(v_j)
    mag0 = torch.minimum(a, room)  # |δ_j(0)|
    norm0 = mag0.sum(1)
    # Breakpoints of g(λ) = Σ clamp(a_j − λ, 0, c_j): slope −1 starts at max(a_j − c_j, 0) and ends
    # at a_j (coordinates with c_j = 0 or a_j = 0 open and close at the same λ: no effect).
    starts = (a - room).clamp_min(0)
    knots = torch.cat([starts, a], 1)
    slope_change = torch.cat([-torch.ones_like(a), torch.ones_like(a)], 1)
    knots, order = knots.sort(1)
    slope_change = slope_change.gather(1, order)
    slope = slope_change.cumsum(1)  # slope of g just right of each knot
    widths = torch.diff(knots, dim=1, prepend=torch.zeros_like(knots[:, :1]))
    # g at each knot: g(0) + Σ slope_{k-1} · (knot_k − knot_{k-1}); slope 0 left of the first
    prev_slope = torch.cat([torch.zeros_like(slope[:, :1]), slope[:, :-1]], 1)
    g_at = norm0[:, None] + (prev_slope * widths).cumsum(1)
    # λ*: on the segment [knot_k, knot_{k+1}] where g crosses ε: the last knot with g ≥ ε.
    above = g_at >= eps
    k = (above.long().cumsum(1).argmax(1, keepdim=True))  # index of the last knot with g ≥ ε
    g_k = g_at.gather(1, k)
    s_k = slope.gather(1, k)
    lam = knots.gather(1, k) + (g_k - eps) / (-s_k).clamp_min(1)
    lam = torch.where((norm0 > eps)[:, None], lam, torch.zeros_like(lam))
    mag = (a - lam).clamp_min(0)
    mag = torch.minimum(mag, room)
    out = torch.sign(v) * mag
    return out.reshape(shape).to(dtype)


# -- attacks ---------------------------------------------------------------------------------

def _random_start(x: torch.Tensor, eps: float, norm: str, generator) -> torch.Tensor:
    """A random point of the ε-ball around ``x``, clipped to [0, 1] (ℓ1: projected exactly)."""
    if generator is None:
        raise ValueError(
            "random_start=True needs a torch.Generator (generator=...) on x's device; the attacks "
            "never draw from the global random state"
        )
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + (2 * u - 1) * eps).clamp(0, 1)
    d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    r = torch.rand((len(x),), generator=generator, device=x.device, dtype=x.dtype)
    if norm == "l2":  # a Gaussian direction scaled to a uniform radius, as torchattacks' PGDL2
        n = d.flatten(1).norm(dim=1).clamp_min(DIVISION_EPS)
        return (x + d * _view(r * eps / n, x)).clamp(0, 1)
    # ℓ1: a Laplace direction (uniform on the ℓ1 sphere) at a uniform radius, projected.
    lap = torch.sign(d) * torch.log1p(-torch.rand(x.shape, generator=generator, device=x.device,
                                                  dtype=x.dtype).clamp_max(1 - 1e-7)).neg()
    n = lap.flatten(1).abs().sum(1).clamp_min(DIVISION_EPS)
    delta = lap * _view(r * eps / n, x)
    return x + project_l1_ball(delta, eps, x)


def _l1_direction(grad: torch.Tensor, x_adv: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Sparse ℓ1 ascent direction: sign of the gradient on its top ``1 − sparsity`` coordinates
    (ignoring coordinates stuck at a box face the gradient pushes into), ℓ1 norm 1."""
    g = grad.flatten(1)
    xa = x_adv.flatten(1)
    stuck = ((xa <= 0) & (g < 0)) | ((xa >= 1) & (g > 0))
    g = g.masked_fill(stuck, 0)
    k = max(1, int(math.ceil((1 - sparsity) * g.shape[1])))
    idx = g.abs().topk(k, dim=1).indices
    step = torch.zeros_like(g).scatter_(1, idx, g.gather(1, idx).sign())
    step = step / step.abs().sum(1, keepdim=True).clamp_min(1)
    return step.view_as(grad)


def pgd(objective: Objective, x: torch.Tensor, *, eps: float, alpha: float, steps: int,
        norm: str = "linf", random_start: bool = True, generator: torch.Generator | None = None,
        l1_sparsity: float = L1_SPARSITY, precision: str = "fp32",
        chunk_size: int | None = None, x_start: torch.Tensor | None = None) -> torch.Tensor:
    """Projected gradient ascent on ``objective`` (per-sample loss ``[B]``) in the ``norm`` ε-ball.

    Madry et al. (2017), as used for Eq. 3 and Table 1 of source A:

    - ``linf``: ``x ← Π(x + α sign ∇)``; ``l2``: ``x ← Π(x + α ∇/‖∇‖₂)``; ``l1``: ``x ← Π(x + α e)``
      with ``e`` the sparse direction of :func:`_l1_direction` and Π the exact projection of
      :func:`project_l1_ball`. Every iterate is clipped to [0, 1] and stays in the ball.
    - ``random_start``: start from a random point of the ball drawn from ``generator`` (a
      ``torch.Generator`` on ``x``'s device, required then).
    - ``precision``: ``"fp32"``, ``"bf16"`` or ``"auto"`` (see the module docstring): the
      objective's passes run under bf16 autocast for bf16; the perturbation and its updates stay
      in ``x``'s dtype.
    - ``chunk_size``: take each gradient that many inputs at a time (see :func:`cpu_chunk`);
      only for an objective whose loss of a sample depends on that sample's input alone, like
      :func:`oracle_objective` (not :func:`ce_objective`, which holds labels for the whole
      batch). The iterates are those of one pass up to floating-point rounding.
    - ``x_start``: start from this point instead (images in [0, 1] shaped like ``x``, e.g. a
      small perturbation of it; ``random_start`` is then ignored). Every step projects onto the
      ball around ``x``.

    Without random start, the ℓ∞ and ℓ2 iterates equal torchattacks' ``PGD`` / ``PGDL2`` with a
    cross-entropy objective (tested). Gradients are taken with ``torch.autograd.grad`` w.r.t. the
    input only; put the models in eval mode (e.g. :func:`frozen`). Returns ``x′`` (detached).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    _check_budget(eps, alpha, steps)
    _check_chunk(chunk_size)
    if not 0 <= l1_sparsity < 1:
        raise ValueError(f"l1_sparsity must be in [0, 1), got {l1_sparsity!r}")
    x = _check_images(x)
    precision = runtime.resolve_precision(precision, x.device)
    if x_start is not None:
        x_adv = _check_images(x_start, "x_start").to(x.dtype)
        if x_adv.shape != x.shape:
            raise ValueError(f"x_start {tuple(x_adv.shape)} must have x's shape {tuple(x.shape)}")
    else:
        x_adv = _random_start(x, eps, norm, generator) if random_start else x.clone()
    for _ in range(steps):
        grad = _input_grad(objective, x_adv, precision, chunk_size)
        if norm == "linf":
            x_adv = x_adv + alpha * grad.sign()
            delta = (x_adv - x).clamp(-eps, eps)
            x_adv = (x + delta).clamp(0, 1)
        elif norm == "l2":
            gn = grad.flatten(1).norm(dim=1) + DIVISION_EPS
            x_adv = x_adv + alpha * grad / _view(gn, grad)
            delta = x_adv - x
            dn = delta.flatten(1).norm(dim=1)
            factor = torch.where(dn > eps, eps / dn.clamp_min(DIVISION_EPS), torch.ones_like(dn))
            x_adv = (x + delta * _view(factor, delta)).clamp(0, 1)
        else:
            x_adv = x_adv + alpha * _l1_direction(grad, x_adv, l1_sparsity)
            x_adv = (x + project_l1_ball(x_adv - x, eps, x)).clamp(0, 1)
    return x_adv.detach()


def fgsm(objective: Objective, x: torch.Tensor, *, eps: float, precision: str = "fp32",
         chunk_size: int | None = None) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2014): ``clip(x + ε sign ∇objective, 0, 1)``.
    ``precision`` and ``chunk_size`` as in :func:`pgd`."""
    _check_budget(eps)
    _check_chunk(chunk_size)
    x = _check_images(x)
    grad = _input_grad(objective, x, runtime.resolve_precision(precision, x.device), chunk_size)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def cw_margin(logits: torch.Tensor, labels: torch.Tensor, kappa: float = CW_KAPPA) -> torch.Tensor:
    """Carlini-Wagner's untargeted margin ``max(Z_y − max_{i≠y} Z_i, −κ)`` per sample."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(1)
    return (true - other).clamp_min(-kappa)


def cw_l2(model, x: torch.Tensor, label_fn: Callable[[torch.Tensor], torch.Tensor], *,
          c: float = CW_C, kappa: float = CW_KAPPA, steps: int = CW_STEPS, lr: float = CW_LR,
          max_l2: float | None = None, precision: str = "fp32") -> torch.Tensor:
    """Carlini-Wagner ℓ2 attack (2017) without binary search over ``c``.

    Minimizes ``‖x′ − x‖₂² + c · margin(model(x′), label_fn(x′))`` over ``x′ = (tanh w + 1)/2``
    (always in [0, 1]) with Adam, where the margin is :func:`cw_margin`. ``label_fn(x′)`` gives
    the labels ``model`` must keep *at x′*: ``lambda z: teacher(z).argmax(1)`` is the oracle-aware
    attack of the teacher-student setting (the label moves with the teacher), ``lambda z: y`` the
    classic one. Returns, per sample, the successful ``x′`` (``model`` disagrees with
    ``label_fn``) of smallest ℓ2 distance seen, restricted to ``‖x′ − x‖₂ ≤ max_l2`` when given,
    or ``x`` itself where no step succeeded. ``precision``: of ``model``'s and ``label_fn``'s
    passes, as in :func:`pgd` (``w``, Adam's state and the distances stay fp32).
    """
    _check_budget(0.0, lr, steps)
    if max_l2 is not None:
        _check_budget(max_l2)
    x = _check_images(x)
    precision = runtime.resolve_precision(precision, x.device)
    b = len(x)
    w = torch.atanh((2 * x - 1).clamp(-ATANH_CLAMP, ATANH_CLAMP)).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    best = x.clone()
    best_l2 = torch.full((b,), float("inf"), device=x.device)
    limit = float("inf") if max_l2 is None else max_l2 ** 2
    for _ in range(steps):
        x_adv = (torch.tanh(w) + 1) / 2
        l2 = (x_adv - x).flatten(1).pow(2).sum(1)
        with runtime.autocast(x.device, precision):
            logits = model(x_adv).float()
            with torch.no_grad():
                labels = label_fn(x_adv.detach())
        cost = l2.sum() + c * cw_margin(logits, labels, kappa).sum()
        (w.grad,) = torch.autograd.grad(cost, w)
        opt.step()
        with torch.no_grad():
            better = (logits.argmax(1) != labels) & (l2 < best_l2) & (l2 <= limit)
            best_l2 = torch.where(better, l2, best_l2)
            best = torch.where(_view(better, x), x_adv, best)
    return best.detach()


def transfer_attack(surrogate, teacher, x: torch.Tensor, *, eps: float, alpha: float,
                    steps: int, norm: str = "linf", random_start: bool = True,
                    generator: torch.Generator | None = None,
                    precision: str = "fp32") -> torch.Tensor:
    """Black-box transfer (§5.4): oracle-adversarial examples made against ``surrogate``.

    The attacker cannot differentiate the target student; it attacks an independently trained
    surrogate student (PGD on ``‖surrogate(x′) − teacher(x′)‖₂``, in ``precision``), and the
    examples are then evaluated on the target (see :func:`robust_accuracy_of`).
    """
    with frozen(surrogate, teacher):
        return pgd(oracle_objective(surrogate, teacher), x, eps=eps, alpha=alpha, steps=steps,
                   norm=norm, random_start=random_start, generator=generator,
                   precision=precision)


# -- robust accuracy (§5.4) ------------------------------------------------------------------

@torch.no_grad()
def agreement(student, teacher, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """Per sample: does the student's argmax equal the teacher's? (bool ``[B]``; both nets run in
    ``precision``)."""
    with runtime.autocast(x.device, precision):
        return student(x).argmax(1) == teacher(x).argmax(1)


def robust_accuracy_of(student, teacher, x: torch.Tensor, make_adversarial, *, repeats: int = 1,
                       generator: torch.Generator | None = None, batch_size: int | None = None,
                       subsets: list[torch.Tensor] | None = None,
                       precision: str = "fp32") -> tuple[float, float]:
    """Robust accuracy of ``student`` w.r.t. ``teacher`` under any attack, repeated (§5.4).

    ``make_adversarial(x_batch, generator) -> x′_batch`` is run batch by batch, with both models
    in eval mode and frozen; the accuracy of one evaluation is the fraction of ``x′`` on which the
    student's argmax agrees with the teacher's. ``repeats`` evaluations of all of ``x`` (fresh
    attack randomness each; with ``subsets``, one evaluation per given index tensor into ``x``,
    so that several students or attacks can be evaluated on the same images) give the mean μ and
    the sample variance σ² (``ddof = 1``; 0 for one repeat), as fractions in [0, 1].
    ``batch_size``: images attacked at once (default :func:`cpu_chunk` on a CPU,
    :data:`EVAL_BATCH` on an accelerator). ``precision``: of the agreement check on ``x′`` (the
    attack's own precision is ``make_adversarial``'s business).
    """
    precision = runtime.resolve_precision(precision, x.device)
    if batch_size is None:
        batch_size = cpu_chunk(x, precision) or EVAL_BATCH
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an int ≥ 1 or None, got {batch_size!r}")
    if subsets is not None:
        if not subsets:
            raise ValueError("subsets must be a non-empty list of index tensors (or None)")
        repeats = len(subsets)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int ≥ 1, got {repeats!r}")
    accs = []
    with frozen(student, teacher):
        for r in range(repeats):
            xs = x if subsets is None else x[subsets[r].to(x.device)]
            hits = torch.zeros((), device=x.device)
            for xb in xs.split(batch_size):
                x_adv = make_adversarial(xb, generator)
                hits += agreement(student, teacher, x_adv, precision).sum()
            accs.append(float(hits) / len(xs))
    acc = torch.tensor(accs, dtype=torch.float64)
    var = float(acc.var(unbiased=True)) if repeats > 1 else 0.0
    return float(acc.mean()), var


def robust_accuracy(student, teacher, x: torch.Tensor, *, eps: float, alpha: float, steps: int,
                    norm: str = "linf", repeats: int = 1, generator: torch.Generator | None = None,
                    random_start: bool = True, batch_size: int | None = None,
                    subsets: list[torch.Tensor] | None = None,
                    l1_sparsity: float = L1_SPARSITY,
                    precision: str = "fp32") -> tuple[float, float]:
    """§5.4 robust accuracy under ``norm`` PGD: (μ, σ²) over ``repeats`` evaluations.

    Adversarial examples increase the ℓ2 distance between student and teacher logits
    (:func:`oracle_objective`); the accuracy is the fraction on which the two argmaxes agree.
    ``repeats``, ``subsets`` and ``batch_size`` as in :func:`robust_accuracy_of`; ``precision``
    (of the attack and of the agreement check) as in :func:`pgd`.
    """
    precision = runtime.resolve_precision(precision, x.device)

    def make(xb, gen):
        return pgd(oracle_objective(student, teacher), xb, eps=eps, alpha=alpha, steps=steps,
                   norm=norm, random_start=random_start, generator=gen, l1_sparsity=l1_sparsity,
                   precision=precision)

    return robust_accuracy_of(student, teacher, x, make, repeats=repeats, generator=generator,
                              batch_size=batch_size, subsets=subsets, precision=precision)


# -- in-plane and out-of-plane attacks (source A §5.4, Table 2) ------------------------------
# Perturbations split by the data subspace span(U) of the 3×3×3 patches (§5.3); the geometry is
# tsrobust.specialization's (off_subspace_distance, PatchSubspaceSplit).

def pgd_in_out(objective: Objective, x: torch.Tensor, basis, *, eps: float, alpha: float,
               steps: int, generator: torch.Generator, how: str = "mean",
               precision: str = "fp32", chunk_size: int | None = None):
    """§5.4's split of ℓ∞ PGD: for each image two runs of :func:`pgd` from different random starts
    (drawn one after the other from ``generator``); ``x′_in`` is the one whose perturbation is
    closer to the data subspace span(``basis``), ``x′_out`` the other
    (:func:`tsrobust.specialization.closer_to_subspace`, distance ``how``).

    Returns ``(x_in, x_out, x_first)``: ``x_first`` is the first run, a standard PGD example (its
    random start is independent of the split), so one pair of runs gives the in-plane, the
    out-of-plane and the standard attack of Table 2 on the same images."""
    runs = [pgd(objective, x, eps=eps, alpha=alpha, steps=steps, norm="linf", random_start=True,
                generator=generator, precision=precision, chunk_size=chunk_size)
            for _ in range(2)]
    x = x.detach()
    first_in = _view(closer_to_subspace(runs[0] - x, runs[1] - x, basis, how), x)
    return (torch.where(first_in, runs[0], runs[1]), torch.where(first_in, runs[1], runs[0]),
            runs[0])


def pgd_projected(objective: Objective, x: torch.Tensor, split, side: str, *, eps: float,
                  alpha: float, steps: int, random_start: bool = True,
                  generator: torch.Generator | None = None, precision: str = "fp32",
                  chunk_size: int | None = None) -> torch.Tensor:
    """ℓ∞ PGD whose perturbation stays in one side of the data subspace (one step past §5.4).

    ``split``: a :class:`tsrobust.specialization.PatchSubspaceSplit`; ``side``: "in" (the
    perturbation's patches in span(U)) or "out". At every step (and at the random start)
    ``δ ← Π(δ + α sign ∇)``, Π the projection onto the side's subspace, then ``δ ← δ · min(1,
    ε/‖δ‖∞)`` — a rescaling, which keeps δ in the subspace *and* in the ε-ball (clamping each
    pixel to ±ε would leave the subspace) — and ``x′ = clip(x + δ, 0, 1)``; the next step starts
    from ``x′ − x``. So every x′ is ``clip(x + δ, 0, 1)`` for a δ in the subspace with
    ‖δ‖∞ ≤ ε: in the subspace up to the clip to [0, 1], and in the ε-ball exactly. ``precision``,
    ``chunk_size`` and ``generator`` as in :func:`pgd`. Returns ``x′`` (detached)."""
    _check_budget(eps, alpha, steps)
    _check_chunk(chunk_size)
    x = _check_images(x)
    precision = runtime.resolve_precision(precision, x.device)

    def into_ball(delta):
        delta = split.project(delta, side)
        peak = delta.flatten(1).abs().amax(1)
        scale = torch.where(peak > eps, eps / peak.clamp_min(DIVISION_EPS), torch.ones_like(peak))
        return (x + delta * _view(scale, delta)).clamp(0, 1)

    x_adv = into_ball(_random_start(x, eps, "linf", generator) - x) if random_start else x.clone()
    for _ in range(steps):
        grad = _input_grad(objective, x_adv, precision, chunk_size)
        x_adv = into_ball(x_adv - x + alpha * grad.sign())
    return x_adv.detach()


# -- APGD and adversarial accuracy (source C §3; Croce & Hein 2020) ---------------------------

APGD_NORMS = ("linf", "l2")
"""Balls :func:`apgd` attacks in."""
APGD_LOSSES = ("ce", "dlr")
"""Losses :func:`apgd` maximizes: cross-entropy, or :func:`dlr_loss`."""
APGD_STEP = 2.0
"""Initial step size, in units of ε (Croce & Hein 2020, Alg. 1: η⁽⁰⁾ = 2ε)."""
APGD_MOMENTUM = 0.75
"""α of the momentum step (Alg. 1, Eq. 2); the first step has none."""
APGD_RHO = 0.75
"""ρ: the step halves at a checkpoint where at most ρ × (its window) steps increased the loss."""
APGD_P1 = 0.22
APGD_SHRINK = 0.03
APGD_MIN_WINDOW = 0.06
"""Checkpoints (§3.2): p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), at
iteration ⌈p_j N⌉ — see :func:`apgd_checkpoints`."""
APGD_SEED = 0
"""Seed of the starting points when :func:`apgd` is given no generator (the official code's default
seed is 0 too)."""
DLR_EPS = 1e-12
"""Added to the DLR loss's denominator, as in the official code."""


def apgd_checkpoints(steps: int) -> tuple[int, ...]:
    """The iterations (1-based counts) after which :func:`apgd` may halve its step size.

    The window between checkpoints starts at ``int(0.22 N)``, shrinks by ``int(0.03 N)`` per
    checkpoint and never falls below ``int(0.06 N)`` (each at least 1), as the official code
    computes them; for N = 100 these are the paper's ⌈p_j N⌉: 22, 41, 57, 70, 80, 87, 93, 99. For
    other N the official rounding of the window (not of p_j) can differ from ⌈p_j N⌉ by an
    iteration or two; we follow the code, whose numbers are the published ones.
    """
    _check_budget(0.0, None, steps)
    first = max(int(APGD_P1 * steps), 1)
    shrink = max(int(APGD_SHRINK * steps), 1)
    floor = max(int(APGD_MIN_WINDOW * steps), 1)
    out, window, at = [], first, first
    while at <= steps:
        out.append(at)
        window = max(window - shrink, floor)
        at += window
    return tuple(out)


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of logits ratio (Croce & Hein 2020, Eq. 5), per sample:
    ``−(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e−12)``, with ``z_π1 ≥ z_π2 ≥ z_π3`` the largest
    logits. Invariant to shifting and (positive) rescaling the logits, so a model cannot hide
    behind large or saturated logits. Needs at least 3 classes."""
    if logits.ndim != 2 or logits.shape[1] < 3:
        raise ValueError(f"the DLR loss needs logits [B, C] with C ≥ 3, got "
                         f"{tuple(logits.shape)}")
    z, order = logits.sort(dim=1)
    top_is_y = (order[:, -1] == y).float()
    u = torch.arange(len(logits), device=logits.device)
    # z_y − (second largest if y is the largest, else the largest) = z_y − max_{i≠y} z_i
    return -(logits[u, y] - z[:, -2] * top_is_y - z[:, -1] * (1.0 - top_is_y)) / (
        z[:, -1] - z[:, -3] + DLR_EPS)


def _apgd_loss(name: str):
    if name == "ce":
        return lambda logits, y: F.cross_entropy(logits, y, reduction="none")
    if name == "dlr":
        return dlr_loss
    raise ValueError(f"loss must be one of {APGD_LOSSES}, got {name!r}")


def _unit(v: torch.Tensor, norm: str) -> torch.Tensor:
    """``v`` per sample divided by its ℓ∞ or ℓ2 norm (+ 1e−12, as the official code)."""
    flat = v.flatten(1)
    n = flat.abs().amax(1) if norm == "linf" else flat.pow(2).sum(1).sqrt()
    return v / (_view(n, v) + DLR_EPS)


def _apgd_run(model, x, y, loss_fn, *, eps, norm, steps, rho, generator, precision):
    """One APGD run from a random start (Alg. 1). Returns ``(x_adv, broken, step_sizes)``:
    per image the last iterate that was misclassified (else the start), whether one was, and the
    step size used at each iteration ``[steps, B]``."""

    def evaluate(point):
        point = point.detach().requires_grad_(True)
        with runtime.autocast(x.device, precision):
            logits = model(point)
        logits = logits.float()
        loss = loss_fn(logits, y)
        (g,) = torch.autograd.grad(loss.sum(), point)
        return logits.detach(), loss.detach(), g

    def project(p):  # onto the ball around x, then the image box
        if norm == "linf":
            return torch.clamp(torch.min(torch.max(p, x - eps), x + eps), 0.0, 1.0)
        d = p - x
        size = d.flatten(1).pow(2).sum(1).sqrt()
        return torch.clamp(x + _unit(d, norm) * torch.min(eps * torch.ones_like(x),
                                                         _view(size, x)), 0.0, 1.0)

    b = len(x)
    if norm == "linf":
        t = 2 * torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 1
    else:
        t = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_adv = (x + eps * _unit(t, norm)).clamp(0.0, 1.0)
    x_best, x_broken = x_adv.clone(), x_adv.clone()
    logits, loss, grad = evaluate(x_adv)
    grad_best, loss_best = grad.clone(), loss.clone()
    broken = logits.argmax(1) != y
    loss_steps = torch.zeros(steps, b, device=x.device)
    step = torch.full((b,), APGD_STEP * eps, device=x.device, dtype=x.dtype)
    step_sizes = torch.zeros(steps, b, device=x.device, dtype=x.dtype)
    checkpoints = set(apgd_checkpoints(steps))
    last_check, window = 0, 0
    best_at_check, halved_at_check = loss_best.clone(), torch.ones(b, dtype=torch.bool,
                                                                   device=x.device)
    x_prev = x_adv.clone()
    for i in range(steps):
        with torch.no_grad():
            step_sizes[i] = step
            momentum_dir = x_adv - x_prev
            x_prev = x_adv
            a = APGD_MOMENTUM if i > 0 else 1.0
            if norm == "linf":
                z = project(x_adv + _view(step, x) * grad.sign())
            else:
                z = project(x_adv + _view(step, x) * _unit(grad, norm))
            x_adv = project(x_adv + (z - x_adv) * a + momentum_dir * (1 - a))
        logits, loss, grad = evaluate(x_adv)
        with torch.no_grad():
            wrong = logits.argmax(1) != y
            broken |= wrong
            x_broken = torch.where(_view(wrong, x), x_adv, x_broken)
            loss_steps[i] = loss
            better = loss > loss_best
            x_best = torch.where(_view(better, x), x_adv, x_best)
            grad_best = torch.where(_view(better, x), grad, grad_best)
            loss_best = torch.where(better, loss, loss_best)
            if i + 1 in checkpoints:
                window = i + 1 - last_check
                last_check = i + 1
                # Successful steps in the window. As in the official code, the comparison before
                # the first iterate reads an unfilled row (0), not the loss at the start.
                ups = sum((loss_steps[i - c] > loss_steps[i - c - 1]).float()
                          for c in range(window))
                oscillating = ups <= window * rho
                stalled = ~halved_at_check & (best_at_check >= loss_best)
                halve = oscillating | stalled
                halved_at_check, best_at_check = halve, loss_best.clone()
                step = torch.where(halve, step / 2.0, step)
                x_adv = torch.where(_view(halve, x), x_best, x_adv)  # back to the best point
                grad = torch.where(_view(halve, x), grad_best, grad)
    return x_broken, broken, step_sizes


def apgd(model, x: torch.Tensor, y: torch.Tensor, *, loss: str = "ce", eps: float,
         norm: str = "linf", steps: int = 100, restarts: int = 1, rho: float = APGD_RHO,
         generator: torch.Generator | None = None, precision: str = "fp32",
         trace: list | None = None) -> torch.Tensor:
    """Auto-PGD (Croce & Hein 2020, Alg. 1): untargeted, on ``loss`` (``"ce"`` or ``"dlr"``,
    :func:`dlr_loss`), in the ``norm`` ε-ball (ℓ∞ or ℓ2) intersected with [0, 1].

    Each run starts at a random point of the ball (ℓ∞: ``x + ε u/‖u‖∞``, u uniform in [−1, 1]ᵈ;
    ℓ2: a Gaussian direction scaled to ε), drawn from ``generator`` (default: a new one seeded
    :data:`APGD_SEED`), and takes ``steps`` steps with momentum 0.75 (none on the first) from a
    step size of 2ε. At each checkpoint (:func:`apgd_checkpoints`) the step size of an image
    halves, and the image returns to its best point so far (highest loss), when (1) at most
    ``rho`` × the window's steps increased the loss, or (2) its step size was not halved at the
    previous checkpoint and its best loss has not improved since.

    An image counts as broken once an iterate is misclassified (``argmax ≠ y``); its adversarial
    example is the last misclassified iterate. Images that the model misclassifies already
    unperturbed are returned as they are and not attacked; of the rest, each restart (``restarts``
    in all) attacks only those not yet broken. Returns ``x_adv``: the adversarial example of
    every broken image and ``x`` itself for the others (the official convention; an image
    returned unchanged was not broken).

    This follows the official code (``pyautoattack``) step for step, and the tests compare
    the two iterate by iterate. ``precision`` (as in :func:`pgd`): of the model's passes.
    ``trace``: a list to which each restart appends ``{"index": attacked images, "step_size":
    [steps, n]}`` (the step size of each iteration), for checking the schedule.
    """
    if norm not in APGD_NORMS:
        raise ValueError(f"norm must be one of {APGD_NORMS}, got {norm!r}")
    loss_fn = _apgd_loss(loss)
    _check_budget(eps, None, steps)
    if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 1:
        raise ValueError(f"restarts must be an int ≥ 1, got {restarts!r}")
    if not 0 < rho <= 1:
        raise ValueError(f"rho must be in (0, 1], got {rho!r}")
    x = _check_images(x).float()
    y = y.to(x.device)
    if y.shape != (len(x),):
        raise ValueError(f"y must hold one label per image, shape ({len(x)},); got "
                         f"{tuple(y.shape)}")
    precision = runtime.resolve_precision(precision, x.device)
    if generator is None:
        generator = torch.Generator(x.device).manual_seed(APGD_SEED)
    x_adv = x.clone()
    with frozen(model):
        with torch.no_grad(), runtime.autocast(x.device, precision):
            robust = model(x).argmax(1) == y
        for _ in range(restarts):
            idx = robust.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            found, broken, step_sizes = _apgd_run(model, x[idx], y[idx], loss_fn, eps=eps,
                                                  norm=norm, steps=steps, rho=rho,
                                                  generator=generator, precision=precision)
            x_adv[idx[broken]] = found[broken]
            robust[idx[broken]] = False
            if trace is not None:
                trace.append({"index": idx, "step_size": step_sizes})
    return x_adv.detach()


def apgd_ce_dlr(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
                steps: int = 100, restarts: int = 1, rho: float = APGD_RHO,
                generator: torch.Generator | None = None, precision: str = "fp32",
                batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Source C §3's attack: APGD-CE, then APGD-DLR on the images that survived it (the first
    two attacks of AutoAttack, run in its order). Returns ``(x_adv, robust)``: per image the
    adversarial example that broke it (``x`` where none did), and whether the model still
    classifies it correctly — checked again on the returned example, as AutoAttack does.

    ``generator``: draws the starting points of both attacks; without one, each attack gets a new
    generator seeded :data:`APGD_SEED` (as AutoAttack with ``seed=0`` reseeds every attack), so
    that with ``batch_size ≥ len(x)`` the result is AutoAttack's ``version="custom",
    attacks=["apgd-ce", "apgd-dlr"]`` (tested). ``batch_size``: images attacked at once (default
    :func:`cpu_chunk` on a CPU, :data:`EVAL_BATCH` on an accelerator). Other arguments as in
    :func:`apgd`.
    """
    x = _check_images(x).float()
    y = y.to(x.device)
    precision = runtime.resolve_precision(precision, x.device)
    if batch_size is None:
        batch_size = cpu_chunk(x, precision) or EVAL_BATCH
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an int ≥ 1 or None, got {batch_size!r}")

    @torch.no_grad()
    def correct(xs, ys):
        with runtime.autocast(x.device, precision):
            return torch.cat([model(xb).argmax(1) for xb in xs.split(batch_size)]) == ys

    x_adv = x.clone()
    with frozen(model):
        robust = correct(x, y)
        for loss in APGD_LOSSES:
            gen = generator
            if gen is None:
                gen = torch.Generator(x.device).manual_seed(APGD_SEED)
            for idx in robust.nonzero().squeeze(1).split(batch_size):
                adv = apgd(model, x[idx], y[idx], loss=loss, eps=eps, norm=norm, steps=steps,
                           restarts=restarts, rho=rho, generator=gen, precision=precision)
                fooled = ~correct(adv, y[idx])
                x_adv[idx[fooled]] = adv[fooled]
                robust[idx[fooled]] = False
    return x_adv.detach(), robust


def adversarial_accuracy(model, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                         **kwargs) -> float:
    """Source C's *adversarial accuracy* (§3): the fraction of ``x`` that the model still
    classifies correctly after APGD-CE and then APGD-DLR (:func:`apgd_ce_dlr`, whose keyword
    arguments it takes)."""
    _, robust = apgd_ce_dlr(model, x, y, eps=eps, **kwargs)
    return float(robust.float().mean())
