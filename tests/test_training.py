"""tsrobust.training: losses, teacher and student training, kill-and-resume, recorded weights.
Tiny synthetic tensors only."""

from __future__ import annotations

import functools
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tsrobust import training as T
from tsrobust.models import ConvNet

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


def test_adversarial_training_feeds_the_adversarial_batch_to_both_nets(monkeypatch):
    """The student's step and the teacher's target both see the batch PGD returned (not the
    clean one), and at the same weights the adversarial loss exceeds the clean loss."""
    from tsrobust import attacks

    teacher, student = _net(seed=1), _net(seed=2)
    x = _images(8)
    made, fed, attacking = [], {"student": [], "teacher": []}, []
    real = attacks.pgd

    def pgd(*args, **kwargs):
        attacking.append(True)
        try:
            made.append(real(*args, **kwargs))
        finally:
            attacking.pop()
        return made[-1]

    def recorder(name):  # inputs of the passes outside the attack
        return lambda module, args: None if attacking else fed[name].append(args[0].detach())

    monkeypatch.setattr(attacks, "pgd", pgd)
    hooks = [student.register_forward_pre_hook(recorder("student")),
             teacher.register_forward_pre_hook(recorder("teacher"))]
    adv = dict(norm="linf", eps=8 / 255, alpha=2 / 255, steps=3)
    T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=4, adversarial=adv,
                    generator=torch.Generator().manual_seed(0), progress=False)
    for h in hooks:
        h.remove()
    assert len(made) == 2 and all((m - xi).abs().amax() > 0 for m in made for xi in x)
    for name, inputs in fed.items():
        assert len(inputs) == 2 and all(torch.equal(a, m) for a, m in zip(inputs, made)), name
    # at lr 0 the weights do not move: one batch of 8, the loss at the same weights
    losses = {}
    for mode in (None, dict(adv, eps=0.1, alpha=0.03, steps=5)):
        net = _net(seed=2)
        losses[mode is None] = T.train_student(
            net, teacher, x, epochs=1, lr=0.0, batch_size=8, adversarial=mode,
            generator=torch.Generator().manual_seed(0), progress=False)["loss"][0]
    assert losses[False] > 1.2 * losses[True], losses


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


# -- a process killed anywhere resumes where it stopped -----------------------------------------

