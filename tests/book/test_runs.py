"""Independent runs as jobs of their own (``independent_runs``, :class:`tsrobust.results.Run`):
chapters 3–7 expose exactly the records their notebooks make, the runs a chapter needs come
first and once, a job's record equals the notebook's own, and the notebook then only loads."""

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tsrobust import results
from tsrobust.book import build, cluster
from tsrobust.chapters import (
    ch03_oracle_teacher as ch03,
    ch04_standard_training as ch04,
    ch05_adversarial_training as ch05,
    ch06_in_out_plane_at as ch06,
    ch07_ccat_robust_features as ch07,
)
from tsrobust.chapters.cifar import TEACHER_CHAPTER, TEACHER_SETTINGS
from tsrobust.params import PROFILES, resolve, resolve_notebook

SEED_CHAPTERS = (ch04, ch05, ch06, ch07)


def _notebook_cfg(module, profile, params):
    """What the notebook's first code cell resolves: every name of its ``parameters`` cell,
    ``None`` unless papermill injected a value."""
    return resolve(module.SETTINGS, profile=profile, seed=params.get("seed", 0),
                   **{name: params.get(name) for name in module.SETTINGS})


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("module", SEED_CHAPTERS, ids=lambda m: m.CHAPTER)
def test_a_chapters_runs_are_the_records_its_notebook_makes(module, profile):
    params = {"seed": 3, "seeds": 2, "attack_steps": 3, "teacher_epochs": 7}
    cfg = _notebook_cfg(module, profile, params)
    runs = module.independent_runs(profile, **params)
    want = {f"{module.CHAPTER}/{name}": seed_cfg.as_dict()
            for _, name, seed_cfg in module.record_names(cfg).values()}
    if module is ch05:
        want.update({f"{module.CHAPTER}/{w}": cfg.as_dict()
                     for w in ("augmentation", "deep") if getattr(cfg, w)})
    assert {r.name: r.settings for r in runs} == want
    assert len(runs) == len(want)
    # every one after chapter 3's teacher of the profile's settings (the notebook passes none)
    teacher = resolve(TEACHER_SETTINGS, profile=profile, seed=3, n_train=cfg.n_train)
    for r in runs:
        assert [(n.name, n.settings) for n in r.needs] == [
            (f"{TEACHER_CHAPTER}/teacher", teacher.as_dict())]


@pytest.mark.parametrize("module", SEED_CHAPTERS, ids=lambda m: m.CHAPTER)
def test_each_run_records_its_own_seed_with_the_notebooks_configuration(module, monkeypatch):
    """Each run calls the recording function of the notebook's loop with the notebook's
    configuration and its own seed (the computation itself stubbed out)."""
    params = {"seed": 4, "seeds": 3, "noise_seeds": 2}
    cfg = _notebook_cfg(module, "smoke", params)
    calls = []
    monkeypatch.setattr(module, "notebook_inputs", lambda c, **kw: ("cpu", "data", "teacher"))
    if module is ch04:
        monkeypatch.setattr(module, "record_student", lambda c, d, t, variant, k, **kw: calls.append(
            (c.as_dict(), module.record_names(c)[(variant, k)][1], d, t)))
    else:
        monkeypatch.setattr(module, "record_seed", lambda c, d, t, k, **kw: calls.append(
            (c.as_dict(), module.record_names(c)[k][1], d, t)))
    if module is ch05:
        monkeypatch.setattr(module, "record_augmentation", lambda c, d, t, **kw: calls.append(
            (c.as_dict(), "augmentation", d, t)))
        monkeypatch.setattr(module, "record_deep", lambda c, d, **kw: calls.append(
            (c.as_dict(), "deep", d, "teacher")))
    runs = module.independent_runs("smoke", **params)
    for run in runs:
        run()
    assert [name for _, name, _, _ in calls] == [r.name.split("/", 1)[1] for r in runs]
    assert all(c == cfg.as_dict() and d == "data" and t == "teacher" for c, _, d, t in calls)
    assert len(set(r.name for r in runs)) == len(runs) >= 3


RUNNERS = {ch05: "run_table1", ch06: "run_table2", ch07: "run_students"}


