"""The reproducing page's cost table is computed from the records, not typed."""

import json
from pathlib import Path

from tsrobust.book import costs

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
    table = costs.costs_markdown(tmp_path)
    assert "| `cpu` | 03_x | 2 | 1.0 h | CPU (x, 2 cores), bf16 |" in table
    assert "| `paper` | 08_y | 1 | 30 s | CPU (x, 2 cores) |" in table
    assert table.index("`cpu`") < table.index("`paper`")


def test_the_reproducing_page_shows_the_costs_of_the_committed_records():
    page = (ROOT / "book" / "reproducing.md").read_text()
    assert costs.page_block(page) == costs.costs_markdown(ROOT / "results"), (
        "book/reproducing.md's cost table is stale: paste the output of "
        "`python -m tsrobust.book costs` between its markers")
