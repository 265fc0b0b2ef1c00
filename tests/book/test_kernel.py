import asyncio
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from tsrobust.book import kernel
from tsrobust.book.kernel import SlicedChannel, SlicedKernelClient, SlicedKernelManager


def test_sliced_channel_polls_in_slices_and_keeps_the_deadline(monkeypatch):
    monkeypatch.setattr(kernel, "POLL_SLICE_S", 0.05)
    polls = []

    async def run():
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        session = Session()
        channel = SlicedChannel(a, session)
        real_poll = a.poll

        async def counted_poll(timeout=None, *args, **kwargs):
            polls.append(timeout)
            return await real_poll(timeout, *args, **kwargs)

        monkeypatch.setattr(a, "poll", counted_poll)
        try:
            start = time.monotonic()
            with pytest.raises(Empty):  # nothing sent: Empty once the whole timeout has passed
                await channel.get_msg(timeout=0.3)
            waited = time.monotonic() - start
            n_polls = len(polls)
            session.send(b, "execute_reply", {"status": "ok"})
            msg = await channel.get_msg(timeout=5)  # a message that is there comes back
            return waited, n_polls, msg
        finally:
            a.close(0), b.close(0)
            ctx.term()

    waited, n_polls, msg = asyncio.run(run())
    assert waited >= 0.3 and n_polls >= 5  # several short polls, not one long one
    assert all(t <= 50 for t in polls)  # every poll at most one slice (ms)
    assert msg["content"] == {"status": "ok"}


def test_sliced_kernel_manager_makes_sliced_clients():
    km = SlicedKernelManager(kernel_name="python3")
    assert km.client_factory is SlicedKernelClient
    client = km.client()
    assert client.shell_channel_class is SlicedChannel
    assert client.iopub_channel_class is SlicedChannel
