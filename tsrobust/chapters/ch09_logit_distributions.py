"""Chapter 9: the logit distributions of standard and adversarially trained ResNet-18s (source C
§4.1, §4.3 and appendix B).

Everything the chapter computes, checks and draws lives here; the notebook calls these
functions and shows what they return.

- :func:`record_networks`: the ST and AT networks of every seed
  (:func:`tsrobust.chapters.resnets.trained_network`, recorded under this chapter's key; the first
  seed's keep their weights, which chapter 10 distils from). :func:`leading_runs`: the book leads
  with the largest recorded run; this build's own run is the pipeline check.
- :func:`analyse`: everything §4.1 and appendix B measure on those records — the max-logit and
  logit-gap distributions over the snapshot epochs (Figs. 1, B.1: their mean and skew per epoch),
  adversarial accuracy per logit-gap bin (Fig. 2B), per-class confidence rank orders and the share
  of images ranked far apart (Fig. 3A–B), the error-rank statistic (Fig. 3C), AO@k with and
  without within-class permutation (Fig. 3D), logit-cosine neighbours (Fig. B.3), Table 1 — and
  one flat table of per-seed numbers (``per_seed``) that the claims are judged on.
- :func:`claim_rows`: the paper's statements beside ours, judged by the spread across seeds
  (:data:`CLAIMS` says which numbers each row compares and how).
- Figures (``plot_*``) and tables (``*_markdown``) of the notebook.

The statistics themselves are :mod:`tsrobust.logits`; this module chooses which networks, epochs
and images they are applied to.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from tsrobust import bench, logits, results
from tsrobust.chapters import resnets
from tsrobust.chapters.cifar import larger_profiles_sentence
from tsrobust.data import CIFAR10, CLASSES, NUM_CLASSES, load_cifar10
from tsrobust.params import PROFILES, Setting, resolve, resolve_notebook

CHAPTER = resnets.NETWORK_CHAPTER
"""Record key of this chapter: the networks are its records."""
KINDS = resnets.KINDS
LABELS = {"st": "ST", "at": "AT"}
COLORS = {"st": "tab:blue", "at": "tab:red"}

PAPER_TABLE1 = {
    "adversarial": {"st": (0.00, 0.00), "at": (41.5, 0.63)},
    "natural_cifar100": {"st": (76.1, 0.58), "at": (49.1, 0.85)},
}
"""Source C, Table 1 (mean ± sd over 3 seeds, %), as far as our copy of it can be read: the
CIFAR-10 adversarial accuracies of ST and of AT at epoch 40, and the CIFAR-100 natural
accuracies. The CIFAR-10 natural-accuracy cells are garbled in our copy (">e /e ± 01⊒0 /e") and
the CIFAR-100 adversarial column is missing."""
PAPER_RANK_DISAGREEMENT = {"at_st": 11.8, "at_at": 1.1}
"""§4.1: "an average of 11.8 % of examples across all classes were ranked very differently
between AT and ST networks. AT networks were very consistent amongst themselves, however,
differing greatly on only about 1.1 % of images"."""
REPRODUCE_TOL = {"rank": 1.0, "adversarial": 2.0}
"""How close (points) a number must come to the paper's to count as reproduced, at the paper's
settings only: rank-disagreement shares within a point, adversarial accuracies within two
(Table 1's AT sd is 0.63 over three seeds)."""

FROG = CLASSES.index("frog")
"""Figs. 3A and B.2 show the frog images."""
NEIGHBOUR_CLASSES = (CLASSES.index("airplane"), CLASSES.index("automobile"),
                     CLASSES.index("bird"), FROG, CLASSES.index("ship"))
"""Fig. B.3's seed images: the first test image of each of five classes (the source shows five
categories, not which)."""
GRID = 6
"""Images per quadrant of Fig. B.2."""
PERMUTE_SEED_OFFSET = 4000
"""The within-class permutations of Fig. 3D draw from ``seed + 4000``."""

SETTINGS = {
    **resnets.NETWORK_SETTINGS,
    "seeds": Setting(int, smoke=2, cpu=3, gpu=3, paper=3, min=1,
                     doc="ST and AT networks trained from seeds seed, seed + 1, … (§4.1: 3 "
                         "each); their spread is the noise the verdicts judge by"),
    "analysis_epoch": Setting(int, smoke=40, cpu=40, gpu=40, paper=40,
                              choices=resnets.PAPER_TEACHER_EPOCHS,
                              doc="the paper's epoch (of 200) whose networks Figs. 2, 3, B.2 "
                                  "and B.3 compare, scaled to the run (Table 1's AT network: "
                                  "epoch 40)"),
    "bins": Setting(int, smoke=30, cpu=40, gpu=60, paper=60, min=2,
                    doc="histogram bins of Figs. 1, 2A and B.1"),
    "gap_bins": Setting(int, smoke=4, cpu=8, gpu=10, paper=10, min=1,
                        doc="logit-gap bins of Fig. 2B (equal counts: quantiles of the AT "
                            "networks' gaps)"),
    "ao_ks": Setting(tuple, smoke=(1, 3, 5), cpu=(1, 3, 5), gpu=(1, 3, 5), paper=(1, 3, 5),
                     min=1, max=NUM_CLASSES,
                     doc="depths k at which the AO@k claims are judged (Fig. 3D plots k = 1 … "
                         "10)"),
    "n_neighbour_seeds": Setting(int, smoke=100, cpu=1000, gpu=2000, paper=2000, min=1,
                                 max=10_000,
                                 doc="test images (the first) whose logit-cosine neighbours "
                                     "are counted for Fig. B.3's same-class share"),
    "neighbours": Setting(int, smoke=5, cpu=5, gpu=5, paper=5, min=1,
                          doc="neighbours per seed image (Fig. B.3: 5)"),
}
"""Chapter 9's parameters: the networks' (:data:`tsrobust.chapters.resnets.NETWORK_SETTINGS`,
recorded once and shared with chapter 10) and the analysis's own."""


def check_settings(cfg):
    """Cross-parameter checks of the analysis (the networks' own are checked by
    :func:`tsrobust.chapters.resnets.trained_network` before it trains)."""
    if cfg.n_neighbour_seeds > cfg.n_test:
        raise ValueError(f"n_neighbour_seeds = {cfg.n_neighbour_seeds} must be ≤ n_test = "
                         f"{cfg.n_test} (the seed images are test images)")
    if cfg.neighbours >= cfg.n_test:
        raise ValueError(f"neighbours = {cfg.neighbours} must be < n_test = {cfg.n_test}")
    if len(set(cfg.ao_ks)) != len(cfg.ao_ks) or not cfg.ao_ks:
        raise ValueError(f"ao_ks {cfg.ao_ks} must be distinct depths in [1, {NUM_CLASSES}]")


