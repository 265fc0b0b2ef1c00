"""tsrobust.training: losses, teacher and student training, kill-and-resume, recorded weights.
Tiny synthetic tensors only."""

from __future__ import annotations

import math
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


def test_augmentation_resamples_rotations_as_asked(monkeypatch):
    """``resample`` reaches the augmentation of every batch (data.augment tests what each mode
    does to the pixels)."""
    from tsrobust import training

    seen = []
    augment = training.augment_images
    monkeypatch.setattr(training, "augment_images",
                        lambda *a, **kw: (seen.append(kw["resample"]), augment(*a, **kw))[1])
    teacher, student = _net(seed=1), _net(seed=2)
    x = _images(8)
    for mode in ("nearest", "bilinear"):
        T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=8, augment=True,
                        resample=mode, generator=torch.Generator().manual_seed(0),
                        progress=False)
    assert seen == ["nearest", "bilinear"]


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


def _run(checkpoint_dir, epochs=4, on_checkpoint=None, checkpoint_epochs=(2, 4),
         precision="fp32"):
    teacher, student = _net(seed=1), _net(seed=2)
    T.train_student(student, teacher, _images(24), target="logit", epochs=epochs, lr=1e-3,
                    batch_size=8, augment=True, noise_std=0.1, checkpoint_dir=checkpoint_dir,
                    checkpoint_epochs=checkpoint_epochs, on_checkpoint=on_checkpoint,
                    generator=torch.Generator().manual_seed(3), progress=False,
                    precision=precision)
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

    t._run(sys.argv[1], on_checkpoint=die, precision=sys.argv[2])
""")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sigkilled_process_resumes_to_identical_weights(tmp_path, precision):
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "TSR_REPO": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "ck"), precision],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    assert not any(p.name.startswith(".") for p in (tmp_path / "ck").iterdir())  # no temp files
    resumed, straight = _run(tmp_path / "ck", precision=precision), _run(None, precision=precision)
    assert _same(resumed, straight)
    assert all(v.dtype == torch.float32 for v in resumed.values())  # bf16 autocast: fp32 weights
    if precision == "bf16":  # the variant did run in bf16: its weights are not the fp32 run's
        assert not _same(straight, _run(None))


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
    hist = T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=4,
                           precision="bf16", channels_last=True,
                           generator=torch.Generator().manual_seed(0), progress=False)
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


# -- precision and memory format -----------------------------------------------------------------

def _conv_outputs(model, seen):
    """Record every output of ``model``'s first conv (dtype and layout of an activation)."""
    return model.convs[0].register_forward_hook(lambda m, i, out: seen.append(out.detach()))


@pytest.mark.parametrize("adversarial", [None, dict(norm="linf", eps=8 / 255, alpha=0.01,
                                                    steps=1)])
@pytest.mark.parametrize("flags, precision, dtype", [
    (frozenset({"avx512_bf16"}), "auto", torch.bfloat16),  # native bf16: auto is bf16
    (frozenset(), "auto", torch.float32),                  # none: auto falls back to fp32
    (frozenset({"avx512_bf16"}), "fp32", torch.float32),
    (frozenset(), "bf16", torch.bfloat16),                 # asked for: honoured anyway
])
def test_precision_sets_the_dtype_of_activations(monkeypatch, flags, precision, dtype,
                                                 adversarial, tiny_cifar):
    from tsrobust import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    teacher, student = _net(seed=1), _net(seed=2)
    seen = []
    hooks = [_conv_outputs(student, seen), _conv_outputs(teacher, seen)]
    T.train_student(student, teacher, _images(8), epochs=1, lr=1e-3, batch_size=4,
                    adversarial=adversarial, precision=precision,
                    generator=torch.Generator().manual_seed(0), progress=False)
    for h in hooks:
        h.remove()
    # every forward pass (teacher targets, attack steps, student steps) ran in that precision
    assert len(seen) >= 3 and {a.dtype for a in seen} == {dtype}
    assert all(p.dtype == torch.float32 for p in student.parameters())
    data = tiny_cifar(n_train=8, n_test=4)
    seen.clear()
    net = _net(seed=4)
    hook = _conv_outputs(net, seen)
    T.train_teacher(net, data, epochs=1, lr=1e-3, batch_size=4, augment=False,
                    precision=precision, generator=torch.Generator().manual_seed(0),
                    progress=False)
    hook.remove()
    assert seen and {a.dtype for a in seen} == {dtype}


def test_unknown_precision_is_refused(tiny_cifar):
    teacher, student = _net(seed=1), _net(seed=2)
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\)"):
        T.train_student(student, teacher, _images(4), epochs=1, lr=1e-3, batch_size=4,
                        precision="fp16", generator=torch.Generator().manual_seed(0),
                        progress=False)
    with pytest.raises(ValueError, match="precision must be one of"):
        T.train_teacher(_net(), tiny_cifar(8, 4), epochs=1, lr=1e-3, batch_size=4,
                        augment=False, precision=True,
                        generator=torch.Generator().manual_seed(0), progress=False)


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_flag_sets_the_layout_of_activations(channels_last, tiny_cifar):
    """Checked with augmentation on, whose resampling returns NCHW batches."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    teacher, student = _net(seed=1), _net(seed=2)
    seen = []
    hook = _conv_outputs(student, seen)
    T.train_student(student, teacher, _images(8), epochs=1, lr=1e-3, batch_size=4, augment=True,
                    adversarial=dict(norm="linf", eps=8 / 255, alpha=0.01, steps=1),
                    channels_last=channels_last, generator=torch.Generator().manual_seed(0),
                    progress=False)
    hook.remove()
    assert len(seen) == 4 and all(a.is_contiguous(memory_format=fmt) for a in seen)
    seen.clear()
    net = _net(seed=4)
    hook = _conv_outputs(net, seen)
    inputs = []
    hook_in = net.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    T.train_teacher(net, tiny_cifar(8, 4), epochs=1, lr=1e-3, batch_size=4, augment=True,
                    channels_last=channels_last, generator=torch.Generator().manual_seed(0),
                    progress=False)
    hook.remove(), hook_in.remove()
    assert seen and all(a.is_contiguous(memory_format=fmt) for a in seen)
    assert all(x.is_contiguous(memory_format=fmt) for x in inputs)  # the batches themselves


def test_one_cycle_schedule_by_hand():
    at = T.one_cycle_lr(1.0, 8)  # warm-up over round(0.25 · 8) = 2 epochs
    assert at(1) == pytest.approx(0.5) and at(2) == pytest.approx(1.0)
    assert at(3) == pytest.approx(0.5 * (1 + math.cos(math.pi / 7)))
    assert at(8) == pytest.approx(0.5 * (1 + math.cos(6 * math.pi / 7))) and at(8) > 0
    assert max(at(e) for e in range(1, 9)) == at(2)
    assert T.one_cycle_lr(0.1, 1)(1) == pytest.approx(0.1)


def test_unknown_schedule_is_refused(tiny_cifar):
    with pytest.raises(ValueError, match="schedule must be one of"):
        T.train_teacher(_net(), tiny_cifar(8, 4), epochs=1, lr=1e-3, batch_size=4,
                        augment=False, schedule="step", generator=torch.Generator())
