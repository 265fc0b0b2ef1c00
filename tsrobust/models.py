"""The networks of the sources: source A's 4-layer conv ReLU nets with fan-out pruning, and the
ResNet-18 of source C.

**Source A (§5.1).** Every conv layer has a 3×3 kernel, stride 1 and no padding, so a 32×32 image
gives maps of 30, 28, 26, 24 pixels and the first layer sees the 30×30 patches of 27 dimensions of
§5.3. The last map is flattened (channel-major: all positions of channel 0, then channel 1, ...)
into a linear layer with 10 logits. BatchNorm is optional and off by default: the analysis of
§3–4 is about plain ReLU nodes, and a normalized layer would make "fan-out weight norm"
(footnote 3) depend on the statistics of the next layer.

The teacher is 64-64-64-64, trained on CIFAR-10 labels, then pruned to 45-32-32-20 by removing
the channels with the smallest fan-out weight norm. The student is 1.1× the pruned teacher
(50-35-35-22). The deeper variant (§5.1, Fig. 5) adds one more conv layer of 64 channels.

**Source C (§3, A.2).** :class:`ResNet18` for 32×32 images, see its docstring.
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


# -- ResNet-18 (source C) ----------------------------------------------------------------------

STEMS = ("cifar", "imagenet")
"""The first layers of :class:`ResNet18`: ``"cifar"`` a 3×3 stride-1 conv and no max-pool (the
CIFAR variant of source C's reference [9], A.2); ``"imagenet"`` torchvision's 7×7 stride-2 conv
and 3×3 stride-2 max-pool (§3 names torchvision's ResNet18)."""
RESNET_WIDTH = 64
"""Channels of the first stage of the standard ResNet-18; stages have 1, 2, 4, 8 times this."""
RESNET_BLOCKS = (2, 2, 2, 2)
"""Basic blocks per stage (He et al. 2016, Table 1: 18 layers)."""
STAGE_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4")
"""What :meth:`ResNet18.activations` returns, in order."""
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
"""Per-channel mean and standard deviation of the CIFAR-10 training pixels in [0, 1]; the default
normalization inside :class:`ResNet18` (source C does not say which it used)."""


class BasicBlock(nn.Module):
    """Two 3×3 convs with BatchNorm and a residual connection (He et al. 2016, Fig. 2):
    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, the shortcut a 1×1 conv + BatchNorm
    where the block changes the stride or the width, else the identity. Module names are
    torchvision's (``downsample`` for the shortcut), so its weights load as they are."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """ResNet-18 for 32×32 images in [0, 1] (source C §3, A.2; He et al. 2016).

    The source is two-minded about the network: §3 says it used "the TorchVision ResNet18
    implementation", A.2 that the architecture was chosen to match its reference [9] (Goldblum et
    al., adversarially robust distillation), whose ResNet-18 is the common CIFAR variant: a 3×3
    stride-1 first conv and no max-pool, so the four stages see 32, 16, 8 and 4 pixel maps.
    torchvision's stem (7×7 stride 2, then a stride-2 max-pool) would leave 8×8 maps for the first
    stage and 1×1 for the last. ``stem`` chooses (:data:`STEMS`); the default is the CIFAR one.

    ``width``: channels of the first stage (64 in the standard net; smaller for cheaper runs),
    the stages having 1, 2, 4, 8 × ``width``. Pixels are normalized inside the model,
    ``(x − mean) / std`` per channel (``mean``/``std`` default to CIFAR-10's; ``None`` for none),
    so attacks work on images in [0, 1] and their ε is in pixel units.

    Initialization (drawn from ``generator``, a CPU ``torch.Generator``; the global RNG is left
    as it was): PyTorch's default for conv and linear layers (weights U(±1/√fan_in), the linear
    bias too), as in the CIFAR implementation of [9]; BatchNorm weight 1, bias 0.
    """

    def __init__(self, *, num_classes: int = NUM_CLASSES, width: int = RESNET_WIDTH,
                 stem: str = "cifar", mean=CIFAR10_MEAN, std=CIFAR10_STD,
                 generator: torch.Generator | None = None):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be an int ≥ 1, got {width!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither (no normalization)")
        self.num_classes, self.width, self.stem = num_classes, width, stem
        self.normalized = mean is not None
        if self.normalized:  # not saved with the weights: torchvision's state dicts load as-is
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        with torch.random.fork_rng(devices=[]):  # the layers' own init draws from the global RNG
            if stem == "cifar":
                self.conv1 = nn.Conv2d(IN_CHANNELS, width, 3, 1, 1, bias=False)
                self.maxpool = nn.Identity()
            else:
                self.conv1 = nn.Conv2d(IN_CHANNELS, width, 7, 2, 3, bias=False)
                self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.bn1 = nn.BatchNorm2d(width)
            planes, layers = width, []
            for i, n in enumerate(RESNET_BLOCKS):
                out, stride = width * 2 ** i, 1 if i == 0 else 2
                blocks = [BasicBlock(planes, out, stride)]
                blocks += [BasicBlock(out, out) for _ in range(n - 1)]
                layers.append(nn.Sequential(*blocks))
                planes = out
            self.layer1, self.layer2, self.layer3, self.layer4 = layers
            self.fc = nn.Linear(planes, num_classes)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None):
        """PyTorch's default initialization drawn from ``generator`` (see the class docstring)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = 1 / math.sqrt(m.weight[0].numel())
                nn.init.uniform_(m.weight, -bound, bound, generator=generator)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalized:
            x = (x - self.mean) / self.std
        return self.maxpool(F.relu(self.bn1(self.conv1(x))))

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The representations after the stem and after each of the four stages
        (:data:`STAGE_NAMES`), ``[B, C, H, W]`` each: for the manifold analysis of §4.2, which
        follows adversarial ℓ∞ balls through the network's blocks."""
        maps = [self._stem(x)]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            maps.append(layer(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self._stem(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def extra_repr(self) -> str:
        return (f"width={self.width}, stem={self.stem!r}, num_classes={self.num_classes}, "
                f"normalized={self.normalized}")