def analysis_epoch(cfg) -> int:
    """Our epoch of the paper's ``analysis_epoch`` (of 200)."""
    return resnets.scaled_epochs(cfg.epochs, (cfg.analysis_epoch,))[0]


# -- the networks -----------------------------------------------------------------------------

def network_config(cfg, k: int):
    """The network settings of the ``k``-th seed (``cfg.seed + k``): ``cfg``'s values of
    :data:`~tsrobust.chapters.resnets.NETWORK_SETTINGS`, so the record is the one chapter 10
    finds with the same settings."""
    values = {name: getattr(cfg, name) for name in resnets.NETWORK_SETTINGS}
    return resnets.network_config(cfg.profile, cfg.seed + k, **values)


def record_names(cfg) -> dict:
    """The records a run with ``cfg`` makes, ``{(kind, k): (chapter, name, config)}``."""
    out = {}
    for k in range(cfg.seeds):
        ncfg = network_config(cfg, k)
        for kind in KINDS:
            out[(kind, k)] = (CHAPTER, resnets.network_name(kind, ncfg), ncfg)
    return out


def record_networks(cfg, data: CIFAR10, *, device="cpu", progress: bool = True) -> dict:
    """Every seed's ST and AT network, trained and recorded (or loaded): ``{kind: [Result, …]}``,
    first seed first. The first seed's records keep their weights (``keep_weights``): chapter 10
    distils from that AT network and takes the ST network's order for its hybrid targets."""
    check_settings(cfg)
    out = {kind: [] for kind in KINDS}
    for (kind, k), (_, _, ncfg) in record_names(cfg).items():
        out[kind].append(resnets.trained_network(kind, ncfg, data, keep_weights=k == 0,
                                                 device=device, progress=progress))
    return out


def independent_runs(profile: str, **params) -> list[results.Run]:
    """Every seed's ST and AT network (:func:`resnets.network_run`) as a run of its own (a
    cluster job), with the notebook's settings for ``params`` and the weights kept as
    :func:`record_networks` keeps them."""
    cfg = resolve_notebook(SETTINGS, profile, params)
    check_settings(cfg)
    return [resnets.network_run(kind, ncfg, keep_weights=k == 0)
            for (kind, k), (_, _, ncfg) in record_names(cfg).items()]


def leading_runs(cfg, own: dict) -> tuple:
    """``(config, runs, own_run)``: every network of the largest profile above ``cfg``'s that
    is completely recorded (:func:`tsrobust.results.largest_recorded_set`), else ``own``."""
    big, found = results.largest_recorded_set(cfg, SETTINGS, record_names)
    if found is None:
        return cfg, own, True
    return big, {kind: [found[(kind, k)] for k in range(big.seeds)] for kind in KINDS}, False


def data_for(cfg, data: CIFAR10 | None = None) -> CIFAR10:
    """The CIFAR-10 images of a run with ``cfg`` (``data`` itself when it has their sizes): the
    records hold logits, and the figures show the images and read the labels."""
    if data is not None and (len(data.x_train), len(data.x_test)) == (cfg.n_train, cfg.n_test):
        return data
    return load_cifar10(n_train=cfg.n_train, n_test=cfg.n_test, device="cpu")


# -- what the analysis computes ---------------------------------------------------------------

def _logits(res, split: str, epoch: int) -> np.ndarray:
    name = f"{split}_logits_e{epoch}"
    if name not in res.arrays:
        raise ValueError(f"record {getattr(res, 'name', '?')} has no {name}; its snapshot epochs "
                         f"are {res.values.get('snapshot_epochs')}")
    return np.asarray(res.arrays[name], dtype=np.float64)


def _skew(values) -> float:
    """:func:`tsrobust.logits.skew`, NaN where it is undefined (constant values)."""
    try:
        return logits.skew(values)
    except ValueError:
        return float("nan")


def moments(runs: dict) -> dict:
    """Figs. 1 and B.1 in numbers: per kind and split (``train``, ``test``), the snapshot
    epochs and, per seed and epoch, the mean and skew of the max logits and of the logit gaps
    (``{kind: {split: {"epochs", "max_mean", "max_skew", "gap_mean", "gap_skew"}}}``)."""
    out = {}
    for kind in KINDS:
        out[kind] = {}
        for split in ("train", "test"):
            epochs = list(runs[kind][0].values["snapshot_epochs"])
            entry = {"epochs": epochs}
            for q, stat in (("max", logits.max_logit), ("gap", logits.logit_gap)):
                vals = [[stat(_logits(r, split, e)) for e in epochs] for r in runs[kind]]
                entry[f"{q}_mean"] = [[float(v.mean()) for v in seed] for seed in vals]
                entry[f"{q}_skew"] = [[_skew(v) for v in seed] for seed in vals]
            out[kind][split] = entry
    return out


def gap_bins(runs_at: list, epoch: int, n_bins: int) -> dict:
    """Fig. 2B: the AT networks' adversarial accuracy (%) per logit-gap bin on the attacked test
    images. Bin edges are quantiles of the gaps pooled over the seeds (equal counts; repeated
    edges merged); per seed and bin the accuracy (NaN where the bin is empty) and the count;
    ``centres``: the median pooled gap of each bin. ``above_below``: per seed, accuracy of the
    images whose gap exceeds that seed's median minus that of the others (NaN if either is
    empty): the claim "large gaps are a strong indicator of adversarial accuracy"."""
    gaps, robust = [], []
    for r in runs_at:
        ok = np.asarray(r.arrays[f"robust_e{epoch}"]).astype(bool)
        gaps.append(logits.logit_gap(_logits(r, "test", epoch))[:len(ok)])
        robust.append(ok)
    pooled = np.concatenate(gaps)
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([pooled.min(), pooled.min()])
    inner = edges[1:-1]
    n = max(len(edges) - 1, 1)
    which = [np.searchsorted(inner, g, side="right") for g in gaps]
    acc, counts, above_below = [], [], []
    for g, ok, w in zip(gaps, robust, which):
        counts.append([int((w == b).sum()) for b in range(n)])
        acc.append([100 * float(ok[w == b].mean()) if (w == b).any() else float("nan")
                    for b in range(n)])
        hi = g > np.median(g)
        above_below.append(100 * float(ok[hi].mean() - ok[~hi].mean())
                           if hi.any() and (~hi).any() else float("nan"))
    pooled_which = np.searchsorted(inner, pooled, side="right")
    centres = [float(np.median(pooled[pooled_which == b])) if (pooled_which == b).any()
               else float("nan") for b in range(n)]
    return {"edges": edges.tolist(), "centres": centres, "accuracy": acc, "counts": counts,
            "above_below": above_below}


def networks(runs: dict) -> list[tuple[str, int]]:
    """The networks of a run in the order the matrices list them: AT seeds, then ST seeds."""
    return [(kind, k) for kind in ("at", "st") for k in range(len(runs[kind]))]


