"""``python -m tsrobust.book run``: chapters as real submitit jobs (the local executor runs the
same jobs as Slurm would, as local subprocesses), resubmission after a pre-emption, a failing
chapter, the render of what finished."""

import json
import os
import shutil
import signal
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import submitit  # noqa: F401  the run command's dependency (the cluster and test extras)
import yaml

from tsrobust.book import build, cluster

REPO = Path(build.__file__).resolve().parents[2]
EPOCHS = 6
INTERRUPT_AT = 2
"""The toy run is pre-empted once its checkpoint has reached this epoch."""

HEADER = """\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

"""

TOY_TRAIN = HEADER + textwrap.dedent('''\
    # %% [markdown]
    # # A toy training run

    # %% tags=["parameters"]
    profile = "smoke"
    epochs = 6
    sleep_s = 0.0

    # %%
    import time

    import torch

    from tsrobust import results, training
    from tsrobust.models import ConvNet
    from tsrobust.params import Setting, resolve

    torch.set_num_threads(1)
    cfg = resolve({"epochs": Setting(int, smoke=6, cpu=6, gpu=6, paper=6, min=1)},
                  profile=profile, seed=0, epochs=epochs)
    folder = training.checkpoint_folder(profile, "01_toy_train", "student")
    state = folder / training.STATE_FILE
    start = torch.load(state, weights_only=False)["epoch"] if state.exists() else 0
    results.results_root().mkdir(parents=True, exist_ok=True)
    with open(results.results_root() / "starts.txt", "a") as log:
        log.write(f"{start}\\n")  # the epoch this execution found checkpointed


    def compute():
        teacher = ConvNet((4, 4, 3, 3), generator=torch.Generator().manual_seed(1))
        student = ConvNet((4, 4, 3, 3), generator=torch.Generator().manual_seed(2))
        x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        history = training.train_student(
            student, teacher, x, epochs=cfg.epochs, lr=1e-3, batch_size=8, checkpoint_dir=folder,
            checkpoint_epochs=range(1, cfg.epochs + 1), on_checkpoint=lambda e, m: time.sleep(sleep_s),
            generator=torch.Generator().manual_seed(3), progress=False)
        return {"loss": history["loss"]}, training.model_arrays("student", student)


    run = results.record("01_toy_train", "student", cfg, compute)
    training.discard_checkpoints(folder)
    print(run.values["loss"][-1])
''')

TOY_FAIL = HEADER + textwrap.dedent('''\
    # %% [markdown]
    # # A chapter that fails

    # %% tags=["parameters"]
    profile = "smoke"

    # %%
    from tsrobust import results
    from tsrobust.params import Setting, resolve

    cfg = resolve({"n": Setting(int, smoke=1, cpu=1, gpu=1, paper=1, min=1)}, profile=profile,
                  seed=0)


    def compute():
        raise RuntimeError("planted failure in the middle of a computation")


    results.record("02_toy_fail", "half", cfg, compute)
''')


