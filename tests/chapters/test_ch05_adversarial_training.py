"""tsrobust.chapters.ch05_adversarial_training: the attack suite, the runs at toy size, Table 1
rows and every claim row of §5.4 on planted values (holding, failing, and ties)."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn as nn

from tsrobust import attacks, results
from tsrobust.chapters import ch05_adversarial_training as ch05
from tsrobust.chapters.cifar import TEACHER_CHAPTER
from tsrobust.data import CIFAR10
from tsrobust.models import PRUNED_WIDTHS, ConvNet
from tsrobust.params import resolve

matplotlib.use("Agg")


def small_net(seed: int, widths=(6, 8), classes: int = 10) -> nn.Module:
    """A tiny conv ReLU net on 3×8×8 images (no padding, like the book's ConvNet)."""
    torch.manual_seed(seed)  # test-local initialisation only; the package never seeds globally
    layers, c = [], 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3), nn.ReLU()]
        c = w
    side = 8 - 2 * len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, classes)).eval()


def images(n=6, seed=0, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, 3, 8, 8, generator=g)


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


# -- the attack suite and the runs ----------------------------------------------------

def test_attack_suite_of_a_student_equal_to_the_teacher_is_all_ones():
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0, n_eval=6, repeats=2,
                  eval_steps=2, cw_steps=3)
    teacher = small_net(4)
    table = ch05.attack_suite(copy.deepcopy(teacher), teacher, small_net(5), images(10), cfg,
                              gen())
    assert list(table) == list(ch05.ATTACKS)
    assert all(v == (1.0, 0.0) for v in table.values()), table


def test_chapter5_settings_cross_checks():
    for bad in (dict(n_student=3000), dict(checkpoints=[1, 5]), dict(n_eval=5000)):
        cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0, **bad)
        with pytest.raises(ValueError):
            ch05.check_settings(cfg)


def test_chapter5_runs_end_to_end_at_toy_size(tmp_path, monkeypatch):
    """run_table1, run_augmentation and run_deep on 64 random images: shapes and invariants."""
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    g = gen(0)
    data = CIFAR10(torch.rand(64, 3, 32, 32, generator=g), torch.arange(64) % 10,
                   torch.rand(40, 3, 32, 32, generator=g), torch.arange(40) % 10, "random images")
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0, n_train=64, n_test=40,
                  n_student=32, epochs=2, checkpoints=[1, 2], batch_size=16, at_steps=1,
                  n_eval=8, repeats=2, eval_steps=1, cw_steps=1, n_spec=4, n_pca=8,
                  deep_n_train=32, deep_teacher_epochs=1)
    teacher = ConvNet(PRUNED_WIDTHS, generator=gen(1)).eval()
    values, arrays = ch05.run_table1(cfg, data, teacher, progress=False)
    assert values["columns"] == ["AT (1)", "AT (2)", "ST (2)"]
    for col in values["columns"]:
        for attack in ch05.ATTACKS:
            mu, var = values["table"][col][attack]
            assert 0 <= mu <= 1 and var >= 0
        assert len(values["spec"][col]["mbnc"]) == 4
        assert arrays[f"{col}__eps_in"].shape == (PRUNED_WIDTHS[0],)
        assert (np.diff(arrays[f"{col}__sorted_bnc_0"]) <= 0).all()
    assert "| ℓ∞ PGD |" in ch05.table1_markdown(values)
    assert all(r.verdict in results.VERDICTS
               for r in ch05.table1_rows([values], cfg) + ch05.claim_rows([values], cfg))
    # a further seed: the headline attacks only, and no surrogate to train
    head, _ = ch05.run_table1(cfg, data, teacher, progress=False, names=ch05.HEADLINE_ATTACKS)
    assert head["attacks"] == ["clean", "linf_pgd"] and head["surrogate_clean_agreement"] is None
    assert set(head["table"]["AT (2)"]) == {"clean", "linf_pgd"}
    aug, _ = ch05.run_augmentation(cfg, data, teacher, progress=False)
    assert aug["columns"] == ["AT + aug (2)", "ST + aug (2)"]
    deep, deep_arrays = ch05.run_deep(cfg, data, progress=False)
    assert deep["teacher_widths"] == [45, 32, 32, 20, 64]
    deep_teacher = results.load(TEACHER_CHAPTER, "teacher_deep", "smoke").provenance["parameters"]
    assert (deep_teacher["teacher_optimizer"], deep_teacher["teacher_lr"]) == (
        cfg.deep_teacher_optimizer, cfg.deep_teacher_lr) == ("adam", 1e-3)
    assert len(deep["spec"]["AT deep (2)"]["mbnc"]) == 5
    assert "AT deep (2)__sorted_bnc_4" in deep_arrays
    rows = ch05.claim_rows([values, head], cfg, aug, deep)
    assert any("deeper" in r.quantity for r in rows) == ch05.deep_testable(deep)


