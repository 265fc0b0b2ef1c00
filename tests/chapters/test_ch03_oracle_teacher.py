"""tsrobust.chapters.ch03_oracle_teacher: the chapter's teacher, the patch spectrum, the pruned
fan-out mass, the figures, and both claim groups on planted values (holding and failing)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from tsrobust.chapters import ch03_oracle_teacher as ch03
from tsrobust.chapters.cifar import TEACHER_SETTINGS, oracle_teacher
from tsrobust.params import resolve
from tsrobust.specialization import patch_pca

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def test_settings_are_the_teachers_plus_the_pca():
    assert set(TEACHER_SETTINGS) < set(ch03.SETTINGS)
    assert set(ch03.SETTINGS) - set(TEACHER_SETTINGS) == {"n_test", "n_pca", "pca_rank"}


def test_chapter_teacher_is_the_recorded_oracle_teacher(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    data = tiny_cifar(n_train=16, n_test=8)
    cfg = resolve(ch03.SETTINGS, profile="smoke", seed=0, n_train=16, n_test=8,
                  teacher_epochs=1, teacher_lr=0.01)
    _, pruned, res = ch03.teacher(cfg, data, progress=False)
    assert not res.loaded and res.provenance["parameters"]["teacher_lr"] == 0.01
    _, again, res2 = oracle_teacher("smoke", 0, data, teacher_epochs=1, teacher_lr=0.01)
    assert res2.loaded and torch.equal(again.convs[0].weight, pruned.convs[0].weight)


def _teacher_values(agreement=0.99, full=0.60, pruned=0.595):
    return {"agreement_pruned_full": agreement, "test_accuracy_full": full,
            "test_accuracy_pruned": pruned}


def _verdicts(**kw) -> dict[str, str]:
    return {r.quantity: r.verdict for r in ch03.claim_rows(**kw)}


SAME = "pruned vs trained teacher: same prediction (% of test images)"
LOST = "test accuracy lost by pruning (points)"


def test_pruning_claims_hold_and_fail():
    assert _verdicts(teacher=_teacher_values()) == {SAME: "reproduced", LOST: "reproduced"}
    # the function changed: 95 % agreement; 3 points lost, or 3 points gained
    assert _verdicts(teacher=_teacher_values(agreement=0.95))[SAME] == "differs"
    assert _verdicts(teacher=_teacher_values(pruned=0.57))[LOST] == "differs"
    assert _verdicts(teacher=_teacher_values(pruned=0.63))[LOST] == "differs"
    # just within the tolerances
    v = _verdicts(teacher=_teacher_values(agreement=0.981, pruned=0.591))
    assert v == {SAME: "reproduced", LOST: "reproduced"}


def test_a_smaller_teacher_cannot_reproduce_the_pruning_claims():
    """At a profile below the paper's the same numbers are at best *direction holds*, the row
    says the scale, and a miss still differs."""
    kw = dict(teacher=_teacher_values(), teacher_scale="cpu")
    assert _verdicts(**kw) == {SAME: "direction holds", LOST: "direction holds"}
    assert all("`cpu` profile" in r.note for r in ch03.claim_rows(**kw))
    bad = _verdicts(teacher=_teacher_values(agreement=0.42, pruned=0.386), teacher_scale="cpu")
    assert bad == {SAME: "differs", LOST: "differs"}


def test_scale_of_a_teacher_record():
    from types import SimpleNamespace

    def rec(profile):
        params = resolve(TEACHER_SETTINGS, profile=profile, seed=0).as_dict()
        return SimpleNamespace(provenance={"parameters": params})

    assert ch03.scale_of(rec("paper")) is None
    assert ch03.scale_of(rec("cpu")) == "cpu" and ch03.scale_of(rec("smoke")) == "smoke"


def _spectrum(share=0.995, spread=500.0):
    return {"variance_in_top_rank": share, "top_over_rank": spread}


def test_spectrum_claims_hold_and_fail():
    share, spread = "variance in the top 17 of 27 components (%)", "λ₁ / λ_17"
    holds = _verdicts(spectrum=_spectrum(), pca_rank=17)
    assert holds == {share: "direction holds", spread: "direction holds"}
    assert _verdicts(spectrum=_spectrum(share=0.99), pca_rank=17)[share] == "direction holds"
    assert _verdicts(spectrum=_spectrum(share=0.985), pca_rank=17)[share] == "differs"
    assert _verdicts(spectrum=_spectrum(spread=100.0), pca_rank=17)[spread] == "differs"
    assert _verdicts(spectrum=_spectrum(spread=20.0), pca_rank=17)[spread] == "differs"
    rows = ch03.claim_rows(spectrum=_spectrum(), pca_rank=3, official=False)
    assert rows[0].quantity == "variance in the top 3 of 27 components (%)"
    assert "top 3 carry ≥ 99 %" in rows[0].note and "JPEG" in rows[0].note
    assert "the 3rd eigenvalue" in rows[1].note
    assert "JPEG" not in ch03.claim_rows(spectrum=_spectrum(), pca_rank=17)[0].note
    with pytest.raises(ValueError, match="pca_rank is needed"):
        ch03.claim_rows(spectrum=_spectrum())
    both = ch03.claim_rows(teacher=_teacher_values(), spectrum=_spectrum(), pca_rank=17)
    assert len(both) == 4 and ch03.claim_rows() == []


def test_patch_spectrum_of_random_images():
    x = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cfg = resolve(ch03.SETTINGS, profile="smoke", seed=0, n_pca=10, pca_rank=17)
    pv = ch03.patch_spectrum(x, cfg)
    vals = np.array(pv["eigenvalues"])
    assert vals.shape == (27,) and (np.diff(vals) <= 0).all()
    assert vals == pytest.approx(patch_pca(x[:10])[0].clamp_min(0).numpy())
    assert pv["variance_in_top_rank"] == pytest.approx(vals[:17].sum() / vals.sum())
    assert pv["top_over_rank"] == pytest.approx(vals[0] / vals[16])
    assert pv["n_patches"] == 10 * 30 * 30


def _teacher_record():
    return {"full_widths": [4, 4], "pruned_widths": [2, 3], "test_accuracy_full": 0.5,
            "test_accuracy_pruned": 0.4, "train_accuracy_full": 0.6,
            "agreement_pruned_full": 0.8, "n_test_used": 10,
            "fanout_norms": [[3.0, 2.0, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0]],
            "kept_channels": [[0, 1], [0, 1, 2]], "dead_channels": [[3], []],
            "dead_channels_pruned": [[], [0]],
            "history": {"epoch": [1, 2], "loss": [2.0, 1.5], "accuracy": [0.3, 0.4]}}


def test_pruned_mass_is_the_share_of_the_live_channels_norm():
    # layer 0: live 0, 1, 2 (3 is dead), pruned live: 2 → 1 / (9 + 4 + 1)
    # layer 1: all live, pruned: 3 → 1 / 4
    assert ch03.pruned_mass(_teacher_record()) == pytest.approx([1 / 14, 1 / 4])
    assert "layer 0: 7.1 %, layer 1: 25.0 %" in ch03.pruned_mass_markdown(_teacher_record())


def test_teacher_table_and_figures():
    tv = _teacher_record()
    text = ch03.teacher_markdown(tv, n_train=500)
    assert "| trained | 4-4 | 50.0 |" in text and "| pruned by fan-out norm | 2-3 | 40.0 |" in text
    assert "first 500 training images" in text and "trained teacher 1, 0 of 4, 4" in text
    assert "first 1000 training" in ch03.teacher_markdown(tv, n_train=5000)
    figs = [ch03.plot_history(tv), ch03.plot_fanout_norms(tv),
            ch03.plot_spectrum({"eigenvalues": list(np.logspace(0, -4, 27))}, 17)]
    assert [len(f.axes) for f in figs] == [2, 2, 1]
    for f in figs:
        plt.close(f)


def test_the_chapter_leads_with_the_largest_recorded_teacher(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from tsrobust import results

    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    smoke = resolve(TEACHER_SETTINGS, profile="smoke", seed=0)
    own = results.save(ch03.CHAPTER, "teacher", smoke, {"v": "smoke"}, seconds=0.0)
    shown, own_run = ch03.leading(own, TEACHER_SETTINGS)
    assert shown is own and own_run
    assert "No run of the teacher larger" in ch03.shown_markdown(shown, own_run, "smoke",
                                                                 "the teacher")
    # the cpu teacher of chapter 3's cpu profile, recorded with that profile's settings
    results.save(ch03.CHAPTER, "teacher", resolve(TEACHER_SETTINGS, profile="cpu", seed=0),
                 {"v": "cpu"}, seconds=0.0)
    shown, own_run = ch03.leading(own, TEACHER_SETTINGS)
    assert shown.values == {"v": "cpu"} and not own_run
    assert "the `cpu` run recorded in the repository" in ch03.shown_markdown(
        shown, own_run, "smoke", "the teacher")
    tv = {**_teacher_values(), "n_test_used": 500}
    pv = _spectrum()
    text = ch03.pipeline_markdown(
        SimpleNamespace(values=tv, provenance={"profile": "smoke", "parameters": smoke.as_dict()}),
        SimpleNamespace(values=pv, provenance={"parameters": {"pca_rank": 17}}))
    assert text.startswith("This build's `smoke` teacher: test accuracy 60.0 % trained")
    assert "99.50 % of the variance in the top 17" in text


def test_run_flops_counts_the_teacher_by_hand():
    """Two training images, one epoch of the full teacher and one of the pruned fine-tune, each
    followed by the accuracy on three test images (forward passes)."""
    from tsrobust import bench
    from tsrobust.models import TEACHER_WIDTHS, ConvNet

    full = bench.layer_macs(ConvNet(TEACHER_WIDTHS))
    pruned = bench.layer_macs(ConvNet((45, 32, 32, 20)))
    cfg = resolve(ch03.SETTINGS, profile="smoke", seed=0, n_train=2, n_test=3, teacher_epochs=1,
                  teacher_finetune_epochs=1, pruned_widths=(45, 32, 32, 20), n_pca=2)
    assert ch03.run_flops(cfg) == (2 * (bench.net_flops(full, train=True)
                                        + bench.net_flops(pruned, train=True))
                                   + 3 * (bench.net_flops(full) + bench.net_flops(pruned)))
    no_finetune = resolve(ch03.SETTINGS, profile="smoke", seed=0, n_train=2, n_test=3,
                          teacher_epochs=1, teacher_finetune_epochs=0, n_pca=2)
    assert ch03.run_flops(no_finetune) == (2 * bench.net_flops(full, train=True)
                                           + 3 * bench.net_flops(full))
