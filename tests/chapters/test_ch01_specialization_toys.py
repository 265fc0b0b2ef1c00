"""Tests of ``tsrobust.chapters.ch01_specialization_toys``: settings, experiments, figures and
every claim row, planted both ways."""

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from tsrobust import results
from tsrobust import theory as T
from tsrobust.chapters import ch01_specialization_toys as ch
from tsrobust.params import PROFILES, resolve

HOLDS, DIFFERS = "direction holds", "differs"
INCONCLUSIVE = results.INCONCLUSIVE

# ---------------------------------------------------------------- settings and experiments


def test_settings_resolve_in_every_profile():
    for profile in PROFILES:
        cfg = resolve(ch.SETTINGS, profile=profile, seed=0)
        assert cfg.grad_norm_w != cfg.grad_norm_w_star  # the check can tell the norm factor
    with pytest.raises(ValueError, match="steps"):
        resolve(ch.SETTINGS, profile="smoke", seed=0, steps=0)


def test_two_d_toy_runs_small_and_keeps_threads():
    threads = torch.get_num_threads()
    values, arrays = ch.two_d_toy(teacher_width=2, student_width=4, outputs=1, n_train=100,
                                  steps=20, lr=0.1, records=4, seed=0, progress=False)
    assert arrays["student_w"].shape == (5, 4, 2) and arrays["steps"].tolist() == [0, 5, 10, 15, 20]
    assert torch.get_num_threads() == threads
    assert arrays["alignment_error"].shape == (2,)
    assert values["max_alignment_error"] == pytest.approx(arrays["alignment_error"].max())


def test_gradient_experiment_and_its_claim():
    values, arrays = ch.gradient_experiment(d=3, angles_deg=(60.0, 120.0),
                                            sample_sizes=[500, 5_000, 50_000], repeats=6,
                                            seed=0, progress=False)
    assert values["thetas"] == pytest.approx([math.pi / 3, 2 * math.pi / 3])
    assert arrays["rms_error"].shape == (2, 3)
    # the same run as theory.gradient_check on the chapter's stream
    same, _ = T.gradient_check(3, [math.pi / 3, 2 * math.pi / 3], [500, 5_000, 50_000], 6,
                               T.make_generator(0, ch.STREAM_GRADIENT), progress=False)
    assert same["loglog_slope"] == values["loglog_slope"]
    # (moved from the core test of gradient_check)
    values, _ = T.gradient_check(3, [math.pi / 3, 2 * math.pi / 3], [500, 5_000, 50_000], 6,
                                 T.make_generator(2, 2), progress=False)
    row = ch.gradient_claim(values)
    assert row.verdict == HOLDS and f"{ch.SLOPE_TOL}" in row.note
    # the chapter's run is at unequal norms, where a factor 1 would be seen
    values, arrays = ch.gradient_experiment(d=3, angles_deg=(60.0, 120.0),
                                            sample_sizes=[500, 50_000], repeats=4, seed=0,
                                            norm_w=1.5, norm_w_star=0.6, progress=False)
    assert arrays["norm_factor_shift_z"].min() > 5.0
    assert "‖w‖ = 1.5, ‖w*‖ = 0.6" in ch.gradient_claim(values).note
    assert "replaced by 1 would move it by at least" in ch.gradient_summary(
        values, arrays, (60.0, 120.0))


def test_no_unspecialized_node_end_to_end(tmp_path, monkeypatch):
    # a student as wide as its teacher copies every teacher node: no unspecialized node, so the
    # unspecialized means are missing; they survive recording and loading, are shown as a
    # dash, and the L-shape claim is inconclusive: there is nothing to test
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    cfg = resolve(ch.SETTINGS, profile="smoke", seed=0)
    run = lambda: ch.l_shape_experiment(  # noqa: E731
        d=3, teacher_width=2, student_width=2, outputs=2, n_train=200, n_eval=400, steps=300,
        lr=0.1, seed=0, progress=False)
    for res in (results.record("01_x", "l_shape", cfg, run),
                results.record("01_x", "l_shape", cfg, run)):  # computed, then loaded
        v = res.values
        assert v["n_unspecialized"] == 0 and v["n_specialized"] >= 1
        assert v["mean_fan_out_unspecialized"] is None
        assert f"with **{results.MISSING}**" in T.fan_out_sentence(v)
        row = ch.l_shape_claim(v)
        assert row.verdict == INCONCLUSIVE and row.ours is None
        assert "no unspecialized node" in row.note and "nothing to test" in row.note
    assert res.loaded
    # records that stored the missing mean as the string "nan" read the same way
    old = dict(v, mean_fan_out_unspecialized="nan")
    assert ch.l_shape_claim(old).verdict == INCONCLUSIVE


