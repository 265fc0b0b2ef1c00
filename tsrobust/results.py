"""Results with provenance: ``results/<profile>/<chapter>/<name>.json`` (+ ``.npz`` arrays).

A chapter wraps each expensive computation in :func:`record`: if a result with the same name was
recorded for the same parameters, it is loaded; otherwise it is computed, timed and saved
atomically with its provenance (profile, parameters, device, torch version, git commit, wall
seconds, dataset copy, timestamp). gpu/paper runs are committed as small files, so the book shows
them without recomputing; every number shown says where it came from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tsrobust.io import atomic_write
from tsrobust.params import PROFILES, resolve
from tsrobust.runtime import choose_device, resolve_precision

RESULTS_ENV = "TSROBUST_RESULTS"
"""Environment variable naming the results root (default: ``results/`` of the book's folder)."""

VERDICTS = ("reproduced", "direction holds", "differs", "inconclusive")
"""Verdicts of a test row: *reproduced* (the paper's number, at the paper's settings), *direction
holds* (the qualitative claim holds by more than the measured noise), *differs*, and
*inconclusive* (the run cannot tell: no noise was measured to judge by, or, for a claim of no
effect, the noise is as large as the effect that would refute it)."""
INCONCLUSIVE = VERDICTS[3]

SANITY_PASSES, SANITY_FAILS = "sanity check passes", "sanity check fails"
SANITY_VERDICTS = (SANITY_PASSES, SANITY_FAILS)
"""Verdicts of a row that holds by construction on a correct run (an exact count, an area that
the construction makes 0): it checks the code, not the paper, so it is shown and counted apart
from :data:`VERDICTS` (see :func:`sanity_check`)."""


def results_root() -> Path:
    """``$TSROBUST_RESULTS``, else ``results/`` in the nearest folder up from here with a
    ``_toc.yml`` (the book's root), else ``./results``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder / "results"
    return here / "results"


def device_name(device=None) -> str:
    """The device a result was computed on, as a reader would name it: the GPU's name for a CUDA
    device, else the CPU (``None``: the CPU, where everything runs unless told otherwise)."""
    device = choose_device("cpu" if device is None else device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {os.cpu_count()} cores)"


def git_commit() -> str:
    """Commit of the checkout in use, with ``+dirty`` if it has uncommitted changes."""
    try:
        root = Path(__file__).resolve().parent
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
            text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def provenance(cfg, *, seconds: float, dataset: str | None, device=None) -> dict:
    """The provenance block stored with every result. ``device``: where it was computed (``None``:
    the CPU). Where ``cfg`` has a ``precision`` parameter, the precision it resolved to on that
    device is recorded (``"auto"`` means bf16 on some machines and fp32 on others)."""
    prov = {
        "profile": cfg.profile,
        "parameters": cfg.as_dict(),
        "device": device_name(device),
        "torch": torch.__version__,
        "commit": git_commit(),
        "seconds": round(float(seconds), 3),
        "dataset": dataset or "none (synthetic data generated in the chapter)",
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if "precision" in cfg.as_dict():
        prov["precision"] = resolve_precision(cfg.precision, "cpu" if device is None else device)
    return prov


@dataclass
class Result:
    """A recorded result: JSON values, numpy arrays and the provenance they were made with."""

    chapter: str
    name: str
    values: dict
    arrays: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    dir: Path | None = None
    loaded: bool = False

    def caption(self) -> str:
        p = self.provenance
        how = "recorded run, loaded" if self.loaded else "computed in this run"
        precision = f", {p['precision']}" if p.get("precision") else ""
        return (
            f"*Source: {how}; profile `{p.get('profile')}`, {p.get('device')}{precision}, "
            f"torch {p.get('torch')}, commit `{p.get('commit')}`, {p.get('seconds')} s, "
            f"data: {p.get('dataset')}, {p.get('timestamp')}.*"
        )

    def _repr_markdown_(self):
        return self.caption()


def _paths(chapter: str, name: str, profile: str) -> tuple[Path, Path, Path]:
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    folder = results_root() / profile / chapter
    return folder, folder / f"{name}.json", folder / f"{name}.npz"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "item") and hasattr(obj, "numel") and obj.numel() == 1:  # 0-d tensor
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


PAIR_ATTEMPTS = 5
"""How often :func:`save` rewrites a record whose JSON and arrays another writer interleaved."""
READ_ATTEMPTS = 20
READ_RETRY_S = 0.05
""":func:`load` rereads a record whose JSON and arrays do not match this often, this far apart
(a writer is between its two renames), before calling it broken."""


class MismatchedRecord(ValueError):
    """A record's JSON names other arrays than its ``.npz`` holds: a writer was killed between
    writing the two, or two writers interleaved and did not finish."""


def arrays_digest(arrays: dict) -> str:
    """SHA-256 of named arrays (names, dtypes, shapes, bytes): stored in a record's JSON, so a
    reader can tell that the ``.npz`` beside it is the one written with it."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(chapter, name, cfg, values, arrays=None, *, seconds, dataset=None,
         device=None) -> Result:
    """Save ``values`` (JSON) and ``arrays`` (npz) atomically with provenance (``device``: where
    they were computed, see :func:`provenance`); return the Result.

    Each file is written to a temporary name and renamed (:func:`tsrobust.io.atomic_write`), the
    arrays first and the JSON last; the JSON carries the arrays' digest (:func:`arrays_digest`).
    Two processes saving the same record at once (two cluster jobs with the same settings) can
    interleave their renames and leave one's JSON beside the other's arrays; so after writing,
    the pair on disk is read back, and rewritten while its digests differ. The last writer to
    finish has seen its own check pass after the last rename, so one consistent pair remains.
    """
    folder, json_path, npz_path = _paths(chapter, name, cfg.profile)
    arrays = {k: np.asarray(v) for k, v in (arrays or {}).items()}
    prov = provenance(cfg, seconds=seconds, dataset=dataset, device=device)
    doc = {"chapter": chapter, "name": name, "values": _jsonable(values), "provenance": prov,
           "arrays": sorted(arrays)}
    if arrays:
        doc["arrays_digest"] = arrays_digest(arrays)
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    for _ in range(PAIR_ATTEMPTS):
        if arrays:
            with atomic_write(npz_path) as tmp:
                np.savez_compressed(tmp, **arrays)
        elif npz_path.exists():
            npz_path.unlink(missing_ok=True)
        with atomic_write(json_path) as tmp:
            tmp.write_text(text)
        if not arrays or _pair_matches(json_path, npz_path):
            break
    else:
        raise MismatchedRecord(
            f"{json_path} and {npz_path.name} kept being rewritten by another process while "
            f"this one saved them; run one job per record"
        )
    return Result(chapter, name, doc["values"], arrays, prov, folder, loaded=False)