def disagreement_matrix(runs: dict, epoch: int, labels) -> np.ndarray:
    """Fig. 3B: for every pair of networks (:func:`networks` order), the share (%) of test
    images whose per-class confidence ranks are far apart (:func:`tsrobust.logits.
    rank_disagreement`, mean over the classes); the diagonal is 0."""
    nets = networks(runs)
    conf = [logits.confidence(_logits(runs[kind][k], "test", epoch)) for kind, k in nets]
    m = np.zeros((len(nets), len(nets)))
    for i in range(len(nets)):
        for j in range(i + 1, len(nets)):
            m[i, j] = m[j, i] = 100 * float(
                logits.rank_disagreement(conf[i], conf[j], labels).mean())
    return m


def error_ranks(z, labels) -> np.ndarray:
    """Fig. 3C for one network: :func:`tsrobust.logits.error_rank_fractions`, or NaN where a
    class has no correctly classified image (then it has no average logit vector: a barely
    trained network, or too few test images)."""
    try:
        return logits.error_rank_fractions(z, labels)
    except ValueError:
        return np.full(np.shape(z)[1], np.nan)


def overlaps(runs: dict, epoch: int, labels, rng: np.random.Generator) -> dict:
    """Fig. 3D: AO@1 … AO@C between networks' logit rank orders on the test images
    (:func:`tsrobust.logits.logit_average_overlap`), per network: ``at_at[i]`` the mean over the
    other AT networks of AT network i's curve with them, ``at_st[i]`` its mean with every ST
    network, ``st_st[i]`` ST network i's with the other ST networks; the ``_perm`` entries with
    the second network's images permuted within their class (dashed lines). Empty lists where a
    kind has one network."""
    z = {kind: [_logits(r, "test", epoch) for r in runs[kind]] for kind in KINDS}
    out = {}
    for perm in (False, True):
        def curve(a, b):
            return logits.logit_average_overlap(a, b, labels=labels, permute_within_class=perm,
                                                rng=rng if perm else None)

        suffix = "_perm" if perm else ""
        for name, first, second in (("at_at", "at", "at"), ("at_st", "at", "st"),
                                    ("st_st", "st", "st")):
            rows = []
            for i, za in enumerate(z[first]):
                others = [curve(za, zb) for j, zb in enumerate(z[second])
                          if first != second or j != i]
                if others:
                    rows.append(np.mean(others, 0).tolist())
            out[name + suffix] = rows
    return out


def same_class_share(z, labels, n_seeds: int, k: int) -> float:
    """Fig. B.3 in a number: the share (%) of the ``k`` logit-cosine neighbours
    (:func:`tsrobust.logits.cosine_neighbours`) of the first ``n_seeds`` images that have the seed
    image's label."""
    y = np.asarray(labels)
    seeds = np.arange(n_seeds)
    nb = logits.cosine_neighbours(z, seeds, k)
    return 100 * float((y[nb] == y[seeds, None]).mean())


def table1(runs: dict, cfg) -> dict:
    """Table 1: per kind and seed, the natural test accuracy and the adversarial accuracy (%,
    APGD-CE then APGD-DLR on the first ``n_eval`` test images) — of ST at its last epoch, of AT
    at the paper's epoch 40 scaled (Table 1: "AT ResNet18 (Epoch 40)") — and those epochs."""
    epochs = {"st": cfg.epochs, "at": resnets.distillation_epoch(cfg)}
    out = {}
    for kind in KINDS:
        e = str(epochs[kind])
        out[kind] = {"epoch": epochs[kind],
                     "natural": [100 * r.values["test_accuracy"][e] for r in runs[kind]],
                     "adversarial": [100 * r.values["adversarial_accuracy"][e]
                                     for r in runs[kind]]}
    return out


def analyse(runs: dict, cfg, y_test) -> dict:
    """Everything the chapter shows of the networks ``runs`` (``{kind: [Result, …]}``) of a run
    with ``cfg``; ``y_test``: the labels of its ``n_test`` test images. Returns the figures'
    numbers (:func:`moments`, :func:`gap_bins`, :func:`disagreement_matrix`, :func:`error_ranks`,
    :func:`overlaps`, :func:`table1`) and ``per_seed``: the numbers the claims are judged on,
    one list per quantity (one value per seed, or per AT network for the paired ones)."""
    check_settings(cfg)
    y = np.asarray(y_test)
    if len(y) != cfg.n_test:
        raise ValueError(f"y_test has {len(y)} labels, the run's n_test = {cfg.n_test}; pass "
                         f"the labels of the run's test images (data_for(cfg).y_test)")
    e, last = analysis_epoch(cfg), cfg.epochs
    mom = moments(runs)
    snaps = mom["at"]["train"]["epochs"]
    at_e, at_last = snaps.index(e), snaps.index(last)
    gb = gap_bins(runs["at"], e, cfg.gap_bins)
    matrix = disagreement_matrix(runs, e, y)
    nets = networks(runs)
    at_idx = [i for i, (kind, _) in enumerate(nets) if kind == "at"]
    st_idx = [i for i, (kind, _) in enumerate(nets) if kind == "st"]
    errs = {kind: [error_ranks(_logits(r, "test", e), y).tolist() for r in runs[kind]]
            for kind in KINDS}
    ao = overlaps(runs, e, y, np.random.default_rng(cfg.seed + PERMUTE_SEED_OFFSET))
    t1 = table1(runs, cfg)
    per_seed = {"above_below_at": gb["above_below"]}
    for kind in KINDS:
        tr, te = mom[kind]["train"], mom[kind]["test"]
        per_seed[f"max_mean_train_{kind}"] = [s[at_e] for s in tr["max_mean"]]
        per_seed[f"max_skew_train_{kind}"] = [s[at_e] for s in tr["max_skew"]]
        per_seed[f"gap_mean_test_{kind}"] = [s[at_e] for s in te["gap_mean"]]
        per_seed[f"gap_skew_test_{kind}"] = [s[at_e] for s in te["gap_skew"]]
        per_seed[f"gap_mean_test_last_{kind}"] = [s[at_last] for s in te["gap_mean"]]
        per_seed[f"err2_{kind}"] = [100 * s[1] for s in errs[kind]]
        per_seed[f"same_class_{kind}"] = [
            same_class_share(_logits(r, "test", e), y, cfg.n_neighbour_seeds, cfg.neighbours)
            for r in runs[kind]]
        per_seed[f"natural_{kind}"] = t1[kind]["natural"]
        per_seed[f"adversarial_{kind}"] = t1[kind]["adversarial"]
    per_seed["rank_at_at"] = [float(np.mean([matrix[i, j] for j in at_idx if j != i]))
                              for i in at_idx] if len(at_idx) > 1 else []
    per_seed["rank_at_st"] = [float(np.mean([matrix[i, j] for j in st_idx])) for i in at_idx]
    for name, rows in ao.items():
        for k in range(1, NUM_CLASSES + 1):
            per_seed[f"ao_{name}@{k}"] = [row[k - 1] for row in rows]
    return {"epoch": e, "last": last, "seeds": len(runs["at"]), "moments": mom, "gap_bins": gb,
            "matrix": matrix.tolist(), "networks": nets, "errors": errs, "overlaps": ao,
            "table1": t1, "n_eval": cfg.n_eval, "n_test": cfg.n_test, "per_seed": per_seed}