def test_attack_suite_rows_share_their_images():
    """With every budget 0 each attack returns its input, so every row must equal the clean row
    exactly: only if all attacks of a repeat see the same images."""
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0, n_eval=5, repeats=4,
                  eval_steps=1, cw_steps=1, linf_eps=0.0, l2_eps=0.0, l1_eps=0.0, fgsm_eps=0.0,
                  cw_max_l2=0.0)
    teacher, student = small_net(4), small_net(6)
    table = ch05.attack_suite(student, teacher, small_net(5), images(12), cfg, gen())
    clean = table["clean"]
    assert clean[1] > 0  # the subsets differ, so the clean agreement varies over repeats
    assert all(v == clean for v in table.values()), table


JITTER = 0.005
"""Planted seeds differ by −0.005, 0, +0.005 in every value."""
CFG = resolve(ch05.SETTINGS, profile="smoke", seed=0, seeds=3)


def _t1_values(mu: dict, var=1e-4, epochs=2, checkpoints=(1, 2), repeats=2, n_eval=10_000,
               ratio=(1.0, 1.0), d=0.0, seed=0, names=ch05.ATTACKS, attack_mu=None):
    """Hand-made run_table1 values of one seed: ``mu[column]`` = robust accuracy (fraction) under
    every attack of ``names`` (``attack_mu[attack][column]`` overrides); MBNC, ε and the
    unspecialized/specialized ratio the same in every column; every number shifted by ``d``."""
    attack_mu = attack_mu or {}
    spec = {c: {"mbnc": [0.5 + d, 0.5 + d], "eps_in_mean": 1.0 + d, "eps_out_mean": 1.0 + d,
                "ratio": [r + d for r in ratio]} for c in mu}
    return {"columns": list(mu), "epochs": epochs, "checkpoints": list(checkpoints),
            "repeats": repeats, "n_eval": n_eval, "spec": spec, "seed": seed,
            "teacher_widths": [45, 32],
            "table": {c: {a: [attack_mu.get(a, {}).get(c, m) + d, var] for a in names}
                      for c, m in mu.items()}}


def _t1s(mu: dict, seeds=3, jitter=JITTER, **kw):
    """One Table 1 run per seed: the first with every attack, the others with the headline
    attacks (as :func:`ch05.record_seeds` makes them)."""
    shifts = [0.0] if seeds == 1 else np.linspace(-jitter, jitter, seeds)
    return [_t1_values(mu, d=float(d), seed=k, names=ch05.seed_attacks(k), **kw)
            for k, d in enumerate(shifts)]


