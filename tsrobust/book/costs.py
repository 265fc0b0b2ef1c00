"""What each profile costs: ``python -m tsrobust.book costs``.

Measured where there are records: every record carries the wall seconds of its computation in
its provenance (:func:`tsrobust.results.provenance`); :func:`measured` adds them up per profile
and chapter — for a chapter that lists its records (``record_names``), only once all of a run's
records are there (:func:`split_partial`; a run under way is estimated, with what it has made). Estimated from FLOPs where there are none: a chapter module that defines
``run_flops(cfg)`` (chapters 3–7; :mod:`tsrobust.bench` counts 2 FLOP per multiply-accumulate of
every layer, forward and backward) is costed at its profile's settings (:func:`estimated`), at an
assumed throughput: for ``gpu`` and ``paper``, :data:`tsrobust.bench.REFERENCE_UTILIZATION` of
the dense bf16 peak of :data:`tsrobust.bench.REFERENCE_GPU`; for ``cpu``, the rate the committed
``cpu`` records achieved (their chapters' FLOPs at the ``cpu`` settings over their recorded
seconds: :func:`cpu_rate`), since that profile is sized for the two CPU cores that made them.

:func:`costs_markdown` prints the table that the reproducing page shows between its
``COSTS_BEGIN`` and ``COSTS_END`` markers (a test checks that the page matches). ``smoke``
records are a local cache, not committed, so they are left out.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections import defaultdict
from pathlib import Path

from tsrobust import bench
from tsrobust.params import PROFILES, resolve

COSTS_BEGIN = "<!-- costs: python -m tsrobust.book costs -->"
COSTS_END = "<!-- end of costs -->"
COMMITTED_PROFILES = tuple(p for p in PROFILES if p != "smoke")
ESTIMATE_SEED = 0
"""The seed a profile's settings are resolved with for an estimate (none changes a size)."""


def measured(results_root) -> dict[tuple[str, str], dict]:
    """``{(profile, chapter): {"records", "seconds", "devices"}}`` over the JSON records under
    ``results_root`` (checkpoint folders and smoke records aside)."""
    out: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"records": 0, "seconds": 0.0, "devices": set(), "names": set()})
    root = Path(results_root)
    for profile in COMMITTED_PROFILES:
        for path in sorted((root / profile).glob("*/*.json")):
            prov = json.loads(path.read_text())["provenance"]
            row = out[(profile, path.parent.name)]
            row["records"] += 1
            row["names"].add(path.stem)
            row["seconds"] += float(prov["seconds"])
            precision = f", {prov['precision']}" if prov.get("precision") else ""
            row["devices"].add(f"{prov['device']}{precision}")
    return dict(out)


def chapter_modules() -> list:
    """The chapter modules of :mod:`tsrobust.chapters` that count their FLOPs (``SETTINGS``,
    ``CHAPTER`` and ``run_flops``), in chapter order."""
    import tsrobust.chapters as package

    mods = [importlib.import_module(f"{package.__name__}.{m.name}")
            for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("ch")]
    return [m for m in sorted(mods, key=lambda m: m.__name__)
            if all(hasattr(m, a) for a in ("SETTINGS", "CHAPTER", "run_flops"))]


def flops(modules=None) -> dict[tuple[str, str], int]:
    """``{(profile, chapter): FLOPs}`` of every committed profile of every chapter that counts
    them, computed from the profile's settings."""
    return {(p, m.CHAPTER): int(m.run_flops(resolve(m.SETTINGS, profile=p, seed=ESTIMATE_SEED)))
            for m in (chapter_modules() if modules is None else modules)
            for p in COMMITTED_PROFILES}


def expected(modules=None) -> dict[tuple[str, str], set[str]]:
    """``{(profile, chapter): record names}`` that a complete run of each committed profile
    makes, for the chapter modules that list them (``record_names(cfg)``)."""
    out = {}
    for m in (chapter_modules() if modules is None else modules):
        if not hasattr(m, "record_names"):
            continue
        for p in COMMITTED_PROFILES:
            cfg = resolve(m.SETTINGS, profile=p, seed=ESTIMATE_SEED)
            out[(p, m.CHAPTER)] = {name for chapter, name, _ in m.record_names(cfg).values()
                                   if chapter == m.CHAPTER}
    return out


def split_partial(rows: dict, needed: dict) -> tuple[dict, dict]:
    """``(complete, partial)``: the rows of :func:`measured` whose chapter has every record a
    run of that profile makes (``needed``, :func:`expected`; chapters that do not list theirs
    count as complete), and those that lack some — a run under way, whose seconds are not the
    chapter's cost."""
    complete, partial = {}, {}
    for key, row in rows.items():
        need = needed.get(key)
        (partial if need is not None and not need <= row["names"] else complete)[key] = row
    return complete, partial


