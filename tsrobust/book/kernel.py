"""The Jupyter kernel client the book build executes notebooks with.

A notebook client waits for each cell's reply by polling the kernel's sockets. With an ``Output``
widget in a cell (``widgets.interactive`` has one), the client, playing that widget's front end,
sends ``comm_msg`` updates on the shell socket while it polls the same socket for the reply, and
that poll now and then misses the wake-up: the kernel has replied and is idle, yet the client
sleeps until its timeout runs out, and then finds the reply waiting (jupyter/nbclient#312).
Without a timeout it waits forever. The book's figures no longer use ``Output`` widgets
(:func:`tsrobust.plotting.live_figure`), so a plain papermill run is safe; this client stays as
the build's second guard. :class:`SlicedChannel` polls
in slices of :data:`POLL_SLICE_S`, so a missed wake-up costs at most one slice. The overall
timeout is kept: a slice that finds nothing just polls again until the deadline.

:class:`SlicedKernelManager` is passed to papermill as ``kernel_manager_class``; its clients
use :class:`SlicedChannel` for the shell and IOPub sockets.
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type, default

POLL_SLICE_S = 1.0
"""Longest single wait on a kernel socket, in seconds."""


class SlicedChannel(AsyncZMQSocketChannel):
    """A kernel socket channel whose ``get_msg`` polls in slices of at most ``POLL_SLICE_S``."""

    async def get_msg(self, timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE_S if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(POLL_SLICE_S, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class SlicedKernelClient(AsyncKernelClient):
    """An asynchronous kernel client with :class:`SlicedChannel` shell and IOPub channels."""

    shell_channel_class = Type(SlicedChannel)
    iopub_channel_class = Type(SlicedChannel)


class SlicedKernelManager(AsyncKernelManager):
    """An asynchronous kernel manager whose clients are :class:`SlicedKernelClient`."""

    @default("client_factory")
    def _sliced_client(self):
        return SlicedKernelClient
