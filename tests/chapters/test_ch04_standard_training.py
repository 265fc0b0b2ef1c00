"""tsrobust.chapters.ch04_standard_training: the measured student runs at toy size, Table 3 rows,
and every claim row of §5.5 on planted values (holding, failing, ties)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

from tsrobust import results
from tsrobust.chapters import ch04_standard_training as ch04
from tsrobust.chapters.cifar import MEASURES
from tsrobust.models import ConvNet, PRUNED_WIDTHS
from tsrobust.params import resolve
from tsrobust.training import model_digest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def _net(widths, seed):
    return ConvNet(widths, generator=torch.Generator().manual_seed(seed))


# -- the runs ---------------------------------------------------------------------------------

def test_standard_training_measures_each_checkpoint(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    data = tiny_cifar(n_train=32, n_test=16)
    cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_train=32, n_test=16, n_student=24,
                  epochs=2, checkpoints=(1, 2), n_eval=8, n_spec=4, n_pca=8, attack_steps=1,
                  attack_repeats=2)
    teacher = _net(PRUNED_WIDTHS, seed=5)
    values, arrays = ch04.standard_training(cfg, data, teacher, variant="label", progress=False)
    assert values["epochs"] == [1, 2] and len(values["robust_mu"]) == 2
    assert all(0 <= m <= 1 for m in values["robust_mu"])
    # dead teacher nodes (never firing on the NC images) are left out of the measurements
    live = [w - d for w, d in zip((45, 32, 32, 20), values["dead_teacher"])]
    assert len(values["mbnc"][0]) == 4 and arrays["sorted_bnc_3"].shape == (2, live[3])
    assert arrays["eps_in"].shape == (2, 50, live[0])
    assert arrays["eps_in_curve"].shape == (2, live[0])
    assert arrays["pca_eigenvalues"].shape == (27,)
    # The curves are the ε of each teacher node's best-NC student, sorted.
    best = arrays["nc_0"][1].argmax(0)
    want = sorted(arrays["eps_in"][1][best, range(arrays["eps_in"].shape[2])])
    assert arrays["eps_in_curve"][1].tolist() == pytest.approx(want)
    with pytest.raises(ValueError, match="variant must be one of"):
        ch04.standard_training(cfg, data, teacher, variant="soft")
    bad = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_test=16, n_eval=100)
    with pytest.raises(ValueError, match="n_eval = 100 must be ≤ n_test = 16"):
        ch04.standard_training(bad, data, teacher, variant="logit")


def test_student_records_follow_their_teacher(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    data = tiny_cifar(n_train=16, n_test=8)
    cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_train=16, n_test=8, n_student=16,
                  epochs=1,
                  checkpoints=(1,), n_eval=4, n_spec=4, n_pca=4, attack_steps=1)
    a, b = _net(PRUNED_WIDTHS, seed=5), _net(PRUNED_WIDTHS, seed=6)
    first = ch04.record_standard_training(cfg, data, a, variant="logit", progress=False)
    again = ch04.record_standard_training(cfg, data, a, variant="logit", progress=False)
    other = ch04.record_standard_training(cfg, data, b, variant="logit", progress=False)
    assert not first.loaded and again.loaded and not other.loaded
    assert other.values["teacher_digest"] == model_digest(b) != model_digest(a)
    assert other.values["measures"] == MEASURES
    assert not (tmp_path / "results" / "smoke" / ch04.CHAPTER / "checkpoints").exists()
    # every student of every seed
    two = resolve(ch04.SETTINGS, **{**cfg.as_dict(), "seeds": 2})
    runs = ch04.record_students(two, data, a, progress=False)
    assert {v: len(r) for v, r in runs.items()} == {"logit": 2, "label": 2, "logit_noise": 1}
    assert [r.name for r in runs["label"]] == ["student_label", "student_label_seed1"]
    assert [r.values["seed"] for r in runs["logit"]] == [0, 1]
    assert runs["logit"][1].provenance["parameters"]["seed"] == 1


def test_settings_cross_checks():
    for bad in (dict(checkpoints=[1, 3]), dict(checkpoints=[1, 1]), dict(n_spec=600),
                dict(n_pca=3000), dict(n_student=3000)):
        cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, **bad)
        with pytest.raises(ValueError):
            ch04.check_settings(cfg)
    ch04.check_settings(resolve(ch04.SETTINGS, profile="smoke", seed=0))


# -- planted runs: every claim holds, then each one fails ----------------------------------------

CFG = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_test=10_000, n_eval=10_000,
              attack_repeats=3, seeds=3, noise_seeds=1)
"""Two epochs, checkpoints 1 and 2, 3 seeds, 10 000 attacked images: a binomial standard error
of about half a point per run."""

JITTER = 0.005
"""Planted seeds differ by −0.005, 0, +0.005 in every value: a spread of 0.005 (0.5 points for
an accuracy), so that a margin across 3 + 3 seeds is 2.776 · 0.005 · √(2/3) ≈ 0.011."""


def _student(mu=(0.5, 0.8), mbnc=((0.5,) * 4, (0.7,) * 4), eps_in=(1.0, 0.8),
             eps_out=(1.0, 0.8), pearson=(-0.3, -0.5), init_pearson=-0.1, var=1e-5, d=0.0):
    """One seed's values, every number shifted by ``d``."""
    return {"epochs": [1, 2], "robust_mu": [m + d for m in mu], "robust_var": [var, var],
            "agreement": [0.9, 0.9], "agreement_eval": [0.9, 0.9],
            "mbnc": [[x + d for x in m] for m in mbnc],
            "eps_in_mean": [x + d for x in eps_in], "eps_out_mean": [x + d for x in eps_out],
            "rho_eps_in_pearson": [x + d for x in pearson], "dead_teacher": [0, 1, 0, 0],
            "teacher_widths": [45, 32, 32, 20],
            "init": {"mbnc": [0.3 + d] * 4, "rho_eps_in_pearson": init_pearson + d,
                     "eps_in_mean": 1.2 + d, "eps_out_mean": 1.2 + d}}


