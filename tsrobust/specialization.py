"""Student specialization metrics (source A, §4.1 "activation-check" and §5.2).

A student node k *specializes* to a teacher node j when their activations over a data set are
strongly correlated. The normalized correlation (NC) of §5.2 is the Pearson correlation of the two
activation vectors; for conv layers every (image, position) pair is one sample.
"""

from __future__ import annotations

import numpy as np
import torch

VARIANCE_FLOOR = 1e-7
"""Floor on an activation's variance, so that a dead node (constant output) gets NC = 0."""


def _as_samples(acts) -> torch.Tensor:
    """[N, K] or conv maps [B, K, H, W] → [samples, K] float64."""
    acts = torch.as_tensor(np.asarray(acts) if not torch.is_tensor(acts) else acts)
    acts = acts.detach().to(torch.float64)
    if acts.ndim == 4:
        acts = acts.permute(0, 2, 3, 1).reshape(-1, acts.shape[1])
    elif acts.ndim != 2:
        raise ValueError(
            f"activations must be [N, K] or conv maps [B, K, H, W]; got shape {tuple(acts.shape)}"
        )
    return acts


def normalized_correlation(student_acts, teacher_acts) -> torch.Tensor:
    """Normalized correlation matrix NC[k, j] between student node k and teacher node j (§5.2).

    Both inputs are activations over the same samples: [N, K] or conv maps [B, K, H, W] (batch ×
    positions are the samples). Returns the Pearson correlation, [K_student, K_teacher], with each
    node's variance floored at ``VARIANCE_FLOOR``.
    """
    s, t = _as_samples(student_acts), _as_samples(teacher_acts)
    if s.shape[0] != t.shape[0]:
        raise ValueError(
            f"student and teacher activations must cover the same samples: "
            f"{s.shape[0]} vs {t.shape[0]}"
        )
    n = s.shape[0]
    s = s - s.mean(0)
    t = t - t.mean(0)
    cov = s.T @ t / n
    std_s = (s.pow(2).mean(0)).clamp_min(VARIANCE_FLOOR).sqrt()
    std_t = (t.pow(2).mean(0)).clamp_min(VARIANCE_FLOOR).sqrt()
    return (cov / std_s[:, None] / std_t[None, :]).to(torch.float32)


def best_nc(nc: torch.Tensor) -> torch.Tensor:
    """Best normalized correlation (BNC) of each teacher node: max over student nodes, [K_teacher]."""
    return torch.as_tensor(nc).max(dim=0).values


def mbnc(nc: torch.Tensor) -> float:
    """Mean best normalized correlation (MBNC): the mean of ``best_nc`` over teacher nodes (§5.2)."""
    return float(best_nc(nc).mean())
