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