def _read_pair(json_path: Path, npz_path: Path) -> tuple[dict, dict]:
    doc = json.loads(json_path.read_text())
    arrays = {}
    if doc.get("arrays"):
        with np.load(npz_path) as npz:
            arrays = {k: npz[k] for k in doc["arrays"]}
    return doc, arrays


def _pair_matches(json_path: Path, npz_path: Path) -> bool:
    try:
        doc, arrays = _read_pair(json_path, npz_path)
    except (OSError, ValueError, KeyError, EOFError):
        return False
    return doc.get("arrays_digest") in (None, arrays_digest(arrays))


def load(chapter, name, profile) -> Result | None:
    """Load a recorded result, or ``None`` if there is none. A corrupt file raises ``ValueError``
    saying which file to delete; a JSON whose arrays digest differs from the ``.npz`` beside it,
    after :data:`READ_ATTEMPTS` reads, raises :class:`MismatchedRecord` (a ``ValueError``)."""
    folder, json_path, npz_path = _paths(chapter, name, profile)
    if not json_path.exists():
        return None
    for attempt in range(READ_ATTEMPTS):
        try:
            doc, arrays = _read_pair(json_path, npz_path)
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise ValueError(
                f"recorded result {json_path} is unreadable or incomplete ({err}); delete "
                f"{json_path} (and {npz_path.name}) to recompute it"
            ) from err
        if doc.get("arrays_digest") in (None, arrays_digest(arrays)):
            return Result(chapter, name, doc["values"], arrays, doc["provenance"], folder,
                          loaded=True)
        time.sleep(READ_RETRY_S)  # a writer may be between its two renames
    raise MismatchedRecord(
        f"recorded result {json_path} does not match the arrays in {npz_path.name} (a writer was "
        f"stopped between the two files); delete both to recompute it"
    )