# ---------------------------------------------------------------- figures and summaries


def _toy_arrays():
    return ch.two_d_toy(teacher_width=2, student_width=3, outputs=1, n_train=60, steps=10,
                        lr=0.1, records=2, seed=1, progress=False)[1]


def test_figures_draw_from_recorded_arrays():
    toy = _toy_arrays()
    fig = ch.plot_before_after(toy, lim=3.0, after_title="after", suptitle="toy")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "before training"
    plt.close(fig)
    slider = ch.training_slider_figure(toy, lim=3.0, title="toy")
    assert len(slider.layout.sliders[0].steps) == len(toy["steps"])
    values, arrays = ch.gradient_experiment(d=2, angles_deg=(90.0,), sample_sizes=(100, 1000),
                                            repeats=2, seed=0, progress=False)
    plt.close(ch.plot_gradient_check(values, arrays, (90.0,)))
    assert "sampling noise alone gives −0.5" in ch.gradient_summary(values, arrays, (90.0,))
    weak = {"best_nc": np.array([[0.5, 0.4], [0.995, 0.7]]), "steps": np.array([0, 10]),
            "teacher_fan_out": np.array([1.0, 0.5]), "steps_to_align": np.array([10, -1])}
    plt.close(ch.plot_weak_teacher(weak, decay=1.0))


def test_toy_widget_retrains_with_its_sliders(monkeypatch):
    drawn = []

    def fake_plot(arrays, **kw):
        drawn.append((arrays["student_w"].shape, kw))
        fig = plt.figure(figsize=(1, 1))
        fig.suptitle(str(len(drawn)))  # a different image per draw
        return fig

    monkeypatch.setattr(ch, "plot_before_after", fake_plot)
    cfg = resolve(ch.SETTINGS, profile="smoke", seed=0, n_train=50, widget_steps=5)
    widget = ch.toy_widget(cfg, lim=3.0)
    controls, image = widget.children
    sliders = {c.description: c for c in controls.children}
    assert sliders["student width"].value == cfg.toy_student_width
    first = bytes(image.value)
    assert first.startswith(b"\x89PNG") and len(drawn) == 1  # drawn once when the cell runs
    sliders["student width"].value = 3  # reruns the toy with a narrower student
    assert drawn[-1][0] == (2, 3, 2)  # two records (before, after) of three 2-D nodes
    assert drawn[-1][1]["suptitle"].startswith("student width 3, seed 0: final loss")
    assert drawn[-1][1]["after_title"] == "after 5 steps"
    assert bytes(image.value) != first  # the new figure replaced the image


def test_l_shape_summary_counts_nodes_off_the_l_and_their_twins():
    arrays = {"node_class": np.array([0, 0, 0, 1]),
              "best_corr": np.array([0.99, 0.5, 0.6, 0.1]),
              "fan_out_norm": np.array([1.0, 0.5, 0.01, 2.0]),
              "partner_corr": np.array([0.2, 0.999, 0.3, 0.0])}
    values = {"final_loss": 1e-3, "mbnc": 0.99, "n_dead": 1, "n_always_on": 0,
              **T.fan_out_by_specialization(arrays["best_corr"], arrays["fan_out_norm"],
                                            arrays["node_class"])}
    text = ch.l_shape_summary(values, arrays)
    # node 1 is unspecialized with a visible fan-out (0.5 > 0.1 × 2.0) and has a twin
    assert "fan-out above 10% of the largest: 1, of which 1 have a twin" in text
    plt.close(ch.plot_l_shape(arrays, d=3, teacher_width=2, student_width=4))


# ---------------------------------------------------------------- claim rows, planted both ways

GRADIENT_OK = {"loglog_slope": -0.5, "z_max": 3.0, "z_median_max": 3.1, "n_z": 800}


@pytest.mark.parametrize("planted, verdict", [
    (GRADIENT_OK, HOLDS),
    ({**GRADIENT_OK, "loglog_slope": -0.35}, DIFFERS),  # error stops shrinking as 1/√N
    ({**GRADIENT_OK, "z_max": 9.0}, DIFFERS),  # an estimate far outside its error bars
    ({**GRADIENT_OK, "loglog_slope": "nan"}, DIFFERS),  # no slope (a single N)
])
def test_gradient_claim(planted, verdict):
    assert ch.gradient_claim(planted).verdict == verdict