def test_claim_rows_need_a_margin_and_quote_the_paper_epoch_nearest_ours():
    # AT (1) and AT (2) both stand for the paper's AT (50): matched by epoch
    tie = _t1s({"AT (1)": 0.80, "AT (2)": 0.805, "ST (2)": 0.795})
    rows = {r.quantity: r for r in ch05.claim_rows(tie, CFG)}
    grows = rows["AT ℓ∞ robustness grows with epochs"]
    assert grows.verdict == "inconclusive" and grows.paper == "AT (50): 78.79 → AT (300): 88.2"
    assert "paper: +9.41 points" in grows.note
    assert "the paper's change over AT (50) → AT (300), ours over AT (1) → AT (2)" in grows.note
    beats = rows["AT at the first checkpoint beats ST (ℓ∞ PGD)"]
    assert "the epochs differ: our AT (1) vs the paper's AT (50)" in beats.note
    assert rows["AT at the first checkpoint beats ST (ℓ∞ PGD)"].verdict == "inconclusive"
    assert rows["AT has higher MBNC than ST, per layer"].verdict == "inconclusive"  # equal MBNC
    assert rows["AT has a lower unspecialized/specialized ratio than ST, per layer"].verdict \
        == "inconclusive"
    clear = _t1s({"AT (1)": 0.70, "AT (2)": 0.90, "ST (2)": 0.50})
    rows = {r.quantity: r for r in ch05.claim_rows(clear, CFG)}
    assert rows["AT ℓ∞ robustness grows with epochs"].verdict == "direction holds"
    assert rows["AT at the first checkpoint beats ST (ℓ∞ PGD)"].verdict == "direction holds"
    assert all("smoke profile: 2 epochs on 1000 images, PGD-2 training, 3 seeds" in r.note
               for r in rows.values())
    # the margin: the spread across seeds (t quantile), floored by the binomial noise
    big = _t1s({"AT (1)": 0.5, "AT (2)": 0.5, "ST (2)": 0.5}, var=0.0, jitter=0.1)
    assert ch05.accuracy_margin(big, "AT (2)", "ST (2)", "linf_pgd") == pytest.approx(
        2.776 * 10.0 * np.sqrt(2 / 3))
    # ... with the binomial variance of n_eval fresh images as a floor when the seeds agree
    few = _t1s({"AT (1)": 0.5, "AT (2)": 0.5, "ST (2)": 0.5}, var=0.0, n_eval=50, jitter=0.0)
    assert ch05.accuracy_margin(few, "AT (2)", "ST (2)", "linf_pgd") == pytest.approx(
        1.959964 * 100 * np.sqrt(0.25 / 50 / 2) * np.sqrt(2 / 3))
    # the other attacks ran on the first seed only: its binomial noise alone
    assert ch05.accuracy_margin(few, "AT (2)", "ST (2)", "fgsm") == pytest.approx(
        1.959964 * 100 * np.sqrt(0.25 / 50 / 2) * np.sqrt(2))
    noisy = _t1s({"AT (1)": 0.70, "AT (2)": 0.90, "ST (2)": 0.50}, jitter=0.2)
    rows = {r.quantity: r for r in ch05.claim_rows(noisy, CFG)}
    assert rows["AT ℓ∞ robustness grows with epochs"].verdict == "inconclusive"
    # Table 1 rows: AT 90 vs ST 89.5 is a tie, not a direction; ST well above AT differs
    t = ch05.table1_rows(_t1s({"AT (1)": 0.5, "AT (2)": 0.90, "ST (2)": 0.895}), CFG)
    assert {r.verdict for r in t} == {"inconclusive"}, [(r.quantity, r.verdict) for r in t]
    t = ch05.table1_rows(_t1s({"AT (1)": 0.5, "AT (2)": 0.60, "ST (2)": 0.895}), CFG)
    assert {r.verdict for r in t} == {"differs"}, [(r.quantity, r.verdict) for r in t]
    # the unspecialized share: the ratio's order, ∞ → 1, NaN stays
    assert ch05.unspecialized_share(1.0) == 0.5 and ch05.unspecialized_share("inf") == 1.0
    assert np.isnan(ch05.unspecialized_share("nan"))
    # gpu-profile checkpoints: 3 of 20 ↔ 50 of 300, by epoch; ST ↔ the paper's ST (300)
    assert ch05.paper_column("AT (3)") == 0 == ch05.paper_column("AT (20)")
    assert ch05.paper_column("AT (150)") == 2 and ch05.paper_column("ST (20)") == 5


def test_deep_rows_are_left_out_when_the_deep_teacher_is_at_chance():
    t1s = _t1s({"AT (1)": 0.70, "AT (2)": 0.90, "ST (2)": 0.50})
    deep = {"columns": ["AT deep (2)", "ST deep (2)"], "teacher_test_accuracy": 0.098,
            "spec": {"AT deep (2)": {"mbnc": [0.9]}, "ST deep (2)": {"mbnc": [0.5]}},
            "linf_robust": {"AT deep (2)": [0.97, 0.0], "ST deep (2)": [0.14, 0.0]}}
    assert not any("deeper" in r.quantity for r in ch05.claim_rows(t1s, CFG, deep=deep))
    deep["teacher_test_accuracy"] = 0.4
    rows = {r.quantity: r.verdict for r in ch05.claim_rows(t1s, CFG, deep=deep)
            if "deeper" in r.quantity}
    # one 5-layer run: its robust accuracies have their binomial noise, its MBNC no spread
    assert rows == {"deeper net: AT has higher MBNC than ST": "inconclusive",
                    "deeper net: AT more robust than ST (ℓ∞ PGD)": "direction holds"}