recorded = load


def record(chapter, name, cfg, compute, *, dataset=None, device=None) -> Result:
    """Load ``name`` if recorded for these parameters (``cfg.as_dict()``), else compute and save.

    ``compute()`` returns a dict of JSON-able values, or ``(values, arrays)``. ``device``: where
    ``compute`` runs (``None``: the CPU), for the provenance. A record whose JSON and arrays do
    not match (:class:`MismatchedRecord`: its writer was killed between the two files) is
    recomputed.
    """
    try:
        old = load(chapter, name, cfg.profile)
    except MismatchedRecord:
        old = None
    if old is not None and old.provenance.get("parameters") == cfg.as_dict():
        return old
    start = time.perf_counter()
    out = compute()
    seconds = time.perf_counter() - start
    values, arrays = out if isinstance(out, tuple) else (out, None)
    return save(chapter, name, cfg, values, arrays, seconds=seconds, dataset=dataset,
                device=device)


@dataclass(frozen=True)
class Run:
    """One independent recorded computation of a chapter, which a cluster can run as a job of
    its own (``python -m tsrobust.book run``; a chapter lists its runs in
    ``independent_runs(profile, **params)``).

    ``name``: ``"<chapter>/<record name>"``, what it records. ``compute()``: computes and records
    it (:func:`record`) — or loads it, when it is recorded — with exactly the settings, seeds and
    fingerprint the chapter's notebook resolves for the same parameters, so that the notebook
    then finds it recorded and only loads it; it must pickle (a ``functools.partial`` of a
    module function, not a closure over data). ``settings``: the parameters it records with;
    two runs of one name must have equal ones (else they would overwrite each other's
    record). ``needs``: runs that must be recorded before this one starts (e.g. the teacher a
    student learns from)."""

    name: str
    compute: object
    settings: dict = field(default_factory=dict)
    needs: tuple = ()

    def __call__(self):
        return self.compute()


def verdict(ours, paper, *, abs_tol=0.0, rel_tol=0.0, direction_holds=None, noise=0.0,
            paper_scale: bool = True) -> str:
    """Compare our number with the paper's.

    "reproduced" if ``|ours − paper| ≤ tol = max(abs_tol, rel_tol·|paper|)`` (both tolerances 0
    unless given: say what counts as close where the row is made), our number is precise
    enough to tell, ``noise ≤ tol`` (``noise``: its standard error; a run too small to resolve
    the tolerance cannot reproduce a number, only match it by chance), and the run was made at
    the paper's settings, ``paper_scale`` (:func:`at_paper_scale`; a smaller run that lands on
    the paper's number has not reproduced it). Otherwise "direction holds" if
    ``direction_holds`` (the qualitative claim the number supports holds in our run), else
    "differs".
    """
    tol = max(abs_tol, rel_tol * abs(float(paper)))
    if paper_scale and abs(float(ours) - float(paper)) <= tol and float(noise) <= tol:
        return "reproduced"
    return "direction holds" if direction_holds else "differs"


def at_paper_scale(cfg, settings: dict) -> bool:
    """Whether ``cfg`` has the paper's settings: every parameter of ``settings`` at the value
    of the ``paper`` profile (the profile and seed aside). Only such a run can reproduce a
    number (:func:`verdict`)."""
    paper = resolve(settings, profile="paper", seed=cfg.seed).as_dict()
    ours = cfg.as_dict()
    return all(ours.get(k) == v for k, v in paper.items() if k not in ("profile", "seed"))