# -- the claims -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claim:
    """One claim row: the ``per_seed`` quantities it compares and how.

    ``parts``: pairs ``(larger, smaller)`` of ``per_seed`` keys, each claimed larger beyond its
    margin (``smaller`` None: claimed > 0); the row holds when every part does
    (:func:`tsrobust.results.combined_verdict`). ``test``: ``"unpaired"`` — independent networks,
    :func:`tsrobust.results.seed_margin` (floored by one run's binomial variance where
    ``binomial`` names the number of images, ``"n_eval"`` or ``"n_test"``); ``"paired"`` — values
    of one network each (aligned by index), :func:`tsrobust.results.paired_seed_margin` of the
    differences (at least ``floor``); ``"positive"`` — the same for the values themselves.
    ``paper_numbers``: ``{per_seed key: (paper value, tolerance)}`` that a run at the paper's
    settings must also match to count as reproduced. ``missing``: why a network can have no
    value (the row then says on how many it has none).
    """

    key: str
    quantity: str
    paper: str
    source: str
    parts: tuple
    test: str = "unpaired"
    spec: str = ".2f"
    unit: str = ""
    binomial: str | None = None
    floor: float = 0.0
    paper_numbers: tuple = ()
    note: str = ""
    missing: str = ""


def claims(ks) -> list[Claim]:
    """The claims of §4.1, §4.3 and appendix B tested here (``ks``: the AO@k depths judged).
    Quantities name the epoch as ``{e}`` (the analysis epoch) and ``{last}``."""
    pts = dict(spec=".1f", unit=" points")
    return [
        Claim("max_mean", "AT networks' max logits are smaller than ST's (mean, training images, "
              "epoch {e})", "lower mean (Fig. 1, figure only)", "§4.1, Fig. 1",
              (("max_mean_train_st", "max_mean_train_at"),)),
        Claim("max_skew_positive", "AT networks' max logits are positively skewed (training "
              "images, epoch {e})", "positive skew (Fig. 1, figure only)", "§4.1, Fig. 1",
              (("max_skew_train_at", None),), test="positive"),
        Claim("max_skew", "AT networks' max logits are more positively skewed than ST's "
              "(training images, epoch {e})", "ST nearly symmetric, AT skewed (figure only)",
              "§4.1, Fig. 1", (("max_skew_train_at", "max_skew_train_st"),)),
        Claim("gap_mean", "AT networks' logit gaps are smaller than ST's (mean, test images, "
              "epoch {e})", "smaller, peak at 0 (Fig. 2A, figure only)", "§4.1, Fig. 2A",
              (("gap_mean_test_st", "gap_mean_test_at"),)),
        Claim("gap_skew_positive", "AT networks' logit gaps are positively skewed (test images, "
              "epoch {e})", "positive skew (figure only)", "§4.1, Figs. 2A, B.1",
              (("gap_skew_test_at", None),), test="positive"),
        Claim("gap_skew", "AT networks' logit gaps are more positively skewed than ST's (test "
              "images, epoch {e})", "more skewed (figure only)", "§4.1, Figs. 2A, B.1",
              (("gap_skew_test_at", "gap_skew_test_st"),)),
        Claim("gap_last", "At the last epoch AT's test-image logit gaps are still smaller than "
              "ST's (mean, epoch {last})", "AT keeps a lower-mean gap distribution on the test "
              "set (figure only)", "App. B.1, Fig. B.1C",
              (("gap_mean_test_last_st", "gap_mean_test_last_at"),)),
        Claim("gap_robust", "AT: images with a logit gap above the median are more often robust "
              "than those below (epoch {e})", "large gaps a strong indicator of adversarial "
              "accuracy (figure only)", "§4.1, Fig. 2B", (("above_below_at", None),),
              test="positive", floor=100 * results.ACC_MARGIN, **pts,
              note="per AT network: adversarial accuracy above minus below its median gap"),
        Claim("rank", "AT networks rank images by confidence like each other, not like ST "
              "networks: fewer images ranked far apart AT–AT than AT–ST (epoch {e})",
              f"AT–ST {PAPER_RANK_DISAGREEMENT['at_st']} % vs AT–AT "
              f"{PAPER_RANK_DISAGREEMENT['at_at']} %",
              "§4.1, Fig. 3B", (("rank_at_st", "rank_at_at"),), test="paired", **pts,
              paper_numbers=(("rank_at_at", (PAPER_RANK_DISAGREEMENT["at_at"],
                                             REPRODUCE_TOL["rank"])),
                             ("rank_at_st", (PAPER_RANK_DISAGREEMENT["at_st"],
                                             REPRODUCE_TOL["rank"]))),
              note="share of test images whose within-class rank differs by more than half "
                   "the largest rank, mean over classes; per AT network, paired"),
        Claim("ao", "AO@k of the logit rank orders: AT–AT above AT–ST (k = "
              + ", ".join(map(str, ks)) + ", epoch {e})", "higher (figure only)",
              "§4.1, Fig. 3D (solid)", tuple((f"ao_at_at@{k}", f"ao_at_st@{k}") for k in ks),
              test="paired", spec=".3f", note="per AT network, paired; every k"),
        Claim("ao_perm", "AO@k with images permuted within their class: AT–AT below AT–ST, "
              "the order reversed (k = " + ", ".join(map(str, ks)) + ")",
              "the difference goes away (figure only)", "§4.1, Fig. 3D (dashed)",
              tuple((f"ao_at_st_perm@{k}", f"ao_at_at_perm@{k}") for k in ks), test="paired",
              spec=".3f", note="per AT network, paired; every k; a tie (the difference gone, "
                               "not reversed) is inconclusive, AT–AT still above AT–ST differs"),
        Claim("ao_perm_st", "AO@k with images permuted within their class: AT networks agree "
              "less with each other than ST networks do (k = " + ", ".join(map(str, ks)) + ")",
              "\"AT networks showed less consistency than ST networks\"",
              "§4.1, Fig. 3D (dashed)",
              tuple((f"ao_st_st_perm@{k}", f"ao_at_at_perm@{k}") for k in ks), spec=".3f",
              note="every k"),
        Claim("errors", "ST's errors fall on the 2nd class of the true class's average logit "
              "vector more often than AT's (test images, epoch {e})",
              "ST often its 2nd, AT a broader set (figure only)", "§4.1, Fig. 3C",
              (("err2_st", "err2_at"),), **pts, note="share of the errors, natural images",
              missing="a class without a correctly classified test image has no average logit "
                      "vector"),
        Claim("neighbours", "ST's logit-cosine neighbours share the seed image's class more "
              "often than AT's (epoch {e})", "ST: primarily the seed's class; AT: similar "
              "colour and shape across classes (figure only)", "§4.3, Fig. B.3",
              (("same_class_st", "same_class_at"),), **pts),
        Claim("table1_adversarial", "AT networks are more robust than ST (APGD-CE + APGD-DLR, "
              "ε = 8/255; AT at epoch 40 scaled, ST at its last)",
              "41.5 ± 0.63 % vs 0.00 ± 0.00 %", "Table 1",
              (("adversarial_at", "adversarial_st"),), binomial="n_eval", **pts,
              paper_numbers=(("adversarial_at", (PAPER_TABLE1["adversarial"]["at"][0],
                                                 REPRODUCE_TOL["adversarial"])),
                             ("adversarial_st", (PAPER_TABLE1["adversarial"]["st"][0],
                                                 REPRODUCE_TOL["adversarial"])))),
        Claim("table1_natural", "ST networks are more accurate on clean test images than AT "
              "(AT at epoch 40 scaled, ST at its last)",
              "garbled in our copy (CIFAR-100: 76.1 ± 0.58 % vs 49.1 ± 0.85 %)", "Table 1",
              (("natural_st", "natural_at"),), binomial="n_test", **pts,
              note="the paper's CIFAR-10 cells cannot be read; CIFAR-100 (not run here) shows "
                   "the direction"),
    ]


