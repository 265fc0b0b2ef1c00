"""What the committed runs cost, from their records: ``python -m tsrobust.book costs``.

Every record carries the wall seconds of its computation in its provenance
(:func:`tsrobust.results.provenance`). :func:`measured` adds them up per profile and chapter,
and :func:`costs_markdown` prints the table that the reproducing page shows between its
``COSTS_BEGIN`` and ``COSTS_END`` markers (a test checks that the page matches the records).
``smoke`` records are a local cache, not committed, so they are left out.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tsrobust.params import PROFILES

COSTS_BEGIN = "<!-- costs: python -m tsrobust.book costs -->"
COSTS_END = "<!-- end of costs -->"
COMMITTED_PROFILES = tuple(p for p in PROFILES if p != "smoke")


def measured(results_root) -> dict[tuple[str, str], dict]:
    """``{(profile, chapter): {"records", "seconds", "devices"}}`` over the JSON records under
    ``results_root`` (checkpoint folders and smoke records aside)."""
    out: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"records": 0, "seconds": 0.0, "devices": set()})
    root = Path(results_root)
    for profile in COMMITTED_PROFILES:
        for path in sorted((root / profile).glob("*/*.json")):
            prov = json.loads(path.read_text())["provenance"]
            row = out[(profile, path.parent.name)]
            row["records"] += 1
            row["seconds"] += float(prov["seconds"])
            precision = f", {prov['precision']}" if prov.get("precision") else ""
            row["devices"].add(f"{prov['device']}{precision}")
    return dict(out)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def costs_markdown(results_root) -> str:
    """The table of measured costs, one row per profile and chapter with records."""
    rows = measured(results_root)
    lines = ["| profile | chapter | records | recorded compute time | device |",
             "|---|---|---|---|---|"]
    for (profile, chapter), row in sorted(rows.items(),
                                          key=lambda kv: (PROFILES.index(kv[0][0]), kv[0][1])):
        lines.append(f"| `{profile}` | {chapter} | {row['records']} | "
                     f"{_duration(row['seconds'])} | {'; '.join(sorted(row['devices']))} |")
    if not rows:
        lines.append("| – | – | 0 | – | – |")
    return "\n".join(lines)


def page_block(text: str) -> str:
    """The text between the markers of a page."""
    start = text.index(COSTS_BEGIN) + len(COSTS_BEGIN)
    return text[start:text.index(COSTS_END)].strip()
