"""The robust-feature dataset of source A, appendix A.11 (after Ilyas et al. 2019).

Ilyas et al. make a *robust* dataset from a robustly trained model M: for each training image x,
an image x_r whose representation ``f_M(x_r)`` matches ``f_M(x)``, found by gradient descent
from another image or from noise; a model trained on the x_r learns only the features M
relies on. In the teacher-student setting the x_r could fall into another class *of the
teacher*, so source A adds a term that keeps the teacher's logits L_t (Eq. 35):

    x_r = argmin_{x_r}  α ‖L_t(x_r) − L_t(x)‖² + ‖f_M(x) − f_M(x_r)‖²,   α = 0.5.

- :func:`representation`: f_M, the input of the linear read-out (the last conv layer's
  post-ReLU map, flattened) — Ilyas et al.'s penultimate layer.
- :func:`robust_feature_objective`: Eq. 35 per sample, as a closure of ``x_r``.
- :func:`robust_features`: the x_r of a batch of targets, by Adam on the pixels projected to
  [0, 1] after each step (the source gives no optimizer; Ilyas et al. take normalized gradient
  steps), with the batch's mean objective before and after every step.
- :func:`start_images`: the starting points: other images of the same set, or uniform noise.
"""

from __future__ import annotations

import torch

from tsrobust import runtime
from tsrobust.attacks import frozen

ALPHA = 0.5
"""Weight α of the teacher-logit term (A.11: "α = 0.5 for the default setting")."""
STARTS = ("image", "noise")
"""Where x_r starts: another image of the set, or uniform noise in [0, 1] (A.11: "from a randomly
selected image or random noise")."""


def representation(model, x: torch.Tensor) -> torch.Tensor:
    """f_M(x): the last conv layer's post-ReLU map, flattened ``[B, D]`` — what the linear
    read-out of a :class:`tsrobust.models.ConvNet` sees."""
    return model.activations(x)[-1].flatten(1)


def robust_feature_objective(model, teacher, x: torch.Tensor, *, alpha: float = ALPHA,
                             precision: str = "fp32"):
    """Eq. 35 as a closure: ``objective(x_r)`` → per-sample
    ``α ‖L_t(x_r) − L_t(x)‖² + ‖f_M(x) − f_M(x_r)‖²`` ``[B]`` for the targets ``x``
    (their teacher logits and representations are computed once, without gradients)."""
    if not alpha >= 0:
        raise ValueError(f"alpha must be ≥ 0, got {alpha!r}")
    precision = runtime.resolve_precision(precision, x.device)
    with torch.no_grad(), runtime.autocast(x.device, precision):
        logits_x = teacher(x).float()
        rep_x = representation(model, x).float()

    def objective(x_r: torch.Tensor) -> torch.Tensor:
        with runtime.autocast(x_r.device, precision):
            logit_term = (teacher(x_r).float() - logits_x).pow(2).sum(1)
            rep_term = (representation(model, x_r).float() - rep_x).pow(2).sum(1)
        return alpha * logit_term + rep_term

    return objective


def start_images(x: torch.Tensor, start: str, generator: torch.Generator) -> torch.Tensor:
    """Starting points for the targets ``x``: ``"image"`` — another image of ``x`` for each
    (a random permutation shifted by one, so no image starts from itself when ``len(x) > 1``);
    ``"noise"`` — uniform noise in [0, 1]."""
    if start == "noise":
        return torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if start != "image":
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    perm = torch.randperm(len(x), generator=generator, device=generator.device).to(x.device)
    out = torch.empty_like(x)
    out[perm] = x[perm.roll(1)]
    return out


def robust_features(model, teacher, x: torch.Tensor, x_start: torch.Tensor, *, steps: int,
                    lr: float, alpha: float = ALPHA,
                    precision: str = "fp32") -> tuple[torch.Tensor, list[float]]:
    """The robust-feature images x_r of the targets ``x`` (Eq. 35), from ``x_start``: ``steps``
    Adam steps of rate ``lr`` on the pixels, each followed by the projection onto [0, 1].
    Returns ``(x_r, objective)``: ``objective[i]`` is the batch's mean Eq. 35 after ``i`` steps
    (``objective[0]`` at the start). ``model`` and ``teacher`` are frozen meanwhile."""
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int ≥ 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if x.shape != x_start.shape:
        raise ValueError(f"x {tuple(x.shape)} and x_start {tuple(x_start.shape)} must match")
    with frozen(model, teacher):
        objective = robust_feature_objective(model, teacher, x, alpha=alpha, precision=precision)
        x_r = x_start.detach().clone().clamp(0, 1).requires_grad_(True)
        opt = torch.optim.Adam([x_r], lr=lr)
        history = []
        for _ in range(steps):
            loss = objective(x_r)
            history.append(float(loss.detach().mean()))
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            with torch.no_grad():
                x_r.clamp_(0, 1)
        with torch.no_grad():
            history.append(float(objective(x_r).mean()))
    return x_r.detach(), history
