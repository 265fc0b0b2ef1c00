import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tsrobust import results
from tsrobust.io import atomic_write
from tsrobust.params import Setting, resolve

SETTINGS = {"n": Setting(int, smoke=3, gpu=30, paper=300, min=1)}


@pytest.fixture(autouse=True)
def results_root(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "results"))
    return tmp_path / "results"


def test_record_computes_once_then_loads(results_root):
    calls = []

    def compute():
        calls.append(1)
        return {"mean": 1.5}, {"curve": np.arange(4.0)}

    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    first = results.record("01_x", "stats", cfg, compute, dataset="synthetic")
    second = results.record("01_x", "stats", cfg, compute)
    assert calls == [1]
    assert not first.loaded and second.loaded
    assert second.values == {"mean": 1.5}
    np.testing.assert_array_equal(second.arrays["curve"], np.arange(4.0))
    prov = second.provenance
    assert prov["profile"] == "smoke" and prov["parameters"] == {"profile": "smoke", "seed": 0, "n": 3}
    for key in ("device", "torch", "commit", "seconds", "dataset", "timestamp"):
        assert key in prov
    assert (results_root / "smoke" / "01_x" / "stats.json").exists()
    assert "profile `smoke`" in second.caption()


def test_record_recomputes_for_other_parameters():
    calls = []
    for n in (3, 4, 4):
        cfg = resolve(SETTINGS, profile="smoke", seed=0, n=n)
        results.record("01_x", "stats", cfg, lambda: calls.append(n) or {"n": n})
    assert calls == [3, 4]


def test_interrupted_write_leaves_no_half_written_file(results_root):
    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    results.save("01_x", "stats", cfg, {"v": 1}, seconds=0.1)
    path = results_root / "smoke" / "01_x" / "stats.json"
    before = path.read_text()

    class Killed(Exception):
        pass

    with pytest.raises(Killed):
        with atomic_write(path) as tmp:
            tmp.write_text('{"values": {"v": 2')  # half of a new record
            raise Killed
    assert path.read_text() == before
    assert json.loads(before)["values"] == {"v": 1}
    assert [p.name for p in path.parent.iterdir()] == ["stats.json"]


def test_interrupted_array_write_keeps_old_record(results_root, monkeypatch):
    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    results.save("01_x", "a", cfg, {"v": 1}, {"x": np.zeros(3)}, seconds=0.1)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(KeyboardInterrupt):
        results.save("01_x", "a", cfg, {"v": 2}, {"x": np.ones(3)}, seconds=0.1)
    old = results.load("01_x", "a", "smoke")
    assert old.values == {"v": 1}
    np.testing.assert_array_equal(old.arrays["x"], np.zeros(3))
    assert sorted(os.listdir(old.dir)) == ["a.json", "a.npz"]


def test_corrupt_record_says_what_to_do(results_root):
    path = results_root / "smoke" / "01_x" / "bad.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="delete"):
        results.load("01_x", "bad", "smoke")


def test_verdicts():
    assert results.verdict(0.81, 0.85, rel_tol=0.05) == "reproduced"
    assert results.verdict(0.70, 0.85, rel_tol=0.05) == "differs"
    assert results.verdict(0.70, 0.85, rel_tol=0.05, direction_holds=True) == "direction holds"
    assert results.verdict(0.0, 0.01, abs_tol=0.02) == "reproduced"
    # no tolerance unless one is given: 68 vs 62.77 is not "reproduced" by default
    assert results.verdict(68.0, 62.77) == "differs"
    assert results.verdict(68.0, 62.77, abs_tol=3.0) == "differs"
    assert results.verdict(5, 5) == "reproduced"
    # a run whose standard error exceeds the tolerance cannot reproduce, only match by chance
    assert results.verdict(62.5, 62.77, abs_tol=1.0, noise=0.9) == "reproduced"
    assert results.verdict(62.5, 62.77, abs_tol=1.0, noise=2.5) == "differs"
    assert results.verdict(62.5, 62.77, abs_tol=1.0, noise=2.5,
                           direction_holds=True) == "direction holds"
    assert results.exceeds(0.5, 0.4) and not results.exceeds(0.5, 0.4, margin=0.1)
    with pytest.raises(ValueError):
        results.Row("x", 1, 2, "Table 1", verdict="close enough")