# -- every claim row, planted so that it holds and so that it fails ----------------------------

def _planted(at1=0.70, at2=0.90, st=0.50, *, var=1e-4, n_eval=10_000, mbnc_at=(0.7, 0.7),
             mbnc_st=(0.5, 0.5), ratio_at=(0.5, 0.5), ratio_st=(1.0, 1.0), eps_in=(0.8, 1.0),
             eps_out=(0.8, 1.0), seeds=3, jitter=JITTER, attack_mu=None):
    """run_table1 values of every seed in which every claim of §5.4 holds by default: AT grows
    with epochs and beats ST (robust accuracy, every attack), and the last AT checkpoint has the
    higher MBNC, the lower ratio and the lower ε curves (``(AT, ST)`` pairs for ε)."""
    t1s = _t1s({"AT (1)": at1, "AT (2)": at2, "ST (2)": st}, var=var, n_eval=n_eval,
               seeds=seeds, jitter=jitter, attack_mu=attack_mu)
    for t1 in t1s:
        d = t1["spec"]["AT (1)"]["mbnc"][0] - 0.5  # this seed's shift
        t1["spec"]["AT (2)"].update(mbnc=[x + d for x in mbnc_at],
                                    ratio=[x + d for x in ratio_at],
                                    eps_in_mean=eps_in[0] + d, eps_out_mean=eps_out[0] + d)
        t1["spec"]["ST (2)"].update(mbnc=[x + d for x in mbnc_st],
                                    ratio=[x + d for x in ratio_st],
                                    eps_in_mean=eps_in[1] + d, eps_out_mean=eps_out[1] + d)
    return t1s


def _aug(at=(0.8, 0.8), st=(0.6, 0.6)):
    return {"columns": ["AT + aug (2)", "ST + aug (2)"],
            "spec": {"AT + aug (2)": {"mbnc": list(at), "ratio": [0.5, 0.5]},
                     "ST + aug (2)": {"mbnc": list(st), "ratio": [1.0, 1.0]}}}


def _deep(mbnc_at=(0.9,) * 5, mbnc_st=(0.5,) * 5, robust=(0.97, 0.14), teacher=0.4):
    return {"columns": ["AT deep (2)", "ST deep (2)"], "teacher_test_accuracy": teacher,
            "spec": {"AT deep (2)": {"mbnc": list(mbnc_at)},
                     "ST deep (2)": {"mbnc": list(mbnc_st)}},
            "linf_robust": {"AT deep (2)": [robust[0], 0.0], "ST deep (2)": [robust[1], 0.0]}}


def _verdicts(t1s, aug=None, deep=None, cfg=CFG) -> dict[str, str]:
    return {r.quantity: r.verdict for r in ch05.claim_rows(t1s, cfg, aug, deep)}


GROWS = "AT ℓ∞ robustness grows with epochs"
GROWS_ALL = "AT robustness grows with epochs across all checkpoints and attacks"
BEATS = "AT at the first checkpoint beats ST (ℓ∞ PGD)"
MBNC = "AT has higher MBNC than ST, per layer"
RATIO = "AT has a lower unspecialized/specialized ratio than ST, per layer"
EPS_IN = "AT has a lower ε_in curve than ST (mean over teacher nodes, first layer)"
EPS_OUT = "AT has a lower ε_out curve than ST (mean over teacher nodes, first layer)"
AUG_AT, AUG_ST = "augmentation raises the MBNC of AT", "augmentation raises the MBNC of ST"
DEEP_MBNC = "deeper net: AT has higher MBNC than ST"
DEEP_ROBUST = "deeper net: AT more robust than ST (ℓ∞ PGD)"
ALL_ROWS = (GROWS, GROWS_ALL, BEATS, MBNC, RATIO, EPS_IN, EPS_OUT, AUG_AT, AUG_ST, DEEP_MBNC,
            DEEP_ROBUST)
ONE_RUN = {DEEP_MBNC: "inconclusive"}
"""One 5-layer run has no spread for its MBNC: that row is inconclusive in every planted run."""


