"""Build the book: papermill executes the notebooks, Jupyter Book renders them, Chromium checks.

    python -m tsrobust.book build --profile smoke        # execute + render (+ browser check)
    python -m tsrobust.book build --chapters 01 02       # only some chapters
    python -m tsrobust.book check                        # browser check of a built book
    python -m tsrobust.book run --executor slurm         # each chapter a Slurm job (cluster.py)
    python -m tsrobust.book costs                        # what each profile costs

The build stages a copy of the book in ``_build/src`` (executed notebooks, prose pages, the
vendored JavaScript), renders it with ``execute_notebooks: off`` and Sphinx warnings as errors
into ``_build/html``, and prints the seconds each chapter took.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import plotly

from tsrobust.book.browser_check import check_book
from tsrobust.book.colab import pin_commit
from tsrobust.io import atomic_write
from tsrobust.params import PROFILES
from tsrobust.results import git_commit

BUILD = Path("_build")
STATIC = Path(__file__).parent / "static"
"""The book's own JavaScript (``tsrobust-offline.js``), shipped as package data."""
VENDOR_NPM = {
    # package@version: (file or folder in the package, name under the vendored folder)
    "@jupyter-widgets/html-manager@1.0.15": ("dist", "html-manager"),
    "requirejs@2.3.7": ("require.js", "require.js"),
    "mathjax@3.2.2": ("es5", "mathjax"),
}
"""Offline JavaScript of the static book: widget manager, its AMD loader and MathJax."""
SMOKE_CELL_TIMEOUT_S = 600
"""A smoke-profile cell that runs longer than this is stuck: fail instead of waiting forever
(gpu/paper cells may legitimately run for hours and get no limit)."""
KERNEL_START_TIMEOUT_S = 300
"""How long a notebook's kernel may take to start (papermill waits 60 s by default, too short on
a busy machine or a cluster node loading the environment from a network filesystem)."""


class BuildError(RuntimeError):
    pass


def book_root() -> Path:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "_config.yml").exists():
            return folder
    raise BuildError("run this from the book's folder (the one with _toc.yml and _config.yml)")


def toc_files(toc: dict) -> list[str]:
    """All files of a jb-book table of contents, in reading order."""
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def select_toc(toc: dict, chapters: list[str] | None) -> dict:
    """The table of contents with only the notebooks whose name starts with one of ``chapters``."""
    if not chapters:
        return toc

    def keep(entry):
        name = Path(entry.get("file", "")).name
        return not entry.get("file", "").startswith("notebooks/") or any(
            name.startswith(c) for c in chapters
        )

    parts = []
    for part in toc.get("parts", []):
        kept = [e for e in part.get("chapters", []) if keep(e)]
        if kept:
            parts.append({**part, "chapters": kept})
    return {**toc, "parts": parts}


def vendor(dest: Path, cache: Path) -> None:
    """Copy the offline JavaScript into ``dest``: plotly.js from the installed plotly wheel, the
    book's own ``tsrobust-offline.js``, and the npm packages of ``VENDOR_NPM`` (installed once
    into ``cache`` with npm)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", dest)
    shutil.copy2(STATIC / "tsrobust-offline.js", dest)
    modules = cache / "node_modules"
    wanted = [spec.rsplit("@", 1) for spec in VENDOR_NPM]
    if not all((modules / name / "package.json").exists() for name, _ in wanted):
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError(
                "npm is needed once to fetch the offline JavaScript of the book "
                f"({', '.join(VENDOR_NPM)}); install Node.js (e.g. conda install nodejs)"
            )
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(cache),
             *VENDOR_NPM], check=True,
        )
    for spec, (src, name) in VENDOR_NPM.items():
        pkg = spec.rsplit("@", 1)[0]
        path = modules / pkg / src
        if path.is_dir():
            shutil.copytree(path, dest / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.map", "*.LICENSE.txt"))
        else:
            shutil.copy2(path, dest / name)


def hide_injected_parameters(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the book does not show it."""
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def execute(notebook: Path, out: Path, parameters: dict, cwd: Path,
            cell_timeout: int | None = None) -> float:
    """Execute one paired notebook (its py:percent source) with papermill; return seconds."""
    import jupytext
    import papermill

    from tsrobust.book.kernel import SlicedKernelManager  # jupyter_client comes with papermill

    source = notebook.with_suffix(".py")
    staged_input = cwd / BUILD / "input" / f"{notebook.stem}.ipynb"
    staged_input.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(source)
    for cell in nb.cells:  # the Colab cell clones the commit this book is built from
        if cell.cell_type == "code" and 'BOOK_COMMIT = "HEAD"' in cell.source:
            cell.source = pin_commit(cell.source, git_commit())
    jupytext.write(nb, staged_input, fmt="ipynb")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(staged_input), str(out), parameters=parameters, kernel_name="python3",
        cwd=str(cwd), progress_bar=False, log_output=False, execution_timeout=cell_timeout,
        kernel_manager_class=SlicedKernelManager, start_timeout=KERNEL_START_TIMEOUT_S,
    )
    seconds = time.perf_counter() - start
    hide_injected_parameters(out)
    return seconds