def test_comparison_table_shows_both_numbers_and_provenance():
    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    res = results.save("01_x", "acc", cfg, {"acc": 0.5}, seconds=1.0)
    md = results.compare(
        [results.Row("accuracy", 0.5, 0.85, "Table 1", results.verdict(0.5, 0.85), "smoke")], res
    )._repr_markdown_()
    assert "| accuracy | 0.5 | 0.85 | Table 1 | **differs** | smoke |" in md
    assert "profile `smoke`" in md


# --------------------------------------------------------------------------------------------
# Counting verdicts and plain tables
# --------------------------------------------------------------------------------------------


def test_verdict_counts_in_order_of_first_appearance():
    rows = [results.Row("a", 1, 1, "s", "direction holds"),
            results.Row("b", 1, 1, "s", "reproduced"),
            results.Row("c", 1, 2, "s", "direction holds")]
    assert results.verdict_counts(rows) == "2 direction holds, 1 reproduced"
    assert results.verdict_counts([]) == ""


def test_markdown_table_formats_and_escapes():
    table = results.markdown_table({"x|y": [0.123456, None], "S": [(1, 3), True]}, digits=3)
    assert table._repr_markdown_() == ("| x\\|y | S |\n|---|---|\n| 0.123 | {1, 3} |\n"
                                       "| — | True |")
    assert repr(table) == table.text
    with pytest.raises(ValueError, match="same length"):
        results.markdown_table({"a": [1], "b": [1, 2]})


# ------------------------------------------------------------ missing values, margins, summaries


def test_missing_values_are_shown_as_a_dash():
    for missing in (None, float("nan"), "nan", "inf", float("-inf")):
        assert results.as_number(missing) is None and results.fmt(missing) == results.MISSING
    assert results.fmt(0.12345) == "0.123" and results.fmt(np.float64(-0.5), ".2f") == "-0.50"


def test_paired_margin_and_summary():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 1.5, 2.0, 3.5])
    assert results.paired_margin(a, b) == pytest.approx(2 * np.std(a - b, ddof=1) / 2)
    assert results.paired_margin(a, a, floor=0.01) == 0.01
    assert results.paired_margin([1.0], [0.0], floor=0.02) == 0.02  # one pair: no spread
    rows = [results.Row("x", 1.0, "p", "s", "direction holds"),
            results.Row("y", 2.0, "p", "s", "differs")]
    assert results.claim_summary(rows) == "Of the 2 tests in this run, 1 holds; 1 differs: *y*."
    assert results.claim_summary(rows[:1]) == "Of the 1 tests in this run, 1 holds."


def test_spearman_margin():
    assert results.spearman_margin(8) == pytest.approx(1.645 / np.sqrt(7))
    assert results.spearman_margin(1) == np.inf
    with pytest.raises(ValueError, match="positive integer"):
        results.spearman_margin(0)


# --------------------------------------------------------------------------------------------
# Sanity checks: shown and counted apart from the tests
# --------------------------------------------------------------------------------------------


def test_sanity_check_verdicts_are_rows_of_their_own_kind():
    assert results.sanity_check(True) == "sanity check passes"
    assert results.sanity_check(False) == "sanity check fails"
    row = results.Row("count", 9, 9, "Thm", results.sanity_check(True))
    assert not results.is_test(row)
    assert results.is_test(results.Row("x", 1, 1, "s", "reproduced"))
    with pytest.raises(ValueError):
        results.Row("x", 1, 2, "s", verdict="sanity check")


def test_verdict_counts_count_sanity_checks_apart():
    test = results.Row("a", 1, 1, "s", "reproduced")
    ok = results.Row("b", 0, 0, "s", results.sanity_check(True))
    bad = results.Row("c", 1, 0, "s", results.sanity_check(False))
    assert results.verdict_counts([test, ok, ok]) == "1 reproduced; 2 sanity checks pass"
    assert results.verdict_counts([ok, test]) == "1 reproduced; 1 sanity check passes"
    assert results.verdict_counts([ok, bad, bad]) == (
        "1 sanity check passes, 2 sanity checks fail")
    assert results.verdict_counts([bad]) == "1 sanity check fails"
    assert results.sanity_counts([test]) == ""