def toy_book(root: Path, chapters: dict[str, str]) -> Path:
    """A book of the given toy notebooks with the real configuration and offline JavaScript (the
    npm cache is the repository's, so it is fetched once)."""
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    shutil.copy2(REPO / "_config.yml", root / "_config.yml")
    (root / "book" / "intro.md").write_text("# Toy book\n\nChapters run as jobs.\n")
    for name, text in chapters.items():
        (root / "notebooks" / f"{name}.py").write_text(text)
    toc = {"format": "jb-book", "root": "book/intro", "parts": [
        {"caption": "Toys", "chapters": [{"file": f"notebooks/{n}"} for n in chapters]}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    npm = REPO / build.BUILD / "npm"
    npm.mkdir(parents=True, exist_ok=True)
    (root / build.BUILD).mkdir()
    (root / build.BUILD / "npm").symlink_to(npm)
    return root


def task_process(job):
    """The process running the job's function (the local executor's controller's child)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        children = psutil.Process(job._process.pid).children()
        if children:
            return children[0]
        time.sleep(0.2)
    raise AssertionError("the job's task process never started")


def checkpointed_epoch(book: Path) -> int:
    import torch

    state = book / "results" / "smoke" / "01_toy_train" / "checkpoints" / "student" / "last.pt"
    try:
        return torch.load(state, weights_only=False)["epoch"]
    except (OSError, EOFError, RuntimeError):
        return 0


def record_files(book: Path, chapter: str, name: str):
    folder = book / "results" / "smoke" / chapter
    doc = json.loads((folder / f"{name}.json").read_text())
    with np.load(folder / f"{name}.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    return doc, arrays


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """One ``run`` of a toy book of two chapters as local submitit jobs: a training run that is
    pre-empted at epoch ``INTERRUPT_AT`` (SIGUSR2, the signal Slurm and submitit's local
    executor send before a time limit or pre-emption) and a chapter that fails; and, beside it,
    the same training run as a job left alone (another copy of the book)."""
    base = tmp_path_factory.mktemp("cluster")
    chapters = {"01_toy_train": TOY_TRAIN, "02_toy_fail": TOY_FAIL}
    straight_book = toy_book(base / "straight", {"01_toy_train": TOY_TRAIN})
    book = toy_book(base / "run", chapters)
    params = {"epochs": EPOCHS, "sleep_s": 1.0}
    straight = cluster.make_executor("local", straight_book / cluster.JOBS, timeout_min=10)
    straight_job = straight.submit(cluster.ChapterJob(
        straight_book, straight_book / "notebooks/01_toy_train.ipynb",
        straight_book / "out.ipynb", {"profile": "smoke", **params}, 300))
    interrupted = {}

    def preempt(jobs):
        job = next(j.job for j in jobs if j.name == "01_toy_train")
        task = task_process(job)
        deadline = time.monotonic() + 600
        while checkpointed_epoch(book) < INTERRUPT_AT:
            assert time.monotonic() < deadline, "the toy run never reached its checkpoint"
            assert not job.done(), f"the toy run ended early:\n{cluster.log_tail(job)}"
            time.sleep(0.1)
        interrupted["epoch"] = checkpointed_epoch(book)
        task.send_signal(signal.SIGUSR2)
        interrupted["job"] = job

    old = Path.cwd()
    os.chdir(book)
    start = time.perf_counter()
    try:
        with pytest.raises(build.BuildError) as err:
            cluster.run("smoke", "local", None, params, check=False, timeout_min=10, poll_s=0.5,
                        on_submitted=preempt)
    finally:
        os.chdir(old)
    seconds = time.perf_counter() - start
    straight_job.result()
    return {"book": book, "straight": straight_book, "error": str(err.value),
            "interrupted": interrupted, "seconds": seconds}


def test_a_preempted_job_is_resubmitted_and_resumes_to_identical_records(toy_run):
    book, straight = toy_run["book"], toy_run["straight"]
    # the job was stopped mid-run, and its second execution found the checkpoint
    assert INTERRUPT_AT <= toy_run["interrupted"]["epoch"] < EPOCHS
    starts = [int(s) for s in (book / "results" / "starts.txt").read_text().split()]
    assert starts[0] == 0 and len(starts) == 2 and INTERRUPT_AT <= starts[1] < EPOCHS, starts
    assert (straight / "results" / "starts.txt").read_text().split() == ["0"]
    log = toy_run["interrupted"]["job"].stdout()
    assert "interrupted: stopping the kernel, resubmitting" in log
    # the same record as the run left alone: values, weights, parameters
    doc, arrays = record_files(book, "01_toy_train", "student")
    ref_doc, ref_arrays = record_files(straight, "01_toy_train", "student")
    assert doc["values"] == ref_doc["values"]
    assert doc["provenance"]["parameters"] == ref_doc["provenance"]["parameters"]
    assert arrays.keys() == ref_arrays.keys() and len(arrays) > 0
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], ref_arrays[k])
    assert not (book / "results" / "smoke" / "01_toy_train" / "checkpoints").exists()


def test_a_failing_chapter_is_reported_with_its_log_tail_and_leaves_no_partial_record(toy_run):
    book, error = toy_run["book"], toy_run["error"]
    assert "02_toy_fail failed" in error
    assert "planted failure in the middle of a computation" in error
    assert "--- end of stderr" in error and "--- end of stdout" in error
    assert "01_toy_train failed" not in error
    folder = book / "results" / "smoke" / "02_toy_fail"
    assert not folder.exists() or not any(folder.iterdir())
    # papermill's partial output notebook is not in the book
    assert not (book / build.BUILD / "src" / "notebooks" / "02_toy_fail.ipynb").exists()


def test_the_render_shows_the_finished_chapter_and_names_the_missing_one(toy_run):
    html = toy_run["book"] / build.BUILD / "html"
    assert (html / "notebooks" / "01_toy_train.html").exists()
    assert not (html / "notebooks" / "02_toy_fail.html").exists()
    missing = (html / f"{cluster.MISSING_PAGE}.html").read_text()
    assert "Not in this build" in missing and "02_toy_fail" in missing
    print(f"toy run with a pre-emption and a failure: {toy_run['seconds']:.0f} s")


def test_two_small_chapters_run_as_local_jobs_and_render(tmp_path, monkeypatch):
    """The book's two cheapest chapters (1 and 8: about a minute each at the smoke profile on
    two busy cores; chapter 2 takes more than two), at the smoke profile, as real local submitit jobs
    executing with the build's own function, then rendered."""
    picked = ["01", "08"]
    for item in ("_config.yml", "_toc.yml"):
        shutil.copy2(REPO / item, tmp_path / item)
    shutil.copytree(REPO / "book", tmp_path / "book")
    (tmp_path / "notebooks").mkdir()
    for nb in (REPO / "notebooks").glob("0[18]_*.py"):
        shutil.copy2(nb, tmp_path / "notebooks" / nb.name)
    recorded = REPO / "results" / "paper" / "08_active_teacher"  # what chapter 8 leads with
    shutil.copytree(recorded, tmp_path / "results" / "paper" / recorded.name)
    npm = REPO / build.BUILD / "npm"
    npm.mkdir(parents=True, exist_ok=True)
    (tmp_path / build.BUILD).mkdir()
    (tmp_path / build.BUILD / "npm").symlink_to(npm)
    monkeypatch.chdir(tmp_path)
    seconds = cluster.run("smoke", "local", picked, check=False, timeout_min=20, poll_s=1.0)
    chapters = [k for k in seconds if not k.startswith("(")]
    assert [c[:2] for c in chapters] == picked
    assert all(seconds[c] > 0 for c in chapters)
    html = tmp_path / build.BUILD / "html" / "notebooks"
    for c in chapters:
        page = (html / f"{c}.html").read_text()
        assert "cell_output" in page or "output" in page
    jobs = list((tmp_path / cluster.JOBS).glob("*_log.out"))
    assert len(jobs) == 2 and all("[job] done in" in p.read_text() for p in jobs)


def test_the_run_command_checks_its_options(tmp_path):
    with pytest.raises(build.BuildError, match="slurm, local"):
        cluster.make_executor("pbs", tmp_path)
    with pytest.raises(build.BuildError, match="positive"):
        cluster.make_executor("local", tmp_path, timeout_min=0)
    with pytest.raises(build.BuildError, match="Slurm option"):
        cluster.make_executor("local", tmp_path, partition="gpu")


FAKE_SBATCH = """#!/bin/sh
cp "$1" "$(dirname "$0")/submitted.sh"
echo "Submitted batch job 4242"
"""


def test_a_slurm_job_asks_for_the_partition_gpus_time_and_a_requeue_signal(tmp_path,
                                                                          monkeypatch):
    """The Slurm executor's batch file, captured by a stand-in ``sbatch``: the chapter's
    resources, and the signal before the time limit that makes the job checkpoint and requeue."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    slurm = cluster.make_executor("slurm", tmp_path / "jobs", partition="gpu", gpus_per_job=1,
                                  cpus_per_job=8, timeout_min=90)
    job = slurm.submit(cluster.ChapterJob(tmp_path, tmp_path / "nb.ipynb", tmp_path / "out.ipynb",
                                          {"profile": "paper"}))
    assert job.job_id == "4242"
    script = (bin_dir / "submitted.sh").read_text()
    for flag in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--time=90",
                 "--signal=USR2@"):
        assert f"#SBATCH {flag}" in script, flag
    assert "submitit.core._submit" in script


def test_missing_chapters_leave_the_table_of_contents():
    toc = {"root": "book/intro", "parts": [
        {"caption": "A", "chapters": [{"file": "notebooks/01_a"}, {"file": "notebooks/02_b"}]},
        {"caption": "B", "chapters": [{"file": "notebooks/03_c"}]}]}
    kept = cluster.drop_notebooks(toc, {"notebooks/02_b", "notebooks/03_c"})
    assert build.toc_files(kept) == ["book/intro", "notebooks/01_a"]
    assert "`notebooks/02_b`" in cluster.missing_page({"notebooks/02_b": "x.err"})
