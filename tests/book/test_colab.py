"""The Colab cell: the same in every chapter, cloning the book's commit, pins Colab accepts."""

import re
from pathlib import Path

import jupytext
import pytest

from tsrobust.book.colab import REPOSITORY, colab_cell, pin_commit

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))
tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_chapter_opens_with_the_colab_cell(source):
    nb = jupytext.read(source)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == colab_cell(), f"{source.name}: paste tsrobust.book.colab.colab_cell()"
    assert "remove-cell" in code[0].metadata.get("tags", [])
    assert "parameters" in code[1].metadata.get("tags", [])  # before the parameters cell


def test_the_cell_clones_shallow_at_the_commit_installs_and_works_inside():
    cell = colab_cell()
    assert '"--depth", "1"' in cell and REPOSITORY in cell
    assert 'BOOK_COMMIT = "HEAD"' in cell and '"fetch", "-q", "--depth", "1", "origin", BOOK_COMMIT' in cell
    assert '"pip", "install", "-q", "-e", repo]' in cell  # no extras: Colab's packages stay
    assert "os.chdir(repo)" in cell and "DRIVE_RESULTS = False" in cell
    assert "TSROBUST_RESULTS" in cell and "drive.mount" in cell
    assert "git+https" not in cell  # no longer the default branch's package without its records
    compile(cell, "colab cell", "exec")  # plain Python


def test_the_repository_is_the_books():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == REPOSITORY


def test_pin_commit_names_a_clean_commit_and_leaves_head_otherwise():
    cell = colab_cell()
    pinned = pin_commit(cell, "0123456789ab")
    assert 'BOOK_COMMIT = "0123456789ab"' in pinned and pinned.count("BOOK_COMMIT") == cell.count(
        "BOOK_COMMIT")
    assert pin_commit(cell, "0123456789ab+dirty") == cell  # no commit holds uncommitted code
    assert pin_commit(cell, "unknown (not a git checkout)") == cell
    with pytest.raises(ValueError, match="Colab cell"):
        pin_commit("print(1)", "0123456789ab")


def test_colab_install_does_not_upgrade_its_ipywidgets_7():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    spec = next(d for d in project["dependencies"] if d.startswith("ipywidgets"))
    low = re.search(r">=\s*([0-9.]+)", spec).group(1)
    assert int(low.split(".")[0]) <= 7, f"{spec} would upgrade Colab's pinned ipywidgets 7.x"
    assert "<9" in spec.replace(" ", "")


def test_the_cell_does_nothing_off_colab(tmp_path, monkeypatch):
    import importlib.util
    import os

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("google") else real(name, *a))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(colab_cell(), "colab cell", "exec"), namespace)  # noqa: S102
    assert os.getcwd() == str(tmp_path) and "repo" not in namespace
    # and where no "google" package exists at all, asking for google.colab must not raise
    monkeypatch.setattr(importlib.util, "find_spec", real)
    if real("google") is None:
        exec(compile(colab_cell(), "colab cell", "exec"), {})  # noqa: S102
