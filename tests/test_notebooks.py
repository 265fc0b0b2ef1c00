"""Every chapter is a paired notebook with a typed parameters cell, listed in the book."""

import ast
from pathlib import Path

import jupytext
import pytest
import yaml

from tsrobust.book.build import select_toc, toc_files

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_toc_notebook_exists_and_every_notebook_is_in_the_toc():
    in_toc = {f for f in toc_files(TOC) if f.startswith("notebooks/")}
    on_disk = {f"notebooks/{p.stem}" for p in SOURCES}
    assert in_toc == on_disk


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_in_sync_and_without_outputs(source):
    pair = source.with_suffix(".ipynb")
    assert pair.exists(), f"run: jupytext --sync {source.relative_to(ROOT)}"
    text, ipynb = jupytext.read(source), jupytext.read(pair)
    assert _cells(text) == _cells(ipynb), f"out of sync: run jupytext --sync {source.name}"
    assert all(not c.get("outputs") for c in ipynb.cells if c.cell_type == "code"), \
        f"{pair.name} must be committed without outputs"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_is_typed_and_checked(source):
    from papermill.inspection import _infer_parameters
    from papermill.iorw import load_notebook_node

    nb = load_notebook_node(str(source.with_suffix(".ipynb")))  # as papermill reads it
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = {p.name: p for p in _infer_parameters(nb)}
    assigned = {t.target.id for t in ast.parse(tagged[0].source).body if isinstance(t, ast.AnnAssign)}
    assert assigned == set(params), (
        f"papermill cannot read {sorted(assigned - set(params))}: annotate as "
        "`name: Optional[int] = None  # comment` (papermill does not parse `int | None`)"
    )
    assert params["profile"].inferred_type_name == "str" and params["profile"].default == '"smoke"'
    assert params["seed"].inferred_type_name == "int" and params["seed"].default == "0"
    for p in params.values():
        assert p.inferred_type_name != "None", f"parameter {p.name} needs a type annotation"
        assert p.help, f"parameter {p.name} needs a comment saying what it is"
    # the parameters are validated before any compute: the first code cell after them resolves
    after = nb.cells[nb.cells.index(tagged[0]) + 1:]
    first_code = next(c for c in after if c.cell_type == "code")
    assert "resolve(" in first_code.source, "validate parameters right after the parameters cell"


def test_select_toc_keeps_prose_and_chosen_chapters():
    toc = select_toc(TOC, ["01"])
    files = toc_files(toc)
    assert files[0] == TOC["root"]
    assert [f for f in files if f.startswith("notebooks/")] == ["notebooks/01_specialization_toys"]
    assert "book/reproducing" in files
