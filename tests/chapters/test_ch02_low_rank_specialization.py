"""Tests of ``tsrobust.chapters.ch02_low_rank_specialization``: settings, experiments, figures
and every claim row, planted both ways."""

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from tsrobust import results
from tsrobust.chapters import ch02_low_rank_specialization as ch
from tsrobust.params import resolve

HOLDS, DIFFERS = "direction holds", "differs"

# ---------------------------------------------------------------- settings and experiments


def test_settings_resolve_in_every_profile():
    for profile in ("smoke", "gpu", "paper"):
        resolve(ch.SETTINGS, profile=profile, seed=0)
    c2 = resolve(ch.SETTINGS, profile="gpu", seed=0)
    assert all(s < c2.d for s in c2.sweep_d_subs) and c2.d_sub < c2.d
    c2s = resolve(ch.SETTINGS, profile="smoke", seed=0)
    assert all(s < c2s.d for s in c2s.sweep_d_subs) and c2s.d_sub < c2s.d


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


COMMON = dict(d=6, teacher_width=2, student_width=4, outputs=2, n_train=100, n_eval=200,
              lr=0.1, seed=0, progress=False)


def test_experiments_run_small():
    values, arrays = ch.low_rank_experiment(d_sub=2, steps=30, off_subspace_std=0.0,
                                            attack_eps=0.3, attack_steps=3, n_attack=20,
                                            **COMMON)
    assert values["max_out_of_plane_change"] < 1e-12
    assert arrays["teacher_eps_out"].shape == (2,)
    values, arrays = ch.augmentation_comparison(
        d_sub=2, steps=10, off_subspace_std=0.0, noise_std=0.3, attack_eps=0.3, attack_steps=2,
        adversarial_every=5, n_attack=10, **COMMON)
    assert set(values) == set(ch.AUGMENTATIONS)
    with pytest.raises(ValueError, match="unknown augmentation"):
        ch.augmentation_comparison(
            d_sub=2, steps=1, off_subspace_std=0.0, noise_std=0.3, attack_eps=0.3,
            attack_steps=1, adversarial_every=1, n_attack=10, kinds=("mixup",), **COMMON)
    with pytest.raises(ValueError, match="d′"):
        ch.subspace_sweep(d_subs=(2, 6), repeats=1, steps=5, off_subspace_std=0.0, **COMMON)


# ---------------------------------------------------------------- figures and summaries


def test_figures_and_summaries_draw_from_recorded_results():
    def run(s):
        values, arrays = ch.low_rank_experiment(d_sub=2, steps=20, off_subspace_std=s,
                                                attack_eps=0.3, attack_steps=2, n_attack=20,
                                                **COMMON)
        return SimpleNamespace(values=values, arrays=arrays)

    exact, near = run(0.0), run(0.05)
    runs = dict(zip(ch.run_names(0.05), (exact, near)))
    for fig in (ch.plot_projected_angles(runs, d=6, d_sub=2), ch.plot_fan_out(runs),
                ch.plot_eps(runs), ch.plot_probe(runs, exact.arrays, d=6, d_sub=2,
                                                 attack_eps=0.3)):
        assert len(fig.axes) >= 2
        plt.close(fig)
    text = ch.angle_summary(exact.values, near.values)
    assert "(below the rounding level 1e-09)" in text
    assert "above the rounding level" in ch.angle_summary(
        dict(exact.values, max_out_of_plane_change=1e-3), near.values)
    assert "specialized (NC > 0.9)" in ch.fan_out_summary(exact.arrays)
    assert "adds a fraction" in ch.probe_summary(exact.values, near.values)
    sweep_values, sweep_arrays = ch.subspace_sweep(d_subs=(2, 4), repeats=2, steps=5,
                                                   off_subspace_std=0.0, **COMMON)
    plt.close(ch.plot_sweep(sweep_arrays, d=6, repeats=2))
    assert "Strictly decreasing in d′" in ch.sweep_summary(sweep_values)


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
    arrays = {f"{k}_eps_out": np.array([0.2, 0.4]) for k in ch.AUGMENTATIONS}
    plt.close(ch.plot_augmentation(values, arrays, attack_eps=0.5))


# ---------------------------------------------------------------- claim rows, planted both ways

EXACT_OK = {"mean_angle_in_deg": 0.5, "mean_angle_out_deg": 80.0,
            "max_out_of_plane_change": 1e-15,
            "off_fraction_adversarial": 0.95, "off_fraction_random": 0.8}
OFF_ADV, OFF_RAND = np.array([0.94, 0.95, 0.96, 0.95]), np.array([0.78, 0.8, 0.82, 0.8])
AUG_OK = {"none": {"mean_eps_out": 0.9}, "oracle_adversarial": {"mean_eps_out": 0.3},
          "gaussian": {"mean_eps_out": 0.2}}
