"""tsrobust.training: losses, teacher and student training, kill-and-resume, recorded weights.
Tiny synthetic tensors only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tsrobust import training as T
from tsrobust.models import ConvNet

REPO = Path(__file__).resolve().parents[1]
SMALL = (4, 4, 3, 3)


def _images(n, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _net(widths=SMALL, seed=0):
    return ConvNet(widths, generator=torch.Generator().manual_seed(seed))


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_student_losses_by_hand():
    s = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    t = torch.tensor([[0.0, 2.0, 2.0], [1.0, 0.0, 0.0]])
    # logit: mean over samples of the squared ℓ2 distance: (1 + 0 + 4 + 1 + 0 + 9) / 2
    assert T.student_loss(s, t, "logit").item() == pytest.approx(7.5)
    # label: cross-entropy to the teacher's argmax (classes 1 and 0)
    want = -(torch.log_softmax(s, 1)[0, 1] + torch.log_softmax(s, 1)[1, 0]) / 2
    assert T.student_loss(s, t, "label").item() == pytest.approx(want.item())
    with pytest.raises(ValueError, match="target must be one of"):
        T.student_loss(s, t, "soft")


def test_student_equal_to_teacher_has_zero_loss_and_stays():
    teacher = _net(seed=1)
    student = _net(seed=1)
    before = _weights(student)
    hist = T.train_student(student, teacher, _images(16), target="logit", epochs=2, lr=1e-2,
                           batch_size=8, generator=torch.Generator().manual_seed(0),
                           optimizer="sgd", progress=False)
    assert max(hist["loss"]) < 1e-10  # zero up to float rounding between batch sizes
    after = _weights(student)
    assert all(torch.allclose(before[k], after[k], atol=1e-7) for k in before)


@pytest.mark.parametrize("target", ["logit", "label"])
def test_student_learns_the_teacher(target):
    teacher, student = _net(seed=1), _net(seed=2)
    x = _images(64)
    before = T.agreement_rate(student, teacher, x)
    hist = T.train_student(student, teacher, x, target=target, epochs=6, lr=3e-3,
                           batch_size=16, generator=torch.Generator().manual_seed(0),
                           progress=False)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert T.agreement_rate(student, teacher, x) >= before
    assert all(p.requires_grad for p in teacher.parameters())  # teacher restored afterwards


def test_augmentation_and_noise_reach_the_teacher(monkeypatch):
    """With noise, the teacher labels the noisy batch (not precomputed clean logits)."""
    teacher, student = _net(seed=1), _net(seed=2)
    seen = []
    forward = teacher.forward
    monkeypatch.setattr(teacher, "forward", lambda x: (seen.append(x.detach()), forward(x))[1])
    x = _images(8)
    T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=8, noise_std=0.1,
                    augment=True, generator=torch.Generator().manual_seed(0), progress=False)
    assert len(seen) == 1 and seen[0].shape == x.shape
    assert not any(torch.allclose(seen[0][0], xi, atol=1e-3) for xi in x)


def test_adversarial_training_calls_pgd_with_the_oracle_objective(monkeypatch):
    from tsrobust import attacks

    teacher, student = _net(seed=1), _net(seed=2)
    gen = torch.Generator().manual_seed(0)
    calls = []

    def spy(objective, x, **kw):
        calls.append(kw)
        value = objective(x)  # per-sample ℓ2 distance between the two nets' logits
        want = (student(x) - teacher(x)).norm(dim=1)
        assert value.shape == (len(x),) and torch.allclose(value, want, atol=1e-4)
        return (x + 0.01).clamp(0, 1)

    monkeypatch.setattr(attacks, "pgd", spy)
    adv = dict(norm="linf", eps=10 / 255, alpha=0.01, steps=40)
    T.train_student(student, teacher, _images(8), epochs=1, lr=1e-3, batch_size=4,
                    adversarial=adv, generator=gen, progress=False)
    assert len(calls) == 2
    assert all(c["eps"] == adv["eps"] and c["alpha"] == 0.01 and c["steps"] == 40 and
               c["norm"] == "linf" and c["random_start"] and c["generator"] is gen
               for c in calls)
    with pytest.raises(ValueError, match="exactly the keys"):
        T.train_student(student, teacher, _images(4), epochs=1, lr=1e-3, batch_size=4,
                        adversarial=dict(eps=0.1), generator=gen, progress=False)


def test_adversarial_training_with_the_real_pgd_runs():
    teacher, student = _net(seed=1), _net(seed=2)
    hist = T.train_student(student, teacher, _images(8), epochs=1, lr=1e-3, batch_size=8,
                           adversarial=dict(norm="linf", eps=8 / 255, alpha=0.01, steps=2),
                           generator=torch.Generator().manual_seed(0), progress=False)
    assert hist["loss"][0] > 0


def _run(checkpoint_dir, epochs=4, on_checkpoint=None, checkpoint_epochs=(2, 4)):
    teacher, student = _net(seed=1), _net(seed=2)
    T.train_student(student, teacher, _images(24), target="logit", epochs=epochs, lr=1e-3,
                    batch_size=8, augment=True, noise_std=0.1, checkpoint_dir=checkpoint_dir,
                    checkpoint_epochs=checkpoint_epochs, on_checkpoint=on_checkpoint,
                    generator=torch.Generator().manual_seed(3), progress=False)
    return _weights(student)


class _Killed(Exception):
    pass


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    straight = _run(None)
    seen = []

    def die_at_2(epoch, student):
        seen.append(epoch)
        if epoch == 2:
            raise _Killed

    with pytest.raises(_Killed):
        _run(tmp_path / "ck", on_checkpoint=die_at_2)
    assert (tmp_path / "ck" / T.STATE_FILE).exists()
    log = []
    resumed = _run(tmp_path / "ck", on_checkpoint=lambda e, s: log.append((e, _weights(s))))
    assert _same(resumed, straight)
    assert [e for e, _ in log] == [2, 4]  # epoch 2 replayed from its saved weights
    assert _same(log[1][1], straight)
    # A finished run asked again only replays its checkpoints.
    again = _run(tmp_path / "ck")
    assert _same(again, straight)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)  # as the resumed run in the test process
    sys.path.insert(0, os.environ["TSR_REPO"])
    import tests.test_training as t

    def die(epoch, student):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    t._run(sys.argv[1], on_checkpoint=die)
""")


