"""Chapter 10: student specs, targets, margins and every claim row on planted runs."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tsrobust import bench, logits  # noqa: E402
from tsrobust.chapters import ch09_logit_distributions as ch09  # noqa: E402
from tsrobust.chapters import ch10_distillation_manipulations as ch10  # noqa: E402
from tsrobust.chapters import resnets  # noqa: E402
from tsrobust.models import STAGE_NAMES, ResNet18  # noqa: E402
from tsrobust.params import resolve  # noqa: E402

N = 400
"""Attacked images of a planted student."""


def _cfg(profile="cpu", **kw):
    return resolve(ch10.SETTINGS, profile=profile, seed=0, **kw)


def _bools(p: float, n: int = N) -> np.ndarray:
    """``p·n`` of ``n`` images robust: the first ones (so that sets of different p nest)."""
    return np.arange(n) < round(p * n)


def _geometry(capacity=1.0, radius=1.0, p=20, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    stages = len(STAGE_NAMES)
    caps = [capacity + spread * rng.standard_normal(p) for _ in range(stages)]
    radii = [radius + spread * rng.standard_normal(p) for _ in range(stages)]
    return {"capacity": [float(c.mean()) for c in caps], "radius": [float(r.mean()) for r in radii],
            "dimension": [5.0] * stages, "center_correlation": [0.1] * stages,
            "capacities": [c.tolist() for c in caps], "radii": [r.tolist() for r in radii]}


BASE = {ch10.NORMAL: 0.30, "permute_k1": 0.13, "permute_k3": 0.24, "permute_k7": 0.30,
        "average_k1": 0.12, "average_k7": 0.29, ch10.CORRECT_FIX_1: 0.0, ch10.HYBRID: 0.0,
        "teacher_e10": 0.0, "kl_e2": 0.10, "kl_e10": 0.0, "teacher_e1": 0.25, "kl_e1": 0.1}
NATURAL = {ch10.NORMAL: 0.75, ch10.CORRECT_FIX_1: 0.92, ch10.HYBRID: 0.88}


def _run(robust=None, natural=None, st=0.0, wrong_at=0.20, wrong_st=0.05, geometry=None,
         kept=1.0, seeds=1):
    robust = {**BASE, **(robust or {})}
    natural = {**NATURAL, **(natural or {})}
    students = {spec: [{"robust": _bools(p), "natural": _bools(natural.get(spec, 0.7)),
                        "kept_share": kept} for _ in range(seeds)]
                for spec, p in robust.items()}
    geometry = geometry or {ch10.NORMAL: _geometry(2.0, 1.0), ch10.FIX_1: _geometry(1.8, 1.1),
                            ch10.CORRECT_FIX_1: _geometry(1.0, 2.0, seed=1),
                            ch10.HYBRID: _geometry(1.1, 1.9, seed=2),
                            "at": _geometry(2.1, 0.9), "st": _geometry(0.9, 2.1)}
    return {"students": students, "distillation_epoch": 2, "teacher_epochs": [1, 2, 5, 10],
            "at_robust": {e: _bools(0.4) for e in (1, 2, 5, 10)},
            "at_natural": {1: 0.5, 2: 0.6, 5: 0.7, 10: 0.8},
            "st_robust": _bools(st, 1000), "st_natural": 0.9,
            "wrong": {"at": {e: _bools(wrong_at, 2000) for e in (1, 2, 5, 10)},
                      "st": _bools(wrong_st, 2000)},
            "manifolds": geometry, "st_epoch": 10}


def _row(rows, text):
    hits = [r for r in rows if text in r.quantity]
    assert len(hits) == 1, [r.quantity for r in rows]
    return hits[0]


def _verdict(text, cfg=None, **kw):
    return _row(ch10.claim_rows(_run(**kw), cfg or _cfg()), text).verdict


# -- settings, specs, records ---------------------------------------------------------------------

def test_settings_hold_the_networks_and_every_profile_resolves():
    assert set(resnets.NETWORK_SETTINGS) <= set(ch10.SETTINGS)
    for profile in ("smoke", "cpu", "gpu", "paper"):
        cfg = _cfg(profile)
        ch10.check_settings(cfg)
        assert cfg.precision and ch10.network_config(cfg).as_dict() == \
            resnets.network_config(profile, 0).as_dict()
    with pytest.raises(ValueError, match="n_student"):
        ch10.check_settings(_cfg("smoke", n_student=1900))
    with pytest.raises(ValueError, match="hold 1"):
        ch10.check_settings(_cfg("smoke", ks=(2, 3)))
    with pytest.raises(ValueError, match="n_student_eval"):
        ch10.check_settings(_cfg("smoke", n_student_eval=600))
    with pytest.raises(ValueError, match="profile"):
        _cfg("laptop")


def test_parse_spec():
    assert ch10.parse_spec("normal", 3) == {"target": "normal", "k": None, "epoch": 3,
                                            "loss": "l1"}
    assert ch10.parse_spec("permute_k7", 3) == {"target": "permute", "k": 7, "epoch": 3,
                                                "loss": "l1"}
    assert ch10.parse_spec("average_k10", 3)["k"] == 10
    assert ch10.parse_spec("teacher_e8", 3) == {"target": "normal", "k": None, "epoch": 8,
                                                "loss": "l1"}
    assert ch10.parse_spec("kl_e3", 3) == {"target": "normal", "k": None, "epoch": 3,
                                           "loss": "kl"}
    assert ch10.parse_spec("hybrid", 3)["target"] == "hybrid"
    for bad in ("fix_k1", "permute_k", "kl_3", "", None):
        with pytest.raises(ValueError, match="unknown student spec"):
            ch10.parse_spec(bad, 3)


def test_student_specs_per_profile():
    smoke = ch10.student_specs(_cfg("smoke"))
    assert smoke == ["normal", "permute_k1", "permute_k3", "permute_k7", "correct_fix_1",
                     "hybrid"]
    cpu = ch10.student_specs(_cfg("cpu"))
    # teacher epochs of a 10-epoch run: 20, 40, 100, 200 of 200 → 1, 2, 5, 10; distillation at 2
    assert resnets.teacher_epochs(ch10.network_config(_cfg("cpu"))) == (1, 2, 5, 10)
    assert cpu == (["normal"] + [f"permute_k{k}" for k in (1, 2, 3, 5, 7)]
                   + [f"average_k{k}" for k in (1, 2, 3, 5, 7)]
                   + ["correct_fix_1", "hybrid", "teacher_e1", "teacher_e5", "teacher_e10",
                      "kl_e1", "kl_e2", "kl_e5", "kl_e10"])
    assert len(set(cpu)) == len(cpu) == 20


def test_record_names_cover_networks_targets_manifolds_and_every_student():
    cfg = _cfg("cpu", student_seeds=2)
    names = ch10.record_names(cfg)
    assert names["net_at"][0] == resnets.NETWORK_CHAPTER == names["net_st"][0]
    assert names["net_at"][1] == "at_seed0" and names["net_st"][1] == "st_seed0"
    assert {k for k in names if k.startswith("targets")} == {
        "targets_at_e1", "targets_at_e2", "targets_at_e5", "targets_at_e10", "targets_st_e2"}
    students = [k for k in names if k.startswith("student:")]
    assert len(students) == 40 and "student:hybrid:1" in students
    assert names["student:hybrid:1"][1] == "hybrid_seed1"
    assert len({n for _, n, _ in names.values()}) == len(names)  # one name per record
    with pytest.raises(ValueError, match="unknown record key"):
        ch10.record_one(cfg, None, "student:hybrid:2")


def test_work_counts_the_settings():
    cfg = _cfg("smoke")
    w = ch10.work(cfg)
    assert w["students"] == 6
    assert w["train_passes"] == 6 * 2 * 1000
    assert w["target_passes"] == 2 * 2 * 1000  # one AT epoch and the ST network, 2 crops each
    assert w["apgd_steps"] == 6 * 100 * 2 * 10
    assert w["manifold_pgd_steps"] == 6 * 8 * 6 * 2
    assert "6 students" in ch10.work_markdown(cfg)


def test_run_flops_counts_the_work_through_the_resnet():
    cfg = _cfg("smoke")
    macs = bench.layer_macs(resnets.build_network(ch10.network_config(cfg)))
    m, stem = sum(macs), macs[0]
    w = ch10.work(cfg)
    # a training step 2 + 2 + 2 FLOP per MAC (no input gradient at the first conv), an attack
    # step 2 + 2, a forward pass 2
    assert ch10.run_flops(cfg) == (w["train_passes"] * (6 * m - 2 * stem)
                                   + (w["apgd_steps"] + w["manifold_pgd_steps"]) * 4 * m
                                   + (w["target_passes"] + w["test_passes"]) * 2 * m)


def test_independent_runs_order_networks_targets_students():
    runs = ch10.independent_runs("smoke")
    cfg = _cfg("smoke")
    names = ch10.record_names(cfg)
    assert sorted(r.name for r in runs) == sorted(f"{c}/{n}" for c, n, _ in names.values())
    by_name = {r.name: r for r in runs}
    nets = {r.name for r in runs if r.name.startswith(resnets.NETWORK_CHAPTER + "/")}
    net = ch10.network_config(cfg)
    assert nets == {f"{resnets.NETWORK_CHAPTER}/{resnets.network_name(k, net)}"
                    for k in ("at", "st")}
    # the networks: chapter 9's first seed, weights kept, under the settings chapter 9's runs
    # give them (a cluster building both chapters trains each once)
    ch09_runs = {r.name: r for r in ch09.independent_runs("smoke")}
    for name in nets:
        assert by_name[name].settings == ch09_runs[name].settings
        assert by_name[name].settings["keep_weights"] is True and not by_name[name].needs
    for r in runs:
        key = r.name.split("/", 1)[1]
        needs = {n.name for n in r.needs}
        if key.startswith(("targets_", "manifolds_")):
            assert needs == nets
        elif r.name not in nets:  # a student: after every target
            assert needs == {n for n in by_name if "/targets_" in n} and needs


# -- targets ---------------------------------------------------------------------------------------

def test_student_targets_and_what_they_keep():
    g = torch.Generator().manual_seed(0)
    at = torch.randn(50, 10, generator=g) * 3
    st = torch.randn(50, 10, generator=g) * 3
    y = torch.randint(0, 10, (50,), generator=g)

    def make(spec):
        parsed = ch10.parse_spec(spec, 3)
        t = ch10.student_targets(parsed, at, y, st, torch.Generator().manual_seed(1))
        assert ch10.kept_share(parsed, t, at, y, st) == 1.0
        return t

    assert torch.equal(make("normal"), at) and torch.equal(make("kl_e8"), at)
    p3 = make("permute_k3")
    top = at.topk(3, 1).indices
    assert torch.equal(p3.gather(1, top), at.gather(1, top))
    assert torch.equal(p3.sort(1).values, at.sort(1).values)  # the values are kept
    a3 = make("average_k3")
    assert torch.allclose(a3.sum(1), at.sum(1), atol=1e-5)
    cf = make("correct_fix_1")
    wrong = at.argmax(1) != y
    assert torch.equal(cf.argmax(1), y)
    same = torch.equal(cf[~wrong], logits.fix_k_permute(at, 1, torch.Generator().manual_seed(1))
                       [~wrong])
    assert same and wrong.any()
    hy = make("hybrid")
    assert torch.equal(hy.argmax(1), st.argmax(1))
    assert torch.equal(hy.sort(1).values, at.sort(1).values)
    with pytest.raises(ValueError, match="ST network"):
        ch10.student_targets(ch10.parse_spec("hybrid", 3), at, y)
    # a broken manipulation shows in the kept share
    assert ch10.kept_share(ch10.parse_spec("hybrid", 3), at, at, y, st) < 1.0
    # a tie at the top keeps the class (argmax alone would name the first of the tied classes)
    tied = torch.tensor([[1.0, 3.0, 3.0, 0.0]])
    assert ch10.kept_share(ch10.parse_spec("normal", 3), tied, torch.tensor([[0.0, 0, 1, 0]]),
                           torch.tensor([2])) == 1.0
    assert ch10.kept_share(ch10.parse_spec("normal", 3), tied, torch.tensor([[0.0, 0, 0, 1]]),
                           torch.tensor([2])) == 0.0


def test_difference_and_share_by_hand():
    a = [{"robust": np.array([1, 1, 0, 0], bool)}]
    b = [{"robust": np.array([1, 0, 0, 0], bool)}]
    diff, margin = ch10.difference(a, b)
    assert diff == pytest.approx(0.25)
    assert margin == pytest.approx(2 * 0.5 / 2)  # per-image differences 0,1,0,0: sd 0.5, n 4
    # the common images only, and the floor of two points
    long = [{"robust": np.ones(1000, bool)}]
    diff, margin = ch10.difference(long, long)
    assert diff == 0 and margin == pytest.approx(0.02)
    run = _run()
    assert ch10.share_of_normal(run, "permute_k3") == pytest.approx(0.24 / 0.30, rel=1e-3)
    assert ch10.share_of_normal(_run({ch10.NORMAL: 0.0}), "permute_k3") is None


def test_difference_uses_the_seed_spread_when_both_sides_have_seeds():
    rng = np.random.default_rng(0)
    a = [{"robust": rng.random(400) < p} for p in (0.1, 0.5, 0.3)]
    b = [{"robust": rng.random(400) < p} for p in (0.2, 0.25, 0.22)]
    _, margin = ch10.difference(a, b)
    seeds = ch10.results.seed_margin([v["robust"].mean() for v in a],
                                     [v["robust"].mean() for v in b])
    assert margin == pytest.approx(max(seeds, margin)) and margin >= seeds


# -- Fig. 5's exemplar manifolds ------------------------------------------------------------------

def test_exemplar_geometry_measures_each_stage_of_each_image(monkeypatch):
    cfg = _cfg("smoke", manifold_points=3, manifold_steps=1, manifold_n_t=5)
    model = ResNet18(width=2, generator=torch.Generator().manual_seed(0)).eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3])
    seen, pgd = [], []
    real_analysis, real_pgd = ch10.manifolds.manifold_analysis, ch10.label_pgd

    def analysis(clouds, **kw):
        seen.append([np.asarray(c) for c in clouds])
        return real_analysis(clouds, **kw)

    def spy(model_, xs, ys, **kw):
        out = real_pgd(model_, xs, ys, **kw)
        pgd.append((xs, ys, out, kw))
        return out

    monkeypatch.setattr(ch10.manifolds, "manifold_analysis", analysis)
    monkeypatch.setattr(ch10, "label_pgd", spy)
    g = ch10.exemplar_geometry(model, x, y, cfg, progress=False)
    assert len(seen) == len(STAGE_NAMES) == len(g["capacity"])
    assert all(len(clouds) == 4 and all(c.shape[0] == 3 for c in clouds) for clouds in seen)
    assert seen[0][0].shape[1] == 2 * 32 * 32 and seen[-1][0].shape[1] == 16 * 4 * 4
    xs, ys, adv, kw = pgd[0]
    assert torch.equal(ys, y.repeat_interleave(3)) and torch.equal(xs[:3], x[:1].expand(3, -1,
                                                                                      -1, -1))
    assert kw["eps"] == pytest.approx(8 / 255) and kw["steps"] == 1
    assert float((adv - xs).abs().max()) <= 8 / 255 + 1e-6
    # each image's manifold holds its own perturbations: the stem map of image 2's points
    with torch.no_grad():
        stem = model.activations(adv[6:9])[0].flatten(1).numpy()
    assert np.allclose(seen[0][2], stem, atol=1e-5)
    assert all(np.isfinite(c).all() and len(c) == 4 for c in g["capacities"])


# -- claim rows: holds, differs, inconclusive -----------------------------------------------------

def test_normal_student_more_robust_than_st():
    q = "Normal distillation transfers"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={ch10.NORMAL: 0.0}, st=0.2) == "differs"
    assert _verdict(q, robust={ch10.NORMAL: 0.01}, st=0.0) == "inconclusive"


def test_table2_normal_above_fix1():
    q = "normal > fix-1"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={"permute_k1": 0.45}) == "differs"
    assert _verdict(q, robust={"permute_k1": 0.295}) == "inconclusive"


def test_table2_fix1_above_correct_fix1():
    q = "fix-1 > correct-fix-1"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={ch10.CORRECT_FIX_1: 0.3}) == "differs"
    assert _verdict(q, robust={ch10.CORRECT_FIX_1: 0.125}) == "inconclusive"


@pytest.mark.parametrize("spec, refuter", [(ch10.CORRECT_FIX_1, "permute_k1"),
                                           (ch10.HYBRID, ch10.NORMAL)])
def test_table2_non_robust_students_at_zero(spec, refuter):
    q = f"The {ch10.label(spec)} student has no adversarial robustness"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={spec: 0.12}) == "differs"
    # the robustness the claim denies is itself within the noise: nothing to tell apart
    assert _verdict(q, robust={refuter: 0.01}) == "inconclusive"


def test_table2_non_robust_students_more_accurate_on_clean_images():
    q = "more accurate on clean images"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, natural={ch10.HYBRID: 0.6}) == "differs"
    assert _verdict(q, natural={ch10.HYBRID: 0.755}) == "inconclusive"


@pytest.mark.parametrize("manipulation", ["permute", "average"])
def test_fig4b_robustness_grows_with_k(manipulation):
    q = f"Robustness grows with k (fix-k, {manipulation})"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={f"{manipulation}_k7": 0.0}) == "differs"
    assert _verdict(q, robust={f"{manipulation}_k7": 0.13}) == "inconclusive"


def test_fig4b_top3_share():
    q = "top-3 values"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={"permute_k3": 0.45}) == "differs"
    assert _verdict(q, robust={"permute_k3": 0.3}) == "inconclusive"
    # only a run at the paper's settings reproduces the 80 %
    paper = _cfg("paper")
    assert _verdict(q, cfg=paper) == "reproduced"
    assert _verdict(q, cfg=paper, robust={"permute_k3": 0.17}) == "direction holds"


def test_fig4b_top7_share():
    q = "top-7 values"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={"permute_k7": 0.1}) == "differs"
    assert _verdict(q, robust={"permute_k1": 0.3}) == "inconclusive"
    assert _verdict(q, cfg=_cfg("paper")) == "reproduced"


def test_teacher_wrong_on_training_images():
    q = "wrong on a sizable share"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, wrong_at=0.02, wrong_st=0.2) == "differs"
    assert _verdict(q, wrong_at=0.05) == "inconclusive"
    assert _verdict(q, cfg=_cfg("paper"), wrong_at=0.196) == "reproduced"
    assert _verdict(q, cfg=_cfg("paper"), wrong_at=0.30) == "direction holds"


def test_fig_a6_late_teacher_distils_less():
    q = "late teacher distils less"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={"teacher_e10": 0.5}) == "differs"
    assert _verdict(q, robust={"teacher_e10": 0.3}) == "inconclusive"


def test_fig_a7_l1_above_kl():
    q = "L1 logit distillation"
    assert _verdict(q) == "direction holds"
    assert _verdict(q, robust={"kl_e2": 0.5}) == "differs"
    # one epoch tied, the others holding: not every epoch beyond its margin
    assert _verdict(q, robust={"kl_e1": 0.25}) == "inconclusive"


def test_fig5_capacity_and_radius():
    q_cap, q_rad = "have lower capacity", "have a larger radius"
    assert _verdict(q_cap) == "direction holds" and _verdict(q_rad) == "direction holds"
    flipped = {ch10.NORMAL: _geometry(1.0, 2.0), ch10.CORRECT_FIX_1: _geometry(2.0, 1.0),
               ch10.HYBRID: _geometry(2.0, 1.0, seed=3)}
    assert _verdict(q_cap, geometry=flipped) == "differs"
    assert _verdict(q_rad, geometry=flipped) == "differs"
    tied = {k: _geometry(1.0, 1.0, seed=i) for i, k in enumerate(
        (ch10.NORMAL, ch10.CORRECT_FIX_1, ch10.HYBRID))}
    assert _verdict(q_cap, geometry=tied) == "inconclusive"


def test_sanity_row_and_scale_in_every_note():
    rows = ch10.claim_rows(_run(), _cfg())
    assert _row(rows, "keeps the class").verdict == "sanity check passes"
    assert all("cpu profile" in r.note for r in rows if ch10.results.is_test(r))
    bad = ch10.claim_rows(_run(kept=0.9), _cfg())
    assert _row(bad, "keeps the class").verdict == "sanity check fails"


def test_rows_of_students_not_distilled_are_left_out():
    run = _run()
    for spec in ("teacher_e10", "kl_e1", "kl_e2", "kl_e10", "permute_k7", "average_k1",
                 "average_k7"):
        del run["students"][spec]
    quantities = " ".join(r.quantity for r in ch10.claim_rows(run, _cfg("smoke")))
    for gone in ("late teacher", "L1 logit", "top-7", "average"):
        assert gone not in quantities


def test_tables_and_figures_draw_on_a_planted_run():
    import matplotlib.pyplot as plt
    run = _run(seeds=2)
    assert "30.0 ± 0.0 %" in ch10.table2_markdown(run)
    assert "fix-3 (perm)" in ch10.students_markdown(run)
    for fig in (ch10.plot_fix_k(run), ch10.plot_teacher_epochs(run), ch10.plot_losses(run),
                ch10.plot_manifolds(run)):
        assert fig is not None and fig.axes[0].get_xlabel()
        plt.close(fig)
    del run["students"]["kl_e1"], run["students"]["kl_e2"], run["students"]["kl_e10"]
    assert ch10.plot_losses(run) is None
