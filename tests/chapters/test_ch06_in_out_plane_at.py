"""tsrobust.chapters.ch06_in_out_plane_at: the evaluation and the run at toy size, and every claim
row of §5.4's Table 2 / Fig. 7 and of the projected attack on planted runs (holding, failing,
inconclusive)."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn as nn

from tsrobust import results
from tsrobust.chapters import ch06_in_out_plane_at as ch06
from tsrobust.data import CIFAR10
from tsrobust.models import PRUNED_WIDTHS, ConvNet
from tsrobust.params import resolve
from tsrobust.specialization import PatchSubspaceSplit

matplotlib.use("Agg")


def small_net(seed: int, widths=(6, 8), classes: int = 10) -> nn.Module:
    """A tiny conv ReLU net on 3×8×8 images."""
    torch.manual_seed(seed)  # test-local initialisation only
    layers, c = [], 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3), nn.ReLU()]
        c = w
    side = 8 - 2 * len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, classes)).eval()


def basis(rank=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(27, 27, generator=g, dtype=torch.float64))[0][:, :rank]


def smoke(**kw):
    return resolve(ch06.SETTINGS, profile="smoke", seed=0, **kw)


# -- evaluation and the run -------------------------------------------------------------------

def test_evaluate_counts_agree_with_the_attacks_and_are_paired():
    """A student equal to the teacher survives every attack; a different one: the accuracies are
    the hit counts over n, and acc(out) − acc(in) equals the paired discordances' difference."""
    cfg = smoke(eval_steps=2)
    teacher, u = small_net(4), basis()
    split = PatchSubspaceSplit(u, shape=(3, 8, 8))
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    same = ch06.evaluate(copy.deepcopy(teacher), teacher, x, u, cfg,
                         torch.Generator().manual_seed(1), split)
    assert all(v == 1.0 for v in same["table"].values()), same["table"]
    ev = ch06.evaluate(small_net(5), teacher, x, u, cfg, torch.Generator().manual_seed(1), split)
    assert set(ev["table"]) == {"clean", "in", "out", "standard", "proj_in", "proj_out"}
    for a, h in ev["hits"].items():
        assert ev["table"][a] == h / 12
    for a, b in (("in", "out"), ("proj_in", "proj_out")):
        assert ev["hits"][a] - ev["hits"][b] == ev["only"][a] - ev["only"][b]
    assert ev["distance"]["in"] <= ev["distance"]["out"]
    assert ev["table"]["clean"] >= max(ev["table"][a] for a in ("in", "out", "standard")) - 0.5


def test_chapter6_settings_cross_checks():
    for bad in (dict(n_student=3000), dict(n_eval=5000), dict(n_pca=3000)):
        with pytest.raises(ValueError):
            ch06.check_settings(smoke(**bad))


class _HalfSplit:
    """A stand-in for the 3 072-dimensional split in the toy run: "in" keeps the first channel,
    "out" the others (a complementary pair of projections)."""

    def __init__(self):
        self.eigenvalues = torch.cat([torch.zeros(1024), torch.ones(2048)]).double()
        self.n_in = 1024

    def project(self, delta, side):
        mask = torch.zeros_like(delta)
        mask[:, 0] = 1
        return delta * (mask if side == "in" else 1 - mask)


