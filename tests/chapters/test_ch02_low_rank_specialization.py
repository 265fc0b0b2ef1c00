"""Tests of ``tsrobust.chapters.ch02_low_rank_specialization``: settings, experiments, figures
and every claim row, planted both ways (and inconclusive where a row can be)."""

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tsrobust import results
from tsrobust.chapters import ch02_low_rank_specialization as ch
from tsrobust.params import PROFILES, resolve

HOLDS, DIFFERS = "direction holds", "differs"
PASSED, FAILED = results.SANITY_PASSES, results.SANITY_FAILS

# ---------------------------------------------------------------- settings and experiments


def test_settings_resolve_in_every_profile():
    for profile in PROFILES:
        cfg = resolve(ch.SETTINGS, profile=profile, seed=0)
        ch.check_settings(cfg)
        assert all(s < cfg.d for s in cfg.sweep_d_subs) and cfg.d_sub < cfg.d
        assert cfg.near_std in cfg.s_values and cfg.s_values[0] == 0.0
    cpu = resolve(ch.SETTINGS, profile="cpu", seed=0)
    paper = resolve(ch.SETTINGS, profile="paper", seed=0)
    # the cpu profile keeps the paper's networks but trains the sweeps for fewer steps and seeds
    assert cpu.d == paper.d and cpu.student_width == paper.student_width
    assert cpu.sweep_steps < paper.sweep_steps and cpu.aug_steps < paper.aug_steps


def test_cross_checks():
    ok = resolve(ch.SETTINGS, profile="smoke", seed=0)
    ch.check_settings(ok)
    with pytest.raises(ValueError, match="d_sub"):
        ch.check_settings(resolve(ch.SETTINGS, profile="smoke", seed=0, d=4, d_sub=4,
                                  sweep_d_subs=[2]))
    with pytest.raises(ValueError, match="sweep_d_subs"):
        ch.check_settings(resolve(ch.SETTINGS, profile="smoke", seed=0, sweep_d_subs=[2, 12]))
    with pytest.raises(ValueError, match="n_attack"):
        ch.check_settings(resolve(ch.SETTINGS, profile="smoke", seed=0, n_attack=5000))
    for bad in ([0.05, 0.1, 0.2], [0.0, 0.05], [0.0, 0.1, 0.05]):
        with pytest.raises(ValueError, match="s_values"):
            ch.check_settings(resolve(ch.SETTINGS, profile="smoke", seed=0, s_values=bad))
    with pytest.raises(ValueError, match="near_std"):
        ch.check_settings(resolve(ch.SETTINGS, profile="smoke", seed=0, near_std=0.07))
    with pytest.raises(ValueError, match="sweep_repeats"):
        resolve(ch.SETTINGS, profile="smoke", seed=0, sweep_repeats=1)  # no spread to judge by


COMMON = dict(d=6, teacher_width=2, student_width=4, outputs=2, n_train=100, n_eval=200,
              lr=0.1, seed=0, progress=False)


def test_experiments_run_small():
    values, arrays = ch.low_rank_experiment(d_sub=2, steps=30, off_subspace_std=0.0,
                                            attack_eps=0.3, attack_steps=3, n_attack=20,
                                            **COMMON)
    assert values["max_out_of_plane_change"] < 1e-12
    assert arrays["teacher_eps_out"].shape == (2,)
    assert arrays["teacher_thm2_bound_in"].shape == (2,)
    assert arrays["student_cor1_bound"].shape == (4,) and values["g1_sup"] > 0
    assert set(ch.PROBE_LOSSES) <= set(values)
    values, arrays = ch.augmentation_comparison(
        d_sub=2, steps=10, off_subspace_std=0.05, noise_std=0.3, attack_eps=0.3, attack_steps=2,
        adversarial_every=5, n_attack=10, repeats=2, **COMMON)
    assert set(values) == set(ch.AUGMENTATIONS)
    assert arrays["none_eps_out"].shape == (2, 2)  # seeds × teacher nodes
    assert arrays["data_adversarial_label_seed_loss_clean"].shape == (2,)
    with pytest.raises(ValueError, match="unknown augmentation"):
        ch.augmentation_comparison(
            d_sub=2, steps=1, off_subspace_std=0.0, noise_std=0.3, attack_eps=0.3,
            attack_steps=1, adversarial_every=1, n_attack=10, repeats=2, kinds=("mixup",),
            **COMMON)
    with pytest.raises(ValueError, match="d′"):
        ch.subspace_sweep(d_subs=(2, 6), repeats=1, steps=5, off_subspace_std=0.0, **COMMON)


