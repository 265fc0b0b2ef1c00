"""The resumable training loop of the oracle teacher and its students (source A §5.1, §5.4–5.5).

- :func:`train_teacher`: a teacher on CIFAR-10 labels (cross-entropy), SGD with momentum or Adam,
  cosine schedule.
- :func:`train_student`: a student fit to a teacher — *logit* training (squared ℓ2 distance
  between student and teacher logits) or *label* training (cross-entropy to the teacher's argmax),
  optionally on augmented (§5.4) or noisy (§5.5, σ = 0.1) inputs, or on oracle-adversarial
  examples (Eq. 3, teacher-target: the student is fit to f*(x′) where x′ maximizes the ℓ2 distance
  between the two nets' logits inside an ε-ball), or by confidence-calibrated adversarial training
  (§5.6, :mod:`tsrobust.ccat`: soft labels that fade with the perturbation's size).
- :func:`train_classifier`: a classifier on data labels with source C's recipe (A.2: SGD,
  step schedule, crop + flip), standard or adversarially trained with label-based ℓ∞ PGD
  (:func:`label_pgd`), or distilled on clean images from fixed per-image target logits (A.3:
  the L1 logit loss, or KL on the softmax for Fig. A.7; :func:`distillation_loss`).
- :func:`predict`, :func:`accuracy`, :func:`agreement_rate`: evaluation without gradients.
- :func:`model_arrays` / :func:`model_from_arrays` / :func:`model_digest`: weights as named
  arrays for a recorded result, and a short hash that identifies them.

Source A gives no optimizer, learning rate, batch size or schedule; they are arguments here,
set by the callers. A student trained at a constant learning rate makes its
checkpoint at epoch 50 of a 300-epoch run *a student trained for 50 epochs*, as in Tables 1 and 3.

Runs are resumable: with ``checkpoint_dir``, the full training state (weights, optimizer, the
generator's state, history) is written atomically after every epoch, and a killed run started
again with the same arguments continues after its last completed epoch (the epochs before it are
not trained again) and ends with the same weights as an uninterrupted run (deterministic on CPU).
A run killed mid-epoch loses that epoch's work; one killed inside a write leaves a hidden
temporary file, which the next start deletes (:func:`tsrobust.io.remove_temporaries`). Data stay on the device; the batch loop has no host
synchronisation (losses are summed on the device and read once per epoch). Nets and data are
channels-last on a CPU and with bf16 on a GPU (:func:`tsrobust.runtime.channels_last`;
``channels_last=False`` for NCHW; ``python -m tsrobust.bench`` measures the difference), and ``precision`` (``"auto"``, ``"fp32"``, ``"bf16"``;
:func:`tsrobust.runtime.resolve_precision`) sets the arithmetic of the forward passes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import pickle
import shutil
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tsrobust import attacks, ccat as ccat_lib, logits as logits_lib, results, runtime
from tsrobust.data import (
    CIFAR10,
    CROP_PADDING,
    ROTATION_DEG,
    augment as augment_images,
    batches,
)
from tsrobust.io import atomic_write, remove_temporaries
from tsrobust.models import ConvNet
from tsrobust.runtime import choose_device

TARGETS = ("logit", "label")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "onecycle")
"""Learning-rate schedules of :func:`train_teacher` (:func:`cosine_lr`, :func:`one_cycle_lr`)."""
ONE_CYCLE_WARMUP = 0.25
"""Share of the epochs over which :func:`one_cycle_lr` warms up."""
MOMENTUM = 0.9
"""Momentum of SGD."""
STATE_FILE = "last.pt"
"""The resume state in a checkpoint folder; ``epoch_NNNN.pt`` hold the weights at checkpoints."""
EVAL_BATCH = 1000
"""Images per forward pass when evaluating (no gradients)."""
ADVERSARIAL_KEYS = ("norm", "eps", "alpha", "steps")
ADVERSARIAL_SPLIT_KEYS = ("select", "distance")
"""Optional keys of ``adversarial``: train on the in-plane or out-of-plane one of two PGD runs
(source A §5.4, Table 2; :func:`tsrobust.attacks.pgd_in_out`)."""
SELECTS = ("in", "out")


class CheckpointError(RuntimeError):
    """A checkpoint folder holds a state that cannot be resumed."""


def make_optimizer(name: str, params, *, lr: float, weight_decay: float = 0.0):
    """``"sgd"`` (momentum 0.9) or ``"adam"`` (PyTorch's default betas), with weight decay."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


# -- generic loop ----------------------------------------------------------------------------

def _check_epochs(epochs, checkpoint_epochs) -> tuple[int, ...]:
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an int ≥ 0, got {epochs!r}")
    cps = tuple(sorted(set(int(e) for e in checkpoint_epochs)))
    bad = [e for e in cps if not 1 <= e <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs {bad} are outside 1..{epochs} (the training epochs)")
    return cps


def _load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError,
            zipfile.BadZipFile, AttributeError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}: {first}). Delete "
            f"it (or its folder {path.parent}) and run again to start this training from scratch."
        ) from err


