import json
from pathlib import Path

import pytest

from tsrobust.book import build


def test_injected_parameters_cell_is_removed_from_the_book(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "profile = 'smoke'"},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "profile = 'gpu'"},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps(nb))
    build.hide_injected_parameters(path)
    cells = json.loads(path.read_text())["cells"]
    assert "remove-cell" not in cells[0]["metadata"]["tags"]
    assert cells[1]["metadata"]["tags"] == ["injected-parameters", "remove-cell"]


def test_build_rejects_unknown_profile():
    with pytest.raises(build.BuildError, match="smoke, cpu, gpu, paper"):
        build.build("quick")


def test_cli_param_parsing():
    assert build._parse_params(["epochs=3", "widths=[1, 2]"]) == {"epochs": 3, "widths": [1, 2]}
    with pytest.raises(build.BuildError):
        build._parse_params(["epochs"])


def test_the_offline_script_ships_with_the_package():
    assert (build.STATIC / "tsrobust-offline.js").is_file()


def test_execute_writes_the_build_commit_into_the_colab_cell(tmp_path, monkeypatch):
    import shutil

    import jupytext
    import papermill

    B = build
    ran = {}

    def fake_execute(src, out, **kw):
        ran["input"] = jupytext.read(src)
        shutil.copy(src, out)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(B, "git_commit", lambda: "0123456789ab")
    root = Path(__file__).resolve().parents[2]
    nb = root / "notebooks" / "01_specialization_toys.ipynb"
    B.execute(nb, tmp_path / "out.ipynb", {"profile": "smoke"}, tmp_path)
    colab = next(c for c in ran["input"].cells if c.cell_type == "code")
    assert 'BOOK_COMMIT = "0123456789ab"' in colab.source
    monkeypatch.setattr(B, "git_commit", lambda: "0123456789ab+dirty")  # uncommitted: HEAD
    B.execute(nb, tmp_path / "out.ipynb", {"profile": "smoke"}, tmp_path)
    colab = next(c for c in ran["input"].cells if c.cell_type == "code")
    assert 'BOOK_COMMIT = "HEAD"' in colab.source