ACC_MARGIN = 0.02
"""Accuracies (as fractions) closer than 2 points are a tie, not a direction."""
SPEC_MARGIN = 0.01
"""MBNC or ε values closer than 0.01 are a tie, not a direction."""


def accuracy_se(p: float, var: float, n_images: int, repeats: int, *,
                fresh_images: bool) -> float:
    """Standard error of a mean accuracy ``p`` (a fraction) measured ``repeats`` times on
    ``n_images`` images, with sample variance ``var`` over the repeats.

    The image sample alone makes an accuracy uncertain by the binomial ``p(1 − p)/n_images``,
    which a variance from few repeats can miss (two repeats can agree by chance). With
    ``fresh_images`` (new images every repeat) each repeat's variance is at least that, and the
    mean of ``repeats`` divides it; with the same images every time, the repeats only average the
    attack's randomness and the binomial term stays whole."""
    p, n, r = float(p), max(int(n_images), 1), max(int(repeats), 1)
    binomial = p * (1 - p) / n
    if fresh_images:
        return float(np.sqrt(max(float(var), binomial) / r))
    return float(np.sqrt(binomial + float(var) / r))


def direction_margin(se_a: float, se_b: float, floor: float = ACC_MARGIN) -> float:
    """What a difference of two accuracies must exceed to count as a direction: two standard
    errors of the difference, ``2·√(se_a² + se_b²)``, and at least ``floor``."""
    return max(float(floor), 2 * float(np.sqrt(se_a ** 2 + se_b ** 2)))


def exceeds(a, b, margin=0.0) -> bool:
    """``a > b + margin``: a direction counts as holding only when it clears ``margin`` (the
    noise of the measurement), not on a tie."""
    return float(a) > float(b) + float(margin)


# --------------------------------------------------------------------------------------------
# Seeds: spread across independent runs, and the margins and verdicts it supports
# --------------------------------------------------------------------------------------------

T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)
"""Student's t quantile at 0.975 for 1…10 degrees of freedom (beyond: :func:`t_quantile`)."""


def t_quantile(df) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom: a difference beyond it
    times its standard error is a direction at the two-sided 5 % level. ``df`` = ∞ gives the
    normal 1.96; above 10 a Cornish–Fisher expansion (within 0.001)."""
    if df == math.inf:
        return 1.959964
    if isinstance(df, bool) or int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer or inf, got {df!r}")
    df = int(df)
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def seed_stats(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (``ddof = 1``; NaN for a single value) and count of
    per-seed values (one value per independently trained run)."""
    v = np.asarray([float(x) for x in values], dtype=float)
    if v.size == 0:
        raise ValueError("seed_stats needs at least one value")
    sd = float(v.std(ddof=1)) if v.size > 1 else math.nan
    return float(v.mean()), sd, int(v.size)


def mean_pm(values, spec: str = ".3f", scale: float = 1.0) -> str:
    """``"mean ± sd"`` of per-seed values (times ``scale``); just the value for one seed."""
    mean, sd, n = seed_stats(values)
    if n == 1:
        return format(scale * mean, spec)
    return f"{format(scale * mean, spec)} ± {format(scale * sd, spec)}"


def seed_margin(a, b, *, floor_var: float = 0.0) -> float | None:
    """What ``mean(a) − mean(b)`` must exceed to count as a direction, from measured noise.

    ``a`` and ``b`` hold one value per seed (independent runs). Their spread is pooled (the
    same kind of quantity, measured the same way): ``s² = Σ (nᵢ − 1) sᵢ² / Σ (nᵢ − 1)``,
    floored by ``floor_var``, the variance one run's value has from its own measurement (e.g.
    the binomial variance of an accuracy on a finite image set, which a few seeds can miss). The
    margin is the t quantile (:func:`t_quantile`, degrees of freedom of the pooled spread) times
    the standard error of the difference, ``s·√(1/n_a + 1/n_b)``. With one seed on each side
    there is no spread: the margin then rests on ``floor_var`` alone (normal quantile), and is
    ``None`` — no noise measured, nothing to judge by — without one."""
    groups = [np.asarray([float(x) for x in g], dtype=float) for g in (a, b)]
    if any(g.size == 0 for g in groups):
        raise ValueError("seed_margin needs at least one value on each side")
    df = sum(g.size - 1 for g in groups)
    if df == 0 and floor_var <= 0:
        return None
    pooled = (sum(((g - g.mean()) ** 2).sum() for g in groups) / df) if df else 0.0
    var = max(float(pooled), float(floor_var))
    se = math.sqrt(var * (1 / groups[0].size + 1 / groups[1].size))
    return t_quantile(df if df and pooled >= floor_var else math.inf) * se