def cpu_rate(rows: dict, counts: dict) -> tuple[float, list[str]] | None:
    """FLOP/s of the committed ``cpu`` records: the FLOPs of the chapters that have both
    ``cpu`` records (``rows``, :func:`measured`) and a FLOP count (``counts``, :func:`flops`),
    over their recorded seconds; and those chapters. ``None`` when there are none."""
    chapters = sorted(c for (p, c) in rows if p == "cpu" and ("cpu", c) in counts)
    seconds = sum(rows[("cpu", c)]["seconds"] for c in chapters)
    if not chapters or seconds <= 0:
        return None
    return sum(counts[("cpu", c)] for c in chapters) / seconds, chapters


def estimated(rows: dict, counts: dict) -> dict[tuple[str, str], dict]:
    """``{(profile, chapter): {"flops", "seconds", "basis"}}`` for every profile and chapter
    with a FLOP count and no record: seconds at the reference GPU's assumed throughput for
    ``gpu`` and ``paper``, at :func:`cpu_rate` for ``cpu`` (left out without ``cpu``
    records)."""
    gpu = bench.REFERENCE_PEAK_FLOPS * bench.REFERENCE_UTILIZATION
    rate = cpu_rate(rows, counts)
    out = {}
    for (profile, chapter), n in counts.items():
        if (profile, chapter) in rows:
            continue
        if profile == "cpu":
            if rate is None:
                continue
            out[(profile, chapter)] = {"flops": n, "seconds": n / rate[0], "basis": "cpu"}
        else:
            out[(profile, chapter)] = {"flops": n, "seconds": n / gpu, "basis": "gpu"}
    return out


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def _chapter_list(chapters: list[str]) -> str:
    nums = [c[:2].lstrip("0") for c in chapters]
    return nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]


def costs_markdown(results_root, modules=None) -> str:
    """The table of what each profile costs, one row per profile and chapter: measured from the
    records where a run's records are all there, else estimated from FLOPs (marked ≈ and
    *estimate*; with how many records of a run under way are made); then the assumptions of
    the estimates."""
    counts = flops(modules)
    needed = expected(modules)
    rows, partial = split_partial(measured(results_root), needed)
    est = estimated(rows, counts)
    rate = cpu_rate(rows, counts)
    lines = ["| profile | chapter | cost | how | device |", "|---|---|---|---|---|"]
    keys = sorted({*rows, *est}, key=lambda k: (PROFILES.index(k[0]), k[1]))
    for profile, chapter in keys:
        if (profile, chapter) in rows:
            row = rows[(profile, chapter)]
            n = row["records"]
            lines.append(f"| `{profile}` | {chapter} | {_duration(row['seconds'])} | measured: "
                         f"compute time of {n} record{'s' if n != 1 else ''} | "
                         f"{'; '.join(sorted(row['devices']))} |")
        else:
            e = est[(profile, chapter)]
            device = ("the CPU of the `cpu` records, at their rate" if e["basis"] == "cpu"
                      else "A100-class GPU, bf16 (assumed)")
            made = ""
            if (profile, chapter) in partial:
                row, need = partial[(profile, chapter)], needed[(profile, chapter)]
                made = (f"; {len(row['names'] & need)} of its {len(need)} records made so far "
                        f"({_duration(row['seconds'])})")
            lines.append(f"| `{profile}` | {chapter} | ≈ {_duration(e['seconds'])} | "
                         f"*estimate*: {e['flops']:.1e} FLOP{made} | {device} |")
    if not keys:
        lines.append("| – | – | – | – | – |")
    notes = [
        "",
        "Estimates (≈) count the FLOPs of each chapter's training and attacks from its "
        "settings (`run_flops` of its module: 2 FLOP per multiply-accumulate of every layer, "
        "forward and backward passes) and assume a throughput, so they are estimates, not "
        f"measurements: for `gpu` and `paper`, {bench.REFERENCE_UTILIZATION:.0%} of "
        f"{bench.REFERENCE_GPU}, i.e. "
        f"{bench.REFERENCE_PEAK_FLOPS * bench.REFERENCE_UTILIZATION / 1e12:.1f} TFLOP/s"]
    if rate is not None:
        notes[-1] += (f"; for `cpu`, the {rate[0] / 1e9:.1f} GFLOP/s that the committed `cpu` "
                      f"records of chapter{'s' if len(rate[1]) > 1 else ''} "
                      f"{_chapter_list(rate[1])} achieved (their FLOPs over their recorded "
                      f"seconds)")
    notes[-1] += "."
    return "\n".join(lines + notes)


def page_block(text: str) -> str:
    """The text between the markers of a page."""
    start = text.index(COSTS_BEGIN) + len(COSTS_BEGIN)
    return text[start:text.index(COSTS_END)].strip()