def test_s_sweep_shares_the_set_up_across_s_and_keeps_its_shapes():
    values, arrays = ch.off_subspace_sweep(d_sub=2, s_values=(0.0, 0.05, 0.2), repeats=2,
                                           steps=20, records=4, **COMMON)
    assert arrays["sin_in_min"].shape == (3, 2, 2) and arrays["cor1_bound"].shape == (3, 2, 4)
    assert arrays["ckpt_g1_sup"].shape == (3, 2, 5) and arrays["g1_sup"].shape == (3, 2)
    assert arrays["unspecialized"].dtype == bool
    assert values["s_values"] == [0.0, 0.05, 0.2] and len(values["mean_sin_out_best"]) == 3
    # same seed, different s: same teacher, subspace and initialisation, so before training
    # (checkpoint 0) the in-plane angles are identical
    assert np.allclose(arrays["ckpt_sin_in"][0, :, 0], arrays["ckpt_sin_in"][2, :, 0])


# ---------------------------------------------------------------- figures and summaries


def _run(s, steps=20):
    values, arrays = ch.low_rank_experiment(d_sub=2, steps=steps, off_subspace_std=s,
                                            attack_eps=0.3, attack_steps=2, n_attack=20, **COMMON)
    return SimpleNamespace(values=values, arrays=arrays)


def test_figures_and_summaries_draw_from_recorded_results():
    exact, near = _run(0.0), _run(0.05)
    runs = dict(zip(ch.run_names(0.05), (exact, near)))
    for fig in (ch.plot_projected_angles(runs, d=6, d_sub=2), ch.plot_fan_out(runs),
                ch.plot_eps(runs), ch.plot_probe(runs, near.arrays, d=6, d_sub=2,
                                                 attack_eps=0.3, name="near")):
        assert len(fig.axes) >= 2
        plt.close(fig)
    text = ch.angle_summary(exact.values, near.values)
    assert "(below the rounding level 1e-09)" in text
    assert "above the rounding level" in ch.angle_summary(
        dict(exact.values, max_out_of_plane_change=1e-3), near.values)
    assert "specialized (NC > 0.9)" in ch.fan_out_summary(exact.arrays)
    assert "adds a fraction" in ch.probe_summary(exact.values, near.values)
    values, arrays = ch.subspace_sweep(d_subs=(2, 4), repeats=2, steps=5,
                                       off_subspace_std=0.05, **COMMON)
    plt.close(ch.plot_sweep({"a": arrays, "b": arrays}, d=6))
    assert ch.sweep_summary(values).startswith("s = 0.05, mean ε_out per d′")
    s_values, s_arrays = ch.off_subspace_sweep(d_sub=2, s_values=(0.0, 0.05, 0.2), repeats=2,
                                               steps=20, records=4, **COMMON)
    for fig in (ch.plot_s_sweep(s_arrays, d=6, d_sub=2), ch.plot_scaling(s_arrays),
                ch.plot_bounds(s_arrays)):
        assert all(ax.get_title() for ax in fig.axes)
        plt.close(fig)
    assert "s = 0.05" in ch.s_sweep_summary(s_values)
    table = ch.bounds_table(s_arrays).text
    assert table.count("\n") == 1 + len(ch.BOUND_NAMES) and "Corollary 1" in table


def test_fan_out_summary_gives_the_corollary_bound():
    arrays = {"student_best_corr": np.array([0.99, 0.5, 0.3]),
              "student_fan_out_norm": np.array([1.0, 0.1, 0.2]),
              "student_node_class": np.array([0, 0, 0]),
              "student_cor1_bound": np.array([50.0, 12.0, np.inf])}
    assert "bound on their ‖v‖∞ is at least **12** (1 of 2 finite)" in ch.fan_out_summary(arrays)


def test_s_slider_has_one_position_per_s():
    arrays = _planted_sweep()
    fig = ch.s_slider_figure(arrays)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "0.05", "0.1", "0.2"]
    assert fig.layout.yaxis.type == "log"
    # the reference line stays; one frame (4 traces) is shown at a time
    assert sum(steps[1].args[0]["visible"]) == 1 + 4


def test_in_plane_share():
    v = {"loss_clean": 1.0, "loss_in_plane": 2.0, "loss_adversarial": 5.0}
    assert ch.in_plane_share(v) == pytest.approx(0.25)
    assert ch.in_plane_share(dict(v, loss_adversarial=1.0)) is None  # the attack adds nothing


