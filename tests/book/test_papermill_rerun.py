"""The README's plain papermill rerun completes on a chapter with a live widget, under CPU load.

A plain ``papermill`` run (no cell timeout, papermill's own kernel client) used to wait forever at
chapter 1's ``widgets.interactive`` cell: a headless client answers ``Output`` widgets itself on
the kernel's shell socket, and that traffic is where the cell's reply got missed. The chapters'
interactive figures now follow :func:`tsrobust.plotting.live_figure` (no ``Output`` widget);
these tests pin that pattern and run the README's command as a reader would.
"""

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDGET_CHAPTER = ROOT / "notebooks" / "01_specialization_toys.ipynb"
SMALL = ["-p", "n_train", "200", "-p", "steps", "200", "-p", "aug_repeats", "2"]
"""Chapter 1 at smoke size with smaller toys: a rerun is about the client, not the numbers."""
CELL_TIMEOUT_S = 120
"""A cell that takes longer than this has stalled (each takes seconds at these sizes)."""
OUTPUT_WIDGET_CALL = re.compile(
    r"\b(widgets\.)?(interactive|interact|interact_manual|interactive_output|Output)\s*\(")


def _code_files():
    yield from (ROOT / "tsrobust").rglob("*.py")
    yield from (ROOT / "notebooks").glob("*.py")


def test_no_chapter_or_package_code_builds_an_output_widget():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in _code_files()
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if OUTPUT_WIDGET_CALL.search(line) and "ipywidgets" in path.read_text()
             or re.search(r"from ipywidgets import .*\b(interact\w*|Output)\b", line)]
    assert not found, ("use tsrobust.plotting.live_figure (no Output widget, so a plain "
                       "papermill run cannot stall):\n" + "\n".join(found))


def test_readme_plain_papermill_rerun_completes_under_cpu_load(tmp_path):
    env = {"TSROBUST_RESULTS": str(tmp_path / "results")}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # a busy core
    seconds = []
    try:
        for seed in (3, 3, 3):  # the first run computes, the next two load its records
            out = tmp_path / f"out_{len(seconds)}.ipynb"
            start = time.monotonic()
            run = subprocess.run(
                [sys.executable, "-m", "papermill", str(WIDGET_CHAPTER), str(out),
                 "-p", "seed", str(seed), *SMALL, "--execution-timeout", str(CELL_TIMEOUT_S),
                 "--start-timeout", str(CELL_TIMEOUT_S)],
                cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                text=True, timeout=4 * CELL_TIMEOUT_S)
            seconds.append(time.monotonic() - start)
            assert run.returncode == 0, run.stderr[-3000:]
            state = json.loads(out.read_text())["metadata"]["widgets"][
                "application/vnd.jupyter.widget-state+json"]["state"]
            models = Counter(m["model_name"] for m in state.values())
            assert models["ImageModel"] >= 1 and models["IntSliderModel"] >= 2, models
            assert models["OutputModel"] == 0, models
    finally:
        busy.kill()
        busy.wait()
    assert len(seconds) == 3
