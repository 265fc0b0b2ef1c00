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

**Independent runs.** A chapter module (``tsrobust.chapters.chNN_name`` for
``notebooks/NN_name``) may define ``independent_runs(profile, **params) -> list[Run]``
(:class:`tsrobust.results.Run`): the recorded computations of its notebook that do not depend on
each other (one per seed, say), each a zero-argument callable that records its result with
exactly the settings the notebook resolves for the same parameters. ``run`` then submits one job
per run (:class:`RunJob`), the runs a run ``needs`` first (chapter 3's teacher before the
students of chapters 4–7; a run needed by several chapters is submitted once), and executes the
chapter's notebook once all its runs are recorded: the notebook finds them and only loads them.
A chapter whose run failed is reported with that run's log and not executed. Chapters 3–7, 9
and 10 define ``independent_runs`` (chapters 9 and 10 share their networks' runs,
:func:`tsrobust.chapters.resnets.network_run`); a new chapter adds its runs by defining the
function next to its recording function, for example::

    def record_seed(cfg, data, k, *, device="cpu"):  # what the notebook's loop over k calls
        _, name, seed_cfg = record_names(cfg)[k]
        return results.record(CHAPTER, name, seed_cfg, lambda: train_one(seed_cfg, data, device))

    def _run_seed(profile, params, k):  # a module function, so that it pickles
        cfg = resolve_notebook(SETTINGS, profile, params)  # as the notebook resolves it
        return record_seed(cfg, load_data(cfg), k, device=choose_device())

    def independent_runs(profile, **params):
        cfg = resolve_notebook(SETTINGS, profile, params)
        return [results.Run(f"{CHAPTER}/{name}", functools.partial(_run_seed, profile, params, k),
                            settings=seed_cfg.as_dict())
                for k, (_, name, seed_cfg) in record_names(cfg).items()]

and a test that the runs' records equal the notebook's own (``tests/book/test_runs.py``).

submitit is an optional dependency (``pip install -e ".[cluster]"``); jobs run with the Python
of the submitting process, so the cluster's nodes must see the same environment and the book's
folder on a shared filesystem.
"""

from __future__ import annotations

import importlib
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
from tsrobust.results import RESULTS_ENV, Run

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


class RunJob(_Base):
    """One independent run of a chapter (:class:`tsrobust.results.Run`) as a submitit job:
    executed in the book's folder (where the notebooks execute, so it records into the same
    results root). A job stopped at its time limit is resubmitted and the run resumes from its
    training checkpoints, like a chapter's."""

    def __init__(self, root, run: Run, results=None):
        self.root, self.run = str(root), run
        self.results = None if results is None else str(results)

    def __call__(self) -> float:
        if self.results is not None:
            os.environ[RESULTS_ENV] = self.results
        os.chdir(self.root)
        print(f"[job] run {self.run.name}", flush=True)
        start = time.perf_counter()
        res = self.run()
        how = "loaded (already recorded)" if getattr(res, "loaded", False) else "recorded"
        seconds = time.perf_counter() - start
        print(f"[job] {self.run.name} {how} in {seconds:.1f} s", flush=True)
        return seconds


def chapter_module(notebook: str):
    """The chapter module of ``notebooks/NN_name`` (``tsrobust.chapters.chNN_name``), or
    ``None`` when there is none."""
    name = f"tsrobust.chapters.ch{Path(notebook).name}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            return None
        raise


def plan_runs(notebooks: list[str], profile: str, parameters: dict, *, module_of=None) -> tuple[dict[str, Run], dict[str, list[str]]]:
    """The runs to execute before the notebooks: ``(runs, needs)``, ``runs`` by name in an
    order where every run comes after the runs it needs (each submitted once, however many
    chapters need it), and ``needs[notebook]`` the names of the chapter's own runs
    (``module_of(notebook)``: the chapter's module, default :func:`chapter_module`). Raises
    :class:`BuildError` when two runs of one name have different settings (each would overwrite
    the other's record: build those chapters separately)."""
    runs: dict[str, Run] = {}

    def add(run: Run, who: str):
        for need in run.needs:
            add(need, who)
        old = runs.get(run.name)
        if old is None:
            runs[run.name] = run
        elif old.settings != run.settings:
            diff = sorted(k for k in {*old.settings, *run.settings}
                          if old.settings.get(k) != run.settings.get(k))
            raise BuildError(
                f"{who} records {run.name} with other settings than another chapter of this "
                f"build ({', '.join(diff)} differ), so the two would overwrite one record: run "
                f"those chapters in separate builds")

    needs: dict[str, list[str]] = {}
    for nb in notebooks:
        module = (module_of or chapter_module)(nb)
        own = getattr(module, "independent_runs", None)
        if own is None:
            continue
        chapter_runs = own(profile, **parameters)
        for run in chapter_runs:
            add(run, Path(nb).name)
        needs[nb] = [r.name for r in chapter_runs]
    return runs, needs


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
    """A chapter (``notebook``) or an independent run (``run``), its job once submitted, its
    status (``waiting`` for the runs it ``needs``, then ``queued``, ``running``, ``done`` or
    ``failed``) and, if it failed without a job, why."""

    notebook: str | None
    job: object = None
    status: str = "queued"
    run: Run | None = None
    needs: tuple = ()
    reason: str = ""

    @property
    def name(self) -> str:
        return self.run.name if self.run is not None else Path(self.notebook).name

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


