import pytest
import torch

from tsrobust.data import CIFAR10, NON_OFFICIAL
from tsrobust.runtime import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread in every test: the tensors are tiny, so thread hand-offs would
    dominate (and on a busy machine cost many times the work), and results that the resume tests
    compare bit for bit do not depend on the thread count."""
    with torch_threads(1):
        yield


@pytest.fixture
def tiny_cifar():
    """``tiny_cifar(n_train=64, n_test=32)``: random CIFAR-shaped images of two classes, class 1
    with a brighter red channel (learnable in a few epochs)."""

    def make(n_train=64, n_test=32):
        g = torch.Generator().manual_seed(0)

        def split(n):
            y = torch.randint(0, 2, (n,), generator=g)
            x = 0.6 * torch.rand(n, 3, 32, 32, generator=g)
            x[:, 0] += 0.4 * y[:, None, None]
            return x, y

        return CIFAR10(*split(n_train), *split(n_test), NON_OFFICIAL)

    return make
