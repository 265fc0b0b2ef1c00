"""The 4-layer conv ReLU teacher and students of source A §5.1, and fan-out pruning (footnote 3).

Every conv layer has a 3×3 kernel, stride 1 and no padding, so a 32×32 image gives maps of
30, 28, 26, 24 pixels and the first layer sees the 30×30 patches of 27 dimensions of §5.3. The last
map is flattened (channel-major: all positions of channel 0, then channel 1, ...) into a linear
layer with 10 logits. BatchNorm is optional and off by default: the analysis of §3–4 is about
plain ReLU nodes, and a normalized layer would make "fan-out weight norm" (footnote 3) depend on
the statistics of the next layer.

The teacher is 64-64-64-64, trained on CIFAR-10 labels, then pruned to 45-32-32-20 by removing
the channels with the smallest fan-out weight norm. The student is 1.1× the pruned teacher
(50-35-35-22). The deeper variant (§5.1, Fig. 5) adds one more conv layer of 64 channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

KERNEL_SIZE = 3
IMAGE_SIZE = 32
IN_CHANNELS = 3
NUM_CLASSES = 10

TEACHER_WIDTHS = (64, 64, 64, 64)
"""The teacher before pruning (§5.1)."""
PRUNED_WIDTHS = (45, 32, 32, 20)
"""The teacher after pruning the inactive channels (§5.1, footnote 3)."""
STUDENT_SCALE = 1.1
"""The student is 1.1× the pruned teacher (§5.1)."""
STUDENT_WIDTHS = (50, 35, 35, 22)
"""The student of §5.1: ``student_widths(PRUNED_WIDTHS)``."""
DEEP_EXTRA_WIDTH = 64
"""§5.1: the deeper network adds "one more Conv layer with channel size as 64" (Fig. 5)."""
DEEP_TEACHER_WIDTHS = TEACHER_WIDTHS + (DEEP_EXTRA_WIDTH,)
DEEP_PRUNED_WIDTHS = PRUNED_WIDTHS + (DEEP_EXTRA_WIDTH,)
"""Our reading of Fig. 5 (the text gives no pruned widths for it): the extra 64-channel layer is
appended after the fourth layer, in teacher and student alike, and is not pruned or scaled."""
DEEP_STUDENT_WIDTHS = STUDENT_WIDTHS + (DEEP_EXTRA_WIDTH,)


def student_widths(pruned: Sequence[int], scale: float = STUDENT_SCALE) -> tuple[int, ...]:
    """Student widths: ``scale`` × the pruned teacher's, rounded half up (§5.1: 1.1×)."""
    return tuple(int(math.floor(scale * w + 0.5)) for w in pruned)


def _check_widths(widths) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of ints ≥ 1, got {widths!r}")
    if IMAGE_SIZE - (KERNEL_SIZE - 1) * len(widths) < 1:
        raise ValueError(f"{len(widths)} unpadded 3×3 layers leave no pixel of a 32×32 image")
    return widths


class ConvNet(nn.Module):
    """Conv(3×3, no padding) → [BatchNorm] → ReLU, per width; flatten → linear to the logits.

    ``generator``: a CPU ``torch.Generator`` for the initialization (PyTorch's default
    distribution); without one the global RNG is used.
    """

    def __init__(self, widths: Sequence[int], *, num_classes: int = NUM_CLASSES,
                 batchnorm: bool = False, in_channels: int = IN_CHANNELS,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.widths = _check_widths(widths)
        self.batchnorm = bool(batchnorm)
        self.num_classes = num_classes
        chans = (in_channels, *self.widths)
        # skip_init: the layers' own initialization would draw from the global RNG.
        self.convs = nn.ModuleList(
            nn.utils.skip_init(nn.Conv2d, chans[i], chans[i + 1], KERNEL_SIZE)
            for i in range(len(self.widths))
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(w) if batchnorm else nn.Identity() for w in self.widths
        )
        self.map_size = IMAGE_SIZE - (KERNEL_SIZE - 1) * len(self.widths)
        self.fc = nn.utils.skip_init(nn.Linear, self.widths[-1] * self.map_size ** 2,
                                     num_classes)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None):
        """PyTorch's default initialization of conv and linear layers (weights and biases
        uniform in ±1/√fan_in), drawn from ``generator``. (He initialization makes this
        normalization-free net diverge at the learning rates used here.)"""
        for layer in (*self.convs, self.fc):
            bound = 1 / math.sqrt(layer.weight[0].numel())
            nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
            nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        for norm in self.norms:
            if isinstance(norm, nn.BatchNorm2d):
                norm.reset_parameters()

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-ReLU maps of every conv layer, ``[B, widths[l], H_l, W_l]`` (for NC, §5.2)."""
        maps = []
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place ReLU: the pre-activation is not needed by any backward pass (conv and
        # BatchNorm keep their inputs), so overwriting it saves one map-sized write per layer.
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)), inplace=True)
        return self.fc(x.flatten(1))

    def extra_repr(self) -> str:
        return f"widths={self.widths}, batchnorm={self.batchnorm}"


PRUNE_BATCH = 500
"""Images per forward pass when :func:`active_channels` scans the data."""


@torch.no_grad()
def active_channels(model: ConvNet, x: torch.Tensor, *,
                    batch_size: int = PRUNE_BATCH) -> list[torch.Tensor]:
    """Per conv layer, a bool mask of the channels whose post-ReLU output is non-zero somewhere
    on the images ``x``. A channel that is zero everywhere (a *dead* ReLU) passes nothing on, and
    no gradient reaches its fan-out weights, so they keep their size from initialization."""
    mode = model.training
    model.eval()
    try:
        alive = None
        for xb in x.split(batch_size):
            fired = [a.amax(dim=(0, 2, 3)) > 0 for a in model.activations(xb)]
            alive = fired if alive is None else [a | f for a, f in zip(alive, fired)]
    finally:
        model.train(mode)
    if alive is None:
        raise ValueError("x holds no images")
    return alive


def fanout_norms(model: ConvNet, x: torch.Tensor | None = None) -> list[torch.Tensor]:
    """ℓ2 norm of each channel's fan-out weights, per conv layer (footnote 3).

    For layer l < L−1: the slice ``W_{l+1}[:, k]`` of the next conv. For the last layer: the
    columns of the linear layer that read channel k — a flattened map is channel-major, so they
    are ``fc.weight.view(classes, K, H, W)[:, k]``. With images ``x``, a channel that never fires
    on them (:func:`active_channels`) gets norm 0: its fan-out weights carry nothing.
    """
    norms = []
    for nxt in model.convs[1:]:
        norms.append(nxt.weight.detach().pow(2).sum(dim=(0, 2, 3)).sqrt())
    w = model.fc.weight.detach().view(model.num_classes, model.widths[-1], model.map_size,
                                      model.map_size)
    norms.append(w.pow(2).sum(dim=(0, 2, 3)).sqrt())
    if x is not None:
        norms = [n * a.to(n.device, n.dtype) for n, a in zip(norms, active_channels(model, x))]
    return norms


def kept_channels(model: ConvNet, widths: Sequence[int],
                  x: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Indices (ascending) of the ``widths[l]`` channels of largest fan-out norm, per layer
    (channels dead on the images ``x``, if given, rank last)."""
    widths = _check_widths(widths)
    if len(widths) != len(model.widths) or any(k > w for k, w in zip(widths, model.widths)):
        raise ValueError(
            f"cannot prune widths {model.widths} to {widths}: need the same number of layers "
            f"and no layer wider than before"
        )
    return [n.argsort(descending=True, stable=True)[:k].sort().values
            for n, k in zip(fanout_norms(model, x), widths)]