def test_augmentation_table_has_a_row_per_variant():
    values = {k: {"mean_eps_in": 0.1, "mean_eps_out": 0.5, "mean_angle_out_deg": 45.0,
                  "loss_clean": 1e-3, "loss_adversarial": 0.2} for k in ch.AUGMENTATIONS}
    table = ch.augmentation_table(values)
    assert table.count("\n") == 1 + len(ch.AUGMENTATIONS)
    assert "| oracle_adversarial | 0.100 | 0.500 | 45.0 | 0.001 | 0.2 |" in table
    arrays = {f"{k}_seed_{key}": np.array([0.2, 0.4]) for k in ch.AUGMENTATIONS
              for key in ("mean_eps_out", "loss_clean", "loss_adversarial")}
    plt.close(ch.plot_augmentation(values, arrays, attack_eps=0.5))


# ---------------------------------------------------------------- planted runs

S = np.array([0.0, 0.05, 0.1, 0.2])
REPEATS, K_T, K_S = 3, 4, 6


def _planted_sweep(**change):
    """An ``off_subspace_sweep`` whose measurements follow Theorem 2: small inside, 1/s across,
    angles that grow with ε along training and fall with α, bounds that hold."""
    rng = np.random.default_rng(0)
    shape = (len(S), REPEATS, K_T)
    alpha = np.broadcast_to(np.array([0.4, 0.6, 0.8, 1.0]), shape).copy()
    across = np.clip(0.01 / np.maximum(S, 1e-9), None, 0.9)[:, None, None] * np.ones(shape)
    across *= 1 + 0.05 * rng.standard_normal(shape)
    inside = 0.01 / alpha * (1 + 0.02 * rng.standard_normal(shape))
    ckpt_eps = np.broadcast_to(np.geomspace(1.0, 0.01, 6), (len(S), REPEATS, 6)).copy()
    a = {"s_values": S, "alpha": alpha, "sin_in_min": inside, "sin_in_best": inside.copy(),
         "sin_out_min": across, "sin_out_best": across.copy(),
         "bound_in": 20 * inside, "bound_out": np.full(shape, np.inf),
         "align_in_min": inside.copy(), "slide_in": np.full(shape, 30.0),
         "r_in": np.ones(shape), "r_out": S[:, None, None] * np.ones(shape),
         "eps_in": 0.1 * inside, "eps_out": across.copy(),
         "cor1_bound": np.full((len(S), REPEATS, K_S), 50.0),
         "fan_out_inf": np.tile(np.array([1.0, 0.8, 0.5, 0.02, 0.03, 0.01]), (len(S), REPEATS, 1)),
         "unspecialized": np.tile(np.array([0, 0, 0, 1, 1, 1], bool), (len(S), REPEATS, 1)),
         "g1_sup": np.full((len(S), REPEATS), 0.05), "final_loss": np.full((len(S), REPEATS), 1e-4),
         "mbnc": np.ones((len(S), REPEATS)),
         "ckpt_g1_sup": ckpt_eps, "ckpt_sin_in": 0.1 * ckpt_eps}
    a.update(change)
    return a


def _sweep_values(arrays):
    return {"s_values": S.tolist(), "repeats": REPEATS,
            "mean_sin_in_best": np.nanmean(arrays["sin_in_best"], axis=(1, 2)).tolist(),
            "mean_sin_out_best": np.nanmean(arrays["sin_out_best"], axis=(1, 2)).tolist()}


def test_near_angle_claim():
    good = _planted_sweep()
    row = ch.near_angle_claim(_sweep_values(good), good, 0.05)
    assert row.verdict == HOLDS and "3 per-seed values" in row.note and "t = 2.92" in row.note
    # across no larger than inside: the student learned across 𝒳 as well as inside
    flat = _planted_sweep(sin_out_best=good["sin_in_best"] + 0.001)
    assert ch.near_angle_claim(_sweep_values(flat), flat, 0.05).verdict == DIFFERS
    # a large mean difference carried by one seed only does not clear the t margin
    noisy_out = good["sin_in_best"].copy()
    noisy_out[1, 0] += 2.0
    noisy = _planted_sweep(sin_out_best=noisy_out)
    assert ch.near_angle_claim(_sweep_values(noisy), noisy, 0.05).verdict == DIFFERS


