"""tsrobust.chapters.ch05_adversarial_training: the attack suite, the runs at toy size, Table 1
rows and every claim row of §5.4 on planted values (holding, failing, and ties)."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn as nn

from tsrobust import results
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
    assert all(r.verdict in ("reproduced", "direction holds", "differs")
               for r in ch05.table1_rows(values) + ch05.claim_rows(values))
    aug, _ = ch05.run_augmentation(cfg, data, teacher, progress=False)
    assert aug["columns"] == ["AT + aug (2)", "ST + aug (2)"]
    deep, deep_arrays = ch05.run_deep(cfg, data, progress=False)
    assert deep["teacher_widths"] == [45, 32, 32, 20, 64]
    deep_teacher = results.load(TEACHER_CHAPTER, "teacher_deep", "smoke").provenance["parameters"]
    assert (deep_teacher["teacher_optimizer"], deep_teacher["teacher_lr"]) == (
        cfg.deep_teacher_optimizer, cfg.deep_teacher_lr) == ("adam", 1e-3)
    assert len(deep["spec"]["AT deep (2)"]["mbnc"]) == 5
    assert "AT deep (2)__sorted_bnc_4" in deep_arrays
    rows = ch05.claim_rows(values, aug, deep)
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


def _t1_values(mu: dict, var=1e-4, epochs=2, checkpoints=(1, 2), repeats=2, n_eval=10_000,
               ratio=(1.0, 1.0)):
    """Hand-made run_table1 values: ``mu[column]`` = robust accuracy (fraction) under every
    attack; MBNC, ε and the unspecialized/specialized ratio the same in every column."""
    spec = {c: {"mbnc": [0.5, 0.5], "eps_in_mean": 1.0, "eps_out_mean": 1.0,
                "ratio": list(ratio)} for c in mu}
    return {"columns": list(mu), "epochs": epochs, "checkpoints": list(checkpoints),
            "repeats": repeats, "n_eval": n_eval, "spec": spec,
            "table": {c: {a: [m, var] for a in ch05.ATTACKS} for c, m in mu.items()}}


def test_claim_rows_need_a_margin_and_quote_the_matching_paper_epoch():
    # AT(1) of 2 epochs stands for the paper's AT (150); ties (within the margin) do not hold
    tie = _t1_values({"AT (1)": 0.80, "AT (2)": 0.81, "ST (2)": 0.795})
    rows = {r.quantity: r for r in ch05.claim_rows(tie)}
    grows = rows["AT ℓ∞ robustness grows with epochs"]
    assert grows.verdict == "differs" and "87.57" in grows.paper and "88.2" in grows.paper
    assert "within the 2-point floor" in grows.note  # the paper's own +0.63 is a tie too
    assert rows["AT at the first checkpoint beats ST (ℓ∞ PGD)"].verdict == "differs"
    assert rows["AT has higher MBNC than ST, per layer"].verdict == "differs"  # equal MBNC
    assert rows["AT has a lower unspecialized/specialized ratio than ST, per layer"].verdict \
        == "differs"
    clear = _t1_values({"AT (1)": 0.70, "AT (2)": 0.90, "ST (2)": 0.50})
    rows = {r.quantity: r for r in ch05.claim_rows(clear)}
    assert rows["AT ℓ∞ robustness grows with epochs"].verdict == "direction holds"
    assert rows["AT at the first checkpoint beats ST (ℓ∞ PGD)"].verdict == "direction holds"
    # the margin: two standard errors of the difference, at least 2 points
    big = _t1_values({"AT (1)": 0.5, "AT (2)": 0.5, "ST (2)": 0.5}, var=0.01)
    assert ch05.accuracy_margin(big, "AT (2)", "ST (2)", "fgsm") == pytest.approx(20.0)
    # ... with the binomial variance of n_eval images as a floor when the repeats agree
    few = _t1_values({"AT (1)": 0.5, "AT (2)": 0.5, "ST (2)": 0.5}, var=0.0, n_eval=50)
    assert ch05.accuracy_margin(few, "AT (2)", "ST (2)", "fgsm") == pytest.approx(
        100 * 2 * np.sqrt(2 * 0.25 / 50 / 2))
    many = _t1_values({"AT (1)": 0.5, "AT (2)": 0.5, "ST (2)": 0.5}, var=0.0, n_eval=10**6)
    assert ch05.accuracy_margin(many, "AT (2)", "ST (2)", "fgsm") == pytest.approx(2.0)
    noisy = _t1_values({"AT (1)": 0.70, "AT (2)": 0.90, "ST (2)": 0.50}, var=0.04)
    rows = {r.quantity: r for r in ch05.claim_rows(noisy)}
    assert rows["AT ℓ∞ robustness grows with epochs"].verdict == "differs"
    # Table 1 rows: AT 90 vs ST 89.5 is a tie, not a direction
    t = ch05.table1_rows(_t1_values({"AT (1)": 0.5, "AT (2)": 0.90, "ST (2)": 0.895}))
    assert not any(r.verdict == "direction holds" for r in t), [(r.quantity, r.verdict) for r in t]
    assert t[0].verdict == "reproduced"  # 90 vs the paper's 88.20, standard error 0.7
    # ... but a run too small to resolve ±3 points cannot reproduce: 90 ± 4.7 (20 images)
    t = ch05.table1_rows(_t1_values({"AT (1)": 0.5, "AT (2)": 0.90, "ST (2)": 0.895},
                                    n_eval=20))
    assert t[0].verdict == "differs"
    # a lower ratio counts when below 90 % of the other; ∞ (no specialized node) is the highest
    assert ch05._ratio_lower(1.0, 2.0) and not ch05._ratio_lower(1.95, 2.0)
    assert ch05._ratio_lower(3.0, "inf") and not ch05._ratio_lower("nan", 1.0)
    # gpu-profile checkpoints (3 of 20 ↔ 50 of 300)
    assert ch05.paper_column({"epochs": 20}, "AT (3)") == 0
    assert ch05.paper_column({"epochs": 20}, "ST (20)") == 5


def test_deep_rows_are_left_out_when_the_deep_teacher_is_at_chance():
    t1 = _t1_values({"AT (1)": 0.70, "AT (2)": 0.90, "ST (2)": 0.50})
    deep = {"columns": ["AT deep (2)", "ST deep (2)"], "teacher_test_accuracy": 0.098,
            "spec": {"AT deep (2)": {"mbnc": [0.9]}, "ST deep (2)": {"mbnc": [0.5]}},
            "linf_robust": {"AT deep (2)": [0.97, 0.0], "ST deep (2)": [0.14, 0.0]}}
    assert not any("deeper" in r.quantity for r in ch05.claim_rows(t1, deep=deep))
    deep["teacher_test_accuracy"] = 0.4
    rows = [r for r in ch05.claim_rows(t1, deep=deep) if "deeper" in r.quantity]
    assert len(rows) == 2 and all(r.verdict == "direction holds" for r in rows)


# -- every claim row, planted so that it holds and so that it fails ----------------------------

def _planted(at1=0.70, at2=0.90, st=0.50, *, var=1e-4, n_eval=10_000, mbnc_at=(0.7, 0.7),
             mbnc_st=(0.5, 0.5), ratio_at=(0.5, 0.5), ratio_st=(1.0, 1.0), eps_in=(0.8, 1.0),
             eps_out=(0.8, 1.0)):
    """run_table1 values in which every claim of §5.4 holds by default: AT grows with epochs
    and beats ST (robust accuracy, every attack), and the last AT checkpoint has the higher MBNC,
    the lower ratio and the lower ε curves (``(AT, ST)`` pairs for ε)."""
    t1 = _t1_values({"AT (1)": at1, "AT (2)": at2, "ST (2)": st}, var=var, n_eval=n_eval)
    t1["spec"]["AT (2)"].update(mbnc=list(mbnc_at), ratio=list(ratio_at),
                                eps_in_mean=eps_in[0], eps_out_mean=eps_out[0])
    t1["spec"]["ST (2)"].update(mbnc=list(mbnc_st), ratio=list(ratio_st),
                                eps_in_mean=eps_in[1], eps_out_mean=eps_out[1])
    return t1


def _aug(at=(0.8, 0.8), st=(0.6, 0.6)):
    return {"columns": ["AT + aug (2)", "ST + aug (2)"],
            "spec": {"AT + aug (2)": {"mbnc": list(at), "ratio": [0.5, 0.5]},
                     "ST + aug (2)": {"mbnc": list(st), "ratio": [1.0, 1.0]}}}


def _deep(mbnc_at=(0.9,) * 5, mbnc_st=(0.5,) * 5, robust=(0.97, 0.14), teacher=0.4):
    return {"columns": ["AT deep (2)", "ST deep (2)"], "teacher_test_accuracy": teacher,
            "spec": {"AT deep (2)": {"mbnc": list(mbnc_at)},
                     "ST deep (2)": {"mbnc": list(mbnc_st)}},
            "linf_robust": {"AT deep (2)": [robust[0], 0.0], "ST deep (2)": [robust[1], 0.0]}}


def _verdicts(t1, aug=None, deep=None) -> dict[str, str]:
    return {r.quantity: r.verdict for r in ch05.claim_rows(t1, aug, deep)}


GROWS = "AT ℓ∞ robustness grows with epochs"
BEATS = "AT at the first checkpoint beats ST (ℓ∞ PGD)"
MBNC = "AT has higher MBNC than ST, per layer"
RATIO = "AT has a lower unspecialized/specialized ratio than ST, per layer"
EPS_IN = "AT has a lower ε_in curve than ST (mean over teacher nodes, first layer)"
EPS_OUT = "AT has a lower ε_out curve than ST (mean over teacher nodes, first layer)"
AUG_AT, AUG_ST = "augmentation raises the MBNC of AT", "augmentation raises the MBNC of ST"
DEEP_MBNC = "deeper net: AT has higher MBNC than ST"
DEEP_ROBUST = "deeper net: AT more robust than ST (ℓ∞ PGD)"
ALL_ROWS = (GROWS, BEATS, MBNC, RATIO, EPS_IN, EPS_OUT, AUG_AT, AUG_ST, DEEP_MBNC, DEEP_ROBUST)


def test_every_claim_holds_on_the_planted_run():
    verdicts = _verdicts(_planted(), _aug(), _deep())
    assert list(verdicts) == list(ALL_ROWS)
    assert set(verdicts.values()) == {"direction holds"}, verdicts


@pytest.mark.parametrize("row, t1, aug, deep", [
    # the direction reversed
    (GROWS, _planted(at1=0.90, at2=0.70), None, None),
    (BEATS, _planted(at1=0.40, st=0.60), None, None),
    (MBNC, _planted(mbnc_at=(0.5, 0.5), mbnc_st=(0.7, 0.7)), None, None),
    (RATIO, _planted(ratio_at=(1.0, 1.0), ratio_st=(0.5, 0.5)), None, None),
    (EPS_IN, _planted(eps_in=(1.0, 0.8)), None, None),
    (EPS_OUT, _planted(eps_out=(1.0, 0.8)), None, None),
    (AUG_AT, _planted(), _aug(at=(0.6, 0.6)), None),
    (AUG_ST, _planted(), _aug(st=(0.4, 0.4)), None),
    (DEEP_MBNC, _planted(), None, _deep(mbnc_at=(0.5,) * 5, mbnc_st=(0.9,) * 5)),
    (DEEP_ROBUST, _planted(), None, _deep(robust=(0.14, 0.97))),
    # per layer means every layer: one layer short is not enough
    (MBNC, _planted(mbnc_at=(0.7, 0.5)), None, None),
    (RATIO, _planted(ratio_at=(0.5, 1.0)), None, None),
    (AUG_AT, _planted(), _aug(at=(0.8, 0.7)), None),
    (AUG_ST, _planted(), _aug(st=(0.6, 0.5)), None),
    (DEEP_MBNC, _planted(), None, _deep(mbnc_at=(0.9, 0.9, 0.9, 0.9, 0.5))),
    # ties within the margin
    (EPS_IN, _planted(eps_in=(0.995, 1.0)), None, None),
    (EPS_OUT, _planted(eps_out=(0.995, 1.0)), None, None),
    (MBNC, _planted(mbnc_at=(0.505, 0.505)), None, None),
    (DEEP_ROBUST, _planted(), None, _deep(robust=(0.51, 0.50))),
])
def test_each_claim_fails_when_planted_to_fail(row, t1, aug, deep):
    verdicts = _verdicts(t1, aug, deep)
    assert verdicts[row] == "differs", verdicts
    # only the planted row changes
    assert all(v == "direction holds" for q, v in verdicts.items() if q != row), verdicts


def test_rows_that_need_two_checkpoints_or_a_run_are_left_out():
    one = _t1_values({"AT (2)": 0.90, "ST (2)": 0.50})
    assert GROWS not in _verdicts(one)
    assert not {AUG_AT, AUG_ST, DEEP_MBNC, DEEP_ROBUST} & set(_verdicts(_planted()))


def test_table1_rows_reproduced_direction_and_differs():
    # ℓ∞: AT 88 (paper 88.20) and ST 74 (paper 74.39): reproduced
    rows = ch05.table1_rows(_planted(at2=0.88, st=0.74))
    assert [r.verdict for r in rows[:2]] == ["reproduced", "reproduced"]
    # far from the paper, AT above ST by more than the margin: the direction holds
    rows = ch05.table1_rows(_planted(at2=0.60, st=0.30))
    assert {r.verdict for r in rows} == {"direction holds"}
    # reversed: differs
    rows = ch05.table1_rows(_planted(at2=0.30, st=0.60))
    assert {r.verdict for r in rows} == {"differs"}
    assert len(rows) == 2 * len(ch05.PAPER_TABLE1)


# -- what the notebook shows -------------------------------------------------------------------

def test_markdown_helpers():
    t1 = _planted()
    for c in t1["columns"]:
        t1["spec"][c].update(dead_teacher=[1, 0], dead_student=[0, 2], rho_eps_in_pearson=-0.3)
    t1["init_spec"] = dict(t1["spec"]["ST (2)"])
    t1["surrogate_clean_agreement"] = 0.4
    assert "Below 50 %" in ch05.surrogate_markdown(t1, 100)
    t1["surrogate_clean_agreement"] = 0.6
    assert "Below 50 %" not in ch05.surrogate_markdown(t1, 100)
    assert "1, 0 of 45, 32" in ch05.dead_nodes_markdown(t1, (45, 32), 100)
    assert "| untrained | -0.300 |" in ch05.pearson_markdown(t1)
    assert ch05.infinite_ratio_markdown(t1) == ""
    t1["spec"]["ST (2)"]["ratio"] = [float("inf"), 1.0]
    assert "ST (2): [0]" in ch05.infinite_ratio_markdown(t1)
    assert list(ch05.fig6_groups(t1, _aug())) == ["AT (2)", "ST (2)", "AT + aug (2)",
                                                  "ST + aug (2)"]
    deep = _deep(teacher=0.098)
    deep["teacher_widths"] = [45, 32, 32, 20, 64]
    assert "9.8 %" in ch05.deep_left_out_markdown(deep)
    assert ch05.deep_left_out_markdown(_deep()) == "" == ch05.deep_left_out_markdown(None)
    assert "AT deep (2): 97.0 %" in ch05.deep_markdown(deep)


def test_figures_draw_from_planted_records():
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    t1 = _planted()
    cols = t1["columns"] + [ch05.INIT]
    arrays = {f"{c}__sorted_bnc_{l}": np.sort(rng.random(5))[::-1] for c in cols for l in range(2)}
    arrays |= {f"{c}__{e}": np.sort(rng.random(5)) for c in cols for e in ("eps_in", "eps_out")}
    rec = SimpleNamespace(values=t1, arrays=arrays)
    for fig in (ch05.plot_sorted_bnc(rec), ch05.plot_eps_curves(rec), ch05.plot_fig6(t1, _aug())):
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


def test_recorded_elsewhere_lists_only_larger_profiles_present(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    assert ch05.recorded_elsewhere("table1", "smoke") == []
    cfg = resolve(ch05.SETTINGS, profile="gpu", seed=0)
    results.save(ch05.CHAPTER, "table1", cfg, {"x": 1}, seconds=0.0)
    assert [p for p, _ in ch05.recorded_elsewhere("table1", "smoke")] == ["gpu"]
    assert ch05.recorded_elsewhere("table1", "gpu") == []
    assert [p for p, _ in ch05.recorded_elsewhere("table1")] == ["gpu"]


def test_scale_note():
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0)
    assert ch05.scale_note(cfg) == ("smoke: 2 epochs on 1000 images, PGD-2 training, 3-step "
                                    "evaluation.")
    assert ch05.scale_note(resolve(ch05.SETTINGS, profile="paper", seed=0)) == ""