@pytest.mark.parametrize("module", list(RUNNERS), ids=lambda m: m.CHAPTER)
def test_record_seed_records_each_seed_under_its_name_with_the_teachers_digest(
        module, tmp_path, monkeypatch):
    """The per-seed recording function that the notebook's loop and the runs share (the
    computation stubbed: it returns its seed)."""
    import torch

    from tsrobust.data import CIFAR10
    from tsrobust.models import PRUNED_WIDTHS, ConvNet
    from tsrobust.training import model_digest

    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    seen = []

    def stub(cfg, data, teacher, **kw):
        seen.append((cfg.seed, kw.get("names"), kw.get("grid")))
        return {"seed_computed": cfg.seed}, None

    monkeypatch.setattr(module, RUNNERS[module], stub)
    x = torch.zeros(4, 3, 32, 32)
    data = CIFAR10(x, torch.zeros(4, dtype=torch.long), x, torch.zeros(4, dtype=torch.long),
                   "random images")
    teacher = ConvNet(PRUNED_WIDTHS, generator=torch.Generator().manual_seed(1))
    cfg = resolve(module.SETTINGS, profile="smoke", seed=7, seeds=3)
    recs = module.record_seeds(cfg, data, teacher, progress=False)
    names = [name for _, name, _ in module.record_names(cfg).values()]
    assert [r.name for r in recs] == names and len(set(names)) == 3
    assert [r.values["seed_computed"] for r in recs] == [7, 8, 9]
    assert [r.provenance["parameters"]["seed"] for r in recs] == [7, 8, 9]
    assert all(r.values["teacher_digest"] == model_digest(teacher) for r in recs)
    if module is ch05:  # every attack for the first seed, the headline ones for the others
        assert [n for _, n, _ in seen] == [ch05.ATTACKS, ch05.HEADLINE_ATTACKS,
                                          ch05.HEADLINE_ATTACKS]
    if module is ch07:  # the grid of images for the first seed only
        assert [g for _, _, g in seen] == [True, False, False]
    assert [r.loaded for r in module.record_seeds(cfg, data, teacher)] == [True] * 3


def test_chapter_3s_run_is_its_teacher_with_its_parameters():
    params = {"teacher_epochs": 7, "seed": 1}
    (run,) = ch03.independent_runs("smoke", **params)
    cfg = resolve_notebook(ch03.SETTINGS, "smoke", params)
    assert run.name == f"{TEACHER_CHAPTER}/teacher" and run.needs == ()
    assert run.settings == resolve(TEACHER_SETTINGS, profile="smoke", seed=1, n_train=cfg.n_train,
                                   teacher_epochs=7).as_dict()


def test_runs_needed_by_several_chapters_are_planned_once_and_first():
    nbs = ["notebooks/01_specialization_toys", "notebooks/03_oracle_teacher",
           "notebooks/04_standard_training", "notebooks/06_in_out_plane_at"]
    runs, needs = cluster.plan_runs(nbs, "smoke", {})
    names = list(runs)
    assert names[0] == f"{TEACHER_CHAPTER}/teacher" and names.count(names[0]) == 1
    assert len(names) == 1 + 5 + 2  # the teacher, chapter 4's five students, chapter 6's seeds
    assert "notebooks/01_specialization_toys" not in needs  # no runs: executed at once
    assert needs["notebooks/03_oracle_teacher"] == [f"{TEACHER_CHAPTER}/teacher"]
    assert needs["notebooks/06_in_out_plane_at"] == ["06_in_out_plane_at/table2",
                                                     "06_in_out_plane_at/table2_seed1"]


def test_two_chapters_recording_one_run_with_other_settings_are_refused():
    # chapter 3 takes teacher_epochs, chapter 4 does not: their teachers would differ
    with pytest.raises(build.BuildError, match="teacher_epochs"):
        cluster.plan_runs(["notebooks/03_oracle_teacher", "notebooks/04_standard_training"],
                          "smoke", {"teacher_epochs": 1})


TINY = {"n_train": 200, "n_test": 40, "n_student": 48, "epochs": 1, "checkpoints": [1],
        "n_eval": 12, "n_spec": 12, "n_pca": 60, "attack_steps": 2, "seeds": 2,
        "noise_seeds": 1, "seed": 5}