def _seeds(n=3, jitter=JITTER, **kw):
    shifts = [0.0] if n == 1 else np.linspace(-jitter, jitter, n)
    return [_student(d=float(d), **kw) for d in shifts]


def _runs(logit=None, label=None, noise=None, seeds=3, noise_seeds=1):
    """Planted values in which every claim of §5.5 holds: logit and label rise (robust accuracy
    and MBNC in every layer), logit ends above label, lowers ε_in and ε_out; label's ε_in stays
    and its ε_out ends below logit's; noise lowers both ε; logit's Pearson score is −0.5, well
    below the untrained −0.1."""
    return {
        "logit": _seeds(seeds, **(logit or {})),
        "label": _seeds(seeds, **{"mu": (0.4, 0.5), "mbnc": ((0.5,) * 4, (0.55,) * 4),
                                  "eps_in": (1.0, 1.0), "eps_out": (1.0, 0.7),
                                  **(label or {})}),
        "logit_noise": _seeds(noise_seeds, **{"eps_in": (1.0, 0.7), "eps_out": (1.0, 0.7),
                                              **(noise or {})}),
    }


def _verdicts(runs, cfg=CFG) -> dict[str, str]:
    return {r.quantity: r.verdict for r in ch04.claim_rows(runs, cfg)}


RISES = "robust accuracy rises with epochs (logit)"
LABEL_RISES = "robust accuracy rises with epochs (label)"
LOGIT_ROBUST = "logit more robust than label (final epoch)"
MBNC_RISES = "MBNC rises with epochs (logit, final vs first checkpoint, per layer)"
LABEL_MBNC_RISES = "MBNC rises with epochs (label, final vs first checkpoint, per layer)"
LOGIT_MBNC = "logit specializes more than label (MBNC, final, per layer)"
LOGIT_EPS = "logit lowers ε_in with epochs (mean of curve)"
LOGIT_EPS_OUT = "logit lowers ε_out with epochs (mean of curve)"
LABEL_EPS = "label does not lower ε_in with epochs (mean of curve)"
LABEL_EPS_OUT = "label reduces ε_out more than logit (final, mean of curve)"
NOISE_IN = "noise lowers ε_in (final, mean of curve)"
NOISE_OUT = "noise lowers ε_out (final, mean of curve)"
PEARSON = "ρ and ε_in negatively correlated (Pearson, final logit student)"
ALL_ROWS = (RISES, LABEL_RISES, LOGIT_ROBUST, MBNC_RISES, LABEL_MBNC_RISES, LOGIT_MBNC, LOGIT_EPS,
            LOGIT_EPS_OUT, LABEL_EPS, LABEL_EPS_OUT, NOISE_IN, NOISE_OUT, PEARSON)


def test_every_claim_holds_on_the_planted_run():
    verdicts = _verdicts(_runs())
    assert list(verdicts) == list(ALL_ROWS)
    assert set(verdicts.values()) == {"direction holds"}, verdicts


