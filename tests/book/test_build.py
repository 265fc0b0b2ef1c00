import json

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
