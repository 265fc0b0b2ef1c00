"""tsrobust.chapters.resnets: the paper's epochs scaled by hand, bad input failing fast, and a
tiny ST/AT record round trip (recorded, reloaded, weights that rebuild the recorded logits,
ST and AT of one seed from different initial weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tsrobust.chapters import resnets
from tsrobust.data import CIFAR10, NON_OFFICIAL
from tsrobust.training import model_digest, predict

TINY = dict(n_train=300, holdout_per_class=5, n_test=50, width=4, epochs=2, n_logit_train=100,
            n_eval=20, apgd_steps=2, at_steps=1, batch_size=64, precision="fp32")
"""A ResNet-18 of width 4 on 250 training images for 2 epochs: seconds on a CPU."""


def _data(n_train=300, n_test=50):
    g = torch.Generator().manual_seed(0)
    return CIFAR10(torch.rand(n_train, 3, 32, 32, generator=g), torch.arange(n_train) % 10,
                   torch.rand(n_test, 3, 32, 32, generator=g), torch.arange(n_test) % 10,
                   NON_OFFICIAL)


# -- the paper's epochs, scaled ---------------------------------------------------------------

def test_scaled_epochs_by_hand():
    snaps = resnets.PAPER_SNAPSHOTS  # 20, 40, 60, 100, 150, 200 of 200
    assert resnets.scaled_epochs(200, snaps) == snaps
    # 15 epochs: 1.5, 3, 4.5, 7.5, 11.25, 15 rounded half up
    assert resnets.scaled_epochs(15, snaps) == (2, 3, 5, 8, 11, 15)
    assert resnets.scaled_epochs(40, snaps) == (4, 8, 12, 20, 30, 40)
    assert resnets.scaled_epochs(2, snaps) == (1, 2)  # distinct, at least 1
    assert resnets.scaled_epochs(1, snaps) == (1,)
    assert resnets.scaled_epochs(40, (40,)) == (8,)


def test_teacher_eval_and_kept_epochs_of_the_profiles():
    cpu = resnets.network_config("cpu", 0)
    # 10 epochs: 1, 2, 3, 5, 7.5, 10 rounded half up
    assert resnets.snapshot_epochs(cpu) == (1, 2, 3, 5, 8, 10)
    assert resnets.teacher_epochs(cpu) == (1, 2, 5, 10)
    assert resnets.distillation_epoch(cpu) == 2
    assert resnets.eval_epochs("at", cpu) == (1, 2, 5, 10)
    assert resnets.eval_epochs("st", cpu) == (10,)
    assert resnets.kept_epochs("st", cpu) == (2,)
    paper = resnets.network_config("paper", 0)
    assert resnets.teacher_epochs(paper) == resnets.PAPER_TEACHER_EPOCHS
    assert resnets.distillation_epoch(paper) == 40
    for profile in ("smoke", "cpu", "gpu", "paper"):
        c = resnets.network_config(profile, 0)
        # every teacher epoch has its logits recorded, and the distillation epoch is one
        assert set(resnets.teacher_epochs(c)) <= set(resnets.snapshot_epochs(c))
        assert resnets.distillation_epoch(c) in resnets.teacher_epochs(c)


# -- bad input fails fast, saying what to do ---------------------------------------------------

@pytest.mark.parametrize("epochs", [0, -3, 2.0, True, "15"])
def test_scaled_epochs_rejects_a_bad_epoch_count(epochs):
    with pytest.raises(ValueError, match="epochs must be an int"):
        resnets.scaled_epochs(epochs, resnets.PAPER_SNAPSHOTS)


def test_bad_settings_and_kinds_fail_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    data = _data()
    cfg = resnets.network_config("smoke", 0, **TINY)
    with pytest.raises(ValueError, match="kind must be one of"):
        resnets.trained_network("adversarial", cfg, data)
    with pytest.raises(ValueError, match="kind must be one of"):
        resnets.eval_epochs("ST", cfg)
    with pytest.raises(ValueError, match="exceeds the training split"):
        resnets.trained_network("st", resnets.network_config(
            "smoke", 0, **{**TINY, "n_logit_train": 260}), data)
    with pytest.raises(ValueError, match="exceeds n_test"):
        resnets.trained_network("st", resnets.network_config(
            "smoke", 0, **{**TINY, "n_eval": 60}), data)
    with pytest.raises(ValueError, match="load CIFAR-10 with n_train=300"):
        resnets.split(cfg, _data(n_train=200))
    with pytest.raises(ValueError, match="profile"):
        resnets.network_config("laptop", 0)
    with pytest.raises(ValueError, match="stem"):
        resnets.network_config("smoke", 0, stem="resnet")
    assert not list(tmp_path.rglob("*.json"))  # nothing was trained or recorded


# -- a tiny record round trip -------------------------------------------------------------------

def test_tiny_round_trip_records_reloads_and_rebuilds_the_networks(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    data = _data()
    cfg = resnets.network_config("smoke", 0, **TINY)
    built = {}
    original = resnets.build_network

    def spy(c, *, seed=0):
        model = original(c, seed=seed)
        built[seed] = model_digest(model)
        return model

    monkeypatch.setattr(resnets, "build_network", spy)
    st = resnets.trained_network("st", cfg, data, keep_weights=True, progress=False)
    at = resnets.trained_network("at", cfg, data, keep_weights=True, progress=False)
    # ST and AT of one seed start from different weights (seed + KIND_SEED_OFFSET)
    st_seed, at_seed = (cfg.seed + resnets.KIND_SEED_OFFSET[k] for k in ("st", "at"))
    assert st_seed != at_seed and built[st_seed] != built[at_seed]

    assert st.values["snapshot_epochs"] == [1, 2] and st.values["eval_epochs"] == [2]
    assert at.values["eval_epochs"] == [1, 2]
    assert st.values["kept_epochs"] == [1] and at.values["kept_epochs"] == [1, 2]
    assert st.values["n_train_split"] == 250 and st.values["n_validation"] == 50
    for res in (st, at):
        for e in res.values["snapshot_epochs"]:
            assert res.arrays[f"train_logits_e{e}"].shape == (100, 10)
            assert res.arrays[f"test_logits_e{e}"].shape == (50, 10)
            acc = (res.arrays[f"test_logits_e{e}"].argmax(1) == data.y_test.numpy()).mean()
            assert res.values["test_accuracy"][str(e)] == pytest.approx(acc)
        for e in res.values["eval_epochs"]:
            robust = res.arrays[f"robust_e{e}"].astype(bool)
            assert robust.shape == (20,)
            # an image that survives the attack is classified correctly without it
            clean = res.arrays[f"test_logits_e{e}"][:20].argmax(1) == data.y_test.numpy()[:20]
            assert not (robust & ~clean).any()
            assert res.values["adversarial_accuracy"][str(e)] == pytest.approx(robust.mean())
        # the kept weights rebuild a network that gives the recorded logits
        for e in res.values["kept_epochs"]:
            net = resnets.network_at(res, e, cfg)
            np.testing.assert_allclose(predict(net, data.x_test).numpy(),
                                       res.arrays[f"test_logits_e{e}"], rtol=1e-4, atol=1e-4)
    # the two kinds learned differently (AT trained on PGD examples)
    assert not np.allclose(st.arrays["test_logits_e2"], at.arrays["test_logits_e2"])

    # loaded, not retrained, on a second call with the same settings
    built.clear()
    again = resnets.trained_network("at", cfg, data, keep_weights=True, progress=False)
    assert again.loaded and not built
    np.testing.assert_array_equal(again.arrays["robust_e2"], at.arrays["robust_e2"])
    assert not list(tmp_path.rglob("checkpoints/*/last.pt"))  # checkpoints discarded

    with pytest.raises(ValueError, match="keep_weights"):
        resnets.network_at(st, 2, cfg)  # ST keeps only its distillation epoch


def test_shown_markdown_says_which_run_is_shown():
    own = resnets.shown_markdown("smoke", True, "smoke", "2 epochs")
    assert "this build's own run (2 epochs)" in own and "not a test of the paper" in own
    big = resnets.shown_markdown("cpu", False, "smoke", "15 epochs")
    assert "`cpu` run recorded in the repository (15 epochs)" in big
    assert "`smoke` run is shown compactly at the end" in big
