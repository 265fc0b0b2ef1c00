"""tsrobust.models: the conv nets of §5.1 and fan-out pruning (footnote 3)."""

from __future__ import annotations

import pytest
import torch

from tsrobust import models as M


def _x(n=3, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_student_is_1_1x_the_pruned_teacher():
    assert M.student_widths(M.PRUNED_WIDTHS) == M.STUDENT_WIDTHS == (50, 35, 35, 22)


def test_shapes_and_activations():
    net = M.ConvNet(M.STUDENT_WIDTHS, generator=torch.Generator().manual_seed(0))
    x = _x()
    with torch.no_grad():
        acts = net.activations(x)
    assert [tuple(a.shape) for a in acts] == [(3, 50, 30, 30), (3, 35, 28, 28), (3, 35, 26, 26),
                                               (3, 22, 24, 24)]
    assert all(float(a.min()) >= 0 for a in acts)  # post-ReLU
    # The logits read the last map flattened channel-major.
    assert torch.allclose(net(x), net.fc(acts[-1].flatten(1)), atol=1e-6)
    # The first layer sees 3×3×3 = 27-dim patches without padding (§5.3: 30×30 patches).
    patches = torch.nn.functional.unfold(x, 3).transpose(1, 2)  # [B, 900, 27]
    pre = patches @ net.convs[0].weight.flatten(1).T + net.convs[0].bias
    assert torch.allclose(acts[0].flatten(2).transpose(1, 2), pre.clamp_min(0), atol=1e-5)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_in_place_forward_has_the_gradients_of_an_out_of_place_one(batchnorm):
    """forward() overwrites each pre-activation with its ReLU; values and every gradient (input
    and parameters, BatchNorm in training mode included) equal those of activations(), which
    does not."""
    net = M.ConvNet(M.STUDENT_WIDTHS, batchnorm=batchnorm,
                    generator=torch.Generator().manual_seed(0)).train()
    x = _x(4)

    def grads(logits_of):
        xr = x.clone().requires_grad_(True)
        net.zero_grad()
        logits_of(xr).pow(2).sum().backward()
        return [xr.grad, *(p.grad.clone() for p in net.parameters())]

    ours = grads(net)
    ref = grads(lambda v: net.fc(net.activations(v)[-1].flatten(1)))
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(ours, ref))


def test_deep_variant_and_kinds():
    deep = M.build_student("deep")
    assert deep.widths == (50, 35, 35, 22, 64) and deep(_x(1)).shape == (1, 10)
    assert len(deep.activations(_x(1))) == 5
    assert M.build_teacher("deep").widths == (64,) * 5
    with pytest.raises(ValueError, match="kind must be"):
        M.build_student("wide")
    with pytest.raises(ValueError, match="widths must be"):
        M.ConvNet((4, 0))
    with pytest.raises(ValueError, match="has 4 layers"):
        M.build_student(widths=(5, 5))