def test_r_scaling_claim():
    good = _planted_sweep()
    row = ch.r_scaling_claim(good)
    assert row.verdict == HOLDS and row.ours == pytest.approx(-1.0, abs=0.1)
    flat = _planted_sweep(sin_out_min=np.full(good["sin_out_min"].shape, 0.5))
    assert ch.r_scaling_claim(flat).verdict == DIFFERS
    rising = _planted_sweep(sin_out_min=good["sin_out_min"][::-1].copy())
    assert ch.r_scaling_claim(rising).verdict == DIFFERS


def test_eps_scaling_claim():
    good = _planted_sweep()
    row = ch.eps_scaling_claim(good)
    assert row.verdict == HOLDS and row.ours == pytest.approx(1.0)
    stalled = _planted_sweep(ckpt_sin_in=np.full(good["ckpt_sin_in"].shape, 0.02))
    assert ch.eps_scaling_claim(stalled).verdict == DIFFERS
    inverse = _planted_sweep(ckpt_sin_in=0.001 / good["ckpt_g1_sup"])
    assert ch.eps_scaling_claim(inverse).verdict == DIFFERS


def test_alpha_scaling_claim():
    good = _planted_sweep()
    row = ch.alpha_scaling_claim(good)
    assert row.verdict == HOLDS and row.ours == pytest.approx(-1.0)
    reverse = _planted_sweep(sin_in_min=0.01 * good["alpha"])
    assert ch.alpha_scaling_claim(reverse).verdict == DIFFERS
    unobserved = _planted_sweep(alpha=np.full(good["alpha"].shape, np.nan))
    assert ch.alpha_scaling_claim(unobserved).verdict == DIFFERS


def test_bound_claims_hold_break_or_say_nothing():
    good = _planted_sweep()
    row = ch.theorem2_bound_claim(good)
    n = len(S) * REPEATS * K_T
    assert row.verdict == HOLDS and row.ours == f"{n} of {2 * n} informative, 0 broken"
    broken_in = good["bound_in"].copy()
    broken_in[2, 1, 0] = 0.5 * good["sin_in_min"][2, 1, 0]
    assert ch.theorem2_bound_claim(_planted_sweep(bound_in=broken_in)).verdict == DIFFERS
    vacuous = _planted_sweep(bound_in=np.full(good["bound_in"].shape, 3.0))
    assert ch.theorem2_bound_claim(vacuous).verdict == results.INCONCLUSIVE
    # Corollary 1: vacuous above the run's largest fan-out, informative (and held) below
    assert ch.corollary1_bound_claim(good).verdict == results.INCONCLUSIVE
    tight = _planted_sweep(cor1_bound=np.full(good["cor1_bound"].shape, 0.05))
    assert ch.corollary1_bound_claim(tight).verdict == HOLDS
    small = _planted_sweep(cor1_bound=np.full(good["cor1_bound"].shape, 0.015))
    assert ch.corollary1_bound_claim(small).verdict == DIFFERS  # 0.02 and 0.03 exceed it
    # the talk's condition: vacuous at 30, holds at 0.5, broken below the measured error
    assert ch.slide_bound_claim(good).verdict == results.INCONCLUSIVE
    assert ch.slide_bound_claim(_planted_sweep(slide_in=np.full(good["slide_in"].shape, 0.5))
                                ).verdict == HOLDS
    assert ch.slide_bound_claim(_planted_sweep(slide_in=0.5 * good["align_in_min"])
                                ).verdict == DIFFERS


SWEEP_NEAR = {"d_subs": [2, 5, 8, 11], "off_subspace_std": 0.05,
              "mean_eps_out": [1.1, 0.9, 0.6, 0.3]}
SWEEP_ARRAYS = {"eps_out": np.array([[1.0, 1.1, 1.2], [0.9] * 3, [0.6] * 3, [0.3, 0.25, 0.35]])}


def test_sweep_claim_and_check():
    row = ch.sweep_claim(SWEEP_NEAR, SWEEP_ARRAYS)
    assert row.verdict == HOLDS and "d′ = 2 vs 11" in row.note and "s = 0.05" in row.quantity
    flat = {"eps_out": SWEEP_ARRAYS["eps_out"][::-1]}
    assert ch.sweep_claim(SWEEP_NEAR, flat).verdict == DIFFERS
    tie = {"eps_out": np.array([[0.305, 0.3, 0.31]] + [[0.3] * 3] * 3)}
    assert ch.sweep_claim(SWEEP_NEAR, tie).verdict == DIFFERS  # inside the 0.01 floor
    exact = dict(SWEEP_NEAR, off_subspace_std=0.0)
    assert ch.sweep_check(exact, SWEEP_ARRAYS).verdict == PASSED
    assert ch.sweep_check(exact, flat).verdict == FAILED