def plan(root: Path, chapters=None) -> tuple[dict, list[str], list[str]]:
    """The table of contents of a build of ``chapters`` (all if ``None``), its files in reading
    order, and the notebooks among them."""
    import yaml

    toc = select_toc(yaml.safe_load((root / "_toc.yml").read_text()), chapters)
    files = toc_files(toc)
    notebooks = [f for f in files if f.startswith("notebooks/")]
    if chapters and not notebooks:
        raise BuildError(f"no notebook in _toc.yml starts with {chapters}")
    return toc, files, notebooks


def stage(root: Path, toc: dict) -> Path:
    """Lay out ``_build/src`` afresh: configuration, table of contents, prose pages and the
    vendored JavaScript (the executed notebooks are added by :func:`execute`)."""
    import yaml

    src = root / BUILD / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy2(root / "_config.yml", src / "_config.yml")
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    shutil.copytree(root / "book", src / "book")
    vendor(src / "vendor", root / BUILD / "npm")
    return src


def cell_timeout(profile: str) -> int | None:
    """The per-cell limit of a profile's execution (:data:`SMOKE_CELL_TIMEOUT_S` for smoke)."""
    return SMOKE_CELL_TIMEOUT_S if profile == "smoke" else None


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise BuildError(f"--profile {profile!r} is not one of {', '.join(PROFILES)}")


def build(profile: str, chapters=None, parameters=None, check: bool = True) -> dict[str, float]:
    """Execute and render the book; return the seconds of each chapter."""
    check_profile(profile)
    root = book_root()
    toc, files, notebooks = plan(root, chapters)
    src = stage(root, toc)

    seconds: dict[str, float] = {}
    failed: list[str] = []
    params = {"profile": profile, **(parameters or {})}
    for nb in notebooks:
        name = Path(nb).name
        print(f"[book] executing {nb} (profile {profile}) ...", flush=True)
        try:
            seconds[name] = execute(root / f"{nb}.ipynb", src / f"{nb}.ipynb", params, root,
                                    cell_timeout(profile))
        except Exception as err:  # papermill raises its own error types; report and go on
            seconds[name] = float("nan")
            failed.append(f"{nb}: {type(err).__name__}: {str(err).strip()[-2000:]}")
        print(f"[book] {nb}: {seconds[name]:.1f} s", flush=True)
    if failed:
        print_table(seconds)
        raise BuildError("notebooks failed:\n" + "\n".join(failed))
    render(root, src, files, whole_book=not chapters, check=check, seconds=seconds)
    print_table(seconds)
    return seconds