def test_comparison_renders_sanity_checks_distinctly():
    rows = [results.Row("area", 0.0, 0.0, "§3", results.sanity_check(True), "by construction"),
            results.Row("angle", 44.0, 45.0, "§3", "reproduced", "±5°")]
    md = results.compare(rows)._repr_markdown_()
    assert "| area | 0 | 0 | §3 | *sanity check passes* | by construction |" in md
    assert "| **reproduced** |" in md and results.SANITY_NOTE in md
    failed = [results.Row("area", 0.1, 0.0, "§3", results.sanity_check(False))]
    assert "| **sanity check fails** |" in results.compare(failed)._repr_markdown_()
    only_tests = results.compare(rows[1:])._repr_markdown_()
    assert "Sanity checks" not in only_tests
    assert results.verdict_cell("differs") == "**differs**"
    assert results.verdict_cell("sanity check passes") == "*sanity check passes*"


# --------------------------------------------------------------------------------------------
# The run a chapter shows: the largest recorded one
# --------------------------------------------------------------------------------------------


def test_largest_recorded_leads_with_the_largest_matching_record():
    smoke = resolve(SETTINGS, profile="smoke", seed=0)
    run = results.save("01_x", "stats", smoke, {"n": 3}, seconds=0.1)
    assert results.largest_recorded(run, SETTINGS) is run  # nothing larger recorded
    results.save("01_x", "stats", resolve(SETTINGS, profile="gpu", seed=0), {"n": 30},
                 seconds=1.0)
    assert results.largest_recorded(run, SETTINGS).values == {"n": 30}
    paper = results.save("01_x", "stats", resolve(SETTINGS, profile="paper", seed=0),
                         {"n": 300}, seconds=9.0)
    shown = results.largest_recorded(run, SETTINGS)
    assert shown.values == {"n": 300} and shown.loaded
    assert results.largest_recorded(paper, SETTINGS) is paper  # nothing above paper
    # another seed, or a record whose parameters are no longer the profile's, is not shown
    other_seed = results.save("01_x", "stats", resolve(SETTINGS, profile="smoke", seed=1),
                              {"n": 3}, seconds=0.1)
    assert results.largest_recorded(other_seed, SETTINGS) is other_seed
    changed = {"n": Setting(int, smoke=3, gpu=31, paper=301, min=1)}
    assert results.largest_recorded(run, changed) is run


def test_config_of_a_result():
    cfg = resolve(SETTINGS, profile="gpu", seed=2, n=7)
    res = results.save("01_x", "stats", cfg, {"v": 1}, seconds=0.1)
    assert results.config_of(res, SETTINGS).as_dict() == cfg.as_dict()
    loaded = results.load("01_x", "stats", "gpu")
    assert results.config_of(loaded, SETTINGS).n == 7



# --------------------------------------------------------------------------------------------
# Committed records pin the code that made them
# --------------------------------------------------------------------------------------------


