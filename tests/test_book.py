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