def test_sigkilled_process_resumes_to_identical_weights(tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "TSR_REPO": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "ck")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    assert not any(p.name.startswith(".") for p in (tmp_path / "ck").iterdir())  # no temp files
    assert _same(_run(tmp_path / "ck"), _run(None))


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    folder = tmp_path / "ck"
    _run(folder, epochs=2, checkpoint_epochs=(2,))
    (folder / T.STATE_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(T.CheckpointError, match=r"corrupt or unreadable.*Delete\s+it"):
        _run(folder, epochs=2, checkpoint_epochs=(2,))
    other = tmp_path / "other"
    _run(other, epochs=1, checkpoint_epochs=())
    teacher, student = _net(seed=1), _net(seed=2)
    with pytest.raises(T.CheckpointError, match="other settings"):
        T.train_student(student, teacher, _images(24), target="label", epochs=2, lr=1e-3,
                        batch_size=8, checkpoint_dir=other,
                        generator=torch.Generator().manual_seed(3), progress=False)


def test_checkpoint_epochs_are_checked():
    with pytest.raises(ValueError, match=r"outside 1..2"):
        _run(None, epochs=2, checkpoint_epochs=(3,))


def test_train_teacher_fits_labels(tiny_cifar):
    data = tiny_cifar()
    net = _net(seed=4)
    hist = T.train_teacher(net, data, epochs=8, lr=3e-3, batch_size=16, augment=False,
                           optimizer="adam", generator=torch.Generator().manual_seed(0),
                           progress=False)
    assert len(hist["loss"]) == 8 and hist["lr"][0] == 3e-3 and hist["lr"][-1] < 3e-4
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert T.accuracy(net, data.x_test, data.y_test) > 0.9


def test_cosine_lr():
    lr = T.cosine_lr(0.1, 4)
    assert [round(lr(e), 6) for e in (1, 3)] == [0.1, 0.05]


def test_bf16_and_channels_last_paths_run_on_cpu():
    teacher, student = _net(seed=1), _net(seed=2)
    x = _images(8)
    hist = T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=4, bf16=True,
                           channels_last=True, generator=torch.Generator().manual_seed(0),
                           progress=False)
    assert len(hist["loss"]) == 1 and hist["loss"][0] == hist["loss"][0]  # finite, not NaN
    assert student.convs[0].weight.dtype == torch.float32  # autocast keeps fp32 weights


def test_global_rng_untouched_by_training(tmp_path):
    state = torch.random.get_rng_state()
    log = []
    _run(tmp_path / "ck", epochs=2, checkpoint_epochs=(1, 2),
         on_checkpoint=lambda e, s: log.append(e))
    _run(tmp_path / "ck", epochs=2, checkpoint_epochs=(1, 2),
         on_checkpoint=lambda e, s: log.append(e))  # replays from saved weights
    assert log == [1, 2, 1, 2]
    assert torch.equal(torch.random.get_rng_state(), state)


def test_model_arrays_round_trip_and_digest():
    net = _net(seed=7)
    arrays = T.model_arrays("student", net)
    assert all(k.startswith("student" + T.WEIGHT_SEP) for k in arrays)
    back = T.model_from_arrays(arrays, "student", net.widths)
    assert _same(_weights(back), _weights(net)) and not back.training
    assert T.model_digest(back) == T.model_digest(net) != T.model_digest(_net(seed=8))
    with pytest.raises(ValueError, match="no weights named teacher"):
        T.model_from_arrays(arrays, "teacher", net.widths)


def test_agreement_rate_counts_matching_argmaxes():
    teacher, other = _net(seed=1), _net(seed=2)
    x = _images(16)
    assert T.agreement_rate(teacher, teacher, x) == 1.0
    same = (T.predict(teacher, x).argmax(1) == T.predict(other, x).argmax(1)).float().mean()
    assert T.agreement_rate(other, teacher, x) == pytest.approx(float(same))