ENDED = ("done", "failed")


def wait(jobs: list[Submitted], *, poll_s: float = 5.0, out=None, submit=None) -> None:
    """Poll the jobs until all have ended, printing each change of a chapter's or run's status
    (with its log files) and a one-line count. ``submit(item)`` submits a ``waiting`` item once
    every item it ``needs`` is done; one whose need failed fails without a job."""
    out = out or sys.stdout
    by_name = {j.name: j for j in jobs}
    first = True
    while True:
        changed = False
        for j in jobs:
            if j.status != "waiting":
                continue
            failed = [n for n in j.needs if by_name[n].status == "failed"]
            if failed:
                j.status, j.reason = "failed", f"not run: it needs {', '.join(failed)}, which failed"
                changed = True
                print(f"[run] {j.name}: failed ({j.reason})", file=out, flush=True)
            elif all(by_name[n].status == "done" for n in j.needs):
                j.job, j.status = submit(j), "queued"
                changed = True
                print(f"[run] {j.name}: submitted (what it needs is recorded)", file=out,
                      flush=True)
        for j in jobs:
            if j.status in ENDED or j.job is None:
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
                      for s in ("waiting", "queued", "running", "done", "failed")}
            print("[run] " + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s != "waiting"),
                  file=out, flush=True)
        if all(j.status in ENDED for j in jobs):
            return
        time.sleep(poll_s)


def missing_page(failed: dict[str, str]) -> str:
    """The text of the page naming the chapters a build lacks and why."""
    lines = ["# Not in this build", "",
             "These chapters were submitted but their jobs failed, so this build of the book does "
             "not contain them (their records, if any, are complete ones from earlier runs):", ""]
    for nb, why in failed.items():
        lines.append(f"- `{nb}`: " + (why if why.startswith("not run") else f"job log `{why}`"))
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
    """Execute each chapter as a submitit job (after its independent runs, each a job of its
    own: :func:`plan_runs`), wait for all, render the book.

    Returns the seconds of each chapter and run (NaN for a failed one). Raises :class:`BuildError`
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
    runs, needs = plan_runs(notebooks, profile, parameters or {})

    def submit(item: Submitted):
        if item.run is not None:
            ex.update_parameters(name=f"tsrobust-{item.run.name.rsplit('/', 1)[-1]}"[:60])
            return ex.submit(RunJob(root, item.run, results))
        nb = item.notebook
        ex.update_parameters(name=f"tsrobust-{Path(nb).name[:2]}")
        return ex.submit(ChapterJob(root, root / f"{nb}.ipynb", src / f"{nb}.ipynb", params,
                                    cell_timeout(profile), results))

    jobs = [Submitted(None, run=r, needs=tuple(n.name for n in r.needs), status="waiting")
            for r in runs.values()]
    jobs += [Submitted(nb, needs=tuple(needs.get(nb, ())), status="waiting") for nb in notebooks]
    for j in jobs:  # what needs nothing starts now
        if not j.needs:
            j.job, j.status = submit(j), "queued"
    print(f"[run] submitted {sum(j.job is not None for j in jobs)} jobs ({executor}, profile "
          f"{profile}: {len(runs)} independent runs, then {len(notebooks)} chapters); logs in "
          f"{root / JOBS}", flush=True)
    if on_submitted is not None:
        on_submitted(jobs)
    wait(jobs, poll_s=poll_s, submit=submit)

    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    reports = []
    for j in jobs:
        if j.status == "done":
            seconds[j.name] = float(j.job.result())
            continue
        seconds[j.name] = float("nan")
        if j.job is None:
            reports.append(f"{j.name} failed: {j.reason}")
        else:
            reports.append(f"{j.name} failed: {str(j.job.exception()).strip()[-1500:]}\n"
                           f"{log_tail(j.job)}")
        if j.notebook is not None:
            failed[j.notebook] = str(j.job.paths.stderr) if j.job is not None else j.reason
            # papermill writes its output notebook cell by cell: a failed chapter's is partial
            (src / f"{j.notebook}.ipynb").unlink(missing_ok=True)
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
        raise BuildError("jobs failed:\n" + "\n\n".join(reports))
    return seconds
