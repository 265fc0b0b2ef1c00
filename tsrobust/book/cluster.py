"""The book's chapters as cluster jobs: ``python -m tsrobust.book run``.

    python -m tsrobust.book run --profile paper --executor slurm --partition gpu --gpus-per-job 1
    python -m tsrobust.book run --profile smoke --executor local --chapters 01 02

Each chapter's execution — :func:`tsrobust.book.build.execute`, the same papermill call with the
same kernel client and parameters as ``python -m tsrobust.book build`` — is one job of
`submitit <https://github.com/facebookincubator/submitit>`_, the Python client of Slurm
(``--executor slurm``) whose local executor (``--executor local``) runs the same jobs as local
subprocesses. The command submits them all, shows which chapters are queued, running, done or
failed (with their log files), and renders the book once every job has ended.

A job that Slurm stops at its time limit or pre-empts is resubmitted (submitit's checkpointing:
:class:`ChapterJob` is a ``submitit.helpers.Checkpointable``) and executes its chapter again,
which loads the results already recorded (:func:`tsrobust.results.record`) and resumes a training
run from its last epoch checkpoint (:mod:`tsrobust.training`). A chapter whose job failed is
reported with the end of its log; the book is rendered without it and a page, *Not in this
build*, names it. Records are written atomically (:mod:`tsrobust.io`), so a killed job leaves no
half-written record, and two jobs recording the same result leave one complete pair of files
(:func:`tsrobust.results.save`).

submitit is an optional dependency (``pip install -e ".[cluster]"``); jobs run with the Python
of the submitting process, so the cluster's nodes must see the same environment and the book's
folder on a shared filesystem.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tsrobust.book.build import (
    BUILD,
    BuildError,
    book_root,
    cell_timeout,
    check_profile,
    execute,
    plan,
    print_table,
    render,
    stage,
)
from tsrobust.results import RESULTS_ENV

try:
    import submitit
except ImportError:  # optional: only ``run`` needs it
    submitit = None

EXECUTORS = ("slurm", "local")
JOBS = BUILD / "jobs"
"""Where submitit keeps the jobs' pickles and logs (``<job id>_0_log.out`` / ``.err``)."""
LOG_TAIL_LINES = 40
"""Lines of a failed job's log shown in the report."""
MISSING_PAGE = "missing"
"""The page (``missing.md`` in the staged book) that names the chapters a build lacks."""
QUEUED_STATES = frozenset({"PENDING", "REQUEUED", "CONFIGURING", "REQUEUE_HOLD", "RESIZING",
                           "SUSPENDED", "UNKNOWN", "READY"})
"""Slurm job states (as submitit reports them) of a job that waits for its turn."""


def _need_submitit():
    if submitit is None:
        raise BuildError('the run command needs submitit: pip install -e ".[cluster]"')
    return submitit


def _stop_children() -> None:
    """Kill this process's children (the notebook's kernel): a resubmitted job must not race a
    kernel of its previous attempt for the same checkpoint folder. (Slurm ends every process of
    a requeued job itself; the local executor ends only the job's own process.)"""
    import psutil  # a dependency of ipykernel

    children = psutil.Process().children(recursive=True)
    for child in children:
        child.kill()
    psutil.wait_procs(children, timeout=10)


_Base = submitit.helpers.Checkpointable if submitit is not None else object


class ChapterJob(_Base):
    """One chapter's execution as a submitit job (a callable that submitit pickles).

    ``results``: the results root the chapter records into (``$TSROBUST_RESULTS`` in the job;
    default: the book's ``results/``). On a time limit or pre-emption submitit calls
    :meth:`checkpoint`, which stops the kernel and resubmits this same call.
    """

    def __init__(self, root, notebook, out, parameters: dict, timeout_s: int | None = None,
                 results=None):
        self.root, self.notebook, self.out = str(root), str(notebook), str(out)
        self.parameters, self.timeout_s = dict(parameters), timeout_s
        self.results = None if results is None else str(results)

    def __call__(self) -> float:
        if self.results is not None:
            os.environ[RESULTS_ENV] = self.results  # the kernel inherits it
        print(f"[job] executing {self.notebook} with {self.parameters}", flush=True)
        seconds = execute(Path(self.notebook), Path(self.out), self.parameters, Path(self.root),
                          self.timeout_s)
        print(f"[job] done in {seconds:.1f} s", flush=True)
        return seconds

    def checkpoint(self, *args, **kwargs):
        print("[job] interrupted: stopping the kernel, resubmitting", flush=True)
        _stop_children()
        return super().checkpoint(*args, **kwargs)


def make_executor(kind: str, folder: Path, *, partition=None, gpus_per_job: int = 0,
                  cpus_per_job: int | None = None, timeout_min: int = 60, mem_gb=None):
    """A submitit executor for ``kind`` (``slurm`` or ``local``) keeping its files in
    ``folder``."""
    if kind not in EXECUTORS:
        raise BuildError(f"--executor {kind!r} is not one of {', '.join(EXECUTORS)}")
    if timeout_min <= 0:
        raise BuildError(f"--timeout-min must be positive, got {timeout_min}")
    if gpus_per_job < 0:
        raise BuildError(f"--gpus-per-job must be 0 or more, got {gpus_per_job}")
    sm = _need_submitit()
    executor = sm.AutoExecutor(folder=folder, cluster=kind)
    params = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_job, "nodes": 1,
              "tasks_per_node": 1}
    if cpus_per_job:
        params["cpus_per_task"] = cpus_per_job
    if mem_gb:
        params["mem_gb"] = mem_gb
    if partition:
        if kind != "slurm":
            raise BuildError("--partition is a Slurm option; the local executor has none")
        params["slurm_partition"] = partition
    executor.update_parameters(**params)
    return executor


