import json
import os

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
    assert results.verdict_summary(rows) == \
        "In this run 1 of the 2 claims hold; these differ: *y*."
    assert results.verdict_summary(rows[:1]) == "In this run all 1 claims hold."


def test_spearman_margin():
    assert results.spearman_margin(8) == pytest.approx(1.645 / np.sqrt(7))
    assert results.spearman_margin(1) == np.inf
    with pytest.raises(ValueError, match="positive integer"):
        results.spearman_margin(0)


# ---------------------------------------------- sanity checks, inconclusive tests, seed margins


def _row(verdict, quantity="q"):
    return results.Row(quantity, 1.0, "claim", "src", verdict)


def test_rows_accept_sanity_and_inconclusive_verdicts():
    for v in (results.INCONCLUSIVE, results.SANITY_PASSED, results.SANITY_FAILED):
        assert _row(v).verdict == v
    assert results.sanity_verdict(True) == results.SANITY_PASSED
    assert results.sanity_verdict(False) == results.SANITY_FAILED
    assert results.is_sanity_check(_row(results.SANITY_FAILED))
    assert not results.is_sanity_check(_row(results.INCONCLUSIVE))
    with pytest.raises(ValueError, match="verdict"):
        _row("sanity")


def test_claim_summary_counts_only_tests():
    rows = [_row("direction holds", "a"), _row("differs", "b"), _row(results.INCONCLUSIVE, "c"),
            _row(results.SANITY_PASSED, "d"), _row(results.SANITY_PASSED, "e")]
    text = results.claim_summary(rows)
    assert text.startswith("Of the 3 tests in this run, 1 holds; 1 differs: *b*; "
                           "1 is inconclusive: *c*.")
    assert "2 sanity checks of the set-up, all passed" in text
    failed = results.claim_summary([_row("direction holds"), _row(results.SANITY_FAILED, "x")])
    assert failed.startswith("Of the 1 tests in this run, 1 holds.")
    assert "1 sanity check of the set-up, 1 of which failed: *x*" in failed
    two = [_row("differs", "a"), _row("differs", "b"), _row(results.SANITY_PASSED)]
    assert results.claim_summary(two) == ("Of the 2 tests in this run, 0 hold; 2 differ: *a*; "
                                          "*b*. Not counted: 1 sanity check of the set-up, "
                                          "passed.")
    # verdict_summary would have counted the inconclusive row as holding; claim_summary does not
    assert "0 hold" in results.claim_summary([_row(results.INCONCLUSIVE)])


def test_t_quantile_and_seed_margin():
    stats = pytest.importorskip("scipy.stats")
    for dof in (1, 2, 4, 9, 30):
        assert results.t_quantile_95(dof) == pytest.approx(stats.t.ppf(0.95, dof), abs=1e-3)
    assert results.t_quantile_95(200) == pytest.approx(1.645)
    with pytest.raises(ValueError, match="dof"):
        results.t_quantile_95(0)
    diffs = [0.3, 0.5, 0.4]
    expected = stats.t.ppf(0.95, 2) * np.std(diffs, ddof=1) / np.sqrt(3)
    assert results.seed_margin(diffs) == pytest.approx(expected, rel=1e-3)
    assert results.seed_margin(diffs, floor=1.0) == 1.0
    assert results.seed_margin([0.4]) == np.inf  # one seed: no spread to judge by