NEAR_OK = {"off_fraction_adversarial": 0.95, "off_fraction_random": 0.8}
OFF_ADV, OFF_RAND = np.array([0.94, 0.95, 0.96, 0.95]), np.array([0.78, 0.8, 0.82, 0.8])


def test_off_subspace_claim():
    row = ch.off_subspace_claim(NEAR_OK, OFF_ADV, OFF_RAND)
    assert row.verdict == HOLDS and row.ours == "0.950 vs 0.800" and "over 4 inputs" in row.note
    # a tie within the margin (at least 0.01) is not a direction
    tie = dict(NEAR_OK, off_fraction_adversarial=0.805)
    assert ch.off_subspace_claim(tie, OFF_RAND + 0.005, OFF_RAND).verdict == DIFFERS
    # a mean difference inside two standard errors of noisy paired differences is not either
    noisy_adv = OFF_RAND + np.array([0.5, -0.4, 0.45, -0.35])
    noisy = dict(NEAR_OK, off_fraction_adversarial=float(noisy_adv.mean()))
    assert ch.off_subspace_claim(noisy, noisy_adv, OFF_RAND).verdict == DIFFERS
    reverse = dict(NEAR_OK, off_fraction_adversarial=0.6)
    assert ch.off_subspace_claim(reverse, OFF_RAND - 0.2, OFF_RAND).verdict == DIFFERS


def _augmentation(**seed_values):
    """Planted ``augmentation_comparison`` values and arrays: per variant and key, one value per
    seed (``seed_values`` overrides ``{kind: {key: [...]}}``)."""
    per_seed = {"none": {"mean_eps_out": [0.9, 0.8, 1.0], "loss_clean": [1e-3] * 3},
                "gaussian": {"mean_eps_out": [0.2, 0.25, 0.15], "loss_clean": [1e-5] * 3},
                "oracle_adversarial": {"mean_eps_out": [0.3, 0.3, 0.35],
                                       "loss_clean": [1e-4] * 3},
                "data_adversarial": {"mean_eps_out": [0.5] * 3, "loss_clean": [2e-4, 1e-4, 3e-4]},
                "data_adversarial_label": {"mean_eps_out": [0.7] * 3,
                                           "loss_clean": [1e-2, 2e-2, 1e-2]}}
    for kind, keys in seed_values.items():
        per_seed[kind] = dict(per_seed[kind], **keys)
    values = {k: {key: float(np.mean(v)) for key, v in kv.items()} for k, kv in per_seed.items()}
    arrays = {f"{k}_seed_{key}": np.asarray(v, dtype=float) for k, kv in per_seed.items()
              for key, v in kv.items()}
    return values, arrays


@pytest.mark.parametrize("eps_out, verdict", [([0.3, 0.3, 0.35], HOLDS),
                                              ([0.895, 0.795, 0.995], DIFFERS),
                                              ([1.2, 1.1, 1.3], DIFFERS),
                                              ([0.1, 1.0, 0.95], DIFFERS)])  # one seed only
def test_adversarial_training_claim(eps_out, verdict):
    values, arrays = _augmentation(oracle_adversarial={"mean_eps_out": eps_out})
    row = ch.adversarial_training_claim(values, arrays)
    assert row.verdict == verdict and "3 per-seed values" in row.note


@pytest.mark.parametrize("eps_out, verdict", [([0.2, 0.25, 0.15], HOLDS),
                                              ([0.895, 0.795, 0.995], DIFFERS),
                                              ([1.2, 1.1, 1.3], DIFFERS)])
def test_noise_claim(eps_out, verdict):
    values, arrays = _augmentation(gaussian={"mean_eps_out": eps_out})
    row = ch.noise_claim(values, arrays, noise_std=0.3)
    assert row.verdict == verdict and "σ = noise_std = 0.3" in row.note


@pytest.mark.parametrize("label_loss, verdict", [([1e-2, 2e-2, 1e-2], HOLDS),
                                                 ([2e-4, 1e-4, 3e-4], DIFFERS),
                                                 ([1e-5, 1e-5, 2e-5], DIFFERS)])
def test_target_claim(label_loss, verdict):
    values, arrays = _augmentation(data_adversarial_label={"loss_clean": label_loss})
    row = ch.target_claim(values, arrays)
    assert row.verdict == verdict and "log10 ratio" in row.note