EPOCHS, BATCHES = 4, 3
"""The run of :func:`_run`: 4 epochs of 24 images in batches of 8."""
KILL_SEED = 12
"""Kill points are drawn from a generator seeded with this (and the test's parameters): any
batch, any write, and a failure reproduces."""
KILL_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    torch.set_num_threads(1)  # as the resumed run in the test process
    import test_training  # tests/ and the package under test are on PYTHONPATH
    test_training.run_until_killed(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
""")


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def run_until_killed(folder, where: str, at: int, precision: str):
    """Run :func:`_run` in this (child) process and SIGKILL it at occasion ``at`` of ``where``:
    ``"batch"``: as batch ``at`` of the process is drawn (mid-epoch: the epoch's earlier steps
    are lost); ``"write"``: inside :func:`tsrobust.io.atomic_write`, the ``at``-th ``torch.save``
    having left its temporary half-written."""
    count = itertools.count(1)
    if where == "batch":
        draw = T.batches

        def batches(*args, **kwargs):
            for idx in draw(*args, **kwargs):
                if next(count) == at:
                    _die()
                yield idx

        T.batches = batches
    elif where == "write":
        save = torch.save

        def half_save(obj, f, *args, **kwargs):
            save(obj, f, *args, **kwargs)
            if next(count) == at:
                blob = Path(f).read_bytes()
                Path(f).write_bytes(blob[: len(blob) // 2])
                _die()

        torch.save = half_save
    _run(folder, precision=precision)
    sys.exit(f"the run finished: {where} {at} never came")


def _writes(after: int) -> int:
    """``torch.save`` calls of :func:`_run` resumed after epoch ``after``: the state every epoch,
    the weights at checkpoint epochs 2 and 4."""
    return sum(1 + (e in (2, 4)) for e in range(after + 1, EPOCHS + 1))


@functools.cache
def _straight(precision: str) -> dict:
    return _run(None, precision=precision)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_sigkilled_process_resumes_to_identical_weights(tmp_path, monkeypatch, precision):
    """A run SIGKILLed mid-epoch at a random batch, then, resumed, killed again inside a random
    write, resumes after its last saved epoch — it trains only the epochs after it (a restart
    from scratch would reach the same weights, so the work is counted) — deletes the temporary of
    the killed write, and ends with the uninterrupted run's weights."""
    rng = random.Random(f"{KILL_SEED}-{precision}")
    folder = tmp_path / "ck"
    path = [str(Path(T.__file__).resolve().parents[1]), str(Path(__file__).resolve().parent),
            os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}

    def killed(where, at) -> int:
        proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(folder), where, str(at),
                               precision], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr  # killed, not finished
        temporaries = [p.name for p in folder.iterdir() if p.name.startswith(".")]
        assert bool(temporaries) == (where == "write"), temporaries  # a killed write leaves one
        return torch.load(folder / T.STATE_FILE, weights_only=True)["epoch"]

    # a batch of epochs 2-4 other than an epoch's first: mid-epoch, after a saved epoch
    at = rng.choice([k for k in range(BATCHES + 1, EPOCHS * BATCHES + 1) if (k - 1) % BATCHES])
    saved = killed("batch", at)
    assert saved == (at - 1) // BATCHES  # every finished epoch was saved, the killed one lost
    saved = killed("write", rng.randint(1, _writes(saved)))
    assert 1 <= saved < EPOCHS
    drawn = []
    draw = T.batches

    def counting(*args, **kwargs):
        for idx in draw(*args, **kwargs):
            drawn.append(len(idx))
            yield idx

    monkeypatch.setattr(T, "batches", counting)
    resumed = _run(folder, precision=precision)
    assert len(drawn) == (EPOCHS - saved) * BATCHES  # the saved epochs are not trained again
    assert not any(p.name.startswith(".") for p in folder.iterdir())  # the temporary is gone
    monkeypatch.undo()
    straight = _straight(precision)
    assert _same(resumed, straight)
    assert all(v.dtype == torch.float32 for v in resumed.values())  # bf16 autocast: fp32 weights
    if precision == "bf16":  # the variant did run in bf16: its weights are not the fp32 run's
        assert not _same(straight, _straight("fp32"))


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
    # the flags change the arithmetic: the same run in fp32 (NCHW) has another loss
    fp32 = T.train_student(_net(seed=2), teacher, x, epochs=1, lr=1e-3, batch_size=4,
                           precision="fp32", channels_last=False,
                           generator=torch.Generator().manual_seed(0), progress=False)
    assert math.isfinite(fp32["loss"][0]) and fp32["loss"][0] != hist["loss"][0]


def test_global_rng_untouched_by_training(tmp_path, tiny_cifar):
    torch.manual_seed(1234)  # any state but the one a stray manual_seed(0) would set
    state = torch.random.get_rng_state()
    log = []
    _run(tmp_path / "ck", epochs=2, checkpoint_epochs=(1, 2),
         on_checkpoint=lambda e, s: log.append(e))
    _run(tmp_path / "ck", epochs=2, checkpoint_epochs=(1, 2),
         on_checkpoint=lambda e, s: log.append(e))  # replays from saved weights
    assert log == [1, 2, 1, 2]
    assert torch.equal(torch.random.get_rng_state(), state)
    # adversarial training (its random starts), label targets, the teacher with augmentation
    T.train_student(_net(seed=2), _net(seed=1), _images(8), target="label", epochs=1, lr=1e-3,
                    batch_size=4, adversarial=dict(norm="l2", eps=0.5, alpha=0.1, steps=1),
                    generator=torch.Generator().manual_seed(0), progress=False)
    T.train_teacher(_net(seed=4), tiny_cifar(8, 4), epochs=1, lr=1e-3, batch_size=4,
                    augment=True, generator=torch.Generator().manual_seed(0), progress=False)
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
    seen, inputs = [], []
    hooks = [_conv_outputs(student, seen)] + [
        net.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
        for net in (student, teacher)]
    T.train_student(student, teacher, _images(8), epochs=1, lr=1e-3, batch_size=4, augment=True,
                    adversarial=dict(norm="linf", eps=8 / 255, alpha=0.01, steps=1),
                    channels_last=channels_last, generator=torch.Generator().manual_seed(0),
                    progress=False)
    for h in hooks:
        h.remove()
    assert len(seen) == 4 and all(a.is_contiguous(memory_format=fmt) for a in seen)
    # the batches both nets see (the attack's and the step's), not only what the weights make
    assert len(inputs) == 8 and all(x.is_contiguous(memory_format=fmt) for x in inputs)
    # and the nets' own weights (a channels-last batch alone makes channels-last activations)
    assert all(net.convs[0].weight.is_contiguous(memory_format=fmt) for net in (student, teacher))
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
    assert net.convs[0].weight.is_contiguous(memory_format=fmt)


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