@pytest.mark.parametrize("error, verdict", [(0.001, HOLDS), (0.05, DIFFERS), (0.4, DIFFERS)])
def test_toy_claim(error, verdict):
    row = ch.toy_claim({"max_alignment_error": error})
    assert row.verdict == verdict and row.ours == error and f"{ch.ALIGNED_EPS}" in row.note


def test_l_shape_claim_follows_footnote_4():
    corr = [0.99, 0.95, 0.85, 0.5, 0.2, 0.99]
    fan = [1.0, 0.6, 0.4, 0.02, 0.04, 3.0]
    node_class = [0, 0, 0, 0, 0, 1]  # the last node is dead: not counted
    split = T.fan_out_by_specialization(corr, fan, node_class)
    row = ch.l_shape_claim(split)
    assert row.verdict == HOLDS and row.ours == pytest.approx(0.0375)
    assert "0.8" in row.note and f"{ch.L_SHAPE_MAX_RATIO}" in row.note
    split["mean_fan_out_unspecialized"] = 0.5  # larger than 0.2 × 0.8
    assert ch.l_shape_claim(split).verdict == DIFFERS
    none_specialized = T.fan_out_by_specialization([0.5], [1.0], [0])
    assert ch.l_shape_claim(none_specialized).verdict == DIFFERS


def test_weak_teacher_claim_margin_and_undefined_correlation():
    m = results.spearman_margin(8)
    assert m == pytest.approx(1.645 / math.sqrt(7))
    assert ch.weak_teacher_claim({"spearman_strength_vs_steps": -0.9}, 8).verdict == HOLDS
    assert ch.weak_teacher_claim({"spearman_strength_vs_steps": -m}, 8).verdict == DIFFERS
    assert ch.weak_teacher_claim({"spearman_strength_vs_steps": 0.5}, 8).verdict == DIFFERS
    for undefined in (None, "nan", float("nan")):
        row = ch.weak_teacher_claim({"spearman_strength_vs_steps": undefined}, 8)
        assert row.verdict == DIFFERS and "undefined" in row.note and row.ours is None


def test_toy_alignment_summary_reads_the_definition():
    values = {"initial_loss": 0.7, "final_loss": 1e-7, "max_alignment_error": 0.03}
    arrays = {"alignment_error": np.array([0.01, 0.03]), "alignment_sine": np.array([0.01, 0.002]),
              "alignment_bias_gap": np.array([0.004, 0.03]), "best_nc": np.array([1.0, 0.999])}
    text = ch.toy_alignment_summary(values, arrays)
    assert "0.03 (sin θ̃ 0.002, |b − b*| 0.03)" in text and "largest **0.03**" in text


def test_augmentation_experiment_runs_small_and_draws():
    values, arrays = ch.augmentation_experiment(
        d=3, teacher_width=2, student_width=4, outputs=2, sizes=(10, 20), repeats=2, delta=0.1,
        steps=20, lr=0.1, n_eval=300, seed=0, progress=False)
    assert arrays["error"].shape == (2, 2, 3, 2) and arrays["g1_sup"].shape == (2, 2, 3)
    assert arrays["n_inputs"].tolist() == [[10, 70, 50], [20, 140, 100]]  # (2d+1)|D|, (2K*+1)|D|
    assert set(values["mean_error"]) == set(ch.LESSON2)
    # the teacher-aware guarantee drops the √d of the agnostic one
    assert np.all(arrays["slide"][:, :, 2] > 0)
    assert "Mean ε-alignment error" in ch.augmentation_summary(values, arrays)
    plt.close(ch.plot_augmentation_experiment(arrays, d=3))


def _lesson2(agnostic, aware, slide=30.0):
    """Planted ``augmentation_experiment`` arrays: per (size, seed) the agnostic and aware mean
    errors; the plain-D error is 1.5 × agnostic."""
    agnostic, aware = np.asarray(agnostic, float), np.asarray(aware, float)
    error = np.stack([1.5 * agnostic, agnostic, aware], axis=2)[..., None].repeat(2, axis=3)
    arrays = {"error": error, "slide": np.full(error.shape, slide)}
    values = {"sizes": [20, 40], "mean_error": {name: error[:, :, k].mean(axis=(1, 2)).tolist()
                                                for k, name in enumerate(ch.LESSON2)}}
    return SimpleNamespace(values=values, arrays=arrays)


AUG_OK = _lesson2([[0.4, 0.5, 0.45], [0.1, 0.12, 0.11]], [[0.3, 0.36, 0.33], [0.07, 0.09, 0.08]])


