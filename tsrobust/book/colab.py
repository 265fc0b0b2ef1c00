"""The Colab cell every chapter opens with, kept here once and checked in every notebook.

On Colab the cell clones this repository (shallow) at the book's commit, installs it and works
inside the clone, so that the committed records (``results/``), chapter 3's recorded teacher and
the commit (for provenance) are there; elsewhere it does nothing. It has to run before the package
is installed, so it is plain Python with no import from ``tsrobust``.

- ``BOOK_COMMIT``: ``"HEAD"`` in the committed notebooks (a clone of the default branch, what a
  plain checkout has); the book build writes the commit it was built from into the executed
  notebook (:func:`pin_commit`), so a downloaded chapter clones exactly the code that made it.
- ``DRIVE_RESULTS``: set it to ``True`` on Colab to keep ``results/`` on Google Drive
  (``MyDrive/tsrobust-results``; the committed records are copied there once), so that what a
  run computed survives a recycled runtime.
- The install keeps Colab's own packages: ``pip install -e <clone>`` without extras, whose pins
  (``ipywidgets>=7.6,<9`` …) Colab's versions already satisfy, so nothing is upgraded.
"""

from __future__ import annotations

import re


COLAB_CELL = '''# On Colab: clone this book at its commit, install it and work inside the clone (committed
# records, chapter 3's teacher, the commit); elsewhere this cell does nothing.
import importlib.util
import os
import subprocess
import sys

BOOK_COMMIT = "HEAD"  # the commit the book was built from; HEAD: the default branch
DRIVE_RESULTS = False  # Colab: True keeps results/ on Google Drive, past a recycled runtime
if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
    repo, git = "/content/tsrobust", ["git", "-C", "/content/tsrobust"]
    if not os.path.isdir(repo):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "{url}", repo], check=True)
        if BOOK_COMMIT != "HEAD":
            subprocess.run(git + ["fetch", "-q", "--depth", "1", "origin", BOOK_COMMIT], check=True)
            subprocess.run(git + ["checkout", "-q", "FETCH_HEAD"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", repo], check=True)
    os.chdir(repo)
    sys.path.insert(0, repo)
    if DRIVE_RESULTS:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["TSROBUST_RESULTS"] = "/content/drive/MyDrive/tsrobust-results"
        if not os.path.isdir(os.environ["TSROBUST_RESULTS"]):
            subprocess.run(["cp", "-r", "results", os.environ["TSROBUST_RESULTS"]], check=True)'''
"""The cell's source, with ``{url}`` the repository (``_config.yml``'s ``repository.url``)."""

REPOSITORY = "https://github.com/tsrobust/tsrobust"


def colab_cell(url: str = REPOSITORY) -> str:
    """The Colab cell for the repository at ``url``."""
    return COLAB_CELL.replace("{url}", url)


def pin_commit(source: str, commit: str) -> str:
    """``source`` (a notebook's text) with the Colab cell's ``BOOK_COMMIT`` set to ``commit``;
    a commit with uncommitted changes (``+dirty``) or none (``unknown …``) leaves ``HEAD``."""
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return source
    old = 'BOOK_COMMIT = "HEAD"'
    if source.count(old) != 1:
        raise ValueError("the notebook has no (or more than one) Colab cell with BOOK_COMMIT")
    return source.replace(old, f'BOOK_COMMIT = "{commit}"')
