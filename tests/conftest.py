import importlib
import os

import pytest
import torch

from tsrobust.data import BATCHES_DIR, CIFAR10, DATA_ENV, NON_OFFICIAL, default_root
from tsrobust.runtime import torch_threads

TORCHATTACKS = "pip install --no-deps torchattacks==3.5.1"
"""How the reference library for PGD and FGSM is installed: without its dependencies, which would
pull a torchvision (and with it perhaps another torch build) that nothing here uses, so it is in
neither pyproject.toml nor environment.yml. README.md, environment.yml and .ci/run give this
command (tests/test_environment.py)."""

RBO = "pip install --no-deps rbo==0.1.3"
"""How the reference for average overlap (rank-biased overlap at p = 1) is installed: without its
dependencies, because rbo 0.1.3 pins numpy < 2 (it runs on numpy 2), so like torchattacks it is in
neither dependency list, and README.md, environment.yml and .ci/run give this command."""

REFERENCE_INSTALLS = (TORCHATTACKS, RBO)

PYAUTOATTACK = "pip install pyautoattack==0.2.0"
"""The official AutoAttack code (Croce & Hein), the tests' reference for APGD: it declares no
dependencies, so it installs with the ``[test]`` extra."""

REQUIRE_ENV = "TSROBUST_REQUIRE_REFERENCES"
"""Set to 1 (as CI does) to turn a missing reference library or CIFAR-10 copy from a skip into a
failure: where the references exist, a test that silently skips them proves nothing."""


def _missing(what: str):
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{what} ({REQUIRE_ENV} is set, so this is a failure, not a skip)")
    pytest.skip(what)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread in every test: the tensors are tiny, so thread hand-offs would
    dominate (and on a busy machine cost many times the work), and results that the resume tests
    compare bit for bit do not depend on the thread count."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def reference():
    """``reference(module, install)``: import a test-only reference library, or skip (fail under
    ``TSROBUST_REQUIRE_REFERENCES=1``) saying how to install it."""

    def get(module: str, install: str):
        try:
            return importlib.import_module(module)
        except ImportError:
            _missing(f"reference library {module!r} is not installed: {install}")

    return get


@pytest.fixture(scope="session")
def cifar_root():
    """The folder holding ``cifar-10-batches-py/``, or skip (fail under
    ``TSROBUST_REQUIRE_REFERENCES=1``)."""
    root = default_root()
    if not (root / BATCHES_DIR).is_dir():
        _missing(f"no CIFAR-10 copy under {root} (set ${DATA_ENV} to the folder holding "
                 f"{BATCHES_DIR}/)")
    return root


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