def test_initialization_uses_only_the_generator():
    state = torch.random.get_rng_state()
    a = M.ConvNet((4, 5), generator=torch.Generator().manual_seed(1))
    b = M.ConvNet((4, 5), generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    bound = 1 / 27 ** 0.5  # PyTorch's default: U(±1/√fan_in)
    assert float(a.convs[0].weight.detach().abs().max()) <= bound


def _kill_fanout(net, dead):
    """Zero the fan-out weights of the channels in ``dead[l]`` (next conv's input slices; for the
    last layer the channel-major block of linear columns)."""
    with torch.no_grad():
        for l, chans in enumerate(dead):
            for k in chans:
                if l + 1 < len(net.convs):
                    net.convs[l + 1].weight[:, k] = 0
                else:
                    w = net.fc.weight.view(net.num_classes, net.widths[-1], -1)
                    w[:, k] = 0


@pytest.mark.parametrize("batchnorm", [False, True])
def test_pruning_channels_without_fanout_keeps_the_logits(batchnorm):
    torch.manual_seed(0)  # only for BatchNorm's running statistics below
    net = M.ConvNet((10, 9, 8, 7), batchnorm=batchnorm, generator=torch.Generator().manual_seed(2))
    if batchnorm:  # non-trivial running statistics and affine parameters
        net.train()
        net(_x(16, seed=5))
        with torch.no_grad():
            for n in net.norms:
                n.weight.uniform_(0.5, 1.5)
                n.bias.uniform_(-0.1, 0.1)
    net.eval()
    dead = [[0, 4, 9], [2, 3], [7], [1, 5, 6]]
    _kill_fanout(net, dead)
    keep = [[k for k in range(w) if k not in d] for w, d in zip(net.widths, dead)]
    pruned = M.prune_by_fanout(net, [len(k) for k in keep])
    assert [c.tolist() for c in M.kept_channels(net, pruned.widths)] == keep
    assert pruned.widths == (7, 7, 7, 4)
    x = _x(4)
    assert torch.allclose(pruned(x), net(x), atol=1e-5)
    # Control: pruning one more (live) channel per layer does change the logits.
    smaller = M.prune_by_fanout(net, [len(k) - 1 for k in keep])
    assert not torch.allclose(smaller(x), net(x), atol=1e-3)


def test_dead_channels_are_pruned_first_when_data_is_given():
    """A dead ReLU (never fires) keeps large fan-out weights; ranking by norm alone keeps it,
    ranking with the data prunes it, and removing dead channels leaves the logits unchanged."""
    net = M.ConvNet((6, 5), generator=torch.Generator().manual_seed(4)).eval()
    x = _x(8, seed=6)
    with torch.no_grad():
        # layer 0, channel 1 and layer 1, channel 3: pre-activation always negative
        net.convs[0].weight[1].zero_(), net.convs[0].bias.__setitem__(1, -1.0)
        net.convs[1].weight[3].zero_(), net.convs[1].bias.__setitem__(3, -1.0)
        # ... with the largest fan-out weights of their layers
        net.convs[1].weight[:, 1] *= 50
        net.fc.weight.view(10, 5, -1)[:, 3] *= 50
    alive = M.active_channels(net, x)
    assert alive[0].tolist() == [True, False, True, True, True, True]
    assert alive[1].tolist() == [True, True, True, False, True]
    assert 1 in M.kept_channels(net, (5, 4))[0].tolist()  # norm alone keeps the dead one
    keep = M.kept_channels(net, (5, 4), x)
    assert keep[0].tolist() == [0, 2, 3, 4, 5] and keep[1].tolist() == [0, 1, 2, 4]
    pruned = M.prune_by_fanout(net, (5, 4), x)
    assert torch.allclose(pruned(x), net(x), atol=1e-5)
    assert M.fanout_norms(net, x)[0][1] == 0


def test_last_layer_ranking_is_channel_major():
    net = M.ConvNet((4, 3), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        net.fc.weight.zero_()
        # Give channel 2 (channel-major block) all the fan-out; spatial-major reading would spread
        # it over all channels.
        net.fc.weight.view(10, 3, -1)[:, 2] = 1.0
    norms = M.fanout_norms(net)[-1]
    assert norms[2] > 0 and norms[0] == 0 and norms[1] == 0
    assert M.kept_channels(net, (4, 1))[-1].tolist() == [2]


def test_prune_rejects_wider_or_other_depth():
    net = M.ConvNet((4, 4))
    with pytest.raises(ValueError, match="cannot prune"):
        M.prune_by_fanout(net, (5, 4))
    with pytest.raises(ValueError, match="cannot prune"):
        M.prune_by_fanout(net, (4,))


# -- ResNet-18 (source C) -----------------------------------------------------------------------

def test_resnet18_has_the_standard_cifar_parameter_count():
    """The CIFAR ResNet-18 of the literature (3×3 stem, 10 classes) has 11,173,962 parameters;
    torchvision's stem adds 3·64·(49 − 9) = 7,680 weights."""
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(M.ResNet18()) == 11_173_962
    assert count(M.ResNet18(stem="imagenet")) == 11_173_962 + 7_680
    # width w, C classes, counted by hand: convs 27w (stem) + 2724w² (stages: 36 + 128 + 512 +
    # 2048, shortcuts included), BatchNorm 2·75w, classifier 8w·C + C
    for w, c in ((64, 10), (16, 100), (5, 3)):
        assert count(M.ResNet18(width=w, num_classes=c)) == 27 * w + 2724 * w * w + 150 * w \
            + 8 * w * c + c
    small = M.ResNet18(width=16)
    assert small.fc.in_features == 128 and small.conv1.out_channels == 16


@pytest.mark.parametrize("stem, sizes", [("cifar", (32, 32, 16, 8, 4)),
                                         ("imagenet", (8, 8, 4, 2, 1))])
def test_resnet18_stages_shapes_and_strides(stem, sizes):
    net = M.ResNet18(width=8, stem=stem, generator=torch.Generator().manual_seed(0)).eval()
    x = _x(2)
    with torch.no_grad():
        maps = net.activations(x)
        logits = net(x)
    assert len(maps) == len(M.STAGE_NAMES) == 5
    assert [tuple(m.shape) for m in maps] == [
        (2, c, s, s) for c, s in zip((8, 8, 16, 32, 64), sizes)]
    assert logits.shape == (2, 10)
    # the logits read the last stage, averaged over positions
    assert torch.allclose(logits, net.fc(maps[-1].mean((2, 3))), atol=1e-5)


def test_resnet18_normalizes_inside_and_its_init_uses_only_the_generator():
    state = torch.random.get_rng_state()
    a = M.ResNet18(width=4, generator=torch.Generator().manual_seed(3))
    b = M.ResNet18(width=4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = M.ResNet18(width=4, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    # normalization inside: the net on x equals the unnormalized net on (x − mean)/std
    raw = M.ResNet18(width=4, mean=None, std=None, generator=torch.Generator().manual_seed(3))
    x = _x(2)
    mean = torch.tensor(M.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(M.CIFAR10_STD).view(1, 3, 1, 1)
    a.eval(), raw.eval()
    with torch.no_grad():
        assert torch.allclose(a(x), raw((x - mean) / std), atol=1e-5)
        assert not torch.allclose(a(x), raw(x), atol=1e-3)
    assert "mean" not in a.state_dict()  # normalization constants are not weights
    with pytest.raises(ValueError, match="stem must be"):
        M.ResNet18(stem="tiny")
    with pytest.raises(ValueError, match="width must be"):
        M.ResNet18(width=0)


def test_resnet18_blocks_are_residual():
    """A block whose second BatchNorm outputs zero passes its input through the ReLU only."""
    net = M.ResNet18(width=4).eval()
    block = net.layer1[0]
    with torch.no_grad():
        block.bn2.weight.zero_(), block.bn2.bias.zero_()
        h = torch.randn(2, 4, 8, 8)
        assert torch.equal(block(h), h.relu())
    assert block.downsample is None and net.layer2[0].downsample is not None


def test_resnet18_equals_torchvision_with_its_weights():
    """Optional: where torchvision is importable (it is never required), its resnet18 with the
    same weights gives the same logits as ours on normalized inputs."""
    tv = pytest.importorskip("torchvision.models")
    ref = tv.resnet18(num_classes=10).eval()
    ours = M.ResNet18(stem="imagenet").eval()
    ours.load_state_dict(ref.state_dict())
    x = _x(2)
    mean = torch.tensor(M.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(M.CIFAR10_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref((x - mean) / std), atol=1e-5)


def test_normalization_constants_are_cifar10s(cifar_root):
    from tsrobust.data import load_cifar10

    x = load_cifar10(cifar_root, download=False, progress=False).x_train
    mean = x.mean(dim=(0, 2, 3))
    std = x.permute(1, 0, 2, 3).flatten(1).std(dim=1)
    assert torch.allclose(mean, torch.tensor(M.CIFAR10_MEAN), atol=2e-3)
    assert torch.allclose(std, torch.tensor(M.CIFAR10_STD), atol=2e-3)