@pytest.mark.parametrize("row, runs", [
    # the direction reversed
    (RISES, _runs(logit={"mu": (0.8, 0.5)}, label={"mu": (0.3, 0.4)})),
    (LABEL_RISES, _runs(label={"mu": (0.45, 0.35)})),
    (LOGIT_ROBUST, _runs(label={"mu": (0.4, 0.9)})),
    (MBNC_RISES, _runs(logit={"mbnc": ((0.7,) * 4, (0.6,) * 4)}, label={"mbnc": ((0.5,) * 4,
                                                                                 (0.55,) * 4)})),
    (LABEL_MBNC_RISES, _runs(label={"mbnc": ((0.6,) * 4, (0.55,) * 4)})),
    (LOGIT_MBNC, _runs(label={"mbnc": ((0.5,) * 4, (0.8,) * 4)})),
    (LOGIT_EPS, _runs(logit={"eps_in": (0.98, 1.0)}, noise={"eps_in": (1.0, 0.9)},
                      label={"eps_in": (1.0, 1.05)})),
    (LOGIT_EPS_OUT, _runs(logit={"eps_out": (0.8, 0.9)}, label={"eps_out": (1.0, 0.6)},
                          noise={"eps_out": (1.0, 0.7)})),
    (LABEL_EPS, _runs(label={"eps_in": (1.0, 0.8)})),
    (LABEL_EPS_OUT, _runs(label={"eps_out": (1.0, 0.9)})),
    (NOISE_IN, _runs(noise={"eps_in": (1.0, 0.9)})),
    (NOISE_OUT, _runs(noise={"eps_out": (1.0, 0.9)})),
    (PEARSON, _runs(logit={"pearson": (-0.3, 0.2)})),
    # MBNC per layer means every layer (all, not any): one layer reversed
    (MBNC_RISES, _runs(logit={"mbnc": ((0.5,) * 4, (0.7, 0.7, 0.7, 0.45))},
                       label={"mbnc": ((0.45, 0.45, 0.45, 0.35), (0.48, 0.48, 0.48, 0.4))})),
    (LOGIT_MBNC, _runs(label={"mbnc": ((0.5,) * 4, (0.55, 0.55, 0.55, 0.95))})),
    # the Pearson score: below the untrained one, but not below −0.1
    (PEARSON, _runs(logit={"pearson": (-0.3, -0.08), "init_pearson": 0.1})),
])
def test_each_claim_fails_when_planted_to_fail(row, runs):
    verdicts = _verdicts(runs)
    assert verdicts[row] == "differs", verdicts
    # the no-change row is judged against the logit students' drop: without one it cannot tell
    expected = {q: "inconclusive" if row == LOGIT_EPS and q == LABEL_EPS else "direction holds"
                for q in verdicts if q != row}
    assert {q: verdicts[q] for q in expected} == expected


@pytest.mark.parametrize("row, runs", [
    # ties within the margin from the spread across seeds: the run cannot tell
    (RISES, _runs(logit={"mu": (0.5, 0.505)}, label={"mu": (0.4, 0.45)})),
    (LOGIT_ROBUST, _runs(label={"mu": (0.4, 0.79)})),
    (LOGIT_EPS, _runs(logit={"eps_in": (1.0, 0.995)}, noise={"eps_in": (1.0, 0.9)},
                      label={"eps_in": (1.0, 1.05)})),
    (NOISE_IN, _runs(noise={"eps_in": (1.0, 0.79)})),
    (LABEL_EPS_OUT, _runs(label={"eps_out": (1.0, 0.795)})),
    # every layer but one clears its margin, that one ties
    (MBNC_RISES, _runs(logit={"mbnc": ((0.5,) * 4, (0.7, 0.7, 0.7, 0.5))},
                       label={"mbnc": ((0.45,) * 4, (0.48,) * 4)})),
    (LOGIT_MBNC, _runs(label={"mbnc": ((0.5,) * 4, (0.55, 0.55, 0.55, 0.7))})),
    # the Pearson score: negative, but not clearly below the untrained one
    (PEARSON, _runs(logit={"pearson": (-0.3, -0.5), "init_pearson": -0.495})),
])
def test_each_claim_is_inconclusive_within_its_noise(row, runs):
    verdicts = _verdicts(runs)
    assert verdicts[row] == "inconclusive", verdicts
    # the no-change row is judged against the logit students' drop: without one it cannot tell
    expected = {q: "inconclusive" if row == LOGIT_EPS and q == LABEL_EPS else "direction holds"
                for q in verdicts if q != row}
    assert {q: verdicts[q] for q in expected} == expected


