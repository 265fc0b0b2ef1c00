import json

import plotly.graph_objects as go
import pytest

from tsrobust import book
from tsrobust.plotting import PlotlyFigure
from tsrobust.sphinx_ext import drop_duplicate_scripts


def test_injected_parameters_cell_is_removed_from_the_book(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "profile = 'smoke'"},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "profile = 'gpu'"},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    book.hide_injected_parameters(path)
    cells = json.loads(path.read_text())["cells"]
    assert "remove-cell" not in cells[0]["metadata"]["tags"]
    assert cells[1]["metadata"]["tags"] == ["injected-parameters", "remove-cell"]


def test_plotly_html_draws_with_the_page_plotly_and_escapes_script_end():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="</script><b>x"))
    html = PlotlyFigure(fig).html()
    assert "if (window.Plotly) { draw(); return; }" in html
    assert html.count("</script>") == 1  # only the block's own end tag
    bundle = PlotlyFigure(fig)._repr_mimebundle_()
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["name"] == "</script><b>x"


def test_duplicate_inline_scripts_are_dropped():
    class Js:
        def __init__(self, filename, **attributes):
            self.filename, self.attributes = filename, attributes

    context = {"script_files": [Js(None, body="const A = 1"), Js("", body="const A = 1"),
                                Js("a.js"), Js("a.js"), Js("", body="const B = 2")]}
    drop_duplicate_scripts(None, "p", "page.html", context, None)
    assert [(s.filename, s.attributes) for s in context["script_files"]] == [
        (None, {"body": "const A = 1"}), ("a.js", {}), ("", {"body": "const B = 2"})]


def test_build_rejects_unknown_profile():
    with pytest.raises(book.BuildError, match="smoke, gpu, paper"):
        book.build("quick")


def test_cli_param_parsing():
    assert book._parse_params(["epochs=3", "widths=[1, 2]"]) == {"epochs": 3, "widths": [1, 2]}
    with pytest.raises(book.BuildError):
        book._parse_params(["epochs"])


def test_sliced_channel_polls_in_slices_and_keeps_the_deadline(monkeypatch):
    import asyncio
    import time
    from queue import Empty

    import zmq
    import zmq.asyncio
    from jupyter_client.session import Session

    from tsrobust import kernel

    monkeypatch.setattr(kernel, "POLL_SLICE_S", 0.05)
    polls = []

    async def run():
        ctx = zmq.asyncio.Context()
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        session = Session()
        channel = kernel.SlicedChannel(a, session)
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
    from tsrobust.kernel import SlicedChannel, SlicedKernelClient, SlicedKernelManager

    km = SlicedKernelManager(kernel_name="python3")
    assert km.client_factory is SlicedKernelClient
    client = km.client()
    assert client.shell_channel_class is SlicedChannel
    assert client.iopub_channel_class is SlicedChannel