"""Chapter 4 at the smoke profile, shrunk to seconds of CPU."""


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _notebook_path(params):
    """Chapter 4's notebook, its cells that record: configuration, data, teacher, students."""
    from tsrobust.chapters.cifar import oracle_teacher
    from tsrobust.data import load_cifar10
    from tsrobust.runtime import choose_device

    cfg = _notebook_cfg(ch04, "smoke", params)
    ch04.check_settings(cfg)
    device = choose_device()
    data = load_cifar10(device=device, n_train=cfg.n_train, n_test=cfg.n_test)
    _, teacher, teacher_res = oracle_teacher(cfg.profile, cfg.seed, data, device=device)
    return teacher_res, ch04.record_students(cfg, data, teacher, device=device)


def test_chapter_4s_runs_record_what_its_notebook_would_and_the_notebook_only_loads(
        tmp_path, monkeypatch):
    jobs_root, inline_root = tmp_path / "jobs", tmp_path / "inline"
    monkeypatch.setenv(results.RESULTS_ENV, str(jobs_root))
    runs = ch04.independent_runs("smoke", **TINY)
    (teacher,) = {n.name: n for r in runs for n in r.needs}.values()
    assert not teacher().loaded  # the teacher first, as its own job would
    assert all(not r().loaded for r in runs)  # each student computed by its run
    recorded = _snapshot(jobs_root)
    assert len([k for k in recorded if k.endswith(".json")]) == 1 + 5

    teacher_res, students = _notebook_path(TINY)
    assert teacher_res.loaded and all(r.loaded for recs in students.values() for r in recs)
    assert _snapshot(jobs_root) == recorded  # nothing recomputed or rewritten

    monkeypatch.setenv(results.RESULTS_ENV, str(inline_root))
    _, inline = _notebook_path(TINY)
    assert not any(r.loaded for recs in inline.values() for r in recs)
    for variant, recs in inline.items():
        assert len(recs) == len(students[variant]) > 0
        for ours, theirs in zip(students[variant], recs):
            assert ours.name == theirs.name
            # as recorded on disk: values (with the teacher's digest), parameters, arrays
            a, b = (_on_disk(root, ours.name) for root in (jobs_root, inline_root))
            assert a[0]["provenance"]["parameters"] == b[0]["provenance"]["parameters"]
            for key in ("teacher_digest", "measures", "seed", "variant", "epochs"):
                assert a[0]["values"][key] == b[0]["values"][key]
            _same(a[0]["values"], b[0]["values"])
            assert a[1].keys() == b[1].keys() and len(a[1]) > 0
            for k in a[1]:
                np.testing.assert_allclose(a[1][k], b[1][k], rtol=FLOAT_RTOL, atol=1e-9)


FLOAT_RTOL = 1e-6
"""Floats of two computations of one record may differ in their last bits: a CPU reduction's
order can depend on where its tensors lie in memory (seen once: one specialization score of 21
values, 6e-8 apart). Everything else must be equal."""