def direction_verdict(difference: float, margin: float | None) -> str:
    """The verdict of a claimed direction measured as ``difference`` (positive: the claimed
    way): "direction holds" beyond ``margin``, "differs" when the difference goes the other way
    beyond it (a reversal the noise cannot explain), "inconclusive" when it lies within the
    noise (the run cannot tell the claimed direction from a tie or a reversal) or when no noise
    was measured (``margin`` None)."""
    if margin is None:
        return "inconclusive"
    d = float(difference)
    if d > margin:
        return "direction holds"
    return "differs" if d < -margin else "inconclusive"


def combined_verdict(verdicts) -> str:
    """One verdict for a claim made of several directions that must all hold (e.g. every
    layer, every attack): "differs" when any part differs, "direction holds" when every part
    holds, else "inconclusive" (some part within its noise or without one)."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("combined_verdict needs at least one verdict")
    if "differs" in verdicts:
        return "differs"
    return "direction holds" if all(v == "direction holds" for v in verdicts) else "inconclusive"


def layers_note(verdict: str) -> str:
    """What a per-layer claim judged by :func:`combined_verdict` required, for a row's note."""
    return ("every layer beyond its margin across seeds (differs: one reversed beyond it)"
            + ("; a layer within its margin, or no spread measured (one seed)"
               if verdict == "inconclusive" else ""))


def no_effect_verdict(effect: float, margin: float | None, refuting: float) -> str:
    """The verdict of a claim of *no* effect, e.g. "label training does not lower ε_in".

    ``effect``: the effect measured (positive: the way the claim denies); ``refuting``: the
    size of an effect that would refute the claim (e.g. the same effect under the contrasting
    treatment, which the source says does have it). "differs" when ``effect`` clears
    ``margin``; "direction holds" when it does not *and* the run can resolve an effect of the
    refuting size (``margin < refuting``); otherwise "inconclusive": a run whose noise is as
    large as the effect in question cannot show its absence."""
    if margin is None:
        return "inconclusive"
    if float(effect) > margin:
        return "differs"
    return "direction holds" if margin < float(refuting) else "inconclusive"


def margin_text(margin: float | None, spec: str = ".3f", unit: str = "") -> str:
    """How a row's note states its margin (or that it has none)."""
    if margin is None:
        return "no spread measured (one seed): nothing to judge a direction by"
    return f"margin {format(margin, spec)}{unit} (t × standard error of the difference)"


@dataclass
class Row:
    """One line of a comparison table: our value beside the paper's."""

    quantity: str
    ours: object
    paper: object
    source: str
    verdict: str
    note: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS + SANITY_VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS + SANITY_VERDICTS}, "
                             f"got {self.verdict!r}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


class Comparison:
    """A markdown table of our numbers beside the paper's, with the provenance of ours."""

    def __init__(self, rows, result: Result | None):
        self.rows, self.result = list(rows), result

    def _repr_markdown_(self):
        lines = [
            "| quantity | ours | paper | paper source | verdict | why |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.quantity} | {_fmt(r.ours)} | {_fmt(r.paper)} | {r.source} | "
                f"{verdict_cell(r.verdict)} | {r.note} |"
            )
        if any(r.verdict in SANITY_VERDICTS for r in self.rows):
            lines += ["", SANITY_NOTE]
        if self.result is not None:
            lines += ["", f"Ours: {self.result.caption()}"]
        return "\n".join(lines)