def test_checkpoint_of_another_device_type_is_refused_with_a_message(tmp_path):
    """A checkpoint written on a GPU (its generator state is CUDA's) cannot resume on the CPU:
    the run key holds the device type, so the resume stops with a message, not a bare error in
    ``Generator.set_state``. Planted here by rewriting the key of a CPU checkpoint."""
    folder = tmp_path / "ck"
    _run(folder, epochs=2, checkpoint_epochs=())
    state = torch.load(folder / T.STATE_FILE, weights_only=True)
    assert state["run_key"]["device"] == "cpu"
    state["run_key"]["device"] = "cuda"
    torch.save(state, folder / T.STATE_FILE)
    with pytest.raises(T.CheckpointError, match="other settings.*'device': 'cuda'"):
        _run(folder, epochs=2, checkpoint_epochs=())
    state["run_key"]["device"] = "cpu"  # the same checkpoint, its own device: resumes
    torch.save(state, folder / T.STATE_FILE)
    _run(folder, epochs=2, checkpoint_epochs=())


@pytest.mark.parametrize("select", ["in", "out"])
def test_in_out_adversarial_training_feeds_the_selected_run(monkeypatch, select):
    """With select="in" ("out") the student's step and the teacher's target see x_in (x_out) of
    attacks.pgd_in_out, on that batch, with the basis given."""
    from tsrobust import attacks

    teacher, student = _net(seed=1), _net(seed=2)
    x = _images(8)
    basis = torch.linalg.qr(torch.randn(27, 27, generator=torch.Generator().manual_seed(0),
                                        dtype=torch.float64))[0][:, :17]
    made, fed, attacking = [], {"student": [], "teacher": []}, []
    real = attacks.pgd_in_out

    def pgd_in_out(objective, xb, u, **kwargs):
        assert u is basis and kwargs["how"] == "share"
        attacking.append(True)
        try:
            made.append(real(objective, xb, u, **kwargs))
        finally:
            attacking.pop()
        return made[-1]

    def recorder(name):
        return lambda module, args: None if attacking else fed[name].append(args[0].detach())

    monkeypatch.setattr(attacks, "pgd_in_out", pgd_in_out)
    hooks = [student.register_forward_pre_hook(recorder("student")),
             teacher.register_forward_pre_hook(recorder("teacher"))]
    adv = dict(norm="linf", eps=8 / 255, alpha=2 / 255, steps=2, select=select,
               distance="share")
    T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=4, adversarial=adv,
                    basis=basis, generator=torch.Generator().manual_seed(0), progress=False)
    for h in hooks:
        h.remove()
    k = 0 if select == "in" else 1
    assert len(made) == 2 and any(not torch.equal(m[0], m[1]) for m in made)
    for name, inputs in fed.items():
        assert len(inputs) == 2 and all(torch.equal(a, m[k]) for a, m in zip(inputs, made)), name


def test_in_out_adversarial_training_checks_its_keys():
    teacher, student, x = _net(seed=1), _net(seed=2), _images(4)
    gen = torch.Generator().manual_seed(0)
    base = dict(norm="linf", eps=8 / 255, alpha=0.01, steps=1)
    for bad in (dict(base, select="in"), dict(base, select="both", distance="mean"),
                dict(base, norm="l2", select="in", distance="mean")):
        with pytest.raises(ValueError):
            T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=4,
                            adversarial=bad, basis=torch.eye(27, dtype=torch.float64)[:, :17],
                            generator=gen, progress=False)
    with pytest.raises(ValueError, match="basis"):
        T.train_student(student, teacher, x, epochs=1, lr=1e-3, batch_size=4,
                        adversarial=dict(base, select="in", distance="mean"), generator=gen,
                        progress=False)


# -- classifier on data labels (source C) -------------------------------------------------------

from tsrobust import attacks as A  # noqa: E402
from tsrobust.models import ResNet18  # noqa: E402


def _resnet(seed=0, width=2):
    return ResNet18(width=width, generator=torch.Generator().manual_seed(seed))