def test_chapter6_runs_end_to_end_at_toy_size(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    monkeypatch.setattr(ch06, "subspace_split", lambda u, t: _HalfSplit())
    g = torch.Generator().manual_seed(0)
    data = CIFAR10(torch.rand(64, 3, 32, 32, generator=g), torch.arange(64) % 10,
                   torch.rand(40, 3, 32, 32, generator=g), torch.arange(40) % 10, "random images")
    cfg = smoke(n_train=64, n_test=40, n_student=16, batch_size=8, at_steps=1, n_eval=6,
                eval_steps=1, n_spec=4, n_pca=8, seeds=2)
    teacher = ConvNet(PRUNED_WIDTHS, generator=torch.Generator().manual_seed(1)).eval()
    recs = ch06.record_seeds(cfg, data, teacher, progress=False)
    assert [r.name for r in recs] == ["table2", "table2_seed1"]
    v = recs[0].values
    assert v["columns"] == list(ch06.COLUMNS)
    for col in ch06.COLUMNS:
        assert set(v["table"][col]) == {"clean", *ch06.ATTACKS, *ch06.PROJECTED}
        assert all(0 <= a <= 1 for a in v["table"][col].values())
        live = PRUNED_WIDTHS[0] - v["spec"][col]["dead_teacher"][0]
        assert len(recs[0].arrays[f"{col}__eps_in"]) == live
    assert v["split_n_in"] == 1024
    rows = ch06.claim_rows([r.values for r in recs], cfg)
    assert len(rows) == 7 and all(r.verdict in results.VERDICTS for r in rows)
    shown_cfg, shown, own_run = ch06.leading_runs(cfg, recs)
    assert own_run and shown is recs
    for md in (ch06.table2_markdown([r.values for r in recs]),
               ch06.projected_markdown([r.values for r in recs]),
               ch06.split_markdown([r.values for r in recs]),
               ch06.pipeline_markdown([r.values for r in recs], cfg)):
        assert "|" in md
    ch06.plot_eps_curves(recs)
    ch06.plot_split_spectrum(recs[0], cfg.split_threshold)
    # the three students start from one initialization but train on different examples
    assert v["spec"]["AT (in-plane)"] != v["spec"]["AT (out-of-plane)"]


# -- claims on planted runs ---------------------------------------------------------------------

def planted(seed=0, acc=None, n=1000, only=None, eps=None, projected=True):
    """One seed's values: ``acc[col][attack]`` in points; ``only[col][attack]`` discordances;
    ``eps[col] = (eps_in_mean, eps_out_mean)``."""
    acc = acc or {}
    table, spec, disc = {}, {}, {}
    for col in ch06.COLUMNS:
        a = {"clean": 95.0, "in": 85.0, "out": 85.0, "standard": 85.0, "proj_in": 85.0,
             "proj_out": 85.0, **acc.get(col, {})}
        if not projected:
            a = {k: x for k, x in a.items() if not k.startswith("proj")}
        table[col] = {k: x / 100 for k, x in a.items()}
        disc[col] = {"in": 0, "out": 0, "proj_in": 0, "proj_out": 0, **(only or {}).get(col, {})}
        e = (eps or {}).get(col, (0.5, 0.8))
        spec[col] = {"eps_in_mean": e[0], "eps_out_mean": e[1], "mbnc": [0.5] * 4}
    return {"columns": list(ch06.COLUMNS), "table": table, "only": disc, "spec": spec,
            "n_eval": n, "seed": seed}


def holding(seed, jitter=0.0):
    """The source's directions, clearly: in-plane AT > standard AT > out-of-plane AT (by 6 and 4
    points), the in-plane attack 2 points more severe (20 more discordant images of 1000),
    in-plane AT's ε curves lower, and the same under the projected attacks."""
    acc, only = {}, {}
    for col, base in zip(ch06.COLUMNS, (90.0, 80.0, 85.0)):
        b = base + jitter
        acc[col] = {"in": b - 1, "out": b + 1, "standard": b, "proj_in": b - 1,
                    "proj_out": b + 1}
        only[col] = {"in": 5, "out": 25, "proj_in": 5, "proj_out": 25}
    eps = {"AT (in-plane)": (0.4 + jitter / 100, 0.6), "AT (out-of-plane)": (0.6, 0.9),
           "AT (standard)": (0.5, 0.8)}
    return planted(seed, acc, only=only, eps=eps)


def _rows(t2s, profile="cpu"):
    cfg = resolve(ch06.SETTINGS, profile=profile, seed=0)
    return {r.quantity: r for r in ch06.claim_rows(t2s, cfg)}


def _row(rows, prefix):
    """The one row whose claim starts with ``prefix``."""
    (key,) = [k for k in rows if k.startswith(prefix)]
    return rows[key]


def test_every_claim_holds_on_the_planted_run():
    rows = _rows([holding(s, j) for s, j in zip(range(3), (0.0, 0.3, -0.2))])
    assert len(rows) == 7
    assert all(r.verdict == "direction holds" for r in rows.values()), {
        k: (r.verdict, r.note) for k, r in rows.items()}


def _flip(t2s, what):
    t2s = copy.deepcopy(t2s)
    for v in t2s:
        if what == "in_vs_standard":
            v["table"]["AT (standard)"]["standard"] = v["table"]["AT (in-plane)"]["standard"] + 0.05
        elif what == "standard_vs_out":
            v["table"]["AT (out-of-plane)"]["standard"] = v["table"]["AT (standard)"]["standard"] + 0.05
        elif what == "attack":
            for col in ch06.COLUMNS:
                v["only"][col].update({"in": 25, "out": 5})
        elif what == "eps_in":
            v["spec"]["AT (in-plane)"]["eps_in_mean"] = 0.7
        elif what == "eps_out":
            v["spec"]["AT (in-plane)"]["eps_out_mean"] = 0.95
        elif what == "projected_attack":
            for col in ch06.COLUMNS:
                v["only"][col].update({"proj_in": 25, "proj_out": 5})
        elif what == "projected_students":
            v["table"]["AT (out-of-plane)"]["proj_out"] = 0.95
    return t2s


@pytest.mark.parametrize("what, row", [
    ("in_vs_standard", "AT (in-plane) more robust than AT (standard)"),
    ("standard_vs_out", "AT (standard) more robust than AT (out-of-plane)"),
    ("attack", "the in-plane attack is more severe than the out-of-plane one"),
    ("eps_in", "AT (in-plane) has a lower ε_in curve"),
    ("eps_out", "AT (in-plane) has a lower ε_out curve"),
    ("projected_attack", "projected attacks: in-plane more severe than out-of-plane"),
    ("projected_students", "projected attacks: AT"),
])
def test_each_claim_fails_when_planted_to_fail(what, row):
    base = [holding(s, j) for s, j in zip(range(3), (0.0, 0.3, -0.2))]
    before = {k: r.verdict for k, r in _rows(base).items()}
    after = {k: r.verdict for k, r in _rows(_flip(base, what)).items()}
    (key,) = [k for k in after if k.startswith(row)]
    assert before[key] == "direction holds" and after[key] == "differs", (key, after[key])
    assert all(after[k] == "direction holds" for k in after if k != key), after


def test_attack_row_is_inconclusive_when_the_run_cannot_resolve_the_papers_gap():
    """50 images per student: a 2-image difference is within the noise, and the margin exceeds
    the paper's 0.32 points: inconclusive, not differs; with 100 000 images the same null
    result differs."""
    def run(n, seed):
        v = holding(seed)
        v["n_eval"] = n
        for col in ch06.COLUMNS:
            v["only"][col].update({"in": 2, "out": 2})
        return v
    prefix = "the in-plane attack"
    assert _row(_rows([run(50, 0)]), prefix).verdict == "inconclusive"
    assert _row(_rows([run(100_000, 0)]), prefix).verdict == "differs"


def test_one_seed_leaves_the_eps_rows_inconclusive_and_student_rows_on_binomial_noise():
    rows = _rows([holding(0)])
    assert _row(rows, "AT (in-plane) has a lower ε_in").verdict == "inconclusive"
    # 90 vs 85 on 1000 images: beyond the binomial noise alone
    assert _row(rows, "AT (in-plane) more robust").verdict == "direction holds"


def test_attack_gap_and_its_paired_standard_error_hand_computed():
    v = planted(n=100, only={"AT (in-plane)": {"in": 3, "out": 7}})
    gap, se = ch06.attack_gap(v, "AT (in-plane)", "out", "in")
    assert gap == pytest.approx(100 * (7 - 3) / 100)
    assert se == pytest.approx(100 * np.sqrt(10 - 16 / 100) / 100)


def test_reproduced_only_at_paper_scale():
    acc = {"AT (in-plane)": {"standard": 89.0}, "AT (out-of-plane)": {"standard": 83.5},
           "AT (standard)": {"standard": 87.0}}
    t2s = [planted(s, acc, n=10_000) for s in range(3)]
    for v in t2s:
        v["table"]["AT (in-plane)"]["standard"] += 0.001 * v["seed"]
    paper = _rows(t2s, "paper")
    cpu = _rows(t2s, "cpu")
    key = "AT (in-plane) more robust"
    assert _row(paper, key).verdict == "reproduced"
    assert _row(cpu, key).verdict == "direction holds"


def test_projected_rows_are_left_out_when_switched_off():
    rows = _rows([planted(s, projected=False) for s in range(2)])
    assert not any(k.startswith("projected") for k in rows) and len(rows) == 5


def test_cpu_profile_is_sized_as_its_docstring_says():
    cfg = resolve(ch06.SETTINGS, profile="cpu", seed=0)
    train = cfg.seeds * cfg.epochs * cfg.n_student * (2 * (2 * cfg.at_steps + 1)
                                                      + cfg.at_steps + 1)
    evaluation = cfg.seeds * 3 * cfg.n_eval * cfg.eval_steps * (2 + 2 * cfg.projected)
    assert (train, evaluation) == (2_520_000, 1_440_000)
    assert (train + evaluation) / 1200 / 60 < 75
    assert cfg.seeds >= 3


def test_reading_and_scale_notes():
    cfg = resolve(ch06.SETTINGS, profile="cpu", seed=0)
    assert "PGD-5 training" in ch06.scale_note(cfg) and "3 seeds" in ch06.scale_note(cfg)
    assert "cannot reproduce" in ch06.reading_markdown(cfg, own_run=False)
    paper = resolve(ch06.SETTINGS, profile="paper", seed=0)
    assert "paper settings" in ch06.scale_note(paper)
    assert "can reproduce" in ch06.reading_markdown(paper, own_run=False)


def test_survival_sentence_follows_the_rows():
    base = [holding(s, j) for s, j in zip(range(3), (0.0, 0.3, -0.2))]
    cfg = resolve(ch06.SETTINGS, profile="cpu", seed=0)
    text = ch06.survival_markdown(ch06.claim_rows(base, cfg))
    assert text.count("**survives**") == 2
    text = ch06.survival_markdown(ch06.claim_rows(_flip(base, "projected_attack"), cfg))
    assert "severe attack*: Table 2's split — direction holds; projected attacks — differs: " \
           "**does not survive**" in text and text.count("**survives**") == 1
    text = ch06.survival_markdown(ch06.claim_rows(_flip(base, "standard_vs_out"), cfg))
    assert "out-of-plane AT*: Table 2's split — differs; projected attacks — direction holds: " \
           "**holds only under the projected attacks**" in text
    no_proj = [planted(s, projected=False) for s in range(2)]
    assert ch06.survival_markdown(ch06.claim_rows(no_proj, cfg)) == ""


def test_run_flops_counts_passes_by_hand():
    """One seed, epoch, image, AT step and attack step: per student one teacher forward and one
    student training step (T + S); the in- and out-of-plane students two PGD steps each (the
    pair), the standard one one (5 attack steps A); Table 2 attacks each student with the
    pair's two runs (6 A), and with the two projected attacks 6 A more."""
    from tsrobust import bench
    from tsrobust.models import build_student

    s, t = bench.layer_macs(build_student()), bench.layer_macs(ConvNet(PRUNED_WIDTHS))
    step = bench.net_flops(t) + bench.net_flops(s, train=True)
    attack = bench.net_flops(s, input_grad=True) + bench.net_flops(t, input_grad=True)
    one = dict(seeds=1, epochs=1, n_student=1, at_steps=1, n_eval=1, eval_steps=1)
    plain = resolve(ch06.SETTINGS, profile="smoke", seed=0, projected=False, **one)
    assert ch06.run_flops(plain) == 3 * step + 11 * attack
    projected = resolve(ch06.SETTINGS, profile="smoke", seed=0, projected=True, **one)
    assert ch06.run_flops(projected) == 3 * step + 17 * attack
    two = resolve(ch06.SETTINGS, profile="smoke", seed=0, projected=True, **{**one, "seeds": 2})
    assert ch06.run_flops(two) == 2 * ch06.run_flops(projected)