def compare(rows, result: Result | None = None) -> Comparison:
    """Our numbers beside the paper's (display it in a notebook)."""
    return Comparison(rows, result)


# --------------------------------------------------------------------------------------------
# Counting verdicts and showing plain tables
# --------------------------------------------------------------------------------------------

MISSING = "—"
"""How a missing value (an empty group, an undefined correlation) is shown."""


def verdict_counts(rows) -> str:
    """The verdicts of ``rows`` (:class:`Row` objects) counted in order of first appearance, as a
    summary reads them: ``"2 reproduced, 1 direction holds"``; ``""`` for no rows. Sanity checks
    are counted apart, after the tests: ``"1 reproduced; 2 sanity checks pass"``
    (:func:`sanity_counts`)."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.verdict not in SANITY_VERDICTS:
            counts[row.verdict] = counts.get(row.verdict, 0) + 1
    tests = ", ".join(f"{n} {k}" for k, n in counts.items())
    return "; ".join(part for part in (tests, sanity_counts(rows)) if part)


class MarkdownTable:
    """A markdown table that a notebook displays as such (``display(table)``); ``text`` is the
    markdown, also its plain-text form."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self):
        return self.text

    def __repr__(self):
        return self.text


def markdown_table(columns: dict, digits: int = 4) -> MarkdownTable:
    """A dict of equally long columns ``{header: values}`` as a markdown table.

    Floats are shown with ``digits`` significant digits, ``None`` as "—", lists and tuples as
    sets ``{1, 4}``, and a ``|`` inside a cell is escaped (a bare one would end the cell).
    """
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    if any(len(c) != n for c in columns.values()):
        raise ValueError("all columns must have the same length")

    def cell(v):
        if v is None:
            text = MISSING
        elif isinstance(v, (float, np.floating)):
            text = f"{float(v):.{digits}g}"
        elif isinstance(v, (list, tuple)):
            text = "{" + ", ".join(map(str, v)) + "}"
        else:
            text = str(v)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(k) for k in names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(columns[k][i]) for k in names) + " |" for i in range(n)]
    return MarkdownTable("\n".join(lines))


def records_markdown(records) -> MarkdownTable:
    """The provenance of several records in one table (a run made of many records, such as
    students of several seeds, would otherwise need a caption each): name, profile, seed,
    whether loaded or computed, seconds, device, precision and commit."""
    recs = list(records)
    p = [r.provenance for r in recs]
    return markdown_table({
        "record": [r.name for r in recs],
        "profile": [q.get("profile") for q in p],
        "seed": [q.get("parameters", {}).get("seed") for q in p],
        "source": ["recorded run, loaded" if r.loaded else "computed in this run" for r in recs],
        "seconds": [q.get("seconds") for q in p],
        "device": [q.get("device") for q in p],
        "precision": [q.get("precision") for q in p],
        "commit": [q.get("commit") for q in p],
    }, digits=6)


# ----------------------------------------------------------------------------------------------
# Missing values, paired and rank-correlation margins, verdict summaries
# ----------------------------------------------------------------------------------------------

def as_number(x) -> float | None:
    """``x`` as a finite float, or ``None`` when missing: ``None``, NaN, ±inf, or the strings
    ``"nan"``/``"inf"`` that :func:`save` stores for non-finite floats."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x, spec: str = ".3f") -> str:
    """``x`` formatted with ``spec``, or ``MISSING`` when it is missing (:func:`as_number`)."""
    v = as_number(x)
    return MISSING if v is None else format(v, spec)


def paired_margin(a, b, floor: float = 0.0) -> float:
    """What mean(a) − mean(b) of paired measurements must exceed to count as a direction: two
    standard errors of the mean paired difference, and at least ``floor``."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.size < 2:
        return float(floor)
    return max(float(floor), 2 * float(diff.std(ddof=1)) / math.sqrt(diff.size))


SPEARMAN_Z = 1.645
"""A rank correlation counts as a direction beyond 1.645/√(n − 1): under chance Spearman's ρ
over n pairs has standard deviation 1/√(n − 1), so this is the one-sided 5 % level."""


