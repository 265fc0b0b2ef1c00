"""tsrobust.chapters.ch04_standard_training: the measured student runs at toy size, Table 3 rows,
and every claim row of §5.5 on planted values (holding, failing, ties)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

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
    cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_train=32, n_test=16, epochs=2,
                  checkpoints=(1, 2), n_eval=8, n_spec=4, n_pca=8, attack_steps=1,
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
    cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_train=16, n_test=8, epochs=1,
                  checkpoints=(1,), n_eval=4, n_spec=4, n_pca=4, attack_steps=1)
    a, b = _net(PRUNED_WIDTHS, seed=5), _net(PRUNED_WIDTHS, seed=6)
    first = ch04.record_standard_training(cfg, data, a, variant="logit", progress=False)
    again = ch04.record_standard_training(cfg, data, a, variant="logit", progress=False)
    other = ch04.record_standard_training(cfg, data, b, variant="logit", progress=False)
    assert not first.loaded and again.loaded and not other.loaded
    assert other.values["teacher_digest"] == model_digest(b) != model_digest(a)
    assert other.values["measures"] == MEASURES
    assert not (tmp_path / "results" / "smoke" / ch04.CHAPTER / "checkpoints").exists()


def test_settings_cross_checks():
    for bad in (dict(checkpoints=[1, 3]), dict(checkpoints=[1, 1]), dict(n_spec=600),
                dict(n_pca=3000)):
        cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, **bad)
        with pytest.raises(ValueError):
            ch04.check_settings(cfg)
    ch04.check_settings(resolve(ch04.SETTINGS, profile="smoke", seed=0))


# -- planted runs: every claim holds, then each one fails ----------------------------------------

CFG = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_test=10_000, n_eval=10_000,
              attack_repeats=3)
"""Two epochs, checkpoints 1 and 2 (↔ the paper's 150 and 300), 10 000 attacked images: a
standard error of about half a point."""


def _student(mu=(0.5, 0.8), mbnc=((0.5,) * 4, (0.7,) * 4), eps_in=(1.0, 0.8),
             eps_out=(1.0, 0.8), pearson=(-0.3, -0.5), init_pearson=-0.1, var=1e-5):
    return {"epochs": [1, 2], "robust_mu": list(mu), "robust_var": [var, var],
            "agreement_eval": [0.9, 0.9], "mbnc": [list(m) for m in mbnc],
            "eps_in_mean": list(eps_in), "eps_out_mean": list(eps_out),
            "rho_eps_in_pearson": list(pearson), "dead_teacher": [0, 1, 0, 0],
            "init": {"mbnc": [0.3] * 4, "rho_eps_in_pearson": init_pearson,
                     "eps_in_mean": 1.2, "eps_out_mean": 1.2}}


def _runs(logit=None, label=None, noise=None):
    """Planted values in which every claim of §5.5 holds: logit rises and ends above label
    (robust accuracy and MBNC in every layer), lowers ε_in; label's ε_in stays; noise lowers
    both ε; logit's Pearson score is −0.5, well below the untrained −0.1."""
    return {
        "logit": _student(**(logit or {})),
        "label": _student(**{"mu": (0.4, 0.5), "mbnc": ((0.5,) * 4, (0.55,) * 4),
                             "eps_in": (1.0, 1.0), **(label or {})}),
        "logit_noise": _student(**{"eps_in": (1.0, 0.7), "eps_out": (1.0, 0.7),
                                   **(noise or {})}),
    }


def _verdicts(runs) -> dict[str, str]:
    return {r.quantity: r.verdict for r in ch04.claim_rows(runs, CFG)}


RISES = "robust accuracy rises with epochs (logit)"
LOGIT_ROBUST = "logit more robust than label (final epoch)"
MBNC_RISES = "MBNC rises with epochs (logit, final vs first checkpoint, per layer)"
LOGIT_MBNC = "logit specializes more than label (MBNC, final, per layer)"
LOGIT_EPS = "logit lowers ε_in with epochs (mean of curve)"
LABEL_EPS = "label does not lower ε_in with epochs (mean of curve)"
NOISE_IN = "noise lowers ε_in (final, mean of curve)"
NOISE_OUT = "noise lowers ε_out (final, mean of curve)"
PEARSON = "ρ and ε_in negatively correlated (Pearson, final logit student)"
ALL_ROWS = (RISES, LOGIT_ROBUST, MBNC_RISES, LOGIT_MBNC, LOGIT_EPS, LABEL_EPS, NOISE_IN,
            NOISE_OUT, PEARSON)


def test_every_claim_holds_on_the_planted_run():
    verdicts = _verdicts(_runs())
    assert list(verdicts) == list(ALL_ROWS)
    assert set(verdicts.values()) == {"direction holds"}, verdicts


@pytest.mark.parametrize("row, runs", [
    # the direction reversed
    (RISES, _runs(logit={"mu": (0.8, 0.5)}, label={"mu": (0.4, 0.3)})),
    (LOGIT_ROBUST, _runs(label={"mu": (0.4, 0.9)})),
    (MBNC_RISES, _runs(logit={"mbnc": ((0.7,) * 4, (0.6,) * 4)}, label={"mbnc": ((0.5,) * 4,
                                                                                 (0.5,) * 4)})),
    (LOGIT_MBNC, _runs(label={"mbnc": ((0.5,) * 4, (0.8,) * 4)})),
    (LOGIT_EPS, _runs(logit={"eps_in": (0.8, 1.0)}, noise={"eps_in": (1.0, 0.9)})),
    (LABEL_EPS, _runs(label={"eps_in": (1.0, 0.8)})),
    (NOISE_IN, _runs(noise={"eps_in": (1.0, 0.9)})),
    (NOISE_OUT, _runs(noise={"eps_out": (1.0, 0.9)})),
    (PEARSON, _runs(logit={"pearson": (-0.3, 0.2)})),
    # MBNC per layer means every layer (all, not any)
    (MBNC_RISES, _runs(logit={"mbnc": ((0.5,) * 4, (0.7, 0.7, 0.7, 0.5))},
                       label={"mbnc": ((0.5,) * 4, (0.45,) * 4)})),
    (LOGIT_MBNC, _runs(label={"mbnc": ((0.5,) * 4, (0.55, 0.55, 0.55, 0.75))})),
    # ties within the margin
    (RISES, _runs(logit={"mu": (0.5, 0.51)}, label={"mu": (0.4, 0.45)})),
    (LOGIT_ROBUST, _runs(label={"mu": (0.4, 0.79)})),
    (LOGIT_EPS, _runs(logit={"eps_in": (1.0, 0.995)}, noise={"eps_in": (1.0, 0.9)})),
    (NOISE_IN, _runs(noise={"eps_in": (1.0, 0.795)})),
    # the Pearson score: negative, but not below −0.1, or not clearly below the untrained one
    (PEARSON, _runs(logit={"pearson": (-0.3, -0.08)})),
    (PEARSON, _runs(logit={"pearson": (-0.3, -0.5), "init_pearson": -0.47})),
])
def test_each_claim_fails_when_planted_to_fail(row, runs):
    verdicts = _verdicts(runs)
    assert verdicts[row] == "differs", verdicts
    assert all(v == "direction holds" for q, v in verdicts.items() if q != row), verdicts


def test_no_change_claim_holds_on_a_tie_or_a_rise():
    for eps in ((1.0, 1.005), (1.0, 1.2)):
        assert _verdicts(_runs(label={"eps_in": eps}))[LABEL_EPS] == "direction holds"


def test_claim_rows_quote_the_matching_paper_epochs_and_the_margins():
    rows = {r.quantity: r for r in ch04.claim_rows(_runs(), CFG)}
    # epochs 1 and 2 of 2 ↔ the paper's 150 and 300
    assert rows[RISES].paper == "ST (150): 36.72 → ST (300): 62.77 %"
    assert rows[LOGIT_ROBUST].paper == "62.77 vs 25.79 %"
    assert "smoke profile, epochs 1 → 2" in rows[PEARSON].note
    assert "below −0.1 and 0.05 below the untrained student" in rows[PEARSON].note
    assert rows[RISES].note.startswith("margin 2.0 points")  # the 2-point floor


# -- Table 3 -------------------------------------------------------------------------------------

def test_table3_rows_reproduced_direction_and_differs():
    # epoch 2 of 2 ↔ ST (300): logit 62.77, label 25.79
    rows = ch04.table3_rows(_runs(logit={"mu": (0.37, 0.63)}, label={"mu": (0.22, 0.26)}), CFG)
    assert [r.quantity.split(",")[0] for r in rows] == ["Logit training", "Label training"] * 2
    assert [r.verdict for r in rows] == ["reproduced"] * 4
    assert "ST (1) ↔ paper ST (150)" in rows[0].quantity and rows[0].paper == 36.72
    # far from the paper's numbers, logit above label: the direction holds
    rows = ch04.table3_rows(_runs(logit={"mu": (0.9, 0.9)}, label={"mu": (0.6, 0.6)}), CFG)
    assert {r.verdict for r in rows} == {"direction holds"}
    # reversed, or a tie: differs
    for label in ((0.95, 0.95), (0.905, 0.905)):
        rows = ch04.table3_rows(_runs(logit={"mu": (0.9, 0.9)}, label={"mu": label}), CFG)
        assert {r.verdict for r in rows} == {"differs"}
    # too few attacked images to resolve ±3 points: matching numbers are not "reproduced"
    few = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_eval=20)
    rows = ch04.table3_rows(_runs(logit={"mu": (0.37, 0.63)}, label={"mu": (0.22, 0.26)}), few)
    assert "reproduced" not in {r.verdict for r in rows}
    assert "smoke: 2 epochs on 2000 images, PGD-5 on 20 test images" in rows[0].note


