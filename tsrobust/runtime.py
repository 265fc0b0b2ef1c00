"""Where and how the computations run: the device, the CPU thread count."""

from __future__ import annotations

import contextlib

import torch

DEVICES = ("auto", "cpu", "cuda")


def choose_device(name="auto") -> torch.device:
    """The torch device for ``name``: ``"cpu"``, ``"cuda"`` (``"cuda:1"`` …), ``"auto"`` (the GPU
    where CUDA is available, else the CPU), or a :class:`torch.device`, returned as it is.

    The one place where the package chooses a device; asking for CUDA on a machine without it
    fails here with a message that says what to do, not later inside a kernel.
    """
    if isinstance(name, torch.device):
        return name
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or name.split(":")[0] not in DEVICES[1:]:
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available; "
                         "use 'cpu' or 'auto'")
    return torch.device(name)


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
