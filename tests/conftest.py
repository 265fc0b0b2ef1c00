import pytest

from tsrobust.runtime import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op torch thread in every test: the tensors are tiny, so thread hand-offs would
    dominate (and on a busy machine cost many times the work), and results that the resume tests
    compare bit for bit do not depend on the thread count."""
    with torch_threads(1):
        yield