def _labelled(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_step_lr_and_scaled_milestones_by_hand():
    at = T.step_lr(0.1, (100, 150))
    assert [at(e) for e in (1, 100, 101, 150, 151, 200)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert T.scaled_milestones(200) == (100, 150)  # A.2
    assert T.scaled_milestones(10) == (5, 8) and T.scaled_milestones(40) == (20, 30)
    with pytest.raises(ValueError, match="epochs must be"):
        T.scaled_milestones(-1)


def test_classifier_uses_the_recipe_of_source_c(tmp_path):
    """SGD momentum 0.9, weight decay 2e-4, the step schedule scaled to the run (4 epochs:
    milestones 2 and 3), batches of the given size; the resume state records it all."""
    x, y = _labelled()
    hist = T.train_classifier(_resnet(), x, y, epochs=4, batch_size=8, augment=True,
                              generator=torch.Generator().manual_seed(0), progress=False,
                              checkpoint_dir=tmp_path)
    assert hist["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    state = torch.load(tmp_path / T.STATE_FILE, weights_only=True)
    group = state["optimizer"]["param_groups"][0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 2e-4
    assert state["run_key"]["milestones"] == [2, 3] and state["run_key"]["adversarial"] is None
    assert "ResNet18(width=2" in state["run_key"]["model"]
    with pytest.raises(ValueError, match="exactly the keys"):
        T.train_classifier(_resnet(), x, y, epochs=1, adversarial=dict(eps=0.1),
                           generator=torch.Generator(), progress=False)
    with pytest.raises(ValueError, match="start"):
        T.train_classifier(_resnet(), x, y, epochs=1, adversarial={**T.PAPER_AT, "start": "x"},
                           generator=torch.Generator(), progress=False)


def test_classifier_at_attacks_in_eval_mode_and_trains_on_the_attack(monkeypatch):
    """Adversarial training: the PGD of each batch is label-based ℓ∞ PGD-10 with ε = 8/255 and
    α = 2/255 (A.2) on the model in eval mode with frozen weights; the training step then runs in
    training mode on exactly the examples it returned."""
    model = _resnet()
    x, y = _labelled(16)
    gen = torch.Generator().manual_seed(0)
    calls, forwards = [], []
    real = A.pgd

    def spy(objective, xb, **kw):
        calls.append((kw, model.training, any(p.requires_grad for p in model.parameters()),
                      all(not m.training for m in model.modules())))
        out = (xb + 0.01).clamp(0, 1)
        calls[-1] += (out,)
        return out

    monkeypatch.setattr(A, "pgd", spy)
    model.register_forward_pre_hook(lambda m, inp: forwards.append((m.training, inp[0].detach())))
    T.train_classifier(model, x, y, epochs=1, batch_size=8, augment=False,
                       adversarial=T.PAPER_AT, generator=gen, progress=False)
    assert len(calls) == 2
    for kw, training, grads, all_eval, _ in calls:
        assert kw["eps"] == 8 / 255 and kw["alpha"] == 2 / 255 and kw["steps"] == 10
        assert kw["norm"] == "linf" and kw["random_start"] and kw["generator"] is gen
        assert not training and not grads and all_eval
    trained_on = [inp for training, inp in forwards if training]
    assert len(trained_on) == 2
    assert all(torch.equal(a, c[-1]) for a, c in zip(trained_on, calls))
    assert model.training and all(p.requires_grad for p in model.parameters())
    monkeypatch.setattr(A, "pgd", real)


def test_label_pgd_leaves_batchnorm_statistics_and_mode_alone():
    model = _resnet().train()
    x, y = _labelled(8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adv = T.label_pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=3, start="uniform",
                      generator=torch.Generator().manual_seed(0))
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert _same(before, model.state_dict())  # running statistics untouched
    assert float((adv - x).abs().max()) <= 8 / 255 + 1e-6 and not torch.equal(adv, x)


def test_label_pgd_starts():
    model = _resnet().eval()
    x, y = _labelled(4)

    def start(kind, seed=0):
        return T.label_pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=0, start=kind,
                           generator=torch.Generator().manual_seed(seed))

    assert torch.equal(start("none"), x)
    small = start("small") - x
    assert 0 < float(small.abs().max()) < 6 * T.SMALL_START_STD  # 0.001·N(0, I), clipped
    assert float(small.std()) == pytest.approx(T.SMALL_START_STD, rel=0.2)
    uniform = start("uniform") - x
    assert float(uniform.abs().max()) <= 8 / 255 and float(uniform.std()) > 0.003
    assert not torch.equal(start("uniform", 1), start("uniform", 2))
    # one step from "none" is the deterministic PGD step
    one = T.label_pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=1, start="none",
                      generator=torch.Generator())
    with A.frozen(model):
        want = A.pgd(A.ce_objective(model, y), x, eps=8 / 255, alpha=2 / 255, steps=1,
                     random_start=False)
    assert torch.equal(one, want)
    with pytest.raises(ValueError, match="start must be"):
        start("gaussian")


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_classifier_precision_reaches_training_and_attack(precision, dtype):
    model = _resnet()
    x, y = _labelled(8)
    seen = []
    model.conv1.register_forward_hook(lambda m, i, o: seen.append((model.training, o.dtype)))
    T.train_classifier(model, x, y, epochs=1, batch_size=8, augment=False,
                       adversarial={**T.PAPER_AT, "steps": 1}, precision=precision,
                       generator=torch.Generator().manual_seed(0), progress=False)
    assert {d for _, d in seen} == {dtype}
    assert {t for t, _ in seen} == {False, True}  # the attack's passes and the training step
    assert all(v.dtype == torch.float32 for v in model.state_dict().values()
               if v.is_floating_point())


CLASSIFIER_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    import test_training
    test_training.classifier_run(sys.argv[1], kill_at=int(sys.argv[2]))
    sys.exit("the run finished: the kill never came")
""")


def classifier_run(folder, kill_at=None):
    """A short adversarial ResNet-18 run (3 epochs, PGD-2, crop + flip), SIGKILLed after the
    state of epoch ``kill_at`` is saved. Returns the final weights."""
    def die(epoch, model):
        if epoch == kill_at:
            _die()

    model = _resnet(seed=1)
    x, y = _labelled(24)
    T.train_classifier(model, x, y, epochs=3, batch_size=8, augment=True,
                       adversarial={**T.PAPER_AT, "steps": 2}, checkpoint_dir=folder,
                       checkpoint_epochs=(1, 2, 3), on_checkpoint=die,
                       generator=torch.Generator().manual_seed(2), progress=False)
    return _weights(model)


def test_classifier_killed_and_resumed_ends_with_identical_weights(tmp_path):
    folder = tmp_path / "ck"
    path = [str(Path(T.__file__).resolve().parents[1]), str(Path(__file__).resolve().parent),
            os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    proc = subprocess.run([sys.executable, "-c", CLASSIFIER_KILL_SCRIPT, str(folder), "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert torch.load(folder / T.STATE_FILE, weights_only=True)["epoch"] == 2
    resumed = classifier_run(folder)
    straight = classifier_run(None)
    assert _same(resumed, straight)
    assert not _same(straight, _weights(_resnet(seed=1)))  # it did train


# -- distillation from fixed targets (source C A.3, Fig. A.7) ----------------------------------

def _targets(n=16, seed=3):
    return torch.randn(n, 10, generator=torch.Generator().manual_seed(seed)) * 3


def test_distillation_losses_by_hand():
    s = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    t = torch.tensor([[0.0, 2.0, 3.0], [1.0, -1.0, 0.0]])
    # L1: mean |s − t| over the 6 entries = (1 + 0 + 3 + 1 + 1 + 0) / 6
    assert float(T.distillation_loss(s, t, "l1")) == pytest.approx(1.0)
    # KL(softmax(t) ‖ softmax(s)) per row, averaged over the 2 rows
    def kl_row(sr, tr):
        p = [math.exp(v) / sum(math.exp(u) for u in tr) for v in tr]
        q = [math.exp(v) / sum(math.exp(u) for u in sr) for v in sr]
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    want = (kl_row(s[0].tolist(), t[0].tolist()) + kl_row(s[1].tolist(), t[1].tolist())) / 2
    assert float(T.distillation_loss(s, t, "kl")) == pytest.approx(want, rel=1e-6)
    assert float(T.distillation_loss(t, t, "kl")) == pytest.approx(0.0, abs=1e-7)
    # KL sees only the softmax: a constant added to a row changes nothing; L1 sees it
    assert float(T.distillation_loss(s, s + 5, "kl")) == pytest.approx(0.0, abs=1e-6)
    assert float(T.distillation_loss(s, s + 5, "l1")) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="loss must be"):
        T.distillation_loss(s, t, "mse")
    with pytest.raises(ValueError, match="one shape"):
        T.distillation_loss(s, t[:1], "kl")


@pytest.mark.parametrize("loss", ["l1", "kl"])
def test_distillation_history_is_the_loss_to_the_targets(loss):
    """With lr 0 (weights unchanged) and one batch, the epoch's loss is the distillation loss of
    the training-mode outputs (batch statistics) against the targets."""
    import copy
    model = _resnet(seed=4)
    x, y = _labelled(16)
    t = _targets(16)
    with torch.no_grad():
        want = float(T.distillation_loss(copy.deepcopy(model).train()(x), t, loss))
    hist = T.train_classifier(model, x, y, epochs=1, lr=0.0, batch_size=16, augment=False,
                              targets=t, loss=loss, generator=torch.Generator().manual_seed(0),
                              progress=False)
    assert hist["loss"][0] == pytest.approx(want, rel=1e-4)


def test_distillation_fits_each_image_to_its_own_fixed_row(monkeypatch):
    """Every batch is fit to the target rows of exactly its images (not the first rows, not
    a reshuffled copy), epoch after epoch."""
    n = 12
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 32, 32) / n
    y = torch.zeros(n, dtype=torch.long)
    t = _targets(n)
    model = _resnet()
    seen_x, seen_t = [], []
    model.register_forward_pre_hook(
        lambda m, inp: seen_x.append(inp[0].detach().clone()) if m.training else None)
    real = T.distillation_loss

    def spy(s, tb, loss):
        seen_t.append(tb.detach().clone())
        return real(s, tb, loss)

    monkeypatch.setattr(T, "distillation_loss", spy)
    T.train_classifier(model, x, y, epochs=2, batch_size=5, augment=False, targets=t, loss="l1",
                       generator=torch.Generator().manual_seed(0), progress=False)
    assert len(seen_x) == len(seen_t) == 2 * 3
    for xb, tb in zip(seen_x, seen_t):
        rows = (xb[:, 0, 0, 0] * n).round().long()
        assert torch.equal(tb, t[rows])


def test_distillation_augments_with_crop_and_flip_only(monkeypatch):
    """A.3: the student sees crop + flip augmented images (no rotation) against fixed targets."""
    calls = []
    real = T.augment_images

    def spy(xb, gen, **kw):
        calls.append(kw)
        return real(xb, gen, **kw)

    monkeypatch.setattr(T, "augment_images", spy)
    x, y = _labelled(8)
    T.train_classifier(_resnet(), x, y, epochs=1, batch_size=8, targets=_targets(8), loss="l1",
                       generator=torch.Generator().manual_seed(0), progress=False)
    assert calls and all(kw.get("rotation_deg") == 0.0 for kw in calls)


def test_distillation_resumed_after_a_crash_ends_with_identical_weights(tmp_path):
    x, y = _labelled(16)
    t = _targets(16)

    def run(folder, crash_at=None):
        def on_cp(epoch, m):
            if epoch == crash_at:
                raise KeyboardInterrupt  # killed after the epoch's state was written

        model = _resnet(seed=5)
        T.train_classifier(model, x, y, epochs=3, batch_size=8, targets=t, loss="kl",
                           checkpoint_dir=folder, checkpoint_epochs=(1, 2, 3),
                           on_checkpoint=on_cp, generator=torch.Generator().manual_seed(6),
                           progress=False)
        return _weights(model)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck", crash_at=2)
    assert torch.load(tmp_path / "ck" / T.STATE_FILE, weights_only=True)["epoch"] == 2
    resumed, straight = run(tmp_path / "ck"), run(None)
    assert _same(resumed, straight)
    assert not _same(straight, _weights(_resnet(seed=5)))
    # the state names its targets: other targets (or another loss) do not resume it
    with pytest.raises(T.CheckpointError, match="other settings"):
        T.train_classifier(_resnet(seed=5), x, y, epochs=3, batch_size=8, targets=t + 1,
                           loss="kl", checkpoint_dir=tmp_path / "ck",
                           generator=torch.Generator().manual_seed(6), progress=False)


def test_distillation_bad_input_fails_fast():
    x, y = _labelled(8)
    gen = torch.Generator()
    bad = [
        (dict(targets=_targets(8)), "loss='l1' or loss='kl'"),
        (dict(loss="l1"), "pass targets"),
        (dict(loss="mse", targets=_targets(8)), "loss must be"),
        (dict(loss="l1", targets=_targets(7)), r"float tensor \[8, classes\]"),
        (dict(loss="l1", targets=_targets(8).long()), "float tensor"),
        (dict(loss="l1", targets=_targets(8)[:, :, None]), "float tensor"),
        (dict(loss="l1", targets=torch.full((8, 10), float("nan"))), "NaN"),
        (dict(loss="kl", targets=_targets(8), adversarial=T.PAPER_AT), "clean images"),
    ]
    for kw, msg in bad:
        with pytest.raises(ValueError, match=msg):
            T.train_classifier(_resnet(), x, y, epochs=1, generator=gen, progress=False, **kw)