def test_committed_records_name_a_clean_commit():
    # A record made from a checkout with uncommitted changes ("+dirty") names no code that can be
    # checked out again: recompute it from a clean tree before committing it.
    root = Path(__file__).resolve().parents[1]
    try:
        listed = subprocess.run(["git", "ls-files", "results"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    records = [root / f for f in listed if f.endswith(".json")]
    for path in records:
        commit = json.loads(path.read_text())["provenance"]["commit"]
        assert re.fullmatch(r"[0-9a-f]{12}", commit), f"{path}: commit {commit!r}"


# ---------------------------------------------- sanity checks, inconclusive tests, seed margins


def _row(verdict, quantity="q"):
    return results.Row(quantity, 1.0, "claim", "src", verdict)


def test_rows_accept_sanity_and_inconclusive_verdicts():
    for v in (results.INCONCLUSIVE, results.SANITY_PASSES, results.SANITY_FAILS):
        assert _row(v).verdict == v
    assert results.sanity_check(True) == results.SANITY_PASSES
    assert results.sanity_check(False) == results.SANITY_FAILS
    assert not results.is_test(_row(results.SANITY_FAILS))
    assert results.is_test(_row(results.INCONCLUSIVE))
    with pytest.raises(ValueError, match="verdict"):
        _row("sanity")


def test_claim_summary_counts_only_tests():
    rows = [_row("direction holds", "a"), _row("differs", "b"), _row(results.INCONCLUSIVE, "c"),
            _row(results.SANITY_PASSES, "d"), _row(results.SANITY_PASSES, "e")]
    text = results.claim_summary(rows)
    assert text.startswith("Of the 3 tests in this run, 1 holds; 1 differs: *b*; "
                           "1 is inconclusive: *c*.")
    assert "2 sanity checks of the set-up, all passed" in text
    failed = results.claim_summary([_row("direction holds"), _row(results.SANITY_FAILS, "x")])
    assert failed.startswith("Of the 1 tests in this run, 1 holds.")
    assert "1 sanity check of the set-up, 1 of which failed: *x*" in failed
    two = [_row("differs", "a"), _row("differs", "b"), _row(results.SANITY_PASSES)]
    assert results.claim_summary(two) == ("Of the 2 tests in this run, 0 hold; 2 differ: *a*; "
                                          "*b*. Not counted: 1 sanity check of the set-up, "
                                          "passed.")
    # an inconclusive row never counts as holding
    assert "0 hold" in results.claim_summary([_row(results.INCONCLUSIVE)])


def test_t_quantile_95_and_paired_seed_margin():
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 4, 9, 30):
        assert results.t_quantile_95(dof) == pytest.approx(stats.t.ppf(0.95, dof), abs=1e-3)
    assert results.t_quantile_95(200) == pytest.approx(1.645)
    with pytest.raises(ValueError, match="dof"):
        results.t_quantile_95(0)
    diffs = [0.3, 0.5, 0.4]
    expected = stats.t.ppf(0.95, 2) * np.std(diffs, ddof=1) / np.sqrt(3)
    assert results.paired_seed_margin(diffs) == pytest.approx(expected, rel=1e-3)
    assert results.paired_seed_margin(diffs, floor=1.0) == 1.0
    assert results.paired_seed_margin([0.4]) == np.inf  # one seed: no spread to judge by


# --------------------------------------------------------------------------------------------
# Verdicts honest about scale, and margins from the spread across seeds
# --------------------------------------------------------------------------------------------


def test_reproduced_only_at_the_papers_settings():
    assert results.verdict(62.0, 62.77, abs_tol=3.0) == "reproduced"
    assert results.verdict(62.0, 62.77, abs_tol=3.0, paper_scale=False,
                           direction_holds=True) == "direction holds"
    assert results.verdict(62.0, 62.77, abs_tol=3.0, paper_scale=False) == "differs"
    assert results.at_paper_scale(resolve(SETTINGS, profile="paper", seed=5), SETTINGS)
    assert not results.at_paper_scale(resolve(SETTINGS, profile="gpu", seed=0), SETTINGS)
    # a paper-profile run with one parameter changed is not at the paper's scale
    assert not results.at_paper_scale(resolve(SETTINGS, profile="paper", seed=0, n=299),
                                      SETTINGS)
    # a smaller profile whose values are the paper's is
    same = {"n": Setting(int, smoke=300, gpu=300, paper=300, min=1)}
    assert results.at_paper_scale(resolve(same, profile="smoke", seed=0), same)


def test_t_quantile_matches_students_t():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 8, 10, 11, 20, 60, 1000):
        assert results.t_quantile(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-3)
    assert results.t_quantile(np.inf) == pytest.approx(stats.norm.ppf(0.975), abs=1e-6)
    with pytest.raises(ValueError):
        results.t_quantile(0)