@dataclass
class Submitted:
    notebook: str
    job: object
    status: str = "queued"

    @property
    def name(self) -> str:
        return Path(self.notebook).name

    def logs(self) -> str:
        return f"{self.job.paths.stdout} / {self.job.paths.stderr.name}"


def status_of(job) -> str:
    """``queued``, ``running``, ``done`` or ``failed``."""
    if job.done():
        return "failed" if job.exception() is not None else "done"
    return "queued" if job.state.upper() in QUEUED_STATES else "running"


def log_tail(job, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` of a job's error and output logs."""
    parts = []
    for what, path in (("stderr", job.paths.stderr), ("stdout", job.paths.stdout)):
        text = path.read_text(errors="replace") if path.exists() else ""
        tail = "\n".join(text.rstrip().splitlines()[-lines:])
        parts.append(f"--- end of {what} ({path}) ---\n{tail or '(empty)'}")
    return "\n".join(parts)


def wait(jobs: list[Submitted], *, poll_s: float = 5.0, out=None) -> None:
    """Poll the jobs until all have ended, printing each change of a chapter's status (with its
    log files) and a one-line count."""
    out = out or sys.stdout
    first = True
    while True:
        changed = False
        for j in jobs:
            if j.status in ("done", "failed"):
                continue
            new = status_of(j.job)
            if new != j.status or first:
                j.status = new
                changed = True
                print(f"[run] {j.name}: {new} (job {j.job.job_id}, log {j.logs()})", file=out,
                      flush=True)
        first = False
        if changed:
            counts = {s: sum(j.status == s for j in jobs)
                      for s in ("queued", "running", "done", "failed")}
            print("[run] " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=out,
                  flush=True)
        if all(j.status in ("done", "failed") for j in jobs):
            return
        time.sleep(poll_s)


def missing_page(failed: dict[str, str]) -> str:
    """The text of the page naming the chapters a build lacks and why."""
    lines = ["# Not in this build", "",
             "These chapters were submitted but their jobs failed, so this build of the book does "
             "not contain them (their records, if any, are complete ones from earlier runs):", ""]
    for nb, log in failed.items():
        lines.append(f"- `{nb}`: job log `{log}`")
    return "\n".join(lines) + "\n"


def drop_notebooks(toc: dict, drop: set[str]) -> dict:
    """``toc`` without the files in ``drop`` (and parts left empty)."""
    parts = []
    for part in toc.get("parts", []):
        kept = [e for e in part.get("chapters", []) if e.get("file") not in drop]
        if kept:
            parts.append({**part, "chapters": kept})
    return {**toc, "parts": parts}


def run(profile: str, executor: str = "local", chapters=None, parameters=None, *,
        check: bool = True, partition=None, gpus_per_job: int = 0, cpus_per_job=None,
        timeout_min: int = 60, mem_gb=None, results=None, poll_s: float = 5.0,
        on_submitted=None) -> dict[str, float]:
    """Execute each chapter as a submitit job, wait for all, render the book.

    Returns the seconds of each chapter (NaN for a failed one). Raises :class:`BuildError`
    naming the failed chapters, with their log tails, after rendering the book without them.
    ``on_submitted(jobs)`` (for tests) is called with the submitted jobs before waiting.
    """
    import yaml

    check_profile(profile)
    root = book_root()
    toc, files, notebooks = plan(root, chapters)
    ex = make_executor(executor, root / JOBS, partition=partition, gpus_per_job=gpus_per_job,
                       cpus_per_job=cpus_per_job, timeout_min=timeout_min, mem_gb=mem_gb)
    src = stage(root, toc)
    params = {"profile": profile, **(parameters or {})}
    jobs = []
    for nb in notebooks:
        ex.update_parameters(name=f"tsrobust-{Path(nb).name[:2]}")
        job = ex.submit(ChapterJob(root, root / f"{nb}.ipynb", src / f"{nb}.ipynb", params,
                                   cell_timeout(profile), results))
        jobs.append(Submitted(nb, job))
    print(f"[run] submitted {len(jobs)} chapter jobs ({executor}, profile {profile}); "
          f"logs in {root / JOBS}", flush=True)
    if on_submitted is not None:
        on_submitted(jobs)
    wait(jobs, poll_s=poll_s)

    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    reports = []
    for j in jobs:
        if j.status == "done":
            seconds[j.name] = float(j.job.result())
        else:
            seconds[j.name] = float("nan")
            failed[j.notebook] = str(j.job.paths.stderr)
            # papermill writes its output notebook cell by cell: a failed chapter's is partial
            (src / f"{j.notebook}.ipynb").unlink(missing_ok=True)
            reports.append(f"{j.notebook} failed: {str(j.job.exception()).strip()[-1500:]}\n"
                           f"{log_tail(j.job)}")
    if failed:
        toc = drop_notebooks(toc, set(failed))
        toc.setdefault("parts", []).append(
            {"caption": "Not in this build", "chapters": [{"file": MISSING_PAGE}]})
        (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        (src / f"{MISSING_PAGE}.md").write_text(missing_page(failed))
        files = [f for f in files if f not in failed] + [MISSING_PAGE]
        print("[run] rendering without the failed chapters: " + ", ".join(failed), flush=True)
    render(root, src, files, whole_book=not chapters and not failed, check=check,
           seconds=seconds)
    print_table(seconds)
    if failed:
        raise BuildError("chapter jobs failed:\n" + "\n\n".join(reports))
    return seconds