def _expected_others(row, also=()):
    return {q: ONE_RUN.get(q, "differs" if q in also else "direction holds")
            for q in ALL_ROWS if q != row}


def test_every_claim_holds_on_the_planted_run():
    verdicts = _verdicts(_planted(), _aug(), _deep())
    assert list(verdicts) == list(ALL_ROWS)
    assert verdicts == {q: ONE_RUN.get(q, "direction holds") for q in ALL_ROWS}, verdicts


@pytest.mark.parametrize("row, t1s, aug, deep, also", [
    # the direction reversed (growth with epochs fails for every attack with it)
    (GROWS, _planted(at1=0.90, at2=0.70), None, None, (GROWS_ALL,)),
    (GROWS_ALL, _planted(attack_mu={"cw": {"AT (1)": 0.9, "AT (2)": 0.7}}), None, None, ()),
    (BEATS, _planted(at1=0.40, st=0.60), None, None, ()),
    (MBNC, _planted(mbnc_at=(0.5, 0.5), mbnc_st=(0.7, 0.7)), _aug(st=(0.8, 0.8)), None, ()),
    (RATIO, _planted(ratio_at=(1.0, 1.0), ratio_st=(0.5, 0.5)), None, None, ()),
    (EPS_IN, _planted(eps_in=(1.0, 0.8)), None, None, ()),
    (EPS_OUT, _planted(eps_out=(1.0, 0.8)), None, None, ()),
    (AUG_AT, _planted(), _aug(at=(0.6, 0.6)), None, ()),
    (AUG_ST, _planted(), _aug(st=(0.4, 0.4)), None, ()),
    (DEEP_ROBUST, _planted(), None, _deep(robust=(0.14, 0.97)), ()),
    # per layer means every layer: one layer reversed is enough to differ
    (MBNC, _planted(mbnc_at=(0.7, 0.3)), None, None, ()),
    (RATIO, _planted(ratio_at=(0.5, 3.0)), None, None, ()),
    (AUG_AT, _planted(), _aug(at=(0.8, 0.5)), None, ()),
    (AUG_ST, _planted(), _aug(st=(0.6, 0.3)), None, ()),
])
def test_each_claim_fails_when_planted_to_fail(row, t1s, aug, deep, also):
    verdicts = _verdicts(t1s, aug if aug is not None else _aug(),
                         deep if deep is not None else _deep())
    assert verdicts[row] == "differs", verdicts
    # only the planted row changes
    assert {q: verdicts[q] for q in ALL_ROWS if q != row} == _expected_others(row, also)


@pytest.mark.parametrize("row, t1s, aug, deep", [
    # per layer means every layer: one layer within its margin leaves the claim open
    (MBNC, _planted(mbnc_at=(0.7, 0.5)), None, None),
    (RATIO, _planted(ratio_at=(0.5, 1.0)), None, None),
    (AUG_AT, _planted(), _aug(at=(0.8, 0.7)), None),
    (AUG_ST, _planted(), _aug(st=(0.6, 0.5)), None),
    # ties within the margin: the run cannot tell the direction
    (EPS_IN, _planted(eps_in=(0.995, 1.0)), None, None),
    (EPS_OUT, _planted(eps_out=(0.995, 1.0)), None, None),
    (MBNC, _planted(mbnc_at=(0.505, 0.505)), None, None),
    (AUG_AT, _planted(), _aug(at=(0.715, 0.715)), None),
    (DEEP_ROBUST, _planted(), None, _deep(robust=(0.505, 0.50))),
])
def test_each_claim_is_inconclusive_within_its_noise(row, t1s, aug, deep):
    verdicts = _verdicts(t1s, aug if aug is not None else _aug(),
                         deep if deep is not None else _deep())
    assert verdicts[row] == "inconclusive", verdicts
    assert {q: verdicts[q] for q in ALL_ROWS if q != row} == _expected_others(row)


def test_one_seed_leaves_the_specialization_rows_inconclusive():
    one = resolve(ch05.SETTINGS, profile="smoke", seed=0)
    verdicts = _verdicts(_planted(seeds=1), _aug(), _deep(), cfg=one)
    robust = {GROWS, GROWS_ALL, BEATS, DEEP_ROBUST}
    assert all(verdicts[q] == "direction holds" for q in robust), verdicts
    assert all(verdicts[q] == "inconclusive" for q in ALL_ROWS if q not in robust), verdicts