def test_a_wide_spread_makes_a_clear_difference_inconclusive():
    # the same means as the planted run, seeds 0.15 apart: margins of about 0.34
    wide = _runs(logit={"jitter": 0.15}, label={"jitter": 0.15})
    verdicts = _verdicts(wide)
    assert verdicts[LOGIT_EPS] == verdicts[LOGIT_EPS_OUT] == "inconclusive"
    assert verdicts[LOGIT_MBNC] == "inconclusive"


def test_no_change_claim_needs_a_run_that_could_see_the_change():
    # a tie or a rise, in a run whose margin is below the logit students' drop of 0.2: holds
    for eps in ((1.0, 1.005), (1.0, 1.2)):
        assert _verdicts(_runs(label={"eps_in": eps}))[LABEL_EPS] == "direction holds"
    # a tie in a run too noisy to see a drop of 0.2 (seeds 0.2 apart): inconclusive
    noisy = _runs(label={"eps_in": (1.0, 1.0), "jitter": 0.2})
    assert _verdicts(noisy)[LABEL_EPS] == "inconclusive"
    # nothing to resolve: the logit students do not lower ε_in either
    flat = _runs(logit={"eps_in": (1.0, 1.0)})
    verdicts = _verdicts(flat)
    assert verdicts[LABEL_EPS] == "inconclusive" and verdicts[LOGIT_EPS] == "inconclusive"


def test_one_seed_leaves_the_specialization_rows_inconclusive():
    one = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_test=10_000, n_eval=10_000,
                  seeds=1, noise_seeds=1)
    verdicts = _verdicts(_runs(seeds=1), one)
    robust = {RISES, LABEL_RISES, LOGIT_ROBUST}
    # robust accuracies keep their binomial noise as a margin; the rest have none
    assert all(verdicts[q] == "direction holds" for q in robust), verdicts
    assert all(verdicts[q] == "inconclusive" for q in ALL_ROWS if q not in robust), verdicts
    rows = {r.quantity: r for r in ch04.claim_rows(_runs(seeds=1), one)}
    assert "no spread measured" in rows[MBNC_RISES].note


def test_claim_rows_quote_the_paper_epochs_nearest_ours_and_the_scale():
    rows = {r.quantity: r for r in ch04.claim_rows(_runs(), CFG)}
    # epochs 1 and 2 ↔ the paper's 50 (matched by epoch, not by fraction of training)
    assert rows[RISES].paper == "ST (50): 23.12 → ST (300): 62.77 %"
    assert "the paper's change over epochs 50 → 300, ours over 1 → 2" in rows[RISES].note
    assert rows[LOGIT_ROBUST].paper == "23.12 vs 19.08 %"
    assert "epochs 1 → 2" in rows[PEARSON].note
    assert "smoke profile: 2 epochs on 2000 images, 3 seeds, PGD-5" in rows[PEARSON].note
    assert rows[RISES].ours == "50.0 ± 0.5 → 80.0 ± 0.5 %"
    assert all("smoke profile" in r.note for r in rows.values())


# -- Table 3 -------------------------------------------------------------------------------------

def test_table3_rows_one_per_checkpoint_with_their_own_claim():
    rows = ch04.table3_rows(_runs(logit={"mu": (0.37, 0.63)}, label={"mu": (0.22, 0.26)}), CFG)
    assert [r.quantity for r in rows] == [
        "Table 3, ST (1): logit above label, robust accuracy (%)",
        "Table 3, ST (2): logit above label, robust accuracy (%)"]
    assert rows[0].paper == "23.12 vs 19.08 (ST (50))"
    assert "our epoch 1 vs the paper's 50: the epochs differ" in rows[0].note
    # near the paper's numbers, but a smoke run cannot reproduce them: the direction holds
    assert [r.verdict for r in rows] == ["direction holds"] * 2
    # reversed: differs; a tie within the noise: inconclusive
    for label, verdict in (((0.95, 0.95), "differs"), ((0.905, 0.905), "inconclusive")):
        rows = ch04.table3_rows(_runs(logit={"mu": (0.9, 0.9)}, label={"mu": label}), CFG)
        assert {r.verdict for r in rows} == {verdict}
    assert "2 epochs on 2000 images" in rows[0].note