def spearman_margin(n: int) -> float:
    """``SPEARMAN_Z`` / √(n − 1): how far from 0 a rank correlation over ``n`` pairs must be to
    count as a direction (infinite for one pair: no ordering to correlate)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return SPEARMAN_Z / math.sqrt(n - 1) if n > 1 else math.inf


# --------------------------------------------------------------------------------------------
# Sanity checks: rows true by construction, shown and counted apart from the tests
# --------------------------------------------------------------------------------------------

SANITY_NOTE = ("*Sanity checks* (in italics) hold by construction when the code is right: they "
               "could not have come out otherwise on a correct run, so they check the code, not "
               "the paper, and are not counted as reproduced.")
"""The line under a comparison table that holds a sanity check."""


def sanity_check(holds: bool) -> str:
    """The verdict of a row that is true by construction on a correct run (an exact count, an
    identity, an area that the construction makes 0): ``"sanity check passes"`` if ``holds``,
    else ``"sanity check fails"`` (a bug, not a finding about the paper). A row whose outcome
    could not have been otherwise is no test of the paper, so it gets no verdict of
    :data:`VERDICTS`."""
    return SANITY_VERDICTS[0] if holds else SANITY_VERDICTS[1]


def is_test(row) -> bool:
    """Whether ``row`` is a test (a verdict of :data:`VERDICTS`), not a sanity check."""
    return row.verdict not in SANITY_VERDICTS


def sanity_counts(rows) -> str:
    """The sanity checks among ``rows``: ``"2 sanity checks pass"``, ``"1 sanity check passes,
    1 sanity check fails"``; ``""`` if there are none."""
    passed = sum(r.verdict == SANITY_VERDICTS[0] for r in rows)
    failed = sum(r.verdict == SANITY_VERDICTS[1] for r in rows)
    parts = [f"1 sanity check {one}" if n == 1 else f"{n} sanity checks {many}"
             for n, one, many in ((passed, "passes", "pass"), (failed, "fails", "fail")) if n]
    return ", ".join(parts)


def verdict_cell(verdict: str) -> str:
    """A verdict as a table shows it: a test's in bold; a passing sanity check in italics, a
    failing one in bold."""
    return f"*{verdict}*" if verdict == SANITY_VERDICTS[0] else f"**{verdict}**"


# --------------------------------------------------------------------------------------------
# The run a chapter shows: the largest recorded one (this build's own run is the pipeline check)
# --------------------------------------------------------------------------------------------


def config_of(result: Result, settings: dict):
    """The :class:`tsrobust.params.Config` that ``result`` was made with: its provenance's
    parameters, resolved against the chapter's ``settings``."""
    params = dict(result.provenance["parameters"])
    return resolve(settings, profile=params.pop("profile"), seed=params.pop("seed"), **params)


def largest_recorded(run: Result, settings: dict) -> Result:
    """The result a chapter shows for ``run``: the book leads with the largest recorded run.

    That is the record of the same chapter and name from the largest profile above ``run``'s
    (:data:`tsrobust.params.PROFILES` is ordered by size) that was made with that profile's
    ``settings`` at ``run``'s seed; ``run`` itself if there is none. A record made with other
    parameters (an older setting, another seed) is not shown in its place. ``run`` remains this
    build's own run: the pipeline check."""
    params = run.provenance["parameters"]
    larger = PROFILES[PROFILES.index(params["profile"]) + 1:]
    for profile in reversed(larger):
        rec = recorded_with(run.chapter, run.name,
                            resolve(settings, profile=profile, seed=params["seed"]))
        if rec is not None:
            return rec
    return run


# --------------------------------------------------------------------------------------------
# Summaries that count tests only, and margins from a few seeds
# --------------------------------------------------------------------------------------------