def test_rows_that_need_two_checkpoints_or_a_run_are_left_out():
    one = _t1s({"AT (2)": 0.90, "ST (2)": 0.50})
    assert GROWS not in _verdicts(one) and GROWS_ALL not in _verdicts(one)
    assert not {AUG_AT, AUG_ST, DEEP_MBNC, DEEP_ROBUST} & set(_verdicts(_planted()))


def test_growth_row_quotes_the_papers_own_dips():
    row = next(r for r in ch05.claim_rows(_planted(), CFG) if r.quantity == GROWS_ALL)
    assert row.paper.startswith("all 6 rise AT (50) → AT (300); 4 dips: ")
    assert "CW (ℓ2) AT (200) → AT (300)" in row.paper
    assert row.ours == "6 of 6 attacks rise AT (1) → AT (2); no fall between checkpoints"
    assert "3 seeds for ℓ∞ PGD, 1 seed for the others" in row.note


def test_table1_rows_reproduced_direction_and_differs():
    # far from the paper, AT above ST by more than the margin: the direction holds
    rows = ch05.table1_rows(_planted(at2=0.60, st=0.30), CFG)
    assert {r.verdict for r in rows} == {"direction holds"}
    assert rows[0].quantity == "ℓ∞ PGD: AT (2) above ST (2), robust acc. (%)"
    assert rows[0].ours == "60.0 ± 0.5 vs 30.0 ± 0.5" and rows[1].ours == "59.5 vs 29.5"  # the first seed only
    assert rows[0].paper == "78.79 vs 74.39 (AT (50) vs ST (300))"
    assert "the epochs differ: our AT (2) vs the paper's AT (50), our ST (2) vs the paper's " \
           "ST (300)" in rows[0].note
    # reversed: differs
    rows = ch05.table1_rows(_planted(at2=0.30, st=0.60), CFG)
    assert {r.verdict for r in rows} == {"differs"}
    assert len(rows) == len(ch05.PAPER_TABLE1)
    # the paper's numbers at the paper's settings: reproduced; a smaller run: not
    paper = resolve(ch05.SETTINGS, profile="paper", seed=0)
    at300 = _t1s({"AT (150)": 0.5, "AT (300)": 0.8820, "ST (300)": 0.7439}, epochs=300)
    assert ch05.table1_rows(at300, paper)[0].verdict == "reproduced"
    assert ch05.table1_rows(at300, CFG)[0].verdict == "direction holds"
    # ... and a run too small to resolve ±3 points cannot reproduce: 20 images per repeat
    few = _t1s({"AT (150)": 0.5, "AT (300)": 0.8820, "ST (300)": 0.7439}, epochs=300, n_eval=20)
    assert ch05.table1_rows(few, paper)[0].verdict != "reproduced"


# -- what the notebook shows -------------------------------------------------------------------

def test_markdown_helpers():
    t1s = _planted()
    for t1 in t1s:
        for c in t1["columns"]:
            t1["spec"][c].update(dead_teacher=[1, 0], dead_student=[0, 2],
                                 rho_eps_in_pearson=-0.3)
        t1["init_spec"] = dict(t1["spec"]["ST (2)"])
        t1["surrogate_clean_agreement"] = 0.4
    t1 = t1s[0]
    assert "Below 50 %" in ch05.surrogate_markdown(t1, 100)
    t1["surrogate_clean_agreement"] = 0.6
    assert "Below 50 %" not in ch05.surrogate_markdown(t1, 100)
    t1["surrogate_clean_agreement"] = None
    assert "no surrogate" in ch05.surrogate_markdown(t1, 100)
    assert "1, 0 of 45, 32" in ch05.dead_nodes_markdown(t1, 100)
    assert "| untrained | -0.300 ± 0.000 | 1.000 ± 0.005 |" in ch05.pearson_markdown(t1s)
    seeds = ch05.seeds_markdown(t1s)
    assert "| 0 | 69.50 | 89.50 | 49.50 | 49.50 |" in seeds
    assert "| mean ± sd | 70.00 ± 0.50 |" in seeds
    assert ch05.infinite_ratio_markdown(t1s) == ""
    t1s[1]["spec"]["ST (2)"]["ratio"] = [float("inf"), 1.0]
    assert "ST (2): [0]" in ch05.infinite_ratio_markdown(t1s)
    assert list(ch05.fig6_groups(t1s, _aug())) == ["AT (2)", "ST (2)", "AT + aug (2)",
                                                   "ST + aug (2)"]
    deep = _deep(teacher=0.098)
    deep["teacher_widths"] = [45, 32, 32, 20, 64]
    assert "9.8 %" in ch05.deep_left_out_markdown(deep)
    assert ch05.deep_left_out_markdown(_deep()) == "" == ch05.deep_left_out_markdown(None)
    assert "AT deep (2): 97.0 %" in ch05.deep_markdown(deep)
    assert "robust accuracy (talk, source D) | 81.18 | — |" in ch05.paper_table1_markdown()
    text = ch05.pipeline_markdown(_planted(), CFG)
    assert "| AT (2) | 3 | 90.0 ± 0.5 | 90.0 ± 0.5 | 0.700 ± 0.005 |" in text
    assert "would read: 6 direction holds, 1 direction holds" not in text
    assert "13 direction holds" in text