def test_table3_reproduced_only_at_the_papers_settings():
    paper = resolve(ch04.SETTINGS, profile="paper", seed=0)
    runs = _runs(logit={"mu": (0.2312, 0.3072)}, label={"mu": (0.1908, 0.2081)})
    for v in runs.values():  # checkpoints 50 and 100 of the paper's run
        for seed in v:
            seed["epochs"] = [50, 100]
    rows = ch04.table3_rows(runs, paper)
    assert [r.verdict for r in rows] == ["reproduced", "reproduced"]
    assert "paper settings" in rows[0].note and "epochs differ" not in rows[0].note
    # the same numbers one parameter away from the paper's settings: not reproduced
    off = resolve(ch04.SETTINGS, profile="paper", seed=0, n_eval=9000)
    assert "reproduced" not in {r.verdict for r in ch04.table3_rows(runs, off)}
    # far from the paper's numbers at its settings: the direction still holds
    far = _runs(logit={"mu": (0.6, 0.7)}, label={"mu": (0.2, 0.2)})
    assert {r.verdict for r in ch04.table3_rows(far, paper)} == {"direction holds"}


def test_robust_se_uses_the_same_images_at_every_repeat():
    v = _student(mu=(0.5, 0.5), var=0.0)
    assert ch04.robust_se(v, 0, CFG) == pytest.approx(100 * np.sqrt(0.25 / 10_000))
    v = _student(mu=(0.5, 0.5), var=0.03)
    assert ch04.robust_se(v, 1, CFG) == pytest.approx(100 * np.sqrt(0.25 / 10_000 + 0.01))


def test_robust_margin_is_the_spread_across_seeds_floored_by_the_binomial_noise():
    spread = _seeds(mu=(0.5, 0.5), var=0.0, jitter=0.02)
    m = ch04.robust_margin(spread, 0, spread, 1, CFG)
    assert m == pytest.approx(2.776 * 2.0 * np.sqrt(2 / 3))
    tight = _seeds(mu=(0.5, 0.5), var=0.0, jitter=0.0)
    assert ch04.robust_margin(tight, 0, tight, 1, CFG) == pytest.approx(
        1.959964 * 0.5 * np.sqrt(2 / 3))


def test_robustness_summary_reads_both_comparisons():
    text = ch04.robustness_summary(_runs(noise={"mu": (0.5, 0.5)}), CFG)
    assert "logit 80.0 %, label 50.0 %, logit + noise 50.0 %" in text
    assert "logit student is more robust than the label student" in text
    assert "23.12 vs 19.08 % at epoch 50, where ours is 2" in text
    assert "Gaussian noise is less robust than" in text
    text = ch04.robustness_summary(_runs(label={"mu": (0.4, 0.95)}), CFG)
    assert "is less robust than the label student" in text
    assert "noise is about as robust as" in text


# -- what the notebook shows ------------------------------------------------------------------

def _record(values, n_student=6, n_teacher=5, seed=0):
    rng = np.random.default_rng(seed)
    e = len(values["epochs"])
    arrays = {f"sorted_bnc_{l}": np.sort(rng.random((e, n_teacher)))[:, ::-1] for l in range(4)}
    arrays |= {f"init_sorted_bnc_{l}": rng.random(n_teacher) for l in range(4)}
    arrays |= {k: np.sort(rng.random((e, n_teacher))) for k in ("eps_in_curve", "eps_out_curve")}
    arrays |= {k: rng.random(n_teacher) for k in ("init_eps_in_curve", "init_eps_out_curve")}
    arrays |= {k: rng.random((e, n_student, n_teacher)) for k in ("nc_0", "eps_in")}
    return SimpleNamespace(values=values, arrays=arrays)


def test_figures_and_the_mbnc_table_draw_from_planted_records():
    runs = {v: [_record(copy.deepcopy(x), seed=i) for i, x in enumerate(vals)]
            for v, vals in _runs().items()}
    figs = [ch04.plot_robust_accuracy(runs), ch04.plot_sorted_bnc(runs),
            ch04.plot_eps_curves(runs, (("logit", plt.cm.Blues, "-"),
                                        ("label", plt.cm.Reds, "--")), "title"),
            ch04.plot_rho_eps(runs)]
    assert [len(f.axes) for f in figs] == [1, 4, 2, 1]
    assert "Pearson -0.51, -0.50, -0.49" in figs[3].axes[0].get_title()
    for f in figs:
        plt.close(f)
    table = ch04.mbnc_markdown(ch04.values_of(runs), 100)
    assert "| logit (epoch 2) | 3 | 0.700 ± 0.005 | 0.700 ± 0.005 |" in table
    assert "| logit_noise (epoch 2) | 1 | 0.700 |" in table
    assert "| untrained (logit seeds) | 3 | 0.300 ± 0.005 |" in table
    assert "per layer (left out): 0, 1, 0, 0 of 45, 32, 32, 20." in table
    text = ch04.pipeline_markdown(ch04.values_of(runs), CFG)
    assert "| logit | 3 | 90.0 ± 0.0 | 80.0 ± 0.5 | 0.700 ± 0.005 |" in text
    assert "its rows would read: 15 direction holds." in text


