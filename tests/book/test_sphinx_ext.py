import importlib
from pathlib import Path

import yaml

from tsrobust.book.sphinx_ext import drop_duplicate_scripts

ROOT = Path(__file__).resolve().parents[2]


def test_duplicate_inline_scripts_are_dropped():
    class Js:
        def __init__(self, filename, **attributes):
            self.filename, self.attributes = filename, attributes

    context = {"script_files": [Js(None, body="const A = 1"), Js("", body="const A = 1"),
                                Js("a.js"), Js("a.js"), Js("", body="const B = 2")]}
    drop_duplicate_scripts(None, "p", "page.html", context, None)
    assert [(s.filename, s.attributes) for s in context["script_files"]] == [
        (None, {"body": "const A = 1"}), ("a.js", {}), ("", {"body": "const B = 2"})]


def test_the_book_config_names_importable_extensions():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    names = config["sphinx"]["extra_extensions"]
    assert "tsrobust.book.sphinx_ext" in names
    for name in names:
        assert callable(importlib.import_module(name).setup), name