def test_figures_draw_from_planted_records():
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    recs = []
    for t1 in _planted():
        cols = t1["columns"] + [ch05.INIT]
        arrays = {f"{c}__sorted_bnc_{l}": np.sort(rng.random(5))[::-1] for c in cols
                  for l in range(2)}
        arrays |= {f"{c}__{e}": np.sort(rng.random(5)) for c in cols
                   for e in ("eps_in", "eps_out")}
        recs.append(SimpleNamespace(values=t1, arrays=arrays))
    for fig in (ch05.plot_sorted_bnc(recs), ch05.plot_eps_curves(recs),
                ch05.plot_fig6([r.values for r in recs], _aug())):
        assert fig.axes
        plt.close(fig)
    deep = _deep()
    deep_arrays = {f"{c}__sorted_bnc_{l}": rng.random(5) for c in deep["columns"]
                   for l in range(5)}
    deep_arrays |= {f"{c}__{e}": rng.random(5) for c in deep["columns"]
                    for e in ("eps_in", "eps_out")}
    fig = ch05.plot_deep(SimpleNamespace(values=deep, arrays=deep_arrays,
                                         provenance={"profile": "smoke"}))
    assert len(fig.axes) == 5  # layers 0, 2, 4 and the two ε curves
    plt.close(fig)


def test_scale_note():
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0)
    assert ch05.scale_note(cfg) == (
        "smoke profile: 2 epochs on 1000 images, PGD-2 training, 1 seed, PGD-5 evaluation on "
        "50 test images (paper: 300 epochs on 50000, PGD-40 training and evaluation)")
    assert ch05.scale_note(resolve(ch05.SETTINGS, profile="paper", seed=0)) == (
        "paper profile, paper settings, 3 seeds")


# -- the cpu profile, the seeds and the run the chapter shows ---------------------------------

def test_cpu_profile_sizes():
    cfg = resolve(ch05.SETTINGS, profile="cpu", seed=0)
    ch05.check_settings(cfg)
    assert (cfg.n_student, cfg.seeds, cfg.at_steps, cfg.eval_steps, cfg.n_eval) == (
        20_000, 3, 10, 40, 1000)
    assert all(s.cpu is not None for s in ch05.SETTINGS.values())
    # chapter 4's attack: the ST students of both chapters are attacked alike
    from tsrobust.chapters import cifar
    assert (ch05.SETTINGS["eval_steps"], ch05.SETTINGS["linf_eps"],
            ch05.SETTINGS["linf_alpha"]) == (cifar.ATTACK_STEPS, cifar.ATTACK_EPS,
                                             cifar.ATTACK_ALPHA)