@torch.no_grad()
def prune_by_fanout(model: ConvNet, widths: Sequence[int],
                    x: torch.Tensor | None = None) -> ConvNet:
    """A copy of ``model`` keeping, in each conv layer, the ``widths[l]`` channels with the largest
    fan-out weight norm (footnote 3: a channel is inactive when its fan-out weights are small).

    ``x``: images on which to check activity. A dead channel (zero output on all of ``x``) is
    inactive whatever its fan-out norm, so it is pruned first: without this, a teacher trained
    briefly keeps dead channels whose untrained fan-out weights outrank live ones.

    Removing a channel removes its conv filter and bias (and BatchNorm entries), the matching
    input slice of the next conv, and, for the last layer, the channel-major block of linear
    columns. A channel whose fan-out weights are all zero contributes nothing, so pruning only
    such channels leaves the logits unchanged.
    """
    keep = kept_channels(model, widths, x)
    pruned = ConvNet(widths, num_classes=model.num_classes, batchnorm=model.batchnorm,
                     in_channels=model.convs[0].in_channels, generator=torch.Generator())
    pruned.to(device=model.fc.weight.device, dtype=model.fc.weight.dtype)
    prev = torch.arange(model.convs[0].in_channels, device=model.fc.weight.device)
    for l, idx in enumerate(keep):
        src, dst = model.convs[l], pruned.convs[l]
        dst.weight.copy_(src.weight[idx][:, prev])
        dst.bias.copy_(src.bias[idx])
        if model.batchnorm:
            s, d = model.norms[l], pruned.norms[l]
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(d, name).copy_(getattr(s, name)[idx])
            d.num_batches_tracked.copy_(s.num_batches_tracked)
        prev = idx
    w = model.fc.weight.view(model.num_classes, model.widths[-1], -1)[:, prev]
    pruned.fc.weight.copy_(w.reshape(model.num_classes, -1))
    pruned.fc.bias.copy_(model.fc.bias)
    return pruned.train(model.training)


def build_teacher(kind: str = "teacher", *, batchnorm: bool = False,
                  generator: torch.Generator | None = None) -> ConvNet:
    """The unpruned teacher: ``"teacher"`` 64-64-64-64, or ``"deep"`` with a fifth 64 layer."""
    widths = {"teacher": TEACHER_WIDTHS, "deep": DEEP_TEACHER_WIDTHS}
    if kind not in widths:
        raise ValueError(f"kind must be 'teacher' or 'deep', got {kind!r}")
    return ConvNet(widths[kind], batchnorm=batchnorm, generator=generator)


def build_student(kind: str = "student", *, widths: Sequence[int] | None = None,
                  batchnorm: bool = False, generator: torch.Generator | None = None) -> ConvNet:
    """The student of §5.1: ``"student"`` 50-35-35-22, or ``"deep"`` 50-35-35-22-64 (Fig. 5).

    ``widths`` overrides the widths of that kind (same number of layers).
    """
    default = {"student": STUDENT_WIDTHS, "deep": DEEP_STUDENT_WIDTHS}
    if kind not in default:
        raise ValueError(f"kind must be 'student' or 'deep', got {kind!r}")
    if widths is not None and len(tuple(widths)) != len(default[kind]):
        raise ValueError(
            f"a {kind!r} student has {len(default[kind])} layers; got widths {tuple(widths)}"
        )
    return ConvNet(default[kind] if widths is None else widths, batchnorm=batchnorm,
                   generator=generator)