def _same(a, b, where="values"):
    """``a`` equals ``b``, floats to :data:`FLOAT_RTOL`."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=FLOAT_RTOL, abs=1e-9, nan_ok=True), where
    else:
        assert a == b, where


def _on_disk(root: Path, name: str):
    folder = root / "smoke" / ch04.CHAPTER
    with np.load(folder / f"{name}.npz") as npz:
        return json.loads((folder / f"{name}.json").read_text()), {k: npz[k] for k in npz.files}


# -- the scheduler, with stand-in jobs ------------------------------------------------------------

class FakeJob:
    """A job that ends on the poll after it is submitted, failing if asked to."""

    def __init__(self, name, fail, log):
        self.name, self.fail, self.polls, self.job_id = name, fail, 0, name
        self.paths = type("P", (), {"stdout": Path(f"{name}.out"), "stderr": Path(f"{name}.err")})
        log.append(name)

    def done(self):
        self.polls += 1
        return self.polls > 1

    def exception(self):
        return RuntimeError("planted") if self.fail else None

    @property
    def state(self):
        return "RUNNING"


def _plan(fail=()):
    teacher = results.Run("03/teacher", print)
    seeds = [results.Run(f"04/s{k}", print, needs=(teacher,)) for k in range(2)]
    items = [cluster.Submitted(None, run=r, needs=tuple(n.name for n in r.needs),
                               status="waiting") for r in (teacher, *seeds)]
    items += [cluster.Submitted("notebooks/04_x", needs=("04/s0", "04/s1"), status="waiting"),
              cluster.Submitted("notebooks/01_y", status="waiting")]
    submitted = []
    return items, submitted, lambda item: FakeJob(item.name, item.name in fail, submitted)


def test_a_chapter_waits_for_its_runs_and_its_runs_for_what_they_need(capsys):
    items, submitted, submit = _plan()
    cluster.wait(items, poll_s=0, submit=submit)
    assert all(j.status == "done" for j in items)
    # the teacher and the chapter without runs first, the seeds once the teacher is recorded,
    # the chapter once both seeds are
    assert submitted[:2] == ["03/teacher", "01_y"]
    assert set(submitted[2:4]) == {"04/s0", "04/s1"} and submitted[4] == "04_x"


def test_a_chapter_whose_run_failed_is_not_executed_and_says_why():
    items, submitted, submit = _plan(fail={"04/s1"})
    cluster.wait(items, poll_s=0, submit=submit)
    chapter = next(j for j in items if j.notebook == "notebooks/04_x")
    assert "04_x" not in submitted and chapter.job is None
    assert chapter.status == "failed" and "04/s1" in chapter.reason
    assert next(j for j in items if j.notebook == "notebooks/01_y").status == "done"
    assert "not run" in cluster.missing_page({"notebooks/04_x": chapter.reason})


def test_a_failed_teacher_fails_everything_after_it():
    items, submitted, submit = _plan(fail={"03/teacher"})
    cluster.wait(items, poll_s=0, submit=submit)
    assert submitted == ["03/teacher", "01_y"]
    assert [j.status for j in items] == ["failed"] * 4 + ["done"]


# -- real local jobs: a toy chapter with a teacher and three seeds -------------------------------

TOY_MODULE = textwrap.dedent('''\
    """A toy chapter: a teacher every seed needs, and one student per seed."""
    import functools
    import os
    import time

    import torch

    from tsrobust import results, training
    from tsrobust.models import ConvNet
    from tsrobust.params import Setting, resolve, resolve_notebook

    CHAPTER = "01_toy_seeds"
    WIDTHS = (4, 4, 3, 3)
    SETTINGS = {"seeds": Setting(int, smoke=3, cpu=3, gpu=3, paper=3, min=1),
                "epochs": Setting(int, smoke=2, cpu=2, gpu=2, paper=2, min=1)}
    TEACHER = {"width": Setting(int, smoke=4, cpu=4, gpu=4, paper=4, min=1)}


    def log(what):
        """Who computed what, and when (the test reads it)."""
        results.results_root().mkdir(parents=True, exist_ok=True)
        with open(results.results_root() / "computed.txt", "a") as f:
            f.write(f"{what} {os.getpid()} {time.time()}\\n")


    def teacher_cfg(profile, seed):
        return resolve(TEACHER, profile=profile, seed=seed)


    def teacher(profile, seed):
        cfg = teacher_cfg(profile, seed)

        def compute():
            log("teacher")
            net = ConvNet(WIDTHS, generator=torch.Generator().manual_seed(cfg.seed + 99))
            return {"width": cfg.width}, training.model_arrays("teacher", net)

        res = results.record("00_toy_teacher", "teacher", cfg, compute)
        return training.model_from_arrays(res.arrays, "teacher", WIDTHS)


    def record_names(cfg):
        return {k: (f"student_seed{cfg.seed + k}",
                    resolve(SETTINGS, profile=cfg.profile, seed=cfg.seed + k, seeds=cfg.seeds,
                            epochs=cfg.epochs)) for k in range(cfg.seeds)}


    def record_seed(cfg, net, k):
        name, seed_cfg = record_names(cfg)[k]

        def compute():
            log(name)
            student = ConvNet(WIDTHS, generator=torch.Generator().manual_seed(seed_cfg.seed))
            x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(seed_cfg.seed))
            h = training.train_student(student, net, x, epochs=seed_cfg.epochs, lr=1e-3,
                                       batch_size=8, progress=False,
                                       generator=torch.Generator().manual_seed(seed_cfg.seed))
            return ({"loss": h["loss"], "teacher": training.model_digest(net)},
                    training.model_arrays("student", student))

        return results.record(CHAPTER, name, seed_cfg, compute)


    def record_seeds(cfg, net):
        return [record_seed(cfg, net, k) for k in range(cfg.seeds)]


    def _run_seed(profile, params, k):
        torch.set_num_threads(1)
        cfg = resolve_notebook(SETTINGS, profile, params)
        return record_seed(cfg, teacher(profile, cfg.seed), k)


    def _run_teacher(profile, seed):
        torch.set_num_threads(1)
        teacher(profile, seed)
        return results.load("00_toy_teacher", "teacher", profile)


    def independent_runs(profile, **params):
        cfg = resolve_notebook(SETTINGS, profile, params)
        first = results.Run("00_toy_teacher/teacher",
                            functools.partial(_run_teacher, profile, cfg.seed),
                            settings=teacher_cfg(profile, cfg.seed).as_dict())
        return [results.Run(f"{CHAPTER}/{name}", functools.partial(_run_seed, profile, params, k),
                            settings=seed_cfg.as_dict(), needs=(first,))
                for k, (name, seed_cfg) in record_names(cfg).items()]
''')

TOY_NOTEBOOK = textwrap.dedent('''\
    # ---
    # jupyter:
    #   kernelspec:
    #     display_name: Python 3
    #     language: python
    #     name: python3
    # ---

    # %% [markdown]
    # # Three seeds

    # %% tags=["parameters"]
    profile = "smoke"
    seed = 0
    seeds = None
    epochs = None

    # %%
    import torch

    import toy_seeds as toy
    from tsrobust.params import resolve

    torch.set_num_threads(1)
    cfg = resolve(toy.SETTINGS, profile=profile, seed=seed,
                  **{name: globals()[name] for name in toy.SETTINGS})
    runs = toy.record_seeds(cfg, toy.teacher(cfg.profile, cfg.seed))
    print("loaded:", [r.loaded for r in runs])
''')


def test_independent_runs_execute_as_local_jobs_before_their_chapter(tmp_path, monkeypatch):
    """A toy chapter with a teacher and three seeds as real submitit jobs: the teacher first,
    the seeds each in a process of its own, then the notebook, which computes nothing; the
    records equal those the notebook computes in line."""
    from test_cluster import record_files, toy_book

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "toy_seeds.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(lib), *filter(None, [os.environ.get("PYTHONPATH")])]))
    import toy_seeds

    monkeypatch.setattr(cluster, "chapter_module",
                        lambda nb: toy_seeds if nb.endswith("01_toy_seeds") else None)
    book = toy_book(tmp_path / "book", {"01_toy_seeds": TOY_NOTEBOOK})
    monkeypatch.chdir(book)
    seconds = cluster.run("smoke", "local", None, {"seed": 2}, check=False, timeout_min=10,
                          poll_s=0.5)
    assert set(seconds) >= {"00_toy_teacher/teacher", "01_toy_seeds/student_seed2",
                            "01_toy_seeds/student_seed3", "01_toy_seeds/student_seed4",
                            "01_toy_seeds"}
    log = [line.split() for line in (book / "results" / "computed.txt").read_text().splitlines()]
    # each record computed once (the notebook computed none), each seed in its own process
    assert sorted(w for w, _, _ in log) == ["student_seed2", "student_seed3", "student_seed4",
                                            "teacher"]
    assert len({pid for _, pid, _ in log}) == 4
    start = dict((w, float(t)) for w, _, t in log)
    assert all(start["teacher"] < t for w, t in start.items() if w != "teacher")
    out = json.loads((book / build.BUILD / "src" / "notebooks" / "01_toy_seeds.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in out["cells"]
                      for o in c.get("outputs", []))
    assert "loaded: [True, True, True]" in printed
    assert len(list((book / cluster.JOBS).glob("*_log.out"))) == 5

    # the same chapter computed in line, into another results root
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "inline"))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the jobs and the notebook
    try:
        cfg = resolve(toy_seeds.SETTINGS, profile="smoke", seed=2)
        inline = toy_seeds.record_seeds(cfg, toy_seeds.teacher("smoke", 2))
    finally:
        torch.set_num_threads(threads)
    assert len(inline) == 3 and not any(r.loaded for r in inline)
    for res in inline:
        doc, arrays = record_files(book, toy_seeds.CHAPTER, res.name)
        assert doc["values"] == res.values
        assert doc["provenance"]["parameters"] == res.provenance["parameters"]
        assert arrays.keys() == res.arrays.keys() and len(arrays) > 0
        for k in arrays:
            np.testing.assert_array_equal(arrays[k], res.arrays[k])
