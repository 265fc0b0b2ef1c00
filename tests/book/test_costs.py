"""The reproducing page's cost table is computed from the records and the chapters' settings,
not typed: measured where there are records, estimated from FLOPs where there are none."""

import json
from pathlib import Path
from types import SimpleNamespace

from tsrobust.book import costs
from tsrobust.params import Setting

ROOT = Path(__file__).resolve().parents[2]


def _record(root: Path, profile: str, chapter: str, name: str, seconds: float, **prov):
    path = root / profile / chapter / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"values": {}, "provenance": {
        "seconds": seconds, "device": "CPU (x, 2 cores)", **prov}}))


def test_costs_add_up_the_recorded_seconds_per_profile_and_chapter(tmp_path):
    _record(tmp_path, "cpu", "03_x", "a", 3000.0, precision="bf16")
    _record(tmp_path, "cpu", "03_x", "b", 600.0, precision="bf16")
    _record(tmp_path, "paper", "08_y", "c", 30.0)
    _record(tmp_path, "smoke", "08_y", "d", 5.0)  # a local cache: not counted
    (tmp_path / "cpu" / "03_x" / "checkpoints").mkdir()
    got = costs.measured(tmp_path)
    assert set(got) == {("cpu", "03_x"), ("paper", "08_y")}
    assert got[("cpu", "03_x")]["records"] == 2 and got[("cpu", "03_x")]["seconds"] == 3600.0
    table = costs.costs_markdown(tmp_path, modules=[])
    assert ("| `cpu` | 03_x | 1.0 h | measured: compute time of 2 records | "
            "CPU (x, 2 cores), bf16 |") in table
    assert "| `paper` | 08_y | 30 s | measured: compute time of 1 record | CPU (x, 2 cores) |" \
        in table
    assert table.index("`cpu`") < table.index("`paper`")


def _chapter(name: str, per_unit: float):
    """A chapter whose FLOPs are ``per_unit`` × its size ``n`` (1, 2, 3, 4 by profile)."""
    return SimpleNamespace(CHAPTER=name, run_flops=lambda cfg: int(cfg.n * per_unit),
                           SETTINGS={"n": Setting(int, smoke=1, cpu=2, gpu=3, paper=4)})


def test_profiles_without_records_are_estimated_from_their_flops(tmp_path):
    # 03_x: cpu records of 4000 s for its 2 × 1e15 FLOP at cpu: 5e11 FLOP/s measured
    _record(tmp_path, "cpu", "03_x", "a", 3000.0)
    _record(tmp_path, "cpu", "03_x", "b", 1000.0)
    mods = [_chapter("03_x", 1e15), _chapter("06_y", 3e14)]
    rows = costs.measured(tmp_path)
    counts = costs.flops(mods)
    assert counts[("gpu", "06_y")] == 9 * 10 ** 14
    rate, chapters = costs.cpu_rate(rows, counts)
    assert rate == 5e11 and chapters == ["03_x"]
    est = costs.estimated(rows, counts)
    assert ("cpu", "03_x") not in est  # measured
    assert est[("cpu", "06_y")]["seconds"] == 1200.0  # 6e14 FLOP / 5e11 FLOP/s
    # gpu/paper: at 30 % of 312 TFLOP/s = 9.36e13 FLOP/s
    assert abs(est[("gpu", "06_y")]["seconds"] - 9e14 / 9.36e13) < 1e-9
    assert abs(est[("paper", "03_x")]["seconds"] - 4e15 / 9.36e13) < 1e-9  # 42.7 s
    table = costs.costs_markdown(tmp_path, modules=mods)
    assert ("| `cpu` | 06_y | ≈ 20.0 min | *estimate*: 6.0e+14 FLOP | the CPU of the `cpu` "
            "records, at their rate |") in table
    assert "| `paper` | 03_x | ≈ 43 s | *estimate*: 4.0e+15 FLOP | A100-class GPU, bf16 " \
        "(assumed) |" in table
    assert "| `cpu` | 03_x | 1.1 h | measured" in table
    assert "30% of an A100-class GPU" in table and "500.0 GFLOP/s" in table
    assert len([l for l in table.splitlines() if l.startswith("| `")]) == 6


def test_a_run_under_way_is_estimated_not_measured(tmp_path):
    # 03_x complete (its two records); 06_y lists three records per run and has one so far
    _record(tmp_path, "cpu", "03_x", "a", 3000.0)
    _record(tmp_path, "cpu", "03_x", "b", 1000.0)
    _record(tmp_path, "cpu", "06_y", "s0", 500.0)
    x, y = _chapter("03_x", 1e15), _chapter("06_y", 3e14)
    x.record_names = lambda cfg: {0: ("03_x", "a", cfg), 1: ("03_x", "b", cfg)}
    y.record_names = lambda cfg: {k: ("06_y", f"s{k}", cfg) for k in range(3)}
    complete, partial = costs.split_partial(costs.measured(tmp_path), costs.expected([x, y]))
    assert set(complete) == {("cpu", "03_x")} and set(partial) == {("cpu", "06_y")}
    table = costs.costs_markdown(tmp_path, modules=[x, y])
    # the rate is chapter 3's alone (5e11 FLOP/s), and 06_y at cpu is estimated: 6e14 / 5e11
    assert "500.0 GFLOP/s" in table and "| `cpu` | 06_y | 8.3 min | measured" not in table
    assert ("| `cpu` | 06_y | ≈ 20.0 min | *estimate*: 6.0e+14 FLOP; 1 of its 3 records made "
            "so far (8.3 min) |") in table
    # with its last records, it is measured
    _record(tmp_path, "cpu", "06_y", "s1", 500.0)
    _record(tmp_path, "cpu", "06_y", "s2", 500.0)
    assert "| `cpu` | 06_y | 25.0 min | measured: compute time of 3 records" in \
        costs.costs_markdown(tmp_path, modules=[x, y])


def test_without_cpu_records_the_cpu_profile_is_not_estimated(tmp_path):
    table = costs.costs_markdown(tmp_path, modules=[_chapter("06_y", 3e14)])
    assert "`cpu`" not in table.split("\n\n")[0] and "`gpu` | 06_y" in table
    assert "GFLOP/s" not in table


def test_the_cifar_chapters_count_their_flops():
    names = [m.CHAPTER for m in costs.chapter_modules()]
    assert names[:5] == ["03_oracle_teacher", "04_standard_training", "05_adversarial_training",
                         "06_in_out_plane_at", "07_ccat_robust_features"]


def test_the_reproducing_page_shows_the_costs_of_the_committed_records():
    page = (ROOT / "book" / "reproducing.md").read_text()
    assert costs.page_block(page) == costs.costs_markdown(ROOT / "results"), (
        "book/reproducing.md's cost table is stale: paste the output of "
        "`python -m tsrobust.book costs` between its markers")