SWEEP_OK = {"d_subs": [2, 5, 8, 11], "mean_eps_out": [1.1, 0.9, 0.6, 0.3]}


@pytest.mark.parametrize("angle_in, angle_out, verdict", [
    (0.5, 80.0, HOLDS), (0.5, 5.0, DIFFERS), (8.0, 80.0, DIFFERS)])
def test_angle_claim(angle_in, angle_out, verdict):
    row = ch.angle_claim(dict(EXACT_OK, mean_angle_in_deg=angle_in,
                              mean_angle_out_deg=angle_out))
    assert row.verdict == verdict and "10 × inside" in row.note


@pytest.mark.parametrize("change, verdict", [(1e-15, HOLDS), (1e-9, DIFFERS), (0.3, DIFFERS)])
def test_out_of_plane_claim(change, verdict):
    assert ch.out_of_plane_claim(dict(EXACT_OK, max_out_of_plane_change=change)).verdict \
        == verdict


def test_off_subspace_claim():
    row = ch.off_subspace_claim(EXACT_OK, OFF_ADV, OFF_RAND)
    assert row.verdict == HOLDS and row.ours == "0.950 vs 0.800" and "over 4 inputs" in row.note
    # a tie within the margin (at least 0.01) is not a direction
    tie = dict(EXACT_OK, off_fraction_adversarial=0.805)
    assert ch.off_subspace_claim(tie, OFF_RAND + 0.005, OFF_RAND).verdict == DIFFERS
    # a mean difference inside two standard errors of noisy paired differences is not either
    noisy_adv = OFF_RAND + np.array([0.5, -0.4, 0.45, -0.35])
    noisy = dict(EXACT_OK, off_fraction_adversarial=float(noisy_adv.mean()))
    assert ch.off_subspace_claim(noisy, noisy_adv, OFF_RAND).verdict == DIFFERS
    reverse = dict(EXACT_OK, off_fraction_adversarial=0.6)
    assert ch.off_subspace_claim(reverse, OFF_RAND - 0.2, OFF_RAND).verdict == DIFFERS


@pytest.mark.parametrize("eps_out, verdict", [(0.3, HOLDS), (0.895, DIFFERS), (1.2, DIFFERS)])
def test_adversarial_training_claim(eps_out, verdict):
    aug = dict(AUG_OK, oracle_adversarial={"mean_eps_out": eps_out})
    assert ch.adversarial_training_claim(aug).verdict == verdict


@pytest.mark.parametrize("eps_out, verdict", [(0.2, HOLDS), (0.895, DIFFERS), (1.2, DIFFERS)])
def test_noise_claim(eps_out, verdict):
    row = ch.noise_claim(dict(AUG_OK, gaussian={"mean_eps_out": eps_out}), noise_std=0.3)
    assert row.verdict == verdict and "σ = noise_std = 0.3" in row.note


@pytest.mark.parametrize("curve, verdict", [
    ([1.1, 0.9, 0.6, 0.3], HOLDS), ([0.3, 0.6, 0.9, 1.1], DIFFERS), ([0.5, 0.9, 0.6, 0.495],
                                                                    DIFFERS)])
def test_sweep_claim(curve, verdict):
    row = ch.sweep_claim(dict(SWEEP_OK, mean_eps_out=curve))
    assert row.verdict == verdict and "d′ = 2 vs 11" in row.note


def test_claim_rows_hold_on_planted_good_runs_and_fail_on_bad_ones():
    arrays = {"off_fraction_adversarial": OFF_ADV, "off_fraction_random": OFF_RAND}
    rows = ch.claim_rows(EXACT_OK, arrays, AUG_OK, SWEEP_OK, noise_std=0.3)
    assert [r.verdict for r in rows] == [HOLDS] * 6
    assert [r.source for r in rows] == ["A, Thms 1–2", "A, Thm 1", "A, §4.2",
                                        "A, §4.3 (CIFAR: Fig. 4)", "A, §4.3 (CIFAR: Fig. 10)",
                                        "A, §4.1"]
    bad_exact = {"mean_angle_in_deg": 20.0, "mean_angle_out_deg": 30.0,
                 "max_out_of_plane_change": 0.2,
                 "off_fraction_adversarial": 0.8, "off_fraction_random": 0.8}
    bad_aug = {"none": {"mean_eps_out": 0.3}, "oracle_adversarial": {"mean_eps_out": 0.3},
               "gaussian": {"mean_eps_out": 0.4}}
    bad = ch.claim_rows(bad_exact, {"off_fraction_adversarial": OFF_RAND,
                                    "off_fraction_random": OFF_RAND},
                        bad_aug, dict(SWEEP_OK, mean_eps_out=[0.3, 0.6, 0.9, 1.1]),
                        noise_std=0.3)
    assert [r.verdict for r in bad] == [DIFFERS] * 6
    assert results.verdict_summary(bad).startswith("In this run 0 of the 6 claims hold")