def _clean(values) -> np.ndarray:
    return np.asarray([v for v in (results.as_number(x) for x in values) if v is not None])


def _binomial_var(values, n_images: int) -> float:
    """The largest variance (points²) one run's accuracy (%) has from its ``n_images`` images."""
    return max((100 * results.accuracy_se(min(max(v / 100, 0.0), 1.0), 0.0, n_images, 1,
                                          fresh_images=False)) ** 2 for v in values)


def _part(per_seed: dict, claim: Claim, larger: str, smaller: str | None,
          analysis: dict) -> tuple[str, float | None]:
    """The verdict and margin of one part of ``claim``."""
    if claim.test == "positive":
        a = _clean(per_seed[larger])
        if a.size == 0:
            return results.INCONCLUSIVE, None
        margin = results.paired_seed_margin(a, claim.floor)
        margin = None if not np.isfinite(margin) else margin
        return results.direction_verdict(a.mean(), margin), margin
    if claim.test == "paired":
        pairs = [(results.as_number(x), results.as_number(y))
                 for x, y in zip(per_seed[larger], per_seed[smaller])]
        diffs = np.asarray([x - y for x, y in pairs if x is not None and y is not None])
        if diffs.size == 0:
            return results.INCONCLUSIVE, None
        margin = results.paired_seed_margin(diffs, claim.floor)
        margin = None if not np.isfinite(margin) else margin
        return results.direction_verdict(diffs.mean(), margin), margin
    a, b = _clean(per_seed[larger]), _clean(per_seed[smaller])
    if a.size == 0 or b.size == 0:
        return results.INCONCLUSIVE, None
    floor_var = (_binomial_var([*a, *b], analysis[claim.binomial]) if claim.binomial else 0.0)
    margin = results.seed_margin(a, b, floor_var=floor_var)
    return results.direction_verdict(a.mean() - b.mean(), margin), margin


def _se(values) -> float:
    """Standard error of the mean of per-seed values (infinite for fewer than two)."""
    v = _clean(values)
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("inf")


def _pm(values, spec: str) -> str:
    v = _clean(values)
    return results.MISSING if v.size == 0 else results.mean_pm(v, spec)


def _label(key: str) -> str:
    """How a ``per_seed`` key reads in a row: ``ao_at_st_perm@3`` → ``AT–ST (permuted)``,
    ``rank_at_at`` → ``AT–AT``, ``gap_mean_test_st`` → ``ST``."""
    base = key.split("@")[0]
    if base.startswith(("ao_", "rank_")):
        pair = base.split("_")[1:3]
        return ("–".join(LABELS[k] for k in pair)
                + (" (permuted)" if base.endswith("_perm") else ""))
    return LABELS[base.rsplit("_", 1)[1]]


def _margins_text(margins, spec: str, unit: str) -> str:
    """The margins of a row's parts, as its note states them."""
    known = [m for m in margins if m is not None]
    if not known:
        return results.margin_text(None)
    if len(margins) == 1:
        return results.margin_text(known[0], spec, unit)
    return (f"margins {', '.join(format(m, spec) for m in known)}{unit} (t × standard error "
            f"of the difference, one per part)")


def scale_note(cfg) -> str:
    """The run's scale, as every row states it ("paper settings" only when they are)."""
    if results.at_paper_scale(cfg, SETTINGS):
        return f"{cfg.profile} profile, paper settings, {cfg.seeds} seeds"
    return (f"{cfg.profile} profile: ResNet-18 of width {cfg.width}, {cfg.epochs} epochs on "
            f"{train_images(cfg)} images, PGD-{cfg.at_steps} AT, APGD-{cfg.apgd_steps} on "
            f"{cfg.n_eval} test images, {cfg.seeds} seed{'s' if cfg.seeds > 1 else ''} "
            f"(paper: width 64, 200 epochs on 45000, PGD-10, APGD-100 on the 10000, 3 seeds)")


def claim_rows(analysis: dict, cfg) -> list[results.Row]:
    """The rows of :func:`claims` on ``analysis`` (:func:`analyse`): ours (mean ± sd over seeds
    or networks) beside the paper's, each judged by its margin (:class:`Claim`). A direction
    holds only beyond the margin, "differs" only for a reversal beyond it, and anything within
    it — or without a spread to judge by (one seed) — is inconclusive. A row with the paper's
    numbers is *reproduced* only at the paper's settings, when the direction holds and every
    number lies within :data:`REPRODUCE_TOL` of the paper's. Every row states the run's scale."""
    per_seed = analysis["per_seed"]
    paper_scale = results.at_paper_scale(cfg, SETTINGS)
    rows = []
    for claim in claims(cfg.ao_ks):
        verdicts, cells, margins = [], [], []
        for larger, smaller in claim.parts:
            v, m = _part(per_seed, claim, larger, smaller, analysis)
            verdicts.append(v)
            margins.append(m)
            depth = f"k = {larger.split('@')[1]}: " if "@" in larger else ""
            cells.append(depth + f"{_label(larger)} {_pm(per_seed[larger], claim.spec)}"
                         + ("" if smaller is None else
                            f" vs {_label(smaller)} {_pm(per_seed[smaller], claim.spec)}"))
        verdict = results.combined_verdict(verdicts)
        if claim.paper_numbers and verdict == "direction holds":
            matches = [results.verdict(_clean(per_seed[key]).mean(), paper, abs_tol=tol,
                                       direction_holds=True, noise=_se(per_seed[key]),
                                       paper_scale=paper_scale)
                       for key, (paper, tol) in claim.paper_numbers]
            if all(m == "reproduced" for m in matches):
                verdict = "reproduced"
        margin = _margins_text(margins, claim.spec, claim.unit)
        keys = list(dict.fromkeys(k for part in claim.parts for k in part if k is not None))
        gaps = [(k, sum(results.as_number(x) is None for x in per_seed[k]), len(per_seed[k]))
                for k in keys]
        gaps = [f"{_label(k)}: no value on {m} of {n} networks" for k, m, n in gaps if m]
        if gaps:
            if all(m is None for m in margins):
                margin = "too few values for a spread: nothing to judge a direction by"
            margin = "; ".join([*gaps, *([claim.missing] if claim.missing else []), margin])
        quantity = claim.quantity.format(e=analysis["epoch"], last=analysis["last"])
        note = "; ".join(p for p in (claim.note, margin, scale_note(cfg)) if p)
        rows.append(results.Row(quantity, "; ".join(cells), claim.paper, claim.source, verdict,
                                note))
    return rows


