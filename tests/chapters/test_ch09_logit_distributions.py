"""tsrobust.chapters.ch09_logit_distributions: the computations on hand-made records (each
against a hand-computed case or a property), the records' keys that chapter 10 relies on, and
every claim row on planted per-seed numbers (holding, reversed, tied)."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

from tsrobust import results
from tsrobust.chapters import ch09_logit_distributions as ch09
from tsrobust.chapters import resnets
from tsrobust.data import CIFAR10, NON_OFFICIAL
from tsrobust.params import resolve

matplotlib.use("Agg")

N_TEST, N_LOGIT, N_EVAL = 200, 60, 100
CFG = resolve(ch09.SETTINGS, profile="smoke", seed=0, epochs=2, n_test=N_TEST, n_eval=N_EVAL,
              n_logit_train=N_LOGIT, n_neighbour_seeds=50, seeds=2, gap_bins=3, bins=10)


# -- hand-made records ------------------------------------------------------------------------

def _net(kind, seed, y, *, scale, eval_epochs, snapshots=(1, 2), n_train=N_LOGIT):
    """A Result-like record of one network: logits ``scale``·onehot(y) + noise (the label's
    logit larger for a larger ``scale``), the first ``N_EVAL`` test images robust when their
    gap exceeds the median."""
    rng = np.random.default_rng(seed + (0 if kind == "st" else 100))
    arrays, test_acc, adv_acc = {}, {}, {}
    y_train = np.arange(n_train) % 10
    for e in snapshots:
        for split, labels in (("train", y_train), ("test", y)):
            z = rng.normal(size=(len(labels), 10)) + scale * e * np.eye(10)[labels]
            arrays[f"{split}_logits_e{e}"] = z.astype(np.float32)
        zt = arrays[f"test_logits_e{e}"]
        test_acc[str(e)] = float((zt.argmax(1) == y).mean())
    for e in eval_epochs:
        z = np.sort(arrays[f"test_logits_e{e}"][:N_EVAL], 1)
        gap = z[:, -1] - z[:, -2]
        arrays[f"robust_e{e}"] = gap > np.median(gap)
        adv_acc[str(e)] = float(arrays[f"robust_e{e}"].mean())
    values = {"snapshot_epochs": list(snapshots), "eval_epochs": list(eval_epochs),
              "test_accuracy": test_acc, "adversarial_accuracy": adv_acc}
    return SimpleNamespace(values=values, arrays=arrays, name=f"{kind}_seed{seed}")


def _runs(seeds=2):
    y = np.arange(N_TEST) % 10
    return {"st": [_net("st", k, y, scale=3.0, eval_epochs=(2,)) for k in range(seeds)],
            "at": [_net("at", k, y, scale=1.0, eval_epochs=(1, 2)) for k in range(seeds)]}, y


def _images(y):
    g = torch.Generator().manual_seed(0)
    return CIFAR10(torch.rand(20, 3, 32, 32, generator=g), torch.arange(20) % 10,
                   torch.rand(len(y), 3, 32, 32, generator=g), torch.as_tensor(y), NON_OFFICIAL)


# -- settings and records ---------------------------------------------------------------------

def test_settings_resolve_in_every_profile_and_bad_ones_fail_fast():
    for profile in ("smoke", "cpu", "gpu", "paper"):
        ch09.check_settings(resolve(ch09.SETTINGS, profile=profile, seed=0))
    assert resolve(ch09.SETTINGS, profile="smoke", seed=0).seeds == 2
    assert all(resolve(ch09.SETTINGS, profile=p, seed=0).seeds == 3
               for p in ("cpu", "gpu", "paper"))
    for bad in (dict(n_neighbour_seeds=600), dict(neighbours=500), dict(ao_ks=(3, 3))):
        with pytest.raises(ValueError, match="must"):
            ch09.check_settings(resolve(ch09.SETTINGS, profile="smoke", seed=0, **bad))
    with pytest.raises(ValueError, match="analysis_epoch"):
        resolve(ch09.SETTINGS, profile="smoke", seed=0, analysis_epoch=60)  # no AT robustness
    with pytest.raises(ValueError, match="ao_ks"):
        resolve(ch09.SETTINGS, profile="smoke", seed=0, ao_ks=(0, 3))


def test_analysis_epoch_is_the_papers_scaled():
    cpu = resolve(ch09.SETTINGS, profile="cpu", seed=0)
    assert ch09.analysis_epoch(cpu) == 2  # 40 of 200 → 2 of 10
    assert ch09.analysis_epoch(resolve(ch09.SETTINGS, profile="cpu", seed=0,
                                       analysis_epoch=200)) == 10
    for p in ("smoke", "cpu", "gpu", "paper"):
        c = resolve(ch09.SETTINGS, profile=p, seed=0)
        e = ch09.analysis_epoch(c)
        assert e in resnets.snapshot_epochs(c) and e in resnets.eval_epochs("at", c)


def test_network_records_are_the_ones_chapter_10_finds():
    cfg = resolve(ch09.SETTINGS, profile="cpu", seed=5, seeds=3)
    names = ch09.record_names(cfg)
    assert sorted(names) == [(kind, k) for kind in ("at", "st") for k in range(3)]
    for (kind, k), (chapter, name, ncfg) in names.items():
        assert chapter == resnets.NETWORK_CHAPTER
        # the network settings alone, as chapter 10 resolves them for that seed
        assert ncfg.as_dict() == resnets.network_config("cpu", 5 + k).as_dict()
        assert name == f"{kind}_seed{5 + k}"


def test_record_networks_keeps_the_weights_of_the_first_seed_only(monkeypatch):
    calls = []
    monkeypatch.setattr(resnets, "trained_network",
                        lambda kind, ncfg, data, keep_weights, **kw: calls.append(
                            (kind, ncfg.seed, keep_weights)) or kind)
    cfg = resolve(ch09.SETTINGS, profile="smoke", seed=3, seeds=3)
    out = ch09.record_networks(cfg, data=None)
    assert sorted(calls) == sorted((kind, 3 + k, k == 0) for kind in ("st", "at")
                                   for k in range(3))
    assert out == {"st": ["st"] * 3, "at": ["at"] * 3}


def test_independent_runs_are_the_notebooks_networks(tmp_path, monkeypatch):
    # a tiny run: each network as its own job, then the notebook's call only loads them
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    tiny = dict(n_train=300, holdout_per_class=5, n_test=50, width=4, epochs=2,
                n_logit_train=100, n_eval=20, apgd_steps=2, at_steps=1, batch_size=64,
                precision="fp32", seeds=2, neighbours=3, n_neighbour_seeds=10)
    g = torch.Generator().manual_seed(0)
    data = CIFAR10(torch.rand(300, 3, 32, 32, generator=g), torch.arange(300) % 10,
                   torch.rand(50, 3, 32, 32, generator=g), torch.arange(50) % 10, NON_OFFICIAL)
    loads = []
    monkeypatch.setattr(resnets, "load_cifar10",
                        lambda **kw: loads.append(kw) or data)
    runs = ch09.independent_runs("smoke", **tiny)
    cfg = resolve(ch09.SETTINGS, profile="smoke", seed=0, **tiny)
    assert [r.name for r in runs] == [f"{ch}/{name}" for ch, name, _ in
                                      ch09.record_names(cfg).values()]
    assert [r.settings["keep_weights"] for r in runs] == [k == 0 for (_, k) in
                                                          ch09.record_names(cfg)]
    made = {r.name: r() for r in runs}
    assert all(kw["n_train"] == 300 and kw["n_test"] == 50 for kw in loads)
    own = ch09.record_networks(cfg, data, progress=False)
    for kind in ("st", "at"):
        for res in own[kind]:
            job = made[f"{res.chapter}/{res.name}"]
            assert res.loaded and res.values == job.values
            assert res.provenance["parameters"] == job.provenance["parameters"]


def test_leading_runs_takes_the_largest_complete_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    own = {"st": ["own"], "at": ["own"]}
    cfg = resolve(ch09.SETTINGS, profile="smoke", seed=0)
    assert ch09.leading_runs(cfg, own) == (cfg, own, True)
    cpu = resolve(ch09.SETTINGS, profile="cpu", seed=0)
    names = list(ch09.record_names(cpu).values())
    for chapter, name, ncfg in names[:-1]:
        results.save(chapter, name, ncfg, {"kind": name}, seconds=0.0)
    assert ch09.leading_runs(cfg, own)[2]  # one network missing: not complete
    chapter, name, ncfg = names[-1]
    results.save(chapter, name, ncfg, {"kind": name}, seconds=0.0)
    shown_cfg, shown, own_run = ch09.leading_runs(cfg, own)
    assert not own_run and shown_cfg.profile == "cpu"
    assert [r.name for r in shown["at"]] == [f"at_seed{k}" for k in range(3)]


# -- the computations -------------------------------------------------------------------------

def test_moments_by_hand():
    z1 = np.array([[3.0, 1.0], [5.0, 0.0], [1.0, 0.0]])  # max 3, 5, 1; gaps 2, 5, 1
    z2 = np.array([[1.0, 0.0], [1.0, 0.0], [4.0, 0.0]])  # max 1, 1, 4: a right tail
    rec = SimpleNamespace(values={"snapshot_epochs": [1, 2]},
                          arrays={"train_logits_e1": z1, "train_logits_e2": z2,
                                  "test_logits_e1": z1, "test_logits_e2": z2})
    m = ch09.moments({"st": [rec], "at": [rec]})["at"]["train"]
    assert m["epochs"] == [1, 2]
    np.testing.assert_allclose(m["max_mean"], [[3.0, 2.0]])
    np.testing.assert_allclose(m["gap_mean"], [[8 / 3, 2.0]])
    assert m["max_skew"][0][0] == pytest.approx(0.0)  # 1, 3, 5: symmetric
    assert m["max_skew"][0][1] > 0.5


def test_gap_bins_by_hand():
    # gaps 0.5, 1, 2, 3 (one per row); robust only the two largest
    z = np.array([[0.5, 0, -1], [1, 0, -1], [2, 0, -1], [3, 0, -1.0]])
    rec = SimpleNamespace(arrays={"test_logits_e1": z,
                                  "robust_e1": np.array([False, False, True, True])})
    gb = ch09.gap_bins([rec], 1, 2)
    np.testing.assert_allclose(gb["edges"], [0.5, 1.5, 3.0])
    np.testing.assert_allclose(gb["accuracy"], [[0.0, 100.0]])
    assert gb["counts"] == [[2, 2]]
    np.testing.assert_allclose(gb["centres"], [0.75, 2.5])
    assert gb["above_below"] == [100.0]  # the images above the median are the robust ones
    rev = SimpleNamespace(arrays={"test_logits_e1": z,
                                  "robust_e1": np.array([True, True, False, False])})
    assert ch09.gap_bins([rev], 1, 2)["above_below"] == [-100.0]


def _confident(c):
    """Logits whose top-class confidence increases with ``c`` (class 0 always on top)."""
    z = np.zeros((len(c), 10))
    z[:, 0] = c
    return z


def test_disagreement_matrix_and_rank_shares_by_hand():
    # five images of class 0: one AT network like another, a third and the ST net reversed
    y = np.zeros(5, dtype=int)
    up, down = _confident(np.arange(1.0, 6.0)), _confident(np.arange(5.0, 0.0, -1))
    rec = lambda z: SimpleNamespace(values={}, arrays={"test_logits_e1": z})  # noqa: E731
    runs = {"at": [rec(up), rec(up), rec(down)], "st": [rec(down)]}
    m = ch09.disagreement_matrix(runs, 1, y)
    # reversed ranks 0..4 → 4..0: |Δ| = 4, 2, 0, 2, 4 > 2 for 2 of 5 images
    np.testing.assert_allclose(m, [[0, 0, 40, 40], [0, 0, 40, 40], [40, 40, 0, 0],
                                   [40, 40, 0, 0]])
    assert ch09.networks(runs) == [("at", 0), ("at", 1), ("at", 2), ("st", 0)]


def test_per_seed_rank_shares_leave_out_the_network_itself():
    runs, y = _runs(3)
    cfg = resolve(ch09.SETTINGS, profile="smoke", seed=0, epochs=2, n_test=N_TEST,
                  n_eval=N_EVAL, n_logit_train=N_LOGIT, n_neighbour_seeds=50, seeds=3)
    a = ch09.analyse(runs, cfg, y)
    m = np.asarray(a["matrix"])
    assert a["per_seed"]["rank_at_at"][0] == pytest.approx((m[0, 1] + m[0, 2]) / 2)
    assert a["per_seed"]["rank_at_st"][0] == pytest.approx(m[0, 3:].mean())


def test_error_ranks_are_nan_where_a_class_has_no_correct_image():
    # class averages: 0 → [5, 1, 3], 1 → [2, 6, 1], 2 → [0, 0, 9]; one error: class 0 → 2, rank 2
    z = np.array([[5, 1, 3], [2, 6, 1], [0, 0, 9], [1, 0, 4.0]])
    y = np.array([0, 1, 2, 0])
    np.testing.assert_allclose(ch09.error_ranks(z, y), [0, 1, 0])
    assert np.isnan(ch09.error_ranks(z[:2], y[:2])).all()  # class 2 never right


def test_overlaps_of_identical_networks_are_one_and_permuted_ones_are_below():
    runs, y = _runs(2)
    same = {"at": [runs["at"][0], runs["at"][0]], "st": [runs["at"][0]]}
    ao = ch09.overlaps(same, 1, y, np.random.default_rng(0))
    np.testing.assert_allclose(ao["at_at"], np.ones((2, 10)))
    np.testing.assert_allclose(ao["at_st"], np.ones((2, 10)))
    assert ao["st_st"] == []  # one ST network: no pair
    perm = np.asarray(ao["at_at_perm"])
    assert perm.shape == (2, 10) and ((perm > 0) & (perm < 1)).all()


def test_same_class_share_by_hand():
    # classes 0 and 1 point in two directions; image 2 (class 1) points like class 0
    z = np.array([[1, 0.0], [2, 0.1], [1.5, 0.05], [0, 1.0], [0.1, 2.0]])
    y = np.array([0, 0, 1, 1, 1])
    # nearest of 0: 2 then 1; of 1: 2 then 0 → 1 of 2 and 1 of 2 same class
    assert ch09.same_class_share(z, y, 2, 2) == pytest.approx(50.0)
    assert ch09.same_class_share(z, y, 2, 1) == pytest.approx(0.0)


def test_table1_takes_st_at_its_last_epoch_and_at_at_epoch_40_scaled():
    runs, _ = _runs(2)
    t1 = ch09.table1(runs, CFG)  # 2 epochs: 40 of 200 → 1
    assert (t1["st"]["epoch"], t1["at"]["epoch"]) == (2, 1)
    assert t1["at"]["natural"] == [100 * r.values["test_accuracy"]["1"] for r in runs["at"]]
    assert t1["st"]["adversarial"] == [100 * r.values["adversarial_accuracy"]["2"]
                                       for r in runs["st"]]


def test_analysis_figures_and_tables_end_to_end():
    runs, y = _runs(2)
    a = ch09.analyse(runs, CFG, y)
    ps = a["per_seed"]
    # planted: ST's logits scaled 3×, so its max logits and gaps are larger
    assert min(ps["max_mean_train_st"]) > max(ps["max_mean_train_at"])
    assert all(v == pytest.approx(100.0) for v in ps["above_below_at"])
    rows = ch09.claim_rows(a, CFG)
    assert len(rows) == len(ch09.claims(CFG.ao_ks))
    assert {r.verdict for r in rows} <= set(results.VERDICTS)
    data = _images(y)
    for fig in (ch09.plot_distributions(runs, "max", 10), ch09.plot_distributions(runs, "gap", 10),
                ch09.plot_moments(a), ch09.plot_gaps(runs, a, 10), ch09.plot_ranks(runs, a, y),
                ch09.plot_errors(a), ch09.plot_overlap(a),
                ch09.plot_confidence_grid(runs, a, data), ch09.plot_neighbours(runs, a, data)):
        assert fig.axes
        matplotlib.pyplot.close(fig)
    for text in (ch09.table1_markdown(a), ch09.teacher_epochs_markdown(runs),
                 ch09.profiles_markdown(), ch09.pipeline_markdown(a, CFG),
                 ch09.reading_markdown(CFG, True), ch09.shown_markdown(CFG, True, "smoke")):
        assert isinstance(text, str) and text
    table = ch09.table1_markdown(a)
    assert "garbled" in table and "missing" in table
    assert "| 41.5 ± 0.63 |" in table and "| 0.00 ± 0.00 |" in table and "| 76.1 ± 0.58 |" in table
    with pytest.raises(ValueError, match="labels"):
        ch09.analyse(runs, CFG, y[:10])


def test_confidence_quadrants_pick_the_corners():
    # ranks equal the values: AT 0..7; ST chosen so that every corner has one clear image
    c_at = np.arange(8.0)
    c_st = np.array([7, 5, 0, 6, 2, 4, 3, 1.0])
    q = ch09.confidence_quadrants(c_at, c_st, np.zeros(8, dtype=int), cls=0, n=1)
    assert q == {"st_high": [0], "at_high": [7], "both_high": [5], "both_low": [2]}
    assert ch09.confidence_quadrants(c_at, c_st, np.zeros(8, dtype=int), cls=0, n=3)[
        "st_high"] == [0, 1, 3]


def test_work_counts_passes_from_the_settings():
    cpu = resolve(ch09.SETTINGS, profile="cpu", seed=0)
    w = ch09.work(cpu)
    assert ch09.train_images(cpu) == 9000
    assert w["st_train"] == 3 * 10 * 9000 and w["at_pgd"] == 10 * w["at_train"]
    # APGD: AT at 4 teacher epochs and ST at its last, CE + DLR on 1000 images, 100 steps
    assert w["apgd"] == 3 * (4 + 1) * 2 * 1000 * 100


def _resnet18_macs(w: int) -> tuple[int, int]:
    """(all MACs, the first conv's) of the CIFAR-stem ResNet-18 of width ``w``, by hand: the
    stem at 32×32, then per stage (32, 16, 8, 4 pixels) the first 3×3 conv (strided from stage
    2), three more 3×3 convs, the 1×1 shortcut where the width doubles; the linear layer."""
    stem = 32 * 32 * w * 27
    total = stem + 4 * 1024 * w * 9 * w
    for stage, side in ((2, 16), (4, 8), (8, 4)):
        c = stage * w
        total += side * side * c * 9 * (c // 2) + 3 * side * side * c * 9 * c
        total += side * side * c * (c // 2)
    return total + 8 * w * 10, stem


def test_run_flops_counts_resnet_passes_by_hand():
    macs, stem = _resnet18_macs(64)
    assert macs == 555_422_720  # the well-known ≈ 0.56 GMAC of the CIFAR ResNet-18
    cpu = resolve(ch09.SETTINGS, profile="cpu", seed=0)
    macs, stem = _resnet18_macs(cpu.width)
    w = ch09.work(cpu)
    train, grad, fwd = 6 * macs - 2 * stem, 4 * macs, 2 * macs
    assert ch09.run_flops(cpu) == ((w["st_train"] + w["at_train"]) * train
                                   + (w["at_pgd"] + w["apgd"]) * grad + w["forward"] * fwd)


# -- claim rows on planted per-seed numbers ---------------------------------------------------

HOLD = {"max_mean_train_st": 10.0, "max_mean_train_at": 3.0, "max_skew_train_at": 1.0,
        "max_skew_train_st": 0.0, "gap_mean_test_st": 8.0, "gap_mean_test_at": 2.0,
        "gap_skew_test_at": 1.5, "gap_skew_test_st": 0.2, "gap_mean_test_last_st": 9.0,
        "gap_mean_test_last_at": 3.0, "above_below_at": 20.0, "rank_at_at": 1.1,
        "rank_at_st": 11.8, "err2_st": 40.0, "err2_at": 25.0, "same_class_st": 90.0,
        "same_class_at": 60.0, "natural_st": 90.0, "natural_at": 75.0, "adversarial_at": 41.5,
        "adversarial_st": 0.0}
for _k in range(1, 11):
    HOLD.update({f"ao_at_at@{_k}": 0.9, f"ao_at_st@{_k}": 0.7, f"ao_st_st@{_k}": 0.85,
                 f"ao_at_at_perm@{_k}": 0.5, f"ao_at_st_perm@{_k}": 0.6,
                 f"ao_st_st_perm@{_k}": 0.8})
JITTER = {0: (-1, 0, 1), 1: (1, -1, 0)}
"""Two patterns of seed-to-seed noise: the two sides of a paired claim get different ones, so
their differences have a spread."""


def _scale(key):
    return 0.003 if key.startswith("ao_") else 0.1


def _analysis(values=HOLD):
    per_seed = {}
    for i, (k, v) in enumerate(values.items()):
        per_seed[k] = [v + _scale(k) * j for j in JITTER[i % 2]]
    return {"per_seed": per_seed, "epoch": 3, "last": 15, "n_eval": 1000, "n_test": 10_000}


def _row(rows, claim):
    i = [c.key for c in ch09.claims(CFG.ao_ks)].index(claim.key)
    return rows[i]


CPU = resolve(ch09.SETTINGS, profile="cpu", seed=0)
CLAIMS = ch09.claims(CPU.ao_ks)


def test_every_claim_holds_on_the_planted_run():
    rows = ch09.claim_rows(_analysis(), CPU)
    assert [r.verdict for r in rows] == ["direction holds"] * len(CLAIMS)
    assert all("cpu profile: ResNet-18 of width 16" in r.note for r in rows)


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.key)
def test_a_claim_reversed_beyond_its_margin_differs(claim):
    a = _analysis()
    ps = a["per_seed"]
    for larger, smaller in claim.parts:
        if smaller is None:
            ps[larger] = [-v for v in ps[larger]]
        else:
            ps[larger], ps[smaller] = ps[smaller], ps[larger]
    assert _row(ch09.claim_rows(a, CPU), claim).verdict == "differs"


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.key)
def test_a_claim_tied_within_its_margin_is_inconclusive(claim):
    a = _analysis()
    ps = a["per_seed"]
    for larger, smaller in claim.parts:
        if smaller is None:
            ps[larger] = [_scale(larger) * j for j in (-1, 1, 0)]
        else:
            ps[larger] = [v + _scale(larger) * j for v, j in zip(ps[smaller], (1, -1, 0))]
    assert _row(ch09.claim_rows(a, CPU), claim).verdict == "inconclusive"


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.key)
def test_one_seed_has_no_spread_and_is_inconclusive(claim):
    a = _analysis()
    a["per_seed"] = {k: v[:1] for k, v in a["per_seed"].items()}
    if claim.binomial:  # one run's binomial noise still gives a margin: the row may decide
        return
    assert _row(ch09.claim_rows(a, CPU), claim).verdict == "inconclusive"


def test_networks_without_a_value_are_counted_and_explained():
    a = _analysis()
    a["per_seed"]["err2_at"] = [float("nan"), float("nan"), 25.0]  # a class never right
    (errors,) = [c for c in CLAIMS if c.key == "errors"]
    row = _row(ch09.claim_rows(a, CPU), errors)
    assert "AT: no value on 2 of 3 networks" in row.note
    assert "no average logit vector" in row.note and "one seed" not in row.note
    a["per_seed"]["err2_at"] = [float("nan")] * 3
    row = _row(ch09.claim_rows(a, CPU), errors)
    assert row.verdict == "inconclusive" and "AT: no value on 3 of 3 networks" in row.note
    assert "too few values for a spread" in row.note and "one seed" not in row.note
    complete = _row(ch09.claim_rows(_analysis(), CPU), errors)
    assert "no value" not in complete.note and "no average logit vector" not in complete.note


def test_one_part_of_the_ao_claim_reversed_makes_it_differ():
    a = _analysis()
    ps = a["per_seed"]
    ps["ao_at_at@3"], ps["ao_at_st@3"] = ps["ao_at_st@3"], ps["ao_at_at@3"]
    (ao,) = [c for c in CLAIMS if c.key == "ao"]
    assert _row(ch09.claim_rows(a, CPU), ao).verdict == "differs"


def test_the_papers_numbers_are_reproduced_only_at_the_papers_settings():
    paper = resolve(ch09.SETTINGS, profile="paper", seed=0)
    keys = {c.key: c for c in CLAIMS}
    rows = ch09.claim_rows(_analysis(), paper)
    assert _row(rows, keys["rank"]).verdict == "reproduced"
    assert _row(rows, keys["table1_adversarial"]).verdict == "reproduced"
    # a direction without a number holds, never more
    assert _row(rows, keys["max_mean"]).verdict == "direction holds"
    # the same numbers at cpu scale: the direction holds, nothing is reproduced
    cpu_rows = ch09.claim_rows(_analysis(), CPU)
    assert _row(cpu_rows, keys["rank"]).verdict == "direction holds"
    # at the paper's settings, far from the paper's number: only the direction
    far = _analysis({**HOLD, "adversarial_at": 25.0})
    assert _row(ch09.claim_rows(far, paper), keys["table1_adversarial"]).verdict == \
        "direction holds"


def test_rows_name_the_networks_they_compare():
    assert ch09._label("gap_mean_test_st") == "ST"  # not "ST–ST": "test_st" is no pair
    assert ch09._label("max_skew_train_at") == "AT"
    assert ch09._label("rank_at_st") == "AT–ST"
    assert ch09._label("ao_at_at_perm@3") == "AT–AT (permuted)"
    assert ch09._label("ao_st_st@1") == "ST–ST"