def _save_state(path: Path, state: dict):
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def _weights_cpu(model) -> dict:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _fit(model: ConvNet, batch_loss: Callable, *, n: int, epochs: int, batch_size: int,
         lr_at: Callable[[int], float], optimizer: str, weight_decay: float,
         generator: torch.Generator,
         device, checkpoint_dir, checkpoint_epochs, on_checkpoint, run_key: dict,
         progress: bool, desc: str) -> dict:
    """The epoch loop shared by teacher and students.

    ``batch_loss(idx)`` returns ``(mean loss, number of correct predictions or None)`` for the
    index batch, with the graph attached. The loop owns the optimizer, the learning rate of each
    epoch, the history, the resume state and the checkpoint callbacks.
    """
    from tqdm.auto import tqdm

    cps = _check_epochs(epochs, checkpoint_epochs)
    # The device type is part of the run: a CUDA generator state cannot be restored into a CPU
    # generator (or back), so a run moved between them must start afresh, with a clear message.
    run_key = {**run_key, "device": choose_device(device).type}
    opt = make_optimizer(optimizer, model.parameters(), lr=lr_at(1), weight_decay=weight_decay)
    history = {"epoch": [], "loss": [], "accuracy": [], "lr": []}
    start = 0
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None:
        remove_temporaries(folder)  # half-written files of a run killed inside a write
    if folder is not None and (folder / STATE_FILE).exists():
        state = _load_state(folder / STATE_FILE)
        if state.get("run_key") != run_key:
            raise CheckpointError(
                f"{folder / STATE_FILE} was written by a run with other settings "
                f"({state.get('run_key')} ≠ {run_key}); delete {folder} to start afresh, or "
                f"pass another checkpoint_dir"
            )
        if state["epoch"] > epochs:
            raise CheckpointError(
                f"{folder / STATE_FILE} is at epoch {state['epoch']}, beyond the {epochs} epochs "
                f"asked for; delete {folder} or ask for more epochs"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history = state["history"]
        start = state["epoch"]
        if on_checkpoint is not None:  # replay the measurements of checkpoints already passed
            for e in (e for e in cps if e <= start):
                replay = copy.deepcopy(model)  # any architecture; its weights are replaced
                replay.load_state_dict(_load_state(folder / f"epoch_{e:04d}.pt"))
                on_checkpoint(e, replay.eval())
    was_training = model.training
    bar = tqdm(range(start + 1, epochs + 1), desc=desc, disable=not progress,
               initial=start, total=epochs)
    for epoch in bar:
        lr = lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        total = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        counted = False
        for idx in batches(n, batch_size, generator, device):
            loss, right = batch_loss(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().float() * len(idx)
            if right is not None:
                correct += right
                counted = True
        history["epoch"].append(epoch)
        history["loss"].append(float(total) / n)  # the one host sync of the epoch
        history["accuracy"].append(float(correct) / n if counted else float("nan"))
        history["lr"].append(lr)
        bar.set_postfix(loss=f"{history['loss'][-1]:.4g}")
        if folder is not None:
            if epoch in cps:
                _save_state(folder / f"epoch_{epoch:04d}.pt", _weights_cpu(model))
            _save_state(folder / STATE_FILE, {
                "epoch": epoch, "run_key": run_key, "model": _weights_cpu(model),
                "optimizer": opt.state_dict(), "generator": generator.get_state(),
                "history": history,
            })
        if epoch in cps and on_checkpoint is not None:
            model.eval()
            on_checkpoint(epoch, model)
    model.train(was_training)
    return history


def _autocast(device: torch.device, precision: str):
    """The forward passes' autocast context for ``precision`` (see
    :func:`tsrobust.runtime.autocast`): the weights and the optimizer state stay fp32."""
    return runtime.autocast(device, precision)


def _memory_format(channels_last: bool):
    """Channels-last (NHWC) or NCHW: the layout of the nets and of every batch they see."""
    return torch.channels_last if channels_last else torch.contiguous_format


@torch.no_grad()
def predict(model, x: torch.Tensor, *, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, in batches, without gradients."""
    mode = model.training
    model.eval()
    try:
        return torch.cat([model(xb) for xb in x.split(batch_size)])
    finally:
        model.train(mode)


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` whose argmax logit equals ``y``."""
    return float((predict(model, x).argmax(1) == y).float().mean())


def agreement_rate(student, teacher, x: torch.Tensor) -> float:
    """Fraction of ``x`` on which student and teacher predict the same class (in batches, without
    gradients; :func:`tsrobust.attacks.agreement` gives the per-image booleans of one batch)."""
    return float((predict(student, x).argmax(1) == predict(teacher, x).argmax(1)).float().mean())


# -- teacher ---------------------------------------------------------------------------------

def cosine_lr(lr: float, epochs: int) -> Callable[[int], float]:
    """Learning rate of epoch e (1-based): ``lr · ½(1 + cos(π (e−1)/epochs))``."""
    return lambda e: lr * 0.5 * (1 + math.cos(math.pi * (e - 1) / max(epochs, 1)))


def one_cycle_lr(lr: float, epochs: int,
                 warmup: float = ONE_CYCLE_WARMUP) -> Callable[[int], float]:
    """One-cycle schedule by epoch (Smith & Topin 2019): a linear rise to ``lr`` over the first
    ``w = max(1, round(warmup · epochs))`` epochs (``lr · e/w``), then a cosine from ``lr`` towards
    0 over the rest (the last epoch still learns: ``lr · ½(1 + cos(π (e−w)/(epochs−w+1)))``)."""
    w = max(1, round(warmup * epochs))

    def at(e: int) -> float:
        if e <= w:
            return lr * e / w
        return lr * 0.5 * (1 + math.cos(math.pi * (e - w) / (epochs - w + 1)))

    return at


def train_teacher(model: ConvNet, data: CIFAR10, *, epochs: int, lr: float, batch_size: int,
                  augment: bool, generator: torch.Generator, device="cpu",
                  optimizer: str = "sgd", weight_decay: float = 5e-4, schedule: str = "cosine",
                  rotation_deg: float = ROTATION_DEG, checkpoint_dir=None,
                  checkpoint_epochs: Iterable[int] = (),
                  on_checkpoint: Callable[[int, ConvNet], None] | None = None,
                  progress: bool = True, precision: str = "fp32",
                  channels_last: bool | None = None) -> dict:
    """Train the teacher on CIFAR-10 labels (cross-entropy), ``optimizer`` ("sgd" with momentum
    or "adam"), ``schedule`` ("cosine" or "onecycle", :data:`SCHEDULES`).

    ``augment``: random crop and flip on each batch, and a rotation of up to ``rotation_deg``
    (0: none) (:func:`tsrobust.data.augment`). ``on_checkpoint(epoch, model)`` is called at the
    ``checkpoint_epochs`` (replayed on resume, as for students). ``generator`` (on ``device``) draws the batches and the augmentation. ``precision``
    (``"fp32"``, ``"bf16"`` or ``"auto"``, see :func:`tsrobust.runtime.resolve_precision`): of the
    forward passes (bf16 autocast; weights and optimizer state stay fp32). ``channels_last``: the
    layout of the net and of every batch (augmented ones included); ``None``:
    :func:`tsrobust.runtime.channels_last` (on a CPU always, on a GPU with bf16). Returns the history (per
    epoch: mean loss, training accuracy, learning rate).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    device = choose_device(device)
    precision = runtime.resolve_precision(precision, device)
    fmt = _memory_format(runtime.channels_last(device, precision) if channels_last is None
                         else channels_last)
    model.to(device=device, memory_format=fmt)
    x = data.x_train.to(device).contiguous(memory_format=fmt)
    y = data.y_train.to(device)

    def batch_loss(idx):
        xb = x[idx]
        if augment:
            xb = augment_images(xb, generator,
                                rotation_deg=rotation_deg).contiguous(memory_format=fmt)
        with _autocast(device, precision):
            logits = model(xb)
        return F.cross_entropy(logits.float(), y[idx]), (logits.argmax(1) == y[idx]).sum()

    # "bf16": the resolved precision, under the key that runs before ``precision`` existed wrote
    # (their checkpoints stay resumable; a run resumed on a machine where "auto" means the other
    # precision is refused instead of mixing the two).
    run_key = {"kind": "teacher", "widths": list(model.widths), "n": len(x), "epochs": epochs,
               "lr": lr, "batch_size": batch_size, "augment": bool(augment),
               "optimizer": optimizer, "weight_decay": weight_decay, "schedule": schedule,
               "rotation_deg": rotation_deg, "bf16": precision == "bf16"}
    lr_at = cosine_lr(lr, epochs) if schedule == "cosine" else one_cycle_lr(lr, epochs)
    return _fit(model, batch_loss, n=len(x), epochs=epochs, batch_size=batch_size,
                lr_at=lr_at, optimizer=optimizer, weight_decay=weight_decay,
                generator=generator,
                device=device, checkpoint_dir=checkpoint_dir,
                checkpoint_epochs=checkpoint_epochs, on_checkpoint=on_checkpoint,
                run_key=run_key, progress=progress, desc="teacher")


# -- student ---------------------------------------------------------------------------------

def student_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                 target: str) -> torch.Tensor:
    """§5.1: *logit* — squared ℓ2 distance between the logit vectors, averaged over the batch;
    *label* — cross-entropy of the student's logits to the teacher's argmax."""
    if target == "logit":
        return (student_logits - teacher_logits).pow(2).sum(1).mean()
    if target == "label":
        return F.cross_entropy(student_logits, teacher_logits.argmax(1))
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def _check_adversarial(adversarial, basis=None):
    if adversarial is None:
        return None
    keys = set(adversarial) if isinstance(adversarial, dict) else set()
    split = keys & set(ADVERSARIAL_SPLIT_KEYS)
    if (not isinstance(adversarial, dict) or keys - split != set(ADVERSARIAL_KEYS)
            or split not in (set(), set(ADVERSARIAL_SPLIT_KEYS))):
        raise ValueError(
            f"adversarial must be None or a dict with exactly the keys {ADVERSARIAL_KEYS}, e.g. "
            f"dict(norm='linf', eps=10/255, alpha=0.01, steps=40), optionally with both of "
            f"{ADVERSARIAL_SPLIT_KEYS} (select 'in' or 'out', and a distance); got {adversarial!r}"
        )
    if split:
        if adversarial["select"] not in SELECTS or adversarial["norm"] != "linf":
            raise ValueError(f"select must be one of {SELECTS}, with norm 'linf'; got "
                             f"{adversarial!r}")
        if basis is None:
            raise ValueError("in-plane/out-of-plane training needs basis= (U of the patch PCA)")
    return dict(adversarial)


def _check_ccat(ccat, target: str, adversarial):
    if ccat is None:
        return None
    if not isinstance(ccat, dict) or set(ccat) != set(ccat_lib.CCAT_KEYS):
        raise ValueError(
            f"ccat must be None or a dict with exactly the keys {ccat_lib.CCAT_KEYS}, e.g. "
            f"dict(eps=10/255, alpha=0.01, steps=10, rho=10, clean_fraction=0.5, "
            f"random_radius=True); got {ccat!r}"
        )
    if adversarial is not None:
        raise ValueError("choose adversarial (oracle-adversarial AT) or ccat (CCAT), not both")
    if target != "label":
        raise ValueError("CCAT trains the cross-entropy to (soft) teacher labels: use "
                         "target='label' with ccat")
    return dict(ccat)


def train_student(student: ConvNet, teacher: ConvNet, x: torch.Tensor, *, target: str = "logit",
                  epochs: int, lr: float, batch_size: int, augment: bool = False,
                  noise_std: float = 0.0, adversarial: dict | None = None,
                  ccat: dict | None = None,
                  checkpoint_dir=None, checkpoint_epochs: Iterable[int] = (),
                  on_checkpoint: Callable[[int, ConvNet], None] | None = None,
                  generator: torch.Generator, device="cpu", progress: bool = True,
                  optimizer: str = "adam", weight_decay: float = 0.0, precision: str = "fp32",
                  channels_last: bool | None = None, resample: str = "bilinear",
                  basis: torch.Tensor | None = None) -> dict:
    """Fit ``student`` to ``teacher`` on inputs ``x`` (§5.1): the data labels are never used.

    ``target``: ``"logit"`` (ℓ2 to the teacher's logits) or ``"label"`` (cross-entropy to its
    argmax). ``augment``: crop/flip/rotation (§5.4); ``noise_std``: Gaussian input noise (§5.5);
    both applied per batch before the teacher labels it. ``adversarial``: ``dict(norm, eps,
    alpha, steps)`` → oracle-adversarial training (Eq. 3, teacher-target): each batch is replaced
    by ``tsrobust.attacks.pgd`` maximizing the ℓ2 distance between student and teacher logits
    (random start; on a CPU its gradients are taken ``attacks.cpu_chunk`` images at a time), and
    the student is fit to the teacher's output there. With the extra keys ``select`` ("in" or
    "out") and ``distance`` (:data:`tsrobust.specialization.SUBSPACE_DISTANCES`), each batch
    gets two PGD runs and the student is fit on the in-plane or out-of-plane one
    (:func:`tsrobust.attacks.pgd_in_out`, §5.4's Table 2), closer to or farther from
    span(``basis``), U of the patch PCA. ``ccat``: ``dict(eps, alpha, steps, rho,
    clean_fraction, random_radius)`` → confidence-calibrated adversarial training (§5.6; with
    ``target="label"``): each batch becomes :func:`tsrobust.ccat.ccat_batch`'s clean and
    adversarial images and the student is fit to their soft labels by cross-entropy.

    ``optimizer`` (``"adam"`` or ``"sgd"`` with momentum 0.9) at constant ``lr``. With both
    ``noise_std`` and ``adversarial``, the noisy batch is clipped to [0, 1] before the attack.
    ``on_checkpoint(epoch, student)`` is called (student
    in eval mode) at each of ``checkpoint_epochs``; it must not draw from ``generator``. With
    ``checkpoint_dir`` a killed run resumes (see the module docstring); on resume the callback is
    first replayed, in order, for the checkpoints already passed, from their saved weights.
    ``generator`` (on ``device``) draws batches, augmentation, noise and attack starts.
    ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"``): of the forward passes and of the
    attack (bf16 autocast; weights, optimizer state and the attack's perturbation stay fp32).
    ``channels_last``: the layout of both nets and of every batch (augmented ones included);
    ``None``: :func:`tsrobust.runtime.channels_last` (on a CPU always, on a GPU with bf16).
    ``resample``: how ``augment`` reads rotated images off the pixel grid (``"bilinear"`` or
    ``"nearest"``, see :func:`tsrobust.data.augment`). Returns the history (per epoch: mean
    loss, learning rate).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be ≥ 0, got {noise_std}")
    adversarial = _check_adversarial(adversarial, basis)
    ccat = _check_ccat(ccat, target, adversarial)
    device = choose_device(device)
    precision = runtime.resolve_precision(precision, device)
    fmt = _memory_format(runtime.channels_last(device, precision) if channels_last is None
                         else channels_last)
    student.to(device=device, memory_format=fmt)
    teacher.to(device=device, memory_format=fmt)
    x = x.to(device).contiguous(memory_format=fmt)
    fixed_inputs = not augment and not noise_std and adversarial is None and ccat is None
    with attacks.frozen(teacher):
        with _autocast(device, precision):
            fixed_targets = predict(teacher, x).float() if fixed_inputs else None

    def batch_loss(idx):
        xb = x[idx]
        if augment or noise_std:
            xb = augment_images(xb, generator, crop_padding=CROP_PADDING if augment else 0,
                                flip=augment, rotation_deg=ROTATION_DEG if augment else 0.0,
                                noise_std=noise_std, resample=resample
                                ).contiguous(memory_format=fmt)
        if adversarial is not None:
            student.eval()
            if noise_std:
                xb = xb.clamp(0, 1)
            if "select" in adversarial:
                x_in, x_out, _ = attacks.pgd_in_out(
                    attacks.oracle_objective(student, teacher), xb, basis,
                    eps=adversarial["eps"], alpha=adversarial["alpha"],
                    steps=adversarial["steps"], generator=generator,
                    how=adversarial["distance"], precision=precision,
                    chunk_size=attacks.cpu_chunk(xb, precision))
                xb = (x_in if adversarial["select"] == "in" else x_out).contiguous(
                    memory_format=fmt)
            else:
                xb = attacks.pgd(attacks.oracle_objective(student, teacher), xb,
                                 eps=adversarial["eps"], alpha=adversarial["alpha"],
                                 steps=adversarial["steps"], norm=adversarial["norm"],
                                 random_start=True, generator=generator, precision=precision,
                                 chunk_size=attacks.cpu_chunk(xb, precision)).detach()
            student.train()
        if ccat is not None:
            student.eval()
            if noise_std:
                xb = xb.clamp(0, 1)
            xb, soft = ccat_lib.ccat_batch(student, teacher, xb, generator=generator,
                                           precision=precision, **ccat)
            student.train()
            with _autocast(device, precision):
                s = student(xb.contiguous(memory_format=fmt)).float()
            return ccat_lib.soft_cross_entropy(s, soft), None
        with _autocast(device, precision):
            if fixed_targets is not None:
                t = fixed_targets[idx]
            else:
                with torch.no_grad():
                    t = teacher(xb).float()
            s = student(xb).float()
        return student_loss(s, t, target), None

    run_key = {"kind": "student", "widths": list(student.widths),
               "teacher_widths": list(teacher.widths), "n": len(x), "target": target, "lr": lr,
               "batch_size": batch_size, "augment": bool(augment), "noise_std": noise_std,
               "adversarial": adversarial, "optimizer": optimizer, "weight_decay": weight_decay,
               "bf16": precision == "bf16",  # the resolved precision (see train_teacher)
               **({"resample": resample} if augment else {}),
               **({"basis": hashlib.sha1(torch.as_tensor(basis).double().cpu().numpy()
                                         .tobytes()).hexdigest()[:16]}
                  if adversarial and "select" in adversarial else {}),
               **({"ccat": ccat} if ccat is not None else {})}
    with attacks.frozen(teacher):
        return _fit(student, batch_loss, n=len(x), epochs=epochs, batch_size=batch_size,
                    lr_at=lambda e: lr, optimizer=optimizer, weight_decay=weight_decay,
                    generator=generator,
                    device=device, checkpoint_dir=checkpoint_dir,
                    checkpoint_epochs=checkpoint_epochs, on_checkpoint=on_checkpoint,
                    run_key=run_key, progress=progress,
                    desc=f"student ({target}{', adversarial' if adversarial else ''}"
                         f"{', CCAT' if ccat else ''})")


# -- a classifier on data labels, with or without adversarial training (source C) --------------

PAPER_EPOCHS = 200
PAPER_MILESTONES = (100, 150)
"""Source C, A.2: 200 epochs, the learning rate divided by 10 at epochs 100 and 150."""
LR_DECAY = 0.1
AT_STARTS = ("uniform", "small", "none")
"""Starting points of the PGD of :func:`train_classifier`: ``"uniform"`` in the ε-ball (Madry et
al.; TRADES' evaluation PGD, ``--random`` on by default), ``"small"`` ``x + 0.001·N(0, I)``
(TRADES' ``trades_loss``), ``"none"`` the clean image."""
SMALL_START_STD = 0.001
"""σ of the ``"small"`` start."""
AT_KEYS = ("eps", "alpha", "steps", "start")
PAPER_AT = {"eps": 8 / 255, "alpha": 2 / 255, "steps": 10, "start": "uniform"}
"""Source C, A.2: label-based ℓ∞ PGD-10, ε = 8/255, step 2/255. The source took "the PGD
implementation from [22]" (TRADES) and does not say how it starts. TRADES' evaluation PGD starts
uniformly in the ball, its training loss 0.001·N(0, I) from the image; we start uniformly, as
Madry et al. [20] whose algorithm the source names (``start`` chooses, :data:`AT_STARTS`)."""


def scaled_milestones(epochs: int, paper_epochs: int = PAPER_EPOCHS,
                      paper_milestones=PAPER_MILESTONES) -> tuple[int, ...]:
    """The paper's learning-rate milestones at the same fractions of a run of ``epochs``
    (rounded half up; 100 and 150 of 200 → 5 and 8 of 10): a short run decays as the long one."""
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an int ≥ 0, got {epochs!r}")
    return tuple(int(math.floor(m * epochs / paper_epochs + 0.5)) for m in paper_milestones)


def step_lr(lr: float, milestones, gamma: float = LR_DECAY) -> Callable[[int], float]:
    """Learning rate of epoch e (1-based): ``lr · gamma^k`` with k the number of milestones
    already passed (``e > m``), as PyTorch's ``MultiStepLR`` stepped once per epoch: with
    milestones (100, 150), epochs 1–100 use lr, 101–150 lr/10, 151– lr/100."""
    ms = tuple(sorted(int(m) for m in milestones))
    return lambda e: lr * gamma ** sum(e > m for m in ms)


def _check_at(adversarial):
    if adversarial is None:
        return None
    if not isinstance(adversarial, dict) or set(adversarial) != set(AT_KEYS):
        raise ValueError(
            f"adversarial must be None or a dict with exactly the keys {AT_KEYS}, e.g. "
            f"{PAPER_AT}; got {adversarial!r}"
        )
    if adversarial["start"] not in AT_STARTS:
        raise ValueError(f"adversarial['start'] must be one of {AT_STARTS}, "
                         f"got {adversarial['start']!r}")
    return dict(adversarial)


def label_pgd(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, alpha: float, steps: int,
              start: str, generator: torch.Generator, precision: str = "fp32") -> torch.Tensor:
    """Label-based ℓ∞ PGD (Madry et al.): ascend the cross-entropy of ``model`` to the labels
    ``y`` for ``steps`` signed steps of ``alpha`` inside the ε-ball, from ``start``
    (:data:`AT_STARTS`). The model runs in eval mode, frozen (BatchNorm uses its running
    statistics and does not update them), and gets its mode back afterwards."""
    if start not in AT_STARTS:
        raise ValueError(f"start must be one of {AT_STARTS}, got {start!r}")
    if start == "small":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_start = (x + SMALL_START_STD * noise).clamp(0, 1)
    else:
        x_start = None
    with attacks.frozen(model):
        return attacks.pgd(attacks.ce_objective(model, y), x, eps=eps, alpha=alpha,
                           steps=steps, norm="linf", random_start=start == "uniform",
                           generator=generator, precision=precision, x_start=x_start).detach()


def train_classifier(model, x: torch.Tensor, y: torch.Tensor, *, epochs: int = PAPER_EPOCHS,
                     lr: float = 0.1, batch_size: int = 128, weight_decay: float = 2e-4,
                     milestones=None, augment: bool = True, adversarial: dict | None = None,
                     generator: torch.Generator, device="cpu", checkpoint_dir=None,
                     checkpoint_epochs: Iterable[int] = (),
                     on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
                     progress: bool = True, precision: str = "fp32",
                     channels_last: bool | None = None, targets: torch.Tensor | None = None,
                     loss: str = "ce") -> dict:
    """Train a classifier on images ``x`` with labels ``y`` (cross-entropy), standard or
    adversarial, with source C's recipe (A.2) as the defaults — or distil it from fixed targets.

    SGD with momentum 0.9 (:data:`MOMENTUM`), learning rate ``lr`` divided by 10 after each of
    ``milestones`` (epochs; default: the paper's 100 and 150 of 200 scaled to ``epochs`` by
    :func:`scaled_milestones`, :func:`step_lr`), weight decay ``weight_decay``, batches of
    ``batch_size``. ``augment``: a random crop (zero padding 4) and a horizontal flip per image
    (:func:`tsrobust.data.augment`, no rotation: exact pixel moves). Hold the validation images
    out of ``x`` first (:func:`tsrobust.data.holdout_split`: A.2 keeps 500 per class apart) and
    measure them in ``on_checkpoint``.

    ``adversarial``: ``None`` for standard training, or ``dict(eps, alpha, steps, start)``
    (:data:`PAPER_AT`: ε = 8/255, α = 2/255, 10 steps, uniform start) for adversarial training
    (Madry et al.): each (augmented) batch is replaced by :func:`label_pgd` examples — made with
    the model in eval mode, BatchNorm on its running statistics, then back to training mode — and
    the model trained on them alone.

    ``targets`` (float ``[len(x), classes]``) with ``loss`` ``"l1"`` or ``"kl"``: logit
    distillation on clean images from *fixed* per-image targets (source C A.3: each image's
    target is computed once, e.g. the teacher's logits averaged over augmentations,
    :func:`tsrobust.logits.distillation_targets`, then manipulated, §4.2): every (augmented)
    batch is fit to its images' rows of ``targets`` by :func:`distillation_loss`; ``y`` then only
    counts the training accuracy. ``loss="ce"`` (the default) trains on the labels and takes no
    targets; distillation takes no ``adversarial``.

    ``precision`` (``"fp32"``, ``"bf16"``, ``"auto"``): of the forward passes and of the attack
    (weights, optimizer state and perturbations stay fp32); ``channels_last``: the layout of the
    net and of every batch (``None``: :func:`tsrobust.runtime.channels_last`). Epoch checkpoints and resuming as in the module docstring:
    ``on_checkpoint(epoch, model)`` (model in eval mode) at ``checkpoint_epochs``, replayed from
    the saved weights on resume; a killed run resumed with the same arguments ends with the same
    weights. ``generator`` (on ``device``) draws batches, augmentation and attack starts. Returns
    the history (per epoch: mean training loss, training accuracy on the batches trained on —
    adversarial ones under AT — and learning rate).
    """
    adversarial = _check_at(adversarial)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y {len(y)} labels")
    targets = _check_distillation(targets, loss, n=len(x), adversarial=adversarial)
    ms = scaled_milestones(epochs) if milestones is None else tuple(int(m) for m in milestones)
    device = choose_device(device)
    precision = runtime.resolve_precision(precision, device)
    fmt = _memory_format(runtime.channels_last(device, precision) if channels_last is None
                         else channels_last)
    model.to(device=device, memory_format=fmt)
    x = x.to(device).contiguous(memory_format=fmt)
    y = y.to(device)
    if targets is not None:
        targets = targets.to(device)

    def batch_loss(idx):
        xb, yb = x[idx], y[idx]
        if augment:
            xb = augment_images(xb, generator, rotation_deg=0.0).contiguous(memory_format=fmt)
        if adversarial is not None:
            xb = label_pgd(model, xb, yb, eps=adversarial["eps"], alpha=adversarial["alpha"],
                           steps=adversarial["steps"], start=adversarial["start"],
                           generator=generator, precision=precision
                           ).contiguous(memory_format=fmt)
        with _autocast(device, precision):
            out = model(xb)
        fit = (F.cross_entropy(out.float(), yb) if targets is None
               else distillation_loss(out, targets[idx], loss))
        return fit, (out.argmax(1) == yb).sum()

    run_key = {"kind": "classifier", "model": f"{type(model).__name__}({model.extra_repr()})",
               "n": len(x), "epochs": epochs, "lr": lr, "milestones": list(ms),
               "batch_size": batch_size, "weight_decay": weight_decay, "augment": bool(augment),
               "adversarial": adversarial, "bf16": precision == "bf16",
               # distillation only (label runs keep the key their checkpoints were written with)
               **({"loss": loss, "targets": tensor_digest(targets)}
                  if targets is not None else {})}
    return _fit(model, batch_loss, n=len(x), epochs=epochs, batch_size=batch_size,
                lr_at=step_lr(lr, ms), optimizer="sgd", weight_decay=weight_decay,
                generator=generator, device=device, checkpoint_dir=checkpoint_dir,
                checkpoint_epochs=checkpoint_epochs, on_checkpoint=on_checkpoint,
                run_key=run_key, progress=progress,
                desc=f"classifier{' (AT)' if adversarial else ''}"
                     f"{f' (distilled, {loss})' if targets is not None else ''}")


DISTILLATION_LOSSES = ("l1", "kl")
"""Losses of distillation from fixed targets (source C A.3, Fig. A.7): ``"l1"`` the mean
absolute difference of the logits (:func:`tsrobust.logits.l1_logit_loss`), ``"kl"`` the
KL divergence of the student's softmax from the target's."""
CLASSIFIER_LOSSES = ("ce",) + DISTILLATION_LOSSES
"""``loss`` of :func:`train_classifier`: cross-entropy to the labels, or a distillation loss."""


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor,
                      loss: str) -> torch.Tensor:
    """The loss of a batch of student logits against fixed target logits (source C A.3):
    ``"l1"`` — the L1 logit loss, mean |s − t| over images and classes
    (:func:`tsrobust.logits.l1_logit_loss`); ``"kl"`` — softmax distillation at temperature 1,
    KL(softmax(t) ‖ softmax(s)) summed over classes and averaged over images (Hinton et al.; the
    source compares it with L1 in Fig. A.7 and names no temperature). In fp32 whatever the
    forward pass's precision."""
    if loss == "l1":
        return logits_lib.l1_logit_loss(student_logits, targets)
    if loss == "kl":
        if student_logits.shape != targets.shape:
            raise ValueError(f"student logits {tuple(student_logits.shape)} and targets "
                             f"{tuple(targets.shape)} must have one shape")
        return F.kl_div(F.log_softmax(student_logits.float(), 1),
                        F.log_softmax(targets.float(), 1), log_target=True,
                        reduction="batchmean")
    raise ValueError(f"loss must be one of {DISTILLATION_LOSSES}, got {loss!r}")


def _check_distillation(targets, loss: str, *, n: int, adversarial) -> torch.Tensor | None:
    """Fail fast on a distillation set-up :func:`train_classifier` cannot run."""
    if loss not in CLASSIFIER_LOSSES:
        raise ValueError(f"loss must be one of {CLASSIFIER_LOSSES}, got {loss!r}")
    if loss == "ce":
        if targets is not None:
            raise ValueError("targets are distillation targets: pass loss='l1' or loss='kl' "
                             "with them (loss='ce' trains on the labels)")
        return None
    if targets is None:
        raise ValueError(f"loss={loss!r} distils from fixed targets: pass targets, a float "
                         f"tensor [n, classes] with one row per image")
    if (not torch.is_tensor(targets) or targets.ndim != 2 or not targets.is_floating_point()
            or len(targets) != n):
        raise ValueError(f"targets must be a float tensor [{n}, classes] (one row per image of "
                         f"x), got {type(targets).__name__} "
                         f"{tuple(getattr(targets, 'shape', ()))}")
    if not torch.isfinite(targets).all():
        raise ValueError("targets contain NaN or infinite values")
    if adversarial is not None:
        raise ValueError("distillation from fixed targets runs on clean images (source C A.3): "
                         "pass adversarial=None")
    return targets.float()


def tensor_digest(t: torch.Tensor) -> str:
    """A short hash of a tensor's values (float64 bytes): ties a resume state or a record to the
    exact targets it was trained on."""
    return hashlib.sha1(t.detach().to("cpu", torch.float64).contiguous().numpy()
                        .tobytes()).hexdigest()[:16]


# -- recorded weights and checkpoint folders -------------------------------------------------

WEIGHT_SEP = "__"
"""Array names of recorded weights: ``<model>__<state_dict key>``."""


def model_arrays(prefix: str, model: ConvNet) -> dict[str, np.ndarray]:
    """A model's weights as named numpy arrays (for a result's ``.npz``)."""
    return {f"{prefix}{WEIGHT_SEP}{k}": v.numpy() for k, v in _weights_cpu(model).items()}


def model_from_arrays(arrays: dict, prefix: str, widths, *, device="cpu") -> ConvNet:
    """Rebuild a :class:`ConvNet` of ``widths`` from :func:`model_arrays` output."""
    head = f"{prefix}{WEIGHT_SEP}"
    state = {k[len(head):]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()
             if k.startswith(head)}
    if not state:
        raise ValueError(f"no weights named {head}* in the recorded arrays")
    model = ConvNet(tuple(int(w) for w in widths), generator=torch.Generator(),
                    batchnorm=any(".running_mean" in k for k in state))
    model.load_state_dict(state)
    return model.to(device).eval()


def load_model_arrays(model, arrays: dict, prefix: str, *, device="cpu"):
    """Load the weights that :func:`model_arrays` recorded under ``prefix`` into ``model`` (any
    architecture, e.g. a :class:`tsrobust.models.ResNet18` built with the recorded settings);
    returns it on ``device`` in eval mode."""
    head = f"{prefix}{WEIGHT_SEP}"
    state = {k[len(head):]: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()
             if k.startswith(head)}
    if not state:
        raise ValueError(f"no weights named {head}* in the recorded arrays")
    model.load_state_dict(state)
    return model.to(device).eval()


def checkpoint_folder(profile: str, chapter: str, name: str) -> Path:
    """Where a chapter's resumable runs keep their state: next to its results (removed once the
    result is recorded)."""
    return results.results_root() / profile / chapter / "checkpoints" / name


def model_digest(model) -> str:
    """A short hash of a model's weights: identifies the teacher a recorded student learned from."""
    h = hashlib.sha1()
    for k, v in sorted(_weights_cpu(model).items()):
        h.update(k.encode())
        h.update(v.numpy().tobytes())
    return h.hexdigest()[:16]


def discard_checkpoints(folder):
    """Remove a finished run's checkpoint folder, and the chapter's ``checkpoints/`` folder if
    that leaves it empty."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()