# -- tables -----------------------------------------------------------------------------------

def train_images(cfg) -> int:
    """Images the networks train on: ``n_train`` less the validation images held out."""
    return cfg.n_train - NUM_CLASSES * cfg.holdout_per_class


def work(cfg) -> dict:
    """What a run with ``cfg`` computes, in passes of one image (forward and backward through
    the network, which a PGD or APGD step and a training step both are; forward-only passes
    counted apart): ST and AT training, the AT PGD steps, the APGD steps (an upper bound: APGD-DLR
    counted on every image, where it runs only on those APGD-CE left standing), and the forward
    passes of the logit snapshots and accuracies."""
    n = train_images(cfg)
    snaps = len(resnets.snapshot_epochs(cfg))
    evals = {kind: len(resnets.eval_epochs(kind, cfg)) for kind in KINDS}
    forward = cfg.seeds * 2 * snaps * (cfg.n_logit_train + 2 * cfg.n_test
                                       + NUM_CLASSES * cfg.holdout_per_class)
    return {"st_train": cfg.seeds * cfg.epochs * n,
            "at_train": cfg.seeds * cfg.epochs * n,
            "at_pgd": cfg.seeds * cfg.epochs * n * cfg.at_steps,
            "apgd": cfg.seeds * sum(evals.values()) * 2 * cfg.n_eval * cfg.apgd_steps,
            "forward": forward}


def run_flops(cfg) -> int:
    """FLOPs of a run with ``cfg`` (:mod:`tsrobust.bench`): the passes of :func:`work` through
    a ResNet-18 of ``cfg``'s width and stem — training steps (forward, input and weight
    gradients), attack steps (forward and input gradient) and forward passes. An upper bound
    through APGD-DLR's share (see :func:`work`)."""
    macs = bench.layer_macs(resnets.build_network(cfg))
    w = work(cfg)
    return ((w["st_train"] + w["at_train"]) * bench.net_flops(macs, train=True)
            + (w["at_pgd"] + w["apgd"]) * bench.net_flops(macs, input_grad=True)
            + w["forward"] * bench.net_flops(macs))