EXACT_OK = {"mean_angle_in_deg": 0.5, "mean_angle_out_deg": 80.0,
            "max_out_of_plane_change": 1e-15}


@pytest.mark.parametrize("angle_in, angle_out, verdict", [
    (0.5, 80.0, PASSED), (0.5, 5.0, FAILED), (8.0, 80.0, FAILED)])
def test_angle_check(angle_in, angle_out, verdict):
    row = ch.angle_check(dict(EXACT_OK, mean_angle_in_deg=angle_in,
                              mean_angle_out_deg=angle_out))
    assert row.verdict == verdict and "10 × inside" in row.note


@pytest.mark.parametrize("change, verdict", [(1e-15, PASSED), (1e-9, FAILED), (0.3, FAILED)])
def test_out_of_plane_check(change, verdict):
    assert ch.out_of_plane_check(dict(EXACT_OK, max_out_of_plane_change=change)).verdict \
        == verdict


def _rows(sweep_arrays, aug, exact=EXACT_OK, near_arrays=(OFF_ADV, OFF_RAND),
          sweep_near=SWEEP_ARRAYS):
    ns = SimpleNamespace
    values, arrays = aug
    off_adv, off_rand = near_arrays
    near = ns(values=dict(NEAR_OK, off_fraction_adversarial=float(off_adv.mean()),
                          off_fraction_random=float(off_rand.mean())),
              arrays={"off_fraction_adversarial": off_adv, "off_fraction_random": off_rand})
    return ch.claim_rows(
        exact=ns(values=exact), near=near,
        s_sweep=ns(values=_sweep_values(sweep_arrays), arrays=sweep_arrays),
        augmentation=ns(values=values, arrays=arrays),
        sweep_exact=ns(values=dict(SWEEP_NEAR, off_subspace_std=0.0), arrays=SWEEP_ARRAYS),
        sweep_near=ns(values=SWEEP_NEAR, arrays=sweep_near), near_std=0.05, noise_std=0.3)


def test_claim_rows_hold_on_planted_good_runs_and_fail_on_bad_ones():
    good = _planted_sweep(cor1_bound=np.full((len(S), REPEATS, K_S), 0.05),
                          slide_in=np.full((len(S), REPEATS, K_T), 0.5))
    rows = _rows(good, _augmentation())
    tests = [r for r in rows if results.is_test(r)]
    checks = [r for r in rows if not results.is_test(r)]
    assert [r.verdict for r in tests] == [HOLDS] * 12
    assert [r.verdict for r in checks] == [PASSED] * 3
    assert [r.source for r in checks] == ["A, Thm 1", "A, Thms 1–2", "A, §4.1"]
    assert results.claim_summary(rows).startswith("Of the 12 tests in this run, 12 hold.")
    flat = np.full(good["sin_out_min"].shape, 0.02)
    bad_sweep = _planted_sweep(sin_out_min=flat, sin_out_best=flat,
                               ckpt_sin_in=np.full(good["ckpt_sin_in"].shape, 0.02),
                               sin_in_min=0.01 * good["alpha"], bound_in=0.001 * good["bound_in"],
                               cor1_bound=np.full((len(S), REPEATS, K_S), 0.015),
                               slide_in=np.full((len(S), REPEATS, K_T), 1e-4))
    bad_aug = _augmentation(oracle_adversarial={"mean_eps_out": [1.2, 1.1, 1.3]},
                            gaussian={"mean_eps_out": [1.2, 1.1, 1.3]},
                            data_adversarial_label={"loss_clean": [1e-5] * 3})
    bad = _rows(bad_sweep, bad_aug, exact=dict(EXACT_OK, max_out_of_plane_change=0.2,
                                                mean_angle_out_deg=1.0),
                near_arrays=(OFF_RAND, OFF_RAND), sweep_near={"eps_out": SWEEP_ARRAYS["eps_out"]
                                                              [::-1]})
    assert [r.verdict for r in bad if results.is_test(r)] == [DIFFERS] * 12
    assert [r.verdict for r in bad if not results.is_test(r)] == [FAILED, FAILED, PASSED]
    assert "0 hold; 12 differ" in results.claim_summary(bad)


def test_log_log_slope_needs_two_distinct_points():
    assert ch._loglog_slope([1, 10], [1, 100]) == pytest.approx(2.0)
    assert math.isnan(ch._loglog_slope([1, 1], [1, 2]))
    assert math.isnan(ch._loglog_slope([0, 1], [1, 2]))  # log of 0 dropped: one point left