def test_seed_stats_and_mean_pm():
    assert results.seed_stats([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    mean, sd, n = results.seed_stats([0.5])
    assert (mean, n) == (0.5, 1) and np.isnan(sd)
    assert results.mean_pm([0.1, 0.2, 0.3], ".1f", 100) == "20.0 ± 10.0"
    assert results.mean_pm([0.25], ".2f") == "0.25"
    with pytest.raises(ValueError):
        results.seed_stats([])


def test_seed_margin_pools_the_spread_and_has_none_without_one():
    a, b = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]  # sd 1 each: pooled 1, 4 degrees of freedom
    assert results.seed_margin(a, b) == pytest.approx(2.776 * np.sqrt(2 / 3))
    # one side with a single seed: the other side's spread stands for its noise
    assert results.seed_margin([5.0], a) == pytest.approx(4.303 * np.sqrt(1 + 1 / 3))
    # no spread at all: no margin, unless a measurement variance floors it (normal quantile)
    assert results.seed_margin([1.0], [2.0]) is None
    assert results.seed_margin([1.0], [2.0], floor_var=0.25) == pytest.approx(
        1.959964 * 0.5 * np.sqrt(2))
    # a spread smaller than the measurement floor: the floor, at the normal quantile
    tight = [1.0, 1.0, 1.0]
    assert results.seed_margin(tight, tight, floor_var=0.04) == pytest.approx(
        1.959964 * 0.2 * np.sqrt(2 / 3))
    with pytest.raises(ValueError):
        results.seed_margin([], [1.0])


def test_direction_and_no_effect_verdicts():
    assert results.direction_verdict(0.3, 0.1) == "direction holds"
    assert results.direction_verdict(0.05, 0.1) == "inconclusive"  # within the noise
    assert results.direction_verdict(-0.05, 0.1) == "inconclusive"
    assert results.direction_verdict(-0.3, 0.1) == "differs"  # a reversal beyond the noise
    assert results.direction_verdict(0.3, None) == "inconclusive"
    # "no effect": holds within the margin if the run could see the refuting effect
    assert results.no_effect_verdict(0.01, 0.05, refuting=0.2) == "direction holds"
    assert results.no_effect_verdict(-0.3, 0.05, refuting=0.2) == "direction holds"
    assert results.no_effect_verdict(0.1, 0.05, refuting=0.2) == "differs"
    assert results.no_effect_verdict(0.01, 0.25, refuting=0.2) == "inconclusive"
    assert results.no_effect_verdict(0.01, None, refuting=0.2) == "inconclusive"
    assert "no spread measured" in results.margin_text(None)
    assert results.margin_text(1.234, ".1f", " points").startswith("margin 1.2 points")


def test_inconclusive_is_a_verdict_counted_and_summarized_apart():
    rows = [results.Row("a", 1, 1, "s", "direction holds"),
            results.Row("b", 1, 1, "s", "inconclusive"),
            results.Row("c", 1, 2, "s", "differs")]
    assert results.verdict_counts(rows) == "1 direction holds, 1 inconclusive, 1 differs"
    assert results.claim_summary(rows) == (
        "Of the 3 tests in this run, 1 holds; 1 differs: *c*; 1 is inconclusive: *b*.")
    assert results.claim_summary(rows[:2]) == (
        "Of the 2 tests in this run, 1 holds; 1 is inconclusive: *b*.")
    assert "| **inconclusive** |" in results.compare(rows)._repr_markdown_()


def test_largest_recorded_set_needs_every_record_of_a_profile():
    def records_of(cfg):
        return {k: ("01_x", f"run{k}" if k else "run", resolve(SETTINGS, profile=cfg.profile,
                                                               seed=cfg.seed + k, n=cfg.n))
                for k in range(2)}

    smoke = resolve(SETTINGS, profile="smoke", seed=0)
    assert results.largest_recorded_set(smoke, SETTINGS, records_of) == (smoke, None)
    gpu = resolve(SETTINGS, profile="gpu", seed=0)
    for _, name, cfg in records_of(gpu).values():
        results.save("01_x", name, cfg, {"seed": cfg.seed}, seconds=0.0)
    paper = resolve(SETTINGS, profile="paper", seed=0)
    results.save("01_x", "run", paper, {"seed": 0}, seconds=0.0)  # paper: one of two records
    shown, found = results.largest_recorded_set(smoke, SETTINGS, records_of)
    assert shown.profile == "gpu" and [r.values["seed"] for r in found.values()] == [0, 1]
    assert results.recorded_with("01_x", "run", gpu).values == {"seed": 0}
    assert results.recorded_with("01_x", "run", resolve(SETTINGS, profile="gpu", seed=0,
                                                        n=31)) is None


def test_records_markdown_lists_the_provenance_of_each_record():
    cfg = resolve(SETTINGS, profile="smoke", seed=3)
    a = results.save("01_x", "a", cfg, {"v": 1}, seconds=1.5)
    b = results.load("01_x", "a", "smoke")
    text = results.records_markdown([a, b]).text
    assert text.splitlines()[0] == ("| record | profile | seed | source | seconds | device | "
                                    "precision | commit |")
    assert "| a | smoke | 3 | computed in this run | 1.5 |" in text
    assert "| a | smoke | 3 | recorded run, loaded | 1.5 |" in text


def test_combined_verdict_needs_every_part_and_any_reversal_differs():
    holds, tie, rev = "direction holds", "inconclusive", "differs"
    assert results.combined_verdict([holds, holds]) == holds
    assert results.combined_verdict([holds, tie]) == tie
    assert results.combined_verdict([holds, tie, rev]) == rev
    assert results.combined_verdict([tie]) == tie
    with pytest.raises(ValueError):
        results.combined_verdict([])


def test_a_json_beside_other_arrays_is_detected_and_recomputed(results_root):
    """A writer killed between its two renames leaves the new arrays beside the old JSON: the
    arrays digest tells, load refuses it, record recomputes it."""
    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    results.save("01_x", "a", cfg, {"v": 1}, {"x": np.zeros(3)}, seconds=0.1)
    folder = results_root / "smoke" / "01_x"
    np.savez_compressed(folder / "a.npz", x=np.ones(3))  # the killed writer's arrays
    with pytest.raises(results.MismatchedRecord, match="delete both"):
        results.load("01_x", "a", "smoke")
    again = results.record("01_x", "a", cfg, lambda: ({"v": 2}, {"x": np.full(3, 2.0)}))
    assert not again.loaded and results.load("01_x", "a", "smoke").values == {"v": 2}


def test_interleaved_writers_of_one_record_leave_a_matching_pair(results_root, monkeypatch):
    """Writer A renames its arrays, writer B saves the whole record, then A renames its JSON:
    without A's check the JSON of A would stand beside the arrays of B."""
    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    real = results.atomic_write
    state = {"interleaved": False}

    def atomic_write(path, **kw):
        if str(path).endswith(".json") and not state["interleaved"]:
            state["interleaved"] = True
            results.save("01_x", "a", cfg, {"writer": "B"}, {"x": np.full(4, 2.0)}, seconds=0.1)
        return real(path, **kw)

    monkeypatch.setattr(results, "atomic_write", atomic_write)
    results.save("01_x", "a", cfg, {"writer": "A"}, {"x": np.full(4, 1.0)}, seconds=0.1)
    assert state["interleaved"]
    got = results.load("01_x", "a", "smoke")
    assert got.values == {"writer": "A"}
    np.testing.assert_array_equal(got.arrays["x"], np.full(4, 1.0))


WRITER = """
import sys
import numpy as np
from tsrobust import results
from tsrobust.params import Setting, resolve

me, n = sys.argv[1], int(sys.argv[2])
cfg = resolve({"n": Setting(int, smoke=3, gpu=30, paper=300, min=1)}, profile="smoke", seed=0)
for i in range(n):
    results.save("01_x", "shared", cfg, {"writer": me, "i": i},
                 {"x": np.full(20000, float(me) + i / 1e6)}, seconds=0.1)
"""


def test_two_concurrent_writers_of_one_record_leave_one_complete_record(results_root):
    """Two processes save the same record many times (different contents, so a JSON beside the
    other's arrays shows) while this one reads it: every read is one complete, matching record,
    and so is what remains."""
    env = {**os.environ, results.RESULTS_ENV: str(results_root),
           "PYTHONPATH": str(Path(results.__file__).resolve().parents[1])}
    rounds = 60
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, me,
                                 str(rounds)], env=env) for me in ("1", "2")]
    reads = 0
    try:
        while any(w.poll() is None for w in writers):
            got = results.load("01_x", "shared", "smoke")
            if got is not None:
                reads += 1
                assert got.arrays["x"][0] == float(got.values["writer"]) + got.values["i"] / 1e6
    finally:
        for w in writers:
            w.wait(timeout=300)
    assert [w.returncode for w in writers] == [0, 0]
    final = results.load("01_x", "shared", "smoke")
    assert final.values["i"] == rounds - 1
    assert final.arrays["x"][0] == float(final.values["writer"]) + (rounds - 1) / 1e6
    folder = results_root / "smoke" / "01_x"
    assert sorted(p.name for p in folder.iterdir()) == ["shared.json", "shared.npz"]
    assert reads > 0
