"""Confidence-calibrated adversarial training (CCAT, Stutz et al. 2020) in the teacher-student
form of source A §5.6.

CCAT trains on adversarial examples whose label is *calibrated* by how far they moved: with
``λ(δ) = (1 − min(1, ‖δ‖∞/ε))^ρ`` the target of ``x + δ`` is

    ỹ = λ(δ) · onehot(y) + (1 − λ(δ)) / K,

the one-hot label at δ = 0, fading to the uniform distribution as ‖δ‖∞ reaches ε (ρ sets how
fast). In source A's teacher-student form the *confidence* an attack maximizes is the largest
logit gap between student and teacher, ``δ = argmax_{‖δ‖∞ ≤ ε} max_k |s_k(x + δ) − t_k(x + δ)|``,
and y is the teacher's label.

- :func:`transition`, :func:`calibrated_labels`, :func:`soft_cross_entropy`: λ(δ), ỹ and the
  cross-entropy to a soft label.
- :func:`logit_gap_objective`: ``max_k |s_k − t_k|`` per sample, an objective for
  :func:`tsrobust.attacks.pgd`.
- :func:`confidence_attack`: that δ by ℓ∞ PGD, optionally inside a smaller ball per image.
- :func:`ccat_batch`: one training batch — a clean part with the teacher's one-hot labels and an
  adversarial part with ỹ.

What source A does not give (Stutz et al.'s clean/adversarial mix, how δ is drawn) is an
argument here: ``clean_fraction`` (Stutz et al.'s code trains on half clean, half adversarial
batches: :data:`CLEAN_FRACTION`) and ``random_radius`` (attack each image inside ``r·ε`` with
``r ~ U(0, 1)``, so that ‖δ‖∞ and with it λ cover their whole range; without it sign-gradient PGD
reaches ‖δ‖∞ = ε within a few steps and nearly every adversarial target is the uniform one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tsrobust import attacks, runtime

CLEAN_FRACTION = 0.5
"""Share of each training batch kept clean (with one-hot labels); the rest is attacked."""
CCAT_KEYS = ("eps", "alpha", "steps", "rho", "clean_fraction", "random_radius")
"""The keys of a CCAT configuration (``train_student(ccat=...)``, :func:`ccat_batch`)."""


def transition(delta: torch.Tensor, eps: float, rho: float) -> torch.Tensor:
    """λ(δ) = (1 − min(1, ‖δ‖∞/ε))^ρ per sample (§5.6): 1 for δ = 0, 0 from ‖δ‖∞ = ε on.
    ``delta``: perturbations ``[B, ...]``; returns ``[B]`` (float32)."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    if not rho > 0:
        raise ValueError(f"rho must be > 0, got {rho!r}")
    norm = delta.detach().flatten(1).abs().amax(1).float()
    return (1 - (norm / eps).clamp(max=1.0)).pow(rho)


def calibrated_labels(labels: torch.Tensor, lam: torch.Tensor, num_classes: int) -> torch.Tensor:
    """ỹ = λ · onehot(y) + (1 − λ)/K (§5.6), ``[B, K]``: each row a probability vector."""
    if labels.shape != lam.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and λ {tuple(lam.shape)} must match")
    onehot = F.one_hot(labels, num_classes).float()
    lam = lam.float()[:, None]
    return lam * onehot + (1 - lam) / num_classes


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``−Σ_k ỹ_k log softmax(logits)_k`` (cross-entropy to soft labels)."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def logit_gap_objective(student, teacher) -> attacks.Objective:
    """Per sample ``max_k |s_k(x) − t_k(x)|``, the ℓ∞ distance between the two nets' logits:
    the confidence the teacher-student CCAT attack maximizes (§5.6)."""

    def objective(x: torch.Tensor) -> torch.Tensor:
        return (student(x).float() - teacher(x).float()).abs().amax(1)

    return objective


def confidence_attack(student, teacher, x: torch.Tensor, *, eps: float, alpha: float,
                      steps: int, radius: torch.Tensor | None = None,
                      generator: torch.Generator, precision: str = "fp32") -> torch.Tensor:
    """``x + δ`` with ``δ`` maximizing :func:`logit_gap_objective` by ℓ∞ PGD (random start)
    inside the ball of radius ``ε`` — or ``radius[i] · ε`` for image i when ``radius`` (values in
    [0, 1]) is given.

    The smaller balls reuse :func:`tsrobust.attacks.pgd` by a change of variables: PGD runs on
    ``z`` in the ε-ball around ``x`` and the objective is read at ``x + r (z − x)``, which lies
    in the ``r·ε``-ball and, as a convex combination of two points of [0, 1]ᵈ, in the image box
    (the box that ``z`` keeps is a little tighter than the one ``x + δ`` could reach). The
    whole batch is one pass (the objective holds the batch's ``x`` and ``r``)."""
    objective = logit_gap_objective(student, teacher)
    if radius is None:
        return attacks.pgd(objective, x, eps=eps, alpha=alpha, steps=steps, norm="linf",
                           generator=generator, precision=precision)
    if radius.shape != (len(x),) or bool(((radius < 0) | (radius > 1)).any()):
        raise ValueError(f"radius must hold one value in [0, 1] per image, shape ({len(x)},)")
    r = radius.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))

    def scaled(z: torch.Tensor) -> torch.Tensor:
        return objective(x + r * (z - x))

    z = attacks.pgd(scaled, x, eps=eps, alpha=alpha, steps=steps, norm="linf",
                    generator=generator, precision=precision)
    return (x + r * (z - x)).detach()


def ccat_batch(student, teacher, x: torch.Tensor, *, eps: float, alpha: float, steps: int,
               rho: float, clean_fraction: float = CLEAN_FRACTION, random_radius: bool = True,
               generator: torch.Generator,
               precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """One CCAT batch in the teacher-student form (§5.6): ``(inputs, soft targets)``.

    y is the teacher's label of each clean image. The first ``round(clean_fraction · B)``
    images stay clean with target onehot(y); the others are replaced by
    :func:`confidence_attack` (each inside ``r·ε``, ``r ~ U(0, 1)`` drawn from ``generator``,
    when ``random_radius``; else inside ε) with target ỹ = :func:`calibrated_labels` at
    λ(δ) = :func:`transition`. Put the student in eval mode for the attack."""
    if not 0 <= clean_fraction <= 1:
        raise ValueError(f"clean_fraction must be in [0, 1], got {clean_fraction!r}")
    precision = runtime.resolve_precision(precision, x.device)
    with torch.no_grad(), runtime.autocast(x.device, precision):
        t = teacher(x).float()
    labels, k = t.argmax(1), t.shape[1]
    n_clean = round(clean_fraction * len(x))
    x_clean, x_adv = x[:n_clean], x[n_clean:]
    if len(x_adv):
        radius = (torch.rand(len(x_adv), generator=generator, device=x.device)
                  if random_radius else None)
        x_adv = confidence_attack(student, teacher, x_adv, eps=eps, alpha=alpha, steps=steps,
                                  radius=radius, generator=generator, precision=precision)
    lam = torch.cat([torch.ones(n_clean, device=x.device),
                     transition(x_adv - x[n_clean:], eps, rho)])
    return torch.cat([x_clean, x_adv]), calibrated_labels(labels, lam, k)