def test_lesson2_claim():
    row = ch.lesson2_claim(AUG_OK.values, AUG_OK.arrays)
    assert row.verdict == HOLDS and "3 per-seed values" in row.note
    same = _lesson2(AUG_OK.arrays["error"][:, :, 1, 0], AUG_OK.arrays["error"][:, :, 1, 0])
    assert ch.lesson2_claim(same.values, same.arrays).verdict == DIFFERS
    reverse = _lesson2(AUG_OK.arrays["error"][:, :, 2, 0], AUG_OK.arrays["error"][:, :, 1, 0])
    assert ch.lesson2_claim(reverse.values, reverse.arrays).verdict == DIFFERS
    # better on average, but only because of one seed: inside the t margin
    one_seed = _lesson2([[0.4, 0.5, 0.45], [0.1, 0.12, 0.11]],
                        [[0.05, 0.5, 0.45], [0.01, 0.12, 0.11]])
    assert ch.lesson2_claim(one_seed.values, one_seed.arrays).verdict == DIFFERS


def test_slide_bound_claim():
    assert ch.slide_bound_claim(AUG_OK.arrays).verdict == INCONCLUSIVE  # guarantees of 30
    tight = _lesson2(AUG_OK.arrays["error"][:, :, 1, 0], AUG_OK.arrays["error"][:, :, 2, 0],
                     slide=0.9)
    row = ch.slide_bound_claim(tight.arrays)
    assert row.verdict == HOLDS and row.ours == "24 of 24 informative, 0 broken"
    broken = _lesson2(AUG_OK.arrays["error"][:, :, 1, 0], AUG_OK.arrays["error"][:, :, 2, 0],
                      slide=0.2)
    assert ch.slide_bound_claim(broken.arrays).verdict == DIFFERS


L_SHAPE_OK = {"mean_fan_out_specialized": 0.8, "mean_fan_out_unspecialized": 0.03}
WEAK_OK = {"spearman_strength_vs_steps": -0.9}
TOY_OK = {"max_alignment_error": 0.001}


def test_claim_rows_hold_on_planted_good_runs_and_fail_on_bad_ones():
    good_aug = _lesson2(AUG_OK.arrays["error"][:, :, 1, 0], AUG_OK.arrays["error"][:, :, 2, 0],
                        slide=0.9)
    rows = ch.claim_rows(GRADIENT_OK, TOY_OK, L_SHAPE_OK, WEAK_OK, good_aug, n_weak_teacher=8)
    assert [r.verdict for r in rows] == [HOLDS] * 6
    assert [r.quantity for r in rows] == [
        "Monte-Carlo error slope in N", "2-D toy: largest ε-alignment error over teacher nodes",
        "L-shape: mean fan-out, unspecialized / specialized",
        "weak teacher: Spearman(strength, steps)",
        "ε-alignment error, teacher-agnostic / teacher-aware Aug(D)",
        "talk's ε-alignment from ‖g₁‖∞ on Aug(D)"]
    assert all(results.is_test(r) for r in rows)  # every row is a test
    assert results.claim_summary(rows) == "Of the 6 tests in this run, 6 hold."
    bad_aug = _lesson2(AUG_OK.arrays["error"][:, :, 2, 0], AUG_OK.arrays["error"][:, :, 1, 0],
                       slide=0.2)
    bad = ch.claim_rows({**GRADIENT_OK, "z_max": 9.0}, {"max_alignment_error": 0.5},
                        {**L_SHAPE_OK, "mean_fan_out_unspecialized": 0.5},
                        {"spearman_strength_vs_steps": 0.1}, bad_aug, n_weak_teacher=8)
    assert [r.verdict for r in bad] == [DIFFERS] * 6
    # no unspecialized node and a vacuous guarantee: inconclusive, and not counted as holding
    open_rows = ch.claim_rows(GRADIENT_OK, TOY_OK, {**L_SHAPE_OK,
                                                    "mean_fan_out_unspecialized": None},
                              WEAK_OK, AUG_OK, n_weak_teacher=8)
    assert [r.verdict for r in open_rows][2::3] == [INCONCLUSIVE, INCONCLUSIVE]
    assert results.claim_summary(open_rows).startswith("Of the 6 tests in this run, 4 hold; 2 are")
    # the weak-teacher margin depends on how many teacher nodes are ranked
    assert ch.claim_rows(GRADIENT_OK, TOY_OK, L_SHAPE_OK,
                         {"spearman_strength_vs_steps": -0.7}, good_aug,
                         n_weak_teacher=4)[3].verdict == DIFFERS
