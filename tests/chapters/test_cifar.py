"""tsrobust.chapters.cifar: the recorded oracle teacher, records that follow their data copy and
fingerprint, and the paper's checkpoints scaled to ours."""

from __future__ import annotations

import pytest
import torch

from tsrobust.chapters import cifar
from tsrobust.models import PRUNED_WIDTHS, build_student
from tsrobust.params import resolve
from tsrobust.training import accuracy


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_oracle_teacher_is_recorded_and_reloaded(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    data = tiny_cifar(n_train=32, n_test=16)
    full, pruned, res = cifar.oracle_teacher("smoke", 0, data, teacher_epochs=1, progress=False)
    assert not res.loaded and full.widths == (64, 64, 64, 64) and pruned.widths == PRUNED_WIDTHS
    assert res.values["test_accuracy_pruned"] == accuracy(pruned, data.x_test, data.y_test)
    assert res.provenance["parameters"]["n_train"] == 32
    assert not (tmp_path / "results" / "smoke" / cifar.TEACHER_CHAPTER / "checkpoints" /
                "teacher-seed0").exists()
    # The pruned teacher is the full one restricted to the kept channels.
    keep = res.values["kept_channels"]
    assert torch.equal(pruned.convs[0].weight, full.convs[0].weight[keep[0]])
    full2, pruned2, res2 = cifar.oracle_teacher("smoke", 0, data, teacher_epochs=1,
                                                progress=False)
    assert res2.loaded and _same(_weights(pruned2), _weights(pruned))
    with pytest.raises(ValueError, match="n_train comes from the data"):
        cifar.oracle_teacher("smoke", 0, data, n_train=10)


def test_teacher_does_not_share_the_students_initialization(tmp_path, monkeypatch, tiny_cifar):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    data = tiny_cifar(n_train=16, n_test=8)
    full, _, _ = cifar.oracle_teacher("smoke", 0, data, teacher_epochs=1, progress=False)
    student = build_student(generator=torch.Generator().manual_seed(0))
    # Same seed, same layer shapes: without a separate seed stream the first 50 teacher filters
    # would be the student's initial filters.
    assert not torch.allclose(student.convs[0].weight, full.convs[0].weight[:50], atol=0.05)


def test_record_for_recomputes_on_another_fingerprint_or_data_copy(tmp_path, monkeypatch,
                                                                   tiny_cifar):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    data = tiny_cifar(n_train=4, n_test=4)
    cfg = resolve(cifar.TEACHER_SETTINGS, profile="smoke", seed=0)
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    first = cifar.record_for("chapter", "x", cfg, compute, data=data, fingerprint={"t": "a"})
    again = cifar.record_for("chapter", "x", cfg, compute, data=data, fingerprint={"t": "a"})
    assert not first.loaded and again.loaded and again.values == {"value": 1, "t": "a"}
    other = cifar.record_for("chapter", "x", cfg, compute, data=data, fingerprint={"t": "b"})
    assert other.values == {"value": 2, "t": "b"}
    copied = type(data)(data.x_train, data.y_train, data.x_test, data.y_test, "another copy")
    moved = cifar.record_for("chapter", "x", cfg, compute, data=copied, fingerprint={"t": "b"})
    assert moved.values["value"] == 3 and len(calls) == 3


def test_paper_checkpoints_scaled_to_our_runs():
    assert cifar.scaled_checkpoints(300) == cifar.PAPER_CHECKPOINTS
    assert cifar.scaled_checkpoints(20) == (3, 7, 10, 13, 20)
    assert cifar.scaled_checkpoints(100) == (17, 33, 50, 67, 100)
    assert cifar.scaled_checkpoints(2) == (1, 2)  # distinct and ≥ 1
    # the paper checkpoint nearest in epochs: matched by epoch, not by fraction of training
    assert cifar.paper_epoch(1) == cifar.paper_epoch(2) == cifar.paper_epoch(20) == 50
    assert cifar.paper_epoch(75) == 50 and cifar.paper_epoch(76) == 100  # the earlier on a tie
    assert cifar.paper_epoch(150) == 150 and cifar.paper_epoch(260) == 300
    assert cifar.paper_epoch(1000) == 300
    assert cifar.epochs_note(150, 150) == ""
    assert cifar.epochs_note(2, 50) == "our epoch 2 vs the paper's 50: the epochs differ"


def test_seed_configs_differ_only_in_the_seed():
    settings = {"n_train": cifar.N_TRAIN, "precision": cifar.PRECISION}
    cfg = resolve(settings, profile="cpu", seed=3, n_train=40_000)
    two = cifar.seed_config(cfg, settings, 2)
    assert two.seed == 5 and two.n_train == 40_000 and two.profile == "cpu"
    assert cifar.seed_config(cfg, settings, 0).as_dict() == cfg.as_dict()
    assert cifar.seed_name("student_logit", cfg, 0) == "student_logit"
    assert cifar.seed_name("student_logit", cfg, 2) == "student_logit_seed5"


def test_students_of_both_chapters_are_attacked_alike():
    # the ℓ∞ PGD of the robust accuracy is one setting per parameter, with the paper's values
    # from the cpu profile up
    for setting, paper in ((cifar.ATTACK_EPS, 10 / 255), (cifar.ATTACK_ALPHA, 0.01),
                           (cifar.ATTACK_STEPS, 40)):
        assert setting.cpu == setting.gpu == setting.paper == paper


def test_teacher_config_takes_n_train_from_the_data(tiny_cifar):
    data = tiny_cifar(n_train=12, n_test=4)
    cfg = cifar.teacher_config("smoke", 3, data)
    assert (cfg.n_train, cfg.seed, cfg.pruned_widths) == (12, 3, PRUNED_WIDTHS)
    deep = cifar.teacher_config("smoke", 3, data, deep=True)
    assert len(deep.pruned_widths) == 5


def test_fine_tuned_oracle_is_the_pruned_net_trained_on(tmp_path, monkeypatch, tiny_cifar):
    """With a fine-tune the oracle is the pruned net trained further: its weights leave the
    trained teacher's kept slices, the record keeps the accuracy before and after, and every
    epoch of both trainings has a test accuracy."""
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    data = tiny_cifar(n_train=32, n_test=16)
    full, pruned, res = cifar.oracle_teacher("smoke", 0, data, teacher_epochs=2,
                                             teacher_finetune_epochs=1, progress=False)
    v = res.values
    keep = v["kept_channels"]
    assert not torch.equal(pruned.convs[0].weight, full.convs[0].weight[keep[0]])
    assert v["test_accuracy_pruned"] == accuracy(pruned, data.x_test, data.y_test)
    assert 0 <= v["test_accuracy_pruned_only"] <= 1 and 0 <= v["agreement_pruned_only_full"] <= 1
    assert len(v["history"]["test_accuracy"]) == 2
    assert v["finetune_history"]["epoch"] == [1] and len(v["finetune_history"]["test_accuracy"]) == 1
    assert v["history"]["test_accuracy"][-1] == accuracy(full, data.x_test, data.y_test)
    assert res.provenance["precision"] == v["precision"] in ("fp32", "bf16")
    assert res.provenance["device"].startswith("CPU")


def test_shown_run_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path))
    cpu = resolve(cifar.TEACHER_SETTINGS, profile="cpu", seed=0)
    own = cifar.shown_run_markdown(cpu, True, "smoke", "tiny")
    assert own.startswith("No run larger than this build's `smoke` run") and "(tiny)" in own
    text = cifar.shown_run_markdown(cpu, False, "smoke", "big")
    assert "the `cpu` run recorded in the repository (big)" in text and "oracle" not in text
    from tsrobust import results
    results.save(cifar.TEACHER_CHAPTER, "teacher", cpu,
                 {"pruned_widths": [45, 32, 32, 20], "test_accuracy_pruned": 0.712}, seconds=0)
    text = cifar.shown_run_markdown(cpu, False, "smoke", "big")
    assert "chapter 3's `cpu` teacher, pruned to 45-32-32-20, at 71.2 % test accuracy" in text


def test_larger_profiles_sentence_lists_the_larger_profiles_in_order():
    assert cifar.larger_profiles_sentence("smoke").startswith(
        " The `cpu`, `gpu` and `paper` profiles run the same code at larger scale")
    assert cifar.larger_profiles_sentence("gpu").startswith(" The `paper` profile runs")
    assert cifar.larger_profiles_sentence("paper") == ""