def claim_summary(rows) -> str:
    """One paragraph from a list of :class:`Row`: how many *tests* hold, differ or are
    inconclusive (naming the last two), and, apart, how many sanity checks passed: sanity checks
    and inconclusive rows never count as holding."""
    rows = list(rows)
    tests = [r for r in rows if is_test(r)]
    checks = [r for r in rows if not is_test(r)]
    differ = [r.quantity for r in tests if r.verdict == "differs"]
    open_ = [r.quantity for r in tests if r.verdict == INCONCLUSIVE]
    held = len(tests) - len(differ) - len(open_)
    text = f"Of the {len(tests)} tests in this run, {held} hold{'s' if held == 1 else ''}"
    if differ:
        text += (f"; {len(differ)} differ{'s' if len(differ) == 1 else ''}: "
                 + "; ".join(f"*{q}*" for q in differ))
    if open_:
        text += (f"; {len(open_)} {'is' if len(open_) == 1 else 'are'} inconclusive: "
                 + "; ".join(f"*{q}*" for q in open_))
    text += "."
    if checks:
        failed = [r.quantity for r in checks if r.verdict == SANITY_FAILS]
        text += (f" Not counted: {len(checks)} sanity check{'s' if len(checks) > 1 else ''} "
                 f"of the set-up, "
                 + (f"{len(failed)} of which failed: " + "; ".join(f"*{q}*" for q in failed)
                    if failed else "all passed" if len(checks) > 1 else "passed") + ".")
    return text


T_95_ONE_SIDED = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796,
                  1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717,
                  1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697)
"""Student's t quantile t_{0.95, ν} for ν = 1 … 30 degrees of freedom (beyond: ≈ 1.645)."""


def t_quantile_95(dof: int) -> float:
    """The one-sided 95 % quantile of Student's t with ``dof`` degrees of freedom."""
    if isinstance(dof, bool) or not isinstance(dof, (int, np.integer)) or dof < 1:
        raise ValueError(f"dof must be a positive integer, got {dof!r}")
    return T_95_ONE_SIDED[dof - 1] if dof <= len(T_95_ONE_SIDED) else 1.645


def paired_seed_margin(diffs, floor: float = 0.0) -> float:
    """What the mean of *paired* per-seed differences ``diffs`` (one per seed, both arms run with
    that seed) must exceed to count as a direction — :func:`seed_margin` is the unpaired,
    two-group version: the one-sided 5 % level of a t-test, t_{0.95, n−1} · sd / √n, and at
    least ``floor``; infinite for fewer than two seeds (no spread to judge by). With few seeds
    the t quantile is much larger than the 2 of a normal approximation (6.3 for two seeds)."""
    diffs = np.asarray(diffs, dtype=float).ravel()
    if diffs.size < 2:
        return math.inf
    sd = float(diffs.std(ddof=1))
    return max(float(floor), t_quantile_95(diffs.size - 1) * sd / math.sqrt(diffs.size))


def recorded_with(chapter: str, name: str, cfg) -> Result | None:
    """The record ``name`` of ``chapter`` in ``cfg``'s profile if it was made with exactly
    ``cfg``'s parameters, else ``None``."""
    rec = load(chapter, name, cfg.profile)
    if rec is not None and rec.provenance.get("parameters") == cfg.as_dict():
        return rec
    return None


def largest_recorded_set(cfg, settings: dict, records_of) -> tuple:
    """:func:`largest_recorded` for a chapter whose run is several records (students of several
    seeds, say): the largest profile above ``cfg``'s whose records are all present.

    ``records_of(config)`` maps a chapter configuration to the records a run with it makes,
    ``{key: (chapter, name, record_config)}``. For each profile larger than ``cfg.profile``,
    largest first, the configuration of that profile at ``cfg``'s seed is formed and every one
    of its records looked up (:func:`recorded_with`); the first profile with all of them wins.
    Returns ``(config, {key: Result})``, or ``(cfg, None)`` when no larger profile is complete
    (the chapter then shows this build's own run)."""
    for profile in reversed(PROFILES[PROFILES.index(cfg.profile) + 1:]):
        big = resolve(settings, profile=profile, seed=cfg.seed)
        found = {key: recorded_with(chapter, name, rec_cfg)
                 for key, (chapter, name, rec_cfg) in records_of(big).items()}
        if found and all(r is not None for r in found.values()):
            return big, found
    return cfg, None