def render(root: Path, src: Path, files: list[str], *, whole_book: bool, check: bool,
           seconds: dict[str, float]) -> Path:
    """Render the staged book ``src`` with Jupyter Book (Sphinx warnings are errors) into
    ``_build/html``, then (``check``) load its pages ``files`` in headless Chromium; adds the
    seconds of each step to ``seconds``."""
    start = time.perf_counter()
    html = root / BUILD / "html"
    if html.exists():
        shutil.rmtree(html)
    run = subprocess.run(
        [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(src), "--path-output", str(src),
         "-W", "-n", "--keep-going"],
    )
    if run.returncode != 0:
        raise BuildError("jupyter-book build failed (warnings are errors); see the log above")
    shutil.copytree(src / "_build" / "html", html)
    seconds["(render)"] = time.perf_counter() - start
    if check:
        start = time.perf_counter()
        check_book(html, root / BUILD / "screenshots", pages=files, whole_book=whole_book)
        seconds["(browser check)"] = time.perf_counter() - start
    return html


def print_table(seconds: dict[str, float]) -> None:
    width = max(len(k) for k in seconds) if seconds else 10
    print("\n" + "chapter".ljust(width) + "   seconds")
    for name, s in seconds.items():
        print(f"{name.ljust(width)}   {s:8.1f}")
    print(f"{'total'.ljust(width)}   {sum(v for v in seconds.values() if v == v):8.1f}")


def _parse_params(pairs):
    import yaml

    out = {}
    for pair in pairs or []:
        key, _, raw = pair.partition("=")
        if not key or not _:
            raise BuildError(f"-p takes NAME=VALUE (a YAML value), got {pair!r}")
        out[key] = yaml.safe_load(raw)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tsrobust.book", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute the notebooks and render the book")
    b.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)}")
    b.add_argument("--chapters", nargs="*", help="only notebooks whose name starts with these")
    b.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="extra notebook parameter for every chapter (papermill -p)")
    b.add_argument("--no-check", action="store_true", help="skip the browser check")
    r = sub.add_parser("run", help="execute each chapter as a cluster job (submitit), then "
                       "render the book (see tsrobust.book.cluster)")
    r.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)}")
    r.add_argument("--executor", default="local", choices=("slurm", "local"),
                   help="slurm: submit to Slurm; local: run the jobs as local subprocesses")
    r.add_argument("--chapters", nargs="*", help="only notebooks whose name starts with these")
    r.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="extra notebook parameter for every chapter (papermill -p)")
    r.add_argument("--partition", help="Slurm partition")
    r.add_argument("--gpus-per-job", type=int, default=0, help="GPUs of each chapter's job")
    r.add_argument("--cpus-per-job", type=int, help="CPU cores of each chapter's job")
    r.add_argument("--mem-gb", type=int, help="memory of each chapter's job")
    r.add_argument("--timeout-min", type=int, default=60,
                   help="time limit of each job; a job stopped by it is resubmitted and resumes")
    r.add_argument("--results", help="results root for the jobs (default: the book's results/)")
    r.add_argument("--poll-s", type=float, default=10.0, help="seconds between status polls")
    r.add_argument("--no-check", action="store_true", help="skip the browser check")
    sub.add_parser("costs", help="print the table of what each profile costs: measured from "
                   "the committed records, else estimated from FLOPs (tsrobust.book.costs)")
    c = sub.add_parser("check", help="load every page of a built book in headless Chromium")
    c.add_argument("--html", default=str(BUILD / "html"))
    c.add_argument("--screenshots", default=str(BUILD / "screenshots"))
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.profile, args.chapters, _parse_params(args.param), check=not args.no_check)
        elif args.command == "run":
            from tsrobust.book.cluster import run

            run(args.profile, args.executor, args.chapters, _parse_params(args.param),
                check=not args.no_check, partition=args.partition,
                gpus_per_job=args.gpus_per_job, cpus_per_job=args.cpus_per_job,
                timeout_min=args.timeout_min, mem_gb=args.mem_gb, results=args.results,
                poll_s=args.poll_s)
        elif args.command == "costs":
            from tsrobust.book.costs import costs_markdown

            print(costs_markdown(book_root() / "results"))
        else:
            import yaml

            root = book_root()
            built = toc_files(yaml.safe_load((root / BUILD / "src" / "_toc.yml").read_text()))
            full = toc_files(yaml.safe_load((root / "_toc.yml").read_text()))
            check_book(Path(args.html), Path(args.screenshots), pages=built,
                       whole_book=built == full)
    except (BuildError, AssertionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