def test_robust_se_uses_the_same_images_at_every_repeat():
    v = _student(mu=(0.5, 0.5), var=0.0)
    assert ch04.robust_se(v, 0, CFG) == pytest.approx(100 * np.sqrt(0.25 / 10_000))
    v = _student(mu=(0.5, 0.5), var=0.03)
    assert ch04.robust_se(v, 1, CFG) == pytest.approx(100 * np.sqrt(0.25 / 10_000 + 0.01))


def test_robustness_summary_reads_both_comparisons():
    text = ch04.robustness_summary(_runs(noise={"mu": (0.5, 0.5)}), CFG)
    assert "logit 80.0 %, label 50.0 %, logit + noise 50.0 %" in text
    assert "logit student is more robust than the label student" in text
    assert "62.77 vs 25.79 %" in text and "Gaussian noise is less robust than" in text
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
    runs = {v: _record(copy.deepcopy(values)) for v, values in _runs().items()}
    figs = [ch04.plot_robust_accuracy(runs), ch04.plot_sorted_bnc(runs),
            ch04.plot_eps_curves(runs, (("logit", plt.cm.Blues, "-"),
                                        ("label", plt.cm.Reds, "--")), "title"),
            ch04.plot_rho_eps(runs)]
    assert [len(f.axes) for f in figs] == [1, 4, 2, 1]
    assert "Pearson -0.50" in figs[3].axes[0].get_title()
    for f in figs:
        plt.close(f)
    table = ch04.mbnc_markdown({v: r.values for v, r in runs.items()}, (45, 32, 32, 20), 100)
    assert "| logit (epoch 2) | 0.700 | 0.700 | 0.700 | 0.700 |" in table
    assert "| untrained (all three) | 0.300 |" in table
    assert "per layer (left out): 0, 1, 0, 0 of 45, 32, 32, 20." in table