# -- the records of several seeds, and the run the chapter shows --------------------------------

def test_record_names_one_per_variant_and_seed():
    cfg = resolve(ch04.SETTINGS, profile="cpu", seed=4)
    names = ch04.record_names(cfg)
    assert [n for _, n, _ in names.values()] == [
        "student_logit", "student_logit_seed5", "student_logit_seed6", "student_label",
        "student_label_seed5", "student_label_seed6", "student_logit_noise"]
    seed_cfgs = [c for _, _, c in names.values()]
    assert [c.seed for c in seed_cfgs[:3]] == [4, 5, 6]
    assert all(c.n_student == 20_000 and c.seeds == 3 for c in seed_cfgs)


def test_cpu_profile_sizes():
    cfg = resolve(ch04.SETTINGS, profile="cpu", seed=0)
    ch04.check_settings(cfg)
    assert (cfg.n_train, cfg.n_student, cfg.seeds, cfg.attack_steps, cfg.n_eval) == (
        50_000, 20_000, 3, 40, 1000)
    for profile in ("smoke", "gpu", "paper"):  # elsewhere the students see all n_train images
        other = resolve(ch04.SETTINGS, profile=profile, seed=0)
        assert other.n_student == other.n_train
    assert all(s.cpu is not None for s in ch04.SETTINGS.values())


def test_leading_runs_show_the_largest_complete_record(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    smoke = resolve(ch04.SETTINGS, profile="smoke", seed=0)
    own = {"logit": ["own"], "label": ["own"], "logit_noise": ["own"]}
    assert ch04.leading_runs(smoke, own) == (smoke, own, True)
    cpu = resolve(ch04.SETTINGS, profile="cpu", seed=0)
    names = list(ch04.record_names(cpu).values())
    for _, name, seed_cfg in names[:-1]:
        results.save(ch04.CHAPTER, name, seed_cfg, {"name": name}, seconds=0.0)
    assert ch04.leading_runs(smoke, own)[2]  # one record missing: still the build's own run
    _, name, seed_cfg = names[-1]
    results.save(ch04.CHAPTER, name, seed_cfg, {"name": name}, seconds=0.0)
    shown_cfg, shown, own_run = ch04.leading_runs(smoke, own)
    assert shown_cfg == cpu or shown_cfg.as_dict() == cpu.as_dict()
    assert not own_run
    assert [r.values["name"] for r in shown["label"]] == [
        "student_label", "student_label_seed1", "student_label_seed2"]


def test_reading_and_shown_sentences_follow_the_shown_run():
    smoke = resolve(ch04.SETTINGS, profile="smoke", seed=0)
    text = ch04.reading_markdown(smoke, True)
    assert "2 epochs on 2000 images" in text and "pipeline more than the paper" in text
    assert "`cpu`, `gpu` and `paper` profiles run" in text
    cpu = resolve(ch04.SETTINGS, profile="cpu", seed=0)
    text = ch04.reading_markdown(cpu, False)
    assert "4 epochs on 20000 images" in text and "pipeline" not in text
    assert "paper's settings" in ch04.reading_markdown(resolve(ch04.SETTINGS, profile="paper",
                                                               seed=0), False)
    assert "`cpu` run recorded" in ch04.shown_markdown(cpu, False, "smoke")


def test_gpu_profile_takes_minutes_on_the_reference_gpu():
    from tsrobust import bench

    gpu = resolve(ch04.SETTINGS, profile="gpu", seed=0)
    minutes = bench.reference_minutes(ch04.run_flops(gpu))
    assert 0.5 < minutes < 30, minutes  # "one GPU, minutes per chapter" (README)
    one = resolve(ch04.SETTINGS, profile="gpu", seed=0, seeds=1, noise_seeds=1)
    assert ch04.run_flops(gpu) == 3 * ch04.run_flops(one)  # 3 variants × 3 seeds vs 3 × 1
    assert "minutes** on an A100-class GPU" in ch04.estimate_markdown(gpu)