def test_record_names_and_leading_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    cpu = resolve(ch05.SETTINGS, profile="cpu", seed=0)
    names = ch05.record_names(cpu)
    assert [n for _, n, _ in names.values()] == ["table1", "table1_seed1", "table1_seed2"]
    assert ch05.seed_attacks(0) == ch05.ATTACKS and ch05.seed_attacks(2) == ch05.HEADLINE_ATTACKS
    smoke = resolve(ch05.SETTINGS, profile="smoke", seed=0)
    assert ch05.leading_runs(smoke, ["own"]) == (smoke, ["own"], True)
    for _, name, seed_cfg in names.values():
        results.save(ch05.CHAPTER, name, seed_cfg, {"name": name}, seconds=0.0)
    shown_cfg, shown, own_run = ch05.leading_runs(smoke, ["own"])
    assert shown_cfg.profile == "cpu" and not own_run
    assert [r.values["name"] for r in shown] == ["table1", "table1_seed1", "table1_seed2"]
    assert ch05.recorded_run("augmentation", cpu) is None


def test_shown_extra_never_mixes_two_runs(tmp_path, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    smoke = resolve(ch05.SETTINGS, profile="smoke", seed=0)
    cpu = resolve(ch05.SETTINGS, profile="cpu", seed=0)
    own = SimpleNamespace(provenance={"profile": "smoke"})
    assert ch05.shown_extra("deep", own, smoke, True) == (own, "")
    assert "switched off" in ch05.shown_extra("deep", None, smoke, True)[1]
    res, note = ch05.shown_extra("augmentation", own, cpu, False)
    assert res is None and "`cpu` run has no augmentation runs" in note
    assert "this build's `smoke` run has them" in note
    results.save(ch05.CHAPTER, "deep", cpu, {"x": 1}, seconds=0.0)
    assert ch05.shown_extra("deep", own, cpu, False)[0].values["x"] == 1


def test_reading_sentence_follows_the_shown_run():
    smoke = resolve(ch05.SETTINGS, profile="smoke", seed=0)
    text = ch05.reading_markdown(smoke, True)
    assert "2 epochs on 1000 images with PGD-2" in text and "inconclusive" in text
    assert "measurement noise alone" in text
    assert "pipeline works" in text
    cpu = resolve(ch05.SETTINGS, profile="cpu", seed=0)
    text = ch05.reading_markdown(cpu, False)
    assert "PGD-10" in text and "3 seeds" in text and "pipeline" not in text
    assert "paper's settings" in ch05.reading_markdown(
        resolve(ch05.SETTINGS, profile="paper", seed=0), False)


def test_transfer_row_attacks_with_the_surrogate_and_scores_the_student():
    """The "transfer" row is the student's agreement with the teacher on examples made against
    the *surrogate* (a black-box attack), not against the student itself: computed by hand it
    equals the suite's row, and with a large budget it is above the white-box ℓ∞ row."""
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0, n_eval=12, repeats=1, eval_steps=5,
                  linf_eps=0.3, linf_alpha=0.05)
    teacher, student, surrogate = small_net(4), small_net(6), small_net(5)
    x = images(12)
    subsets = [torch.arange(12)]
    table = ch05.attack_suite(student, teacher, surrogate, x, cfg, gen(),
                              subsets=subsets, names=("transfer",))
    table.update(ch05.attack_suite(student, teacher, None, x, cfg, gen(), subsets=subsets,
                                   names=("linf_pgd",)))
    by_hand = attacks.robust_accuracy_of(
        student, teacher, x, lambda xb, g: attacks.transfer_attack(
            surrogate, teacher, xb, eps=cfg.linf_eps, alpha=cfg.linf_alpha,
            steps=cfg.eval_steps, norm="linf", generator=g, precision=cfg.precision),
        generator=gen(), subsets=subsets, precision=cfg.precision)
    assert table["transfer"] == pytest.approx(by_hand)
    assert table["transfer"][0] > table["linf_pgd"][0]


def test_gpu_profile_takes_minutes_on_the_reference_gpu():
    from tsrobust import bench

    gpu = resolve(ch05.SETTINGS, profile="gpu", seed=0)
    minutes = bench.reference_minutes(ch05.run_flops(gpu))
    assert 1 < minutes < 30, minutes  # "one GPU, minutes per chapter" (README)
    one_step = resolve(ch05.SETTINGS, profile="gpu", seed=0, at_steps=1)
    assert ch05.run_flops(gpu) > 5 * ch05.run_flops(one_step)  # the AT students' PGD-40 dominate
    assert "minutes** on an A100-class GPU" in ch05.estimate_markdown(gpu)
    assert bench.reference_minutes(ch05.run_flops(resolve(ch05.SETTINGS, profile="paper",
                                                          seed=0))) > 30  # the cluster's
