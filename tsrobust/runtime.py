"""How the computations run on the CPU."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` intra-op CPU threads inside the block (0: leave torch's setting), then
    restore the previous count.

    The small networks of the toy chapters gain nothing from splitting their matrix products over
    threads, and on a CPU shared with other processes one thread is often many times faster than
    threads that wait for each other.
    """
    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