def profiles_markdown() -> str:
    """The scale of every profile, from :data:`SETTINGS` (nothing typed in): network, data,
    training, evaluation and the work of :func:`work`, in millions of passes."""
    lines = ["| profile | width | training images | epochs | AT | APGD | seeds | snapshot "
             "epochs | training passes (M) | PGD + APGD steps (M) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in PROFILES:
        c = resolve(SETTINGS, profile=p, seed=0)
        w = work(c)
        lines.append(
            f"| `{p}` | {c.width} ({c.stem} stem) | {train_images(c)} | {c.epochs} | "
            f"PGD-{c.at_steps} | {c.apgd_steps} steps on {c.n_eval} | {c.seeds} | "
            f"{', '.join(map(str, resnets.snapshot_epochs(c)))} | "
            f"{(w['st_train'] + w['at_train']) / 1e6:.2f} | "
            f"{(w['at_pgd'] + w['apgd']) / 1e6:.2f} |")
    return "\n".join(lines)


def _paper_cell(mean: float, sd: float) -> str:
    """A Table 1 cell as the source prints it: ``41.5 ± 0.63``, ``0.00 ± 0.00``."""
    return f"{mean:.2f} ± {sd:.2f}" if mean == 0 else f"{mean:g} ± {sd:.2f}"


def table1_markdown(analysis: dict) -> str:
    """Table 1: ours (mean ± sd over seeds) beside the paper's, with what our copy lacks."""
    t1 = analysis["table1"]
    paper = PAPER_TABLE1
    lines = ["| network | natural (%), ours | adversarial (%), ours | paper CIFAR-10 natural | "
             "paper CIFAR-10 adversarial | paper CIFAR-100 natural | paper CIFAR-100 "
             "adversarial |", "|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        adv, nat100 = paper["adversarial"][kind], paper["natural_cifar100"][kind]
        lines.append(f"| {LABELS[kind]}, epoch {t1[kind]['epoch']} | "
                     f"{_pm(t1[kind]['natural'], '.1f')} | {_pm(t1[kind]['adversarial'], '.1f')}"
                     f" | garbled in our copy | {_paper_cell(*adv)} | {_paper_cell(*nat100)} | "
                     f"missing in our copy |")
    return "\n".join(lines)


def teacher_epochs_markdown(runs: dict) -> str:
    """The AT networks' natural and adversarial accuracy (%) at every evaluated epoch (the
    teacher epochs of Fig. A.6 scaled), mean ± sd over seeds."""
    epochs = runs["at"][0].values["eval_epochs"]
    lines = ["| AT epoch | natural (%) | adversarial (%) |", "|---|---|---|"]
    for e in epochs:
        lines.append(f"| {e} | "
                     f"{_pm([100 * r.values['test_accuracy'][str(e)] for r in runs['at']], '.1f')}"
                     f" | {_pm([100 * r.values['adversarial_accuracy'][str(e)] for r in runs['at']], '.1f')} |")
    return "\n".join(lines)


# -- figures ----------------------------------------------------------------------------------

def plot_distributions(runs: dict, quantity: str, bins: int):
    """Figs. 1 (``quantity`` ``"max"``) and B.1 (``"gap"``): the first seed's distribution of
    the max logit or logit gap at every snapshot epoch (darker = later), ST and AT (columns) on
    the training and test images (rows)."""
    stat = logits.max_logit if quantity == "max" else logits.logit_gap
    name = "max logit" if quantity == "max" else "logit gap"
    epochs = runs["at"][0].values["snapshot_epochs"]
    vals = {(kind, split): [stat(_logits(runs[kind][0], split, e)) for e in epochs]
            for kind in KINDS for split in ("train", "test")}
    hi = max(np.quantile(v, 0.995) for vs in vals.values() for v in vs)
    lo = min(min(v.min() for v in vs) for vs in vals.values())
    edges = np.linspace(lo, hi, bins + 1)
    shades = plt.cm.viridis(np.linspace(0.9, 0.1, len(epochs)))
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
    for i, split in enumerate(("train", "test")):
        for j, kind in enumerate(KINDS):
            ax = axes[i][j]
            for e, v, c in zip(epochs, vals[(kind, split)], shades):
                ax.hist(np.clip(v, lo, hi), bins=edges, density=True, histtype="step", lw=1.4,
                        color=c, label=f"epoch {e}")
            ax.set_title(f"{LABELS[kind]}, {split} images")
            ax.set_ylabel("density")
            if i == 1:
                ax.set_xlabel(name + " (the last bin holds the top 0.5 %)")
    axes[0][1].legend(fontsize=7)
    fig.suptitle(f"Distribution of the {name} over training (first seed)")
    fig.tight_layout()
    return fig


def _mean_sd(curves) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean and sd over the seeds (rows) of ``curves``, NaN rows left out, without warnings
    where a column has no value (a statistic undefined for every seed); sd None for one row."""
    curves = np.asarray(curves, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(curves, 0)
        sd = np.nanstd(curves, 0, ddof=1) if len(curves) > 1 else None
    return mean, sd


def _band(ax, x, curves, color, ls, label):
    mean, sd = _mean_sd(curves)
    ax.plot(x, mean, ls, color=color, marker="o", ms=3, label=label)
    if sd is not None:
        ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)


def plot_moments(analysis: dict):
    """Figs. 1 and B.1 in two numbers per epoch: the mean (top) and skew (bottom) of the max
    logit (left) and logit gap (right), ST and AT, training images solid and test images dashed,
    mean ± sd over seeds."""
    mom = analysis["moments"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
    for j, q in enumerate(("max", "gap")):
        for i, stat in enumerate(("mean", "skew")):
            ax = axes[i][j]
            for kind in KINDS:
                for split, ls in (("train", "-"), ("test", "--")):
                    m = mom[kind][split]
                    _band(ax, m["epochs"], m[f"{q}_{stat}"], COLORS[kind], ls,
                          f"{LABELS[kind]}, {split}")
            if stat == "skew":
                ax.axhline(0, color="gray", lw=0.8)
                ax.set_xlabel("epoch")
            ax.set_ylabel(f"{stat} of the {'max logit' if q == 'max' else 'logit gap'}")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Mean and skew of the logit distributions over training, "
                 f"{analysis['seeds']} seed{'s' if analysis['seeds'] > 1 else ''}")
    fig.tight_layout()
    return fig


def plot_gaps(runs: dict, analysis: dict, bins: int):
    """Fig. 2: (A) the logit gaps of ST and AT on the test images at the analysis epoch (all
    seeds pooled); (B) the AT networks' adversarial accuracy per logit-gap bin, mean ± sd over
    seeds, at each bin's median gap."""
    e = analysis["epoch"]
    gaps = {kind: np.concatenate([logits.logit_gap(_logits(r, "test", e)) for r in runs[kind]])
            for kind in KINDS}
    hi = max(np.quantile(g, 0.995) for g in gaps.values())
    edges = np.linspace(0, hi, bins + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for kind in KINDS:
        a.hist(np.clip(gaps[kind], 0, hi), bins=edges, density=True, alpha=0.5,
               color=COLORS[kind], label=LABELS[kind])
    a.set_xlabel("logit gap (max − second)")
    a.set_ylabel("density")
    a.set_title(f"(A) logit gaps, test images, epoch {e}")
    a.legend()
    gb = analysis["gap_bins"]
    _band(b, gb["centres"], gb["accuracy"], "k", "-", "AT")
    b.set_xlabel("logit gap (median of the bin)")
    b.set_ylabel("AT adversarial accuracy (%)")
    b.set_title(f"(B) AT robustness per gap bin ({len(gb['centres'])} equal-count bins)")
    fig.tight_layout()
    return fig


def plot_ranks(runs: dict, analysis: dict, labels, cls: int = FROG):
    """Fig. 3A–B: (A) the first AT and ST networks' confidence ranks of the test images of class
    ``cls`` (far-apart pairs in colour); (B) the share of images ranked far apart for every pair
    of networks."""
    e = analysis["epoch"]
    y = np.asarray(labels)
    idx = np.flatnonzero(y == cls)
    conf = {kind: logits.confidence(_logits(runs[kind][0], "test", e)[idx]) for kind in KINDS}
    ra = logits.class_ranks(conf["at"], y[idx])
    rs = logits.class_ranks(conf["st"], y[idx])
    far = np.abs(ra - rs) > logits.FAR_APART * (len(idx) - 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    a.scatter(rs[~far], ra[~far], s=6, color="gray", label="within half the range")
    a.scatter(rs[far], ra[far], s=8, color="tab:orange", label="far apart")
    a.set_xlabel("rank by ST confidence")
    a.set_ylabel("rank by AT confidence")
    a.set_title(f"(A) {CLASSES[cls]} test images: {100 * far.mean():.1f} % far apart")
    a.legend(fontsize=7)
    m = np.asarray(analysis["matrix"])
    names = [f"{LABELS[kind]} {k}" for kind, k in analysis["networks"]]
    im = b.imshow(m, cmap="magma_r")
    b.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
    b.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            b.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", fontsize=7,
                   color="white" if m[i, j] > m.max() / 2 else "black")
    fig.colorbar(im, ax=b, label="images ranked far apart (%)")
    b.set_title("(B) far-apart share, every pair of networks")
    fig.suptitle(f"Confidence rank orders per class, epoch {e}")
    fig.tight_layout()
    return fig


def plot_errors(analysis: dict):
    """Fig. 3C: the share of each network's errors on the k-th class of the true class's
    average logit vector, k = 1 … 10, ST and AT (mean ± sd over seeds)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    k = np.arange(1, NUM_CLASSES + 1)
    for off, kind in ((-0.2, "st"), (0.2, "at")):
        mean, sd = _mean_sd(100 * np.asarray(analysis["errors"][kind], dtype=float))
        ax.bar(k + off, mean, width=0.4, yerr=sd, color=COLORS[kind], label=LABELS[kind],
               capsize=2)
    ax.set_xticks(k)
    ax.set_xlabel("rank k of the predicted class in the true class's average logit vector")
    ax.set_ylabel("share of the errors (%)")
    ax.set_title(f"Where the errors fall, test images, epoch {analysis['epoch']}")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_overlap(analysis: dict):
    """Fig. 3D: AO@k, k = 1 … 10, AT–AT, AT–ST and ST–ST (solid), and with the second network's
    images permuted within their class (dashed); mean ± sd over networks."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    k = np.arange(1, NUM_CLASSES + 1)
    colors = {"at_at": "tab:red", "at_st": "tab:purple", "st_st": "tab:blue"}
    for name, color in colors.items():
        for suffix, ls in (("", "-"), ("_perm", "--")):
            rows = analysis["overlaps"][name + suffix]
            if rows:
                _band(ax, k, rows, color, ls, _label("ao_" + name + suffix))
    ax.set_xticks(k)
    ax.set_xlabel("depth k")
    ax.set_ylabel("AO@k")
    ax.set_title(f"Average overlap of the logit rank orders, epoch {analysis['epoch']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _image(ax, x, title=None, color="black"):
    ax.imshow(np.clip(np.asarray(x, dtype=np.float32).transpose(1, 2, 0), 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7, color=color)


def confidence_quadrants(conf_at, conf_st, labels, cls: int = FROG, n: int = GRID) -> dict:
    """Fig. B.2's selection among the images of class ``cls``: the ``n`` images of each quadrant
    of (AT, ST) normalized confidence rank — ``both_high`` (largest min rank), ``both_low``
    (smallest max rank), ``at_high`` (AT rank minus ST rank largest), ``st_high`` — as indices
    into ``labels``."""
    y = np.asarray(labels)
    idx = np.flatnonzero(y == cls)
    ra = logits.class_ranks(np.asarray(conf_at)[idx], y[idx]) / max(len(idx) - 1, 1)
    rs = logits.class_ranks(np.asarray(conf_st)[idx], y[idx]) / max(len(idx) - 1, 1)
    score = {"st_high": rs - ra, "both_high": np.minimum(ra, rs),
             "both_low": -np.maximum(ra, rs), "at_high": ra - rs}
    return {q: idx[np.argsort(-s, kind="stable")[:n]].tolist() for q, s in score.items()}


def plot_confidence_grid(runs: dict, analysis: dict, data: CIFAR10, cls: int = FROG):
    """Fig. B.2: the test images of class ``cls`` that the first AT and ST networks are most and
    least confident about, in the four quadrants (top: ST more confident, bottom: less; left: AT
    less confident, right: more)."""
    e = analysis["epoch"]
    conf = {kind: logits.confidence(_logits(runs[kind][0], "test", e)) for kind in KINDS}
    quads = confidence_quadrants(conf["at"], conf["st"], data.y_test.numpy(), cls)
    layout = (("st_high", "both_high"), ("both_low", "at_high"))
    titles = {"st_high": "ST confident, AT not", "both_high": "both confident",
              "both_low": "neither confident", "at_high": "AT confident, ST not"}
    cols = GRID // 2
    fig, axes = plt.subplots(4, 2 * cols + 1, figsize=(1.25 * (2 * cols + 1), 6.4),
                             gridspec_kw={"width_ratios": [1] * cols + [0.3] + [1] * cols})
    for a in axes.flat:
        a.axis("off")
    for i in range(2):
        for j in range(2):
            q = layout[i][j]
            first = 0 if j == 0 else cols + 1
            sub = axes[2 * i:2 * i + 2, first:first + cols]
            for a, k in zip(sub.flat, quads[q]):
                _image(a, data.x_test[k])
            sub[0, cols // 2].set_title(titles[q], fontsize=9)
    fig.suptitle(f"{CLASSES[cls]} test images by the confidence of the first AT and ST networks "
                 f"(epoch {e})\nleft: AT less confident, right: AT more confident; top: ST more "
                 f"confident, bottom: ST less confident", fontsize=10)
    fig.tight_layout()
    return fig


def plot_neighbours(runs: dict, analysis: dict, data: CIFAR10, k: int = 5):
    """Fig. B.3: for the first test image of each of :data:`NEIGHBOUR_CLASSES` (left), its ``k``
    nearest test images by cosine similarity of the first ST network's logits (middle) and of the
    first AT network's (right); a neighbour of another class has its class name in red."""
    e = analysis["epoch"]
    y = data.y_test.numpy()
    seeds = [int(np.flatnonzero(y == c)[0]) for c in NEIGHBOUR_CLASSES if (y == c).any()]
    nb = {kind: logits.cosine_neighbours(_logits(runs[kind][0], "test", e), seeds, k)
          for kind in KINDS}
    fig, axes = plt.subplots(len(seeds), 2 * k + 1, figsize=(1.1 * (2 * k + 1), 1.3 * len(seeds)),
                             squeeze=False)
    for r, s in enumerate(seeds):
        _image(axes[r][0], data.x_test[s], f"seed: {CLASSES[y[s]]}")
        for c, kind in enumerate(("st", "at")):
            for i, n in enumerate(nb[kind][r]):
                _image(axes[r][1 + c * k + i], data.x_test[n],
                       f"{LABELS[kind]}: {CLASSES[y[n]]}",
                       "black" if y[n] == y[s] else "tab:red")
    fig.suptitle(f"Nearest test images by logit cosine similarity (epoch {e}): ST (middle), "
                 f"AT (right)")
    fig.tight_layout()
    return fig


# -- what the notebook says about the run ------------------------------------------------------

def shown_markdown(shown_cfg, own_run: bool, build_profile: str) -> str:
    """Which run the chapter shows: the largest recorded, or this build's own (a pipeline
    check)."""
    return resnets.shown_markdown(shown_cfg.profile, own_run, build_profile,
                                  scale_note(shown_cfg))


def reading_markdown(shown_cfg, own_run: bool) -> str:
    """How far the shown run can test §4.1, from its settings."""
    if results.at_paper_scale(shown_cfg, SETTINGS):
        return ("This run has the paper's settings: its numbers can be read against Table 1 and "
                "§4.1's shares, and its directions are judged by the spread of its seeds.")
    text = (f"This `{shown_cfg.profile}` run trains ResNet-18s of width {shown_cfg.width} for "
            f"{shown_cfg.epochs} epochs on {train_images(shown_cfg)} images (the paper: width "
            f"64, 200 epochs on 45,000): it cannot reproduce the paper's numbers, only test "
            f"whether its directions already show at this scale, "
            + (f"judged by the spread of its {shown_cfg.seeds} seeds." if shown_cfg.seeds > 1
               else "and with one seed no row has a spread to judge by."))
    if own_run and shown_cfg.profile == "smoke":
        text += (" At the smoke scale the networks have barely begun to learn: the run shows "
                 "that the pipeline works end to end, not whether the claims hold.")
    return text + larger_profiles_sentence(shown_cfg.profile)


def pipeline_markdown(analysis: dict, cfg) -> str:
    """This build's own run, compactly: Table 1's numbers and the verdicts its rows would get."""
    return (table1_markdown(analysis) + f"\n\nThis build's `{cfg.profile}` run "
            f"({scale_note(cfg)}) — its claim rows would read: "
            f"{results.verdict_counts(claim_rows(analysis, cfg))}.")
