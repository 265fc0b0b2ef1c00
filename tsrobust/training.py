"""Training the oracle teacher and its students (source A §5.1, §5.4–5.5).

- :func:`train_teacher`: the 64-64-64-64 teacher on CIFAR-10 labels (cross-entropy).
- :func:`train_student`: a student fit to the teacher — *logit* training (squared ℓ2 distance
  between student and teacher logits) or *label* training (cross-entropy to the teacher's argmax),
  optionally on augmented (§5.4) or noisy (§5.5, σ = 0.1) inputs, or on oracle-adversarial
  examples (Eq. 3, teacher-target: the student is fit to f*(x′) where x′ maximizes the ℓ2 distance
  between the two nets' logits inside an ε-ball).
- :func:`oracle_teacher`: chapter 3's teacher, trained and pruned once per parameter set and
  recorded with provenance (weights in the result's arrays), loaded by chapters 4 and 5.
- :func:`standard_training` / :func:`record_standard_training`: chapter 4's students (logit,
  label, logit with Gaussian noise), measured at each checkpoint epoch (robust accuracy, NC per
  layer, ε_in/ε_out), recorded per student.

The source gives no optimizer, learning rate, batch size or teacher schedule; the choices are in
:data:`CH03_SETTINGS` / :data:`CH04_SETTINGS` (every one a chapter parameter). The teacher uses
SGD with momentum and a cosine schedule; students use Adam at a constant learning rate (one
learning rate suits both the ℓ2 logit loss and the cross-entropy label loss, whose gradient scales
differ), so a checkpoint at epoch 50 of a 300-epoch run *is* a student trained for 50 epochs, as
in Tables 1 and 3.

Runs are resumable: with ``checkpoint_dir``, the full training state (weights, optimizer, the
generator's state, history) is written atomically after every epoch, and a killed run started
again with the same arguments continues from its last epoch and ends with the same weights as an
uninterrupted run (deterministic on CPU). Data stay on the device; the batch loop has no host
synchronisation (losses are summed on the device and read once per epoch). Nets and data are
channels-last by default (``channels_last=False`` for NCHW; ``python -m tsrobust.bench`` measured
channels-last faster on CPU with oneDNN, and it is the layout GPU convolution kernels prefer), and
``bf16=True`` runs the forward passes under bfloat16 autocast.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
import shutil
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tsrobust import results, runtime
from tsrobust.data import (
    CIFAR10,
    CROP_PADDING,
    NOISE_STD,
    ROTATION_DEG,
    augment as augment_images,
    batches,
)
from tsrobust.io import atomic_write
from tsrobust.models import (
    DEEP_PRUNED_WIDTHS,
    DEEP_TEACHER_WIDTHS,
    PRUNED_WIDTHS,
    TEACHER_WIDTHS,
    ConvNet,
    active_channels,
    fanout_norms,
    kept_channels,
    prune_by_fanout,
)
from tsrobust.params import Setting, resolve

TARGETS = ("logit", "label")
OPTIMIZERS = ("sgd", "adam")
MOMENTUM = 0.9
"""Momentum of SGD."""
STATE_FILE = "last.pt"
"""The resume state in a checkpoint folder; ``epoch_NNNN.pt`` hold the weights at checkpoints."""
EVAL_BATCH = 1000
"""Images per forward pass when evaluating (no gradients)."""
ADVERSARIAL_KEYS = ("norm", "eps", "alpha", "steps")

PAPER_CHECKPOINTS = (50, 100, 150, 200, 300)
"""Epochs at which Tables 1 and 3 report students (§5.4, §5.5)."""

def scaled_checkpoints(epochs: int, paper=PAPER_CHECKPOINTS, paper_epochs: int = 300):
    """The paper's checkpoint epochs scaled to a run of ``epochs`` (distinct, ≥ 1)."""
    return tuple(sorted({max(1, round(e * epochs / paper_epochs)) for e in paper}))


# -- chapter settings ------------------------------------------------------------------------

N_TRAIN = Setting(int, smoke=2000, gpu=50_000, paper=50_000, min=1, max=50_000,
                  doc="CIFAR-10 training images (teacher and students learn from the same ones)")
N_TEST = Setting(int, smoke=500, gpu=10_000, paper=10_000, min=1, max=10_000,
                 doc="CIFAR-10 test images for accuracies")
N_PCA = Setting(int, smoke=500, gpu=10_000, paper=50_000, min=1, max=50_000,
                doc="training images whose 3×3×3 patches enter the patch PCA (§5.3)")
PCA_RANK = Setting(int, smoke=17, gpu=17, paper=17, min=1, max=27,
                   doc="eigenvectors spanning the data subspace U (§5.3: 17 of 27)")

TEACHER_SETTINGS = {
    "n_train": N_TRAIN,
    "teacher_epochs": Setting(int, smoke=4, gpu=60, paper=200, min=1,
                              doc="teacher training epochs (not given in the source)"),
    "teacher_optimizer": Setting(str, smoke="sgd", gpu="sgd", paper="sgd", choices=OPTIMIZERS,
                                 doc="teacher optimizer: SGD with momentum 0.9, or Adam"),
    "teacher_lr": Setting(float, smoke=0.05, gpu=0.05, paper=0.05, min=0.0,
                          doc="teacher learning rate, cosine-annealed to 0"),
    "teacher_batch_size": Setting(int, smoke=128, gpu=128, paper=128, min=1,
                                  doc="teacher minibatch size"),
    "teacher_weight_decay": Setting(float, smoke=5e-4, gpu=5e-4, paper=5e-4, min=0.0,
                                    doc="teacher weight decay"),
    "teacher_augment": Setting(bool, smoke=True, gpu=True, paper=True,
                               doc="crop/flip/rotation augmentation while training the teacher"),
    "pruned_widths": Setting(tuple, smoke=PRUNED_WIDTHS, gpu=PRUNED_WIDTHS, paper=PRUNED_WIDTHS,
                             min=1, doc="teacher widths after fan-out pruning (§5.1)"),
}
"""What the oracle teacher depends on (a recorded teacher is reused while these are unchanged)."""

CH03_SETTINGS = {
    **TEACHER_SETTINGS,
    "n_test": N_TEST,
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
}
"""Chapter 3 (the oracle teacher). The source is silent on how the teacher is trained; these are
common CIFAR-10 choices (SGD, momentum 0.9, cosine schedule, weight decay, augmentation)."""

CH04_SETTINGS = {
    "n_train": N_TRAIN,
    "n_test": N_TEST,
    "epochs": Setting(int, smoke=2, gpu=100, paper=300, min=1,
                      doc="student training epochs (§5.5: up to 300)"),
    "checkpoints": Setting(tuple, smoke=(1, 2), gpu=scaled_checkpoints(100),
                           paper=PAPER_CHECKPOINTS, min=1,
                           doc="epochs at which students are measured (§5.5: 50…300)"),
    "optimizer": Setting(str, smoke="adam", gpu="adam", paper="adam", choices=OPTIMIZERS,
                         doc="student optimizer (not given in the source)"),
    "lr": Setting(float, smoke=1e-3, gpu=1e-3, paper=1e-3, min=0.0,
                  doc="student learning rate (constant, so epoch-e checkpoints are "
                      "e-epoch students)"),
    "batch_size": Setting(int, smoke=128, gpu=128, paper=128, min=1,
                          doc="student minibatch size"),
    "noise_std": Setting(float, smoke=NOISE_STD, gpu=NOISE_STD, paper=NOISE_STD, min=0.0,
                         doc="σ of the Gaussian input noise of Fig. 10 (§5.5)"),
    "attack_eps": Setting(float, smoke=10 / 255, gpu=10 / 255, paper=10 / 255, min=0.0,
                          doc="ℓ∞ budget of the robust-accuracy attack (§5.1: 10/255)"),
    "attack_alpha": Setting(float, smoke=0.01, gpu=0.01, paper=0.01, min=0.0,
                            doc="PGD step size (§5.1: 0.01)"),
    "attack_steps": Setting(int, smoke=5, gpu=40, paper=40, min=1,
                            doc="PGD steps (§5.1: 40)"),
    "attack_repeats": Setting(int, smoke=1, gpu=3, paper=5, min=1,
                              doc="repeated robust evaluations for μ and σ² (§5.4)"),
    "n_eval": Setting(int, smoke=100, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images attacked for robust accuracy"),
    "n_spec": Setting(int, smoke=100, gpu=500, paper=1000, min=2, max=10_000,
                      doc="test images whose activations give the NC of §5.2"),
    "n_pca": N_PCA,
    "pca_rank": PCA_RANK,
}
"""Chapter 4 (standard training, logit vs label, Gaussian noise)."""


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

def _resolve_device(device) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


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
    opt = make_optimizer(optimizer, model.parameters(), lr=lr_at(1), weight_decay=weight_decay)
    history = {"epoch": [], "loss": [], "accuracy": [], "lr": []}
    start = 0
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
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
                replay = ConvNet(model.widths, num_classes=model.num_classes,
                                 batchnorm=model.batchnorm, generator=torch.Generator())
                replay.to(device)
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


@contextlib.contextmanager
def _frozen(model):
    """Evaluate ``model`` without parameter gradients (restores the flags and mode after)."""
    flags = [p.requires_grad for p in model.parameters()]
    mode = model.training
    model.requires_grad_(False).eval()
    try:
        yield model
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(mode)


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


def agreement(student, teacher, x: torch.Tensor) -> float:
    """Fraction of ``x`` on which student and teacher predict the same class."""
    return float((predict(student, x).argmax(1) == predict(teacher, x).argmax(1)).float().mean())


# -- teacher ---------------------------------------------------------------------------------

def cosine_lr(lr: float, epochs: int) -> Callable[[int], float]:
    """Learning rate of epoch e (1-based): ``lr · ½(1 + cos(π (e−1)/epochs))``."""
    return lambda e: lr * 0.5 * (1 + math.cos(math.pi * (e - 1) / max(epochs, 1)))


def train_teacher(model: ConvNet, data: CIFAR10, *, epochs: int, lr: float, batch_size: int,
                  augment: bool, generator: torch.Generator, device="cpu",
                  optimizer: str = "sgd", weight_decay: float = 5e-4, checkpoint_dir=None,
                  checkpoint_epochs: Iterable[int] = (), progress: bool = True,
                  precision: str = "fp32", channels_last: bool = True) -> dict:
    """Train the teacher on CIFAR-10 labels (cross-entropy), ``optimizer`` ("sgd" with momentum
    or "adam"), cosine schedule.

    ``augment``: random crop, flip and rotation on each batch (:func:`tsrobust.data.augment`).
    ``generator`` (on ``device``) draws the batches and the augmentation. ``precision``
    (``"fp32"``, ``"bf16"`` or ``"auto"``, see :func:`tsrobust.runtime.resolve_precision`): of the
    forward passes (bf16 autocast; weights and optimizer state stay fp32). ``channels_last``: the
    layout of the net and of every batch (augmented ones included). Returns the history (per
    epoch: mean loss, training accuracy, learning rate).
    """
    device = _resolve_device(device)
    precision = runtime.resolve_precision(precision, device)
    fmt = _memory_format(channels_last)
    model.to(device=device, memory_format=fmt)
    x = data.x_train.to(device).contiguous(memory_format=fmt)
    y = data.y_train.to(device)

    def batch_loss(idx):
        xb = x[idx]
        if augment:
            xb = augment_images(xb, generator).contiguous(memory_format=fmt)
        with _autocast(device, precision):
            logits = model(xb)
        return F.cross_entropy(logits.float(), y[idx]), (logits.argmax(1) == y[idx]).sum()

    # "bf16": the resolved precision, under the key that runs before ``precision`` existed wrote
    # (their checkpoints stay resumable; a run resumed on a machine where "auto" means the other
    # precision is refused instead of mixing the two).
    run_key = {"kind": "teacher", "widths": list(model.widths), "n": len(x), "epochs": epochs,
               "lr": lr, "batch_size": batch_size, "augment": bool(augment),
               "optimizer": optimizer, "weight_decay": weight_decay,
               "bf16": precision == "bf16"}
    return _fit(model, batch_loss, n=len(x), epochs=epochs, batch_size=batch_size,
                lr_at=cosine_lr(lr, epochs), optimizer=optimizer, weight_decay=weight_decay,
                generator=generator,
                device=device, checkpoint_dir=checkpoint_dir,
                checkpoint_epochs=checkpoint_epochs, on_checkpoint=None, run_key=run_key,
                progress=progress, desc="teacher")


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


def _check_adversarial(adversarial):
    if adversarial is None:
        return None
    if not isinstance(adversarial, dict) or set(adversarial) != set(ADVERSARIAL_KEYS):
        raise ValueError(
            f"adversarial must be None or a dict with exactly the keys {ADVERSARIAL_KEYS}, e.g. "
            f"dict(norm='linf', eps=10/255, alpha=0.01, steps=40); got {adversarial!r}"
        )
    return dict(adversarial)


def train_student(student: ConvNet, teacher: ConvNet, x: torch.Tensor, *, target: str = "logit",
                  epochs: int, lr: float, batch_size: int, augment: bool = False,
                  noise_std: float = 0.0, adversarial: dict | None = None,
                  checkpoint_dir=None, checkpoint_epochs: Iterable[int] = (),
                  on_checkpoint: Callable[[int, ConvNet], None] | None = None,
                  generator: torch.Generator, device="cpu", progress: bool = True,
                  optimizer: str = "adam", weight_decay: float = 0.0, precision: str = "fp32",
                  channels_last: bool = True) -> dict:
    """Fit ``student`` to ``teacher`` on inputs ``x`` (§5.1): the data labels are never used.

    ``target``: ``"logit"`` (ℓ2 to the teacher's logits) or ``"label"`` (cross-entropy to its
    argmax). ``augment``: crop/flip/rotation (§5.4); ``noise_std``: Gaussian input noise (§5.5);
    both applied per batch before the teacher labels it. ``adversarial``: ``dict(norm, eps,
    alpha, steps)`` → oracle-adversarial training (Eq. 3, teacher-target): each batch is replaced
    by ``tsrobust.attacks.pgd`` maximizing the ℓ2 distance between student and teacher logits
    (random start; on a CPU its gradients are taken ``attacks.cpu_chunk`` images at a time), and
    the student is fit to the teacher's output there.

    ``optimizer`` (``"adam"`` or ``"sgd"`` with momentum 0.9) at constant ``lr``. With both
    ``noise_std`` and ``adversarial``, the noisy batch is clipped to [0, 1] before the attack.
    ``on_checkpoint(epoch, student)`` is called (student
    in eval mode) at each of ``checkpoint_epochs``; it must not draw from ``generator``. With
    ``checkpoint_dir`` a killed run resumes (see the module docstring); on resume the callback is
    first replayed, in order, for the checkpoints already passed, from their saved weights.
    ``generator`` (on ``device``) draws batches, augmentation, noise and attack starts.
    ``precision`` (``"fp32"``, ``"bf16"`` or ``"auto"``): of the forward passes and of the
    attack (bf16 autocast; weights, optimizer state and the attack's perturbation stay fp32).
    ``channels_last``: the layout of both nets and of every batch (augmented ones included).
    Returns the history (per epoch: mean loss, learning rate).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be ≥ 0, got {noise_std}")
    adversarial = _check_adversarial(adversarial)
    device = _resolve_device(device)
    precision = runtime.resolve_precision(precision, device)
    fmt = _memory_format(channels_last)
    student.to(device=device, memory_format=fmt)
    teacher.to(device=device, memory_format=fmt)
    x = x.to(device).contiguous(memory_format=fmt)
    fixed_inputs = not augment and not noise_std and adversarial is None
    with _frozen(teacher):
        with _autocast(device, precision):
            fixed_targets = predict(teacher, x).float() if fixed_inputs else None

    def batch_loss(idx):
        xb = x[idx]
        if augment or noise_std:
            xb = augment_images(xb, generator, crop_padding=CROP_PADDING if augment else 0,
                                flip=augment, rotation_deg=ROTATION_DEG if augment else 0.0,
                                noise_std=noise_std).contiguous(memory_format=fmt)
        if adversarial is not None:
            from tsrobust import attacks  # part of the package written alongside this module

            student.eval()
            if noise_std:
                xb = xb.clamp(0, 1)
            xb = attacks.pgd(attacks.oracle_objective(student, teacher), xb,
                             eps=adversarial["eps"], alpha=adversarial["alpha"],
                             steps=adversarial["steps"], norm=adversarial["norm"],
                             random_start=True, generator=generator, precision=precision,
                             chunk_size=attacks.cpu_chunk(xb, precision)).detach()
            student.train()
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
               "bf16": precision == "bf16"}  # the resolved precision (see train_teacher)
    with _frozen(teacher):
        return _fit(student, batch_loss, n=len(x), epochs=epochs, batch_size=batch_size,
                    lr_at=lambda e: lr, optimizer=optimizer, weight_decay=weight_decay,
                    generator=generator,
                    device=device, checkpoint_dir=checkpoint_dir,
                    checkpoint_epochs=checkpoint_epochs, on_checkpoint=on_checkpoint,
                    run_key=run_key, progress=progress,
                    desc=f"student ({target}{', adversarial' if adversarial else ''})")


# -- the oracle teacher of chapter 3 -----------------------------------------------------------

TEACHER_CHAPTER = "03_oracle_teacher"
TEACHER_SEED_OFFSET = 10_000
"""The teacher's initialization and batches use ``seed + 10000``: students built from ``seed``
must not start from the teacher's own initial weights (same layer shapes, same draws)."""
N_ACTIVITY = 1000
"""Training images on which pruning checks which teacher channels ever fire (a channel that is
zero at every position of all of them counts as dead)."""
PRUNING = "fan-out norm, dead channels first"
"""How the teacher is pruned (part of its record's fingerprint: a teacher pruned otherwise is
recomputed)."""
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


def record_for(chapter: str, name: str, cfg, compute, *, data: CIFAR10, fingerprint: dict):
    """``results.record`` for results that depend on more than the parameters: the data copy
    and ``fingerprint`` (e.g. the digest of the teacher used). ``fingerprint`` is stored in the
    values; a recorded result whose fingerprint or data copy differs is recomputed."""

    def with_fingerprint():
        out = compute()
        values, arrays = out if isinstance(out, tuple) else (out, None)
        return {**values, **fingerprint}, arrays

    res = results.record(chapter, name, cfg, with_fingerprint, dataset=data.description)
    stale = any(res.values.get(k) != v for k, v in fingerprint.items())
    if res.loaded and (stale or data.copy not in str(res.provenance.get("dataset"))):
        start = time.perf_counter()
        values, arrays = with_fingerprint()
        res = results.save(chapter, name, cfg, values, arrays,
                           seconds=time.perf_counter() - start, dataset=data.description)
    return res


def discard_checkpoints(folder):
    """Remove a finished run's checkpoint folder, and the chapter's ``checkpoints/`` folder if
    that leaves it empty."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


def teacher_config(profile: str, seed: int, data: CIFAR10, *, deep: bool = False, **overrides):
    """The resolved :data:`TEACHER_SETTINGS` for ``data`` (the teacher learns from all of
    ``data.x_train``, so its size fixes ``n_train``)."""
    if "n_train" in overrides:
        raise ValueError(
            "n_train comes from the data passed in; load CIFAR-10 with that many training images"
        )
    if deep and overrides.get("pruned_widths") is None:
        overrides["pruned_widths"] = DEEP_PRUNED_WIDTHS
    return resolve(TEACHER_SETTINGS, profile=profile, seed=seed, n_train=len(data.x_train),
                   **overrides)


def oracle_teacher(profile: str, seed: int, data: CIFAR10, *, device="cpu", deep: bool = False,
                   progress: bool = True, **overrides):
    """Chapter 3's oracle teacher: train the 64-64-64-64 teacher on ``data``'s labels, prune it to
    ``pruned_widths`` by fan-out norm (footnote 3; channels that never fire on the first
    :data:`N_ACTIVITY` training images go first), and record both with provenance.

    Loads the recorded teacher when one exists for the same parameters and data copy, else
    trains it (resumable after a kill). The test accuracies are those of the run that trained
    it (on its ``n_test_used`` test images). ``deep``: the 5-layer teacher of Fig. 5 (record
    ``teacher_deep``). ``overrides``: values of :data:`TEACHER_SETTINGS` (None → profile's).
    Returns ``(teacher_full, teacher_pruned, result)``, both models in eval mode on ``device``;
    ``result.values`` has test accuracies before/after pruning, fan-out norms, kept channels and
    the training history.
    """
    cfg = teacher_config(profile, seed, data, deep=deep, **overrides)
    full_widths = DEEP_TEACHER_WIDTHS if deep else TEACHER_WIDTHS
    if len(cfg.pruned_widths) != len(full_widths):
        raise ValueError(
            f"pruned_widths {cfg.pruned_widths} must have {len(full_widths)} layers like the "
            f"teacher {full_widths}"
        )
    name = "teacher_deep" if deep else "teacher"
    device = _resolve_device(device)

    def compute():
        init = torch.Generator().manual_seed(cfg.seed + TEACHER_SEED_OFFSET)
        gen = torch.Generator(device=device).manual_seed(cfg.seed + TEACHER_SEED_OFFSET)
        full = ConvNet(full_widths, generator=init).to(device)
        folder = checkpoint_folder(cfg.profile, TEACHER_CHAPTER, f"{name}-seed{cfg.seed}")
        history = train_teacher(
            full, data, epochs=cfg.teacher_epochs, lr=cfg.teacher_lr,
            optimizer=cfg.teacher_optimizer,
            batch_size=cfg.teacher_batch_size, augment=cfg.teacher_augment, generator=gen,
            device=device, weight_decay=cfg.teacher_weight_decay, checkpoint_dir=folder,
            progress=progress)
        full.eval()
        x_act = data.x_train[:N_ACTIVITY].to(device)
        pruned = prune_by_fanout(full, cfg.pruned_widths, x_act).eval()
        x_test, y_test = data.x_test.to(device), data.y_test.to(device)
        values = {
            "n_test_used": len(x_test),
            "full_widths": list(full_widths),
            "pruned_widths": list(cfg.pruned_widths),
            "test_accuracy_full": accuracy(full, x_test, y_test),
            "test_accuracy_pruned": accuracy(pruned, x_test, y_test),
            "train_accuracy_full": accuracy(full, data.x_train.to(device),
                                            data.y_train.to(device)),
            "agreement_pruned_full": agreement(pruned, full, x_test),
            "fanout_norms": [n.cpu().tolist() for n in fanout_norms(full)],
            "dead_channels": [(~a).nonzero().flatten().cpu().tolist()
                              for a in active_channels(full, x_act)],
            "dead_channels_pruned": [(~a).nonzero().flatten().cpu().tolist()
                                     for a in active_channels(pruned, x_act)],
            "kept_channels": [k.cpu().tolist()
                              for k in kept_channels(full, cfg.pruned_widths, x_act)],
            "history": history,
        }
        arrays = {**model_arrays("full", full), **model_arrays("pruned", pruned)}
        return values, arrays

    res = record_for(TEACHER_CHAPTER, name, cfg, compute, data=data,
                     fingerprint={"init_seed": cfg.seed + TEACHER_SEED_OFFSET,
                                  "pruning": PRUNING})
    discard_checkpoints(checkpoint_folder(cfg.profile, TEACHER_CHAPTER, f"{name}-seed{cfg.seed}"))
    full = model_from_arrays(res.arrays, "full", res.values["full_widths"], device=device)
    pruned = model_from_arrays(res.arrays, "pruned", res.values["pruned_widths"], device=device)
    return full, pruned, res


# -- chapter 4: standard training, logit vs label, Gaussian noise (§5.5) -----------------------

ST_CHAPTER = "04_standard_training"
ST_VARIANTS = {
    "logit": {"target": "logit", "noise": False},
    "label": {"target": "label", "noise": False},
    "logit_noise": {"target": "logit", "noise": True},
}
"""The students of chapter 4: Table 3 / Figs. 8–9 compare logit and label training; Fig. 10 adds
Gaussian input noise (σ = ``noise_std``) to logit training."""
MEASURES = "dead teacher nodes excluded; untrained baseline; paired evaluations"
"""What the recorded measurements of chapters 4–5 contain (part of their fingerprint: a record
made before these definitions is recomputed, not mixed with new ones)."""
EVAL_SEED_OFFSET = 2000
"""Robust evaluations at epoch e draw from a generator seeded ``seed + 2000 + e`` (reproducible,
and independent of the training generator, so a resumed run measures the same)."""


def check_ch04(cfg):
    """Cross-parameter checks of chapter 4 (single values are checked by ``resolve``)."""
    bad = [e for e in cfg.checkpoints if e > cfg.epochs]
    if bad or len(set(cfg.checkpoints)) != len(cfg.checkpoints):
        raise ValueError(
            f"checkpoints {cfg.checkpoints} must be distinct epochs in 1..{cfg.epochs} (epochs)"
        )
    for name in ("n_eval", "n_spec"):
        if getattr(cfg, name) > cfg.n_test:
            raise ValueError(f"{name} = {getattr(cfg, name)} must be ≤ n_test = {cfg.n_test}")
    if cfg.n_pca > cfg.n_train:
        raise ValueError(f"n_pca = {cfg.n_pca} must be ≤ n_train = {cfg.n_train}")


def patch_basis(x_train: torch.Tensor, n_pca: int, rank: int):
    """§5.3: eigenvalues of the 3×3×3 patch covariance of ``x_train[:n_pca]`` and the basis U of
    its top-``rank`` eigenvectors ([27, rank])."""
    from tsrobust.specialization import patch_pca

    vals, vecs = patch_pca(x_train[:n_pca].cpu())
    return vals, vecs[:, :rank]


def specialization_at(student, teacher, x_spec: torch.Tensor, basis: torch.Tensor) -> dict:
    """The §5.2–5.3 measurements of one student: per layer the NC matrix, MBNC, sorted BNC and
    unspecialized/specialized ratio; for the first layer ε_in/ε_out (matrices and the curves of
    each teacher node's best-NC student) and the Pearson score of (ρ, ε_in).

    Teacher nodes that are dead on ``x_spec`` (constant, in practice a ReLU that never fires;
    see :func:`tsrobust.specialization.node_variances`) have no activation for a student to
    copy: their columns are left out of every measurement (the NC and ε matrices included) and
    counted in ``dead_teacher``. Dead *student* nodes stay in, with NC 0 to every teacher node
    (they copy nothing), and are counted in ``dead_student``."""
    from tsrobust import specialization as sp

    def alive(model):
        return [(v > sp.VARIANCE_FLOOR).cpu() for v in sp.node_variances(model, x_spec)]

    ncs = sp.layer_nc(student, teacher, x_spec)
    live = alive(teacher)
    ncs = [nc[:, a] for nc, a in zip(ncs, live)]
    e_in, e_out = sp.eps_in_out(student.convs[0].weight, teacher.convs[0].weight, basis)
    e_in, e_out = e_in[:, live[0]], e_out[:, live[0]]
    c_in, c_out = sp.eps_curves(e_in, e_out, ncs[0].to(e_in.dtype))
    return {
        "nc": [nc.cpu() for nc in ncs],
        "mbnc": [sp.mbnc(nc) for nc in ncs],
        "ratio": [sp.specialization_ratio(nc) if nc.shape[1] else float("nan") for nc in ncs],
        "sorted_bnc": [sp.sorted_bnc(nc).cpu() for nc in ncs],
        "eps_in": e_in.cpu(), "eps_out": e_out.cpu(),
        "eps_in_curve": c_in.cpu(), "eps_out_curve": c_out.cpu(),
        "rho_eps_in_pearson": sp.rho_eps_pearson(ncs[0], e_in),
        "dead_teacher": [int((~a).sum()) for a in live],
        "dead_student": [int((~a).sum()) for a in alive(student)],
    }


def standard_training(cfg, data: CIFAR10, teacher: ConvNet, *, variant: str, device="cpu",
                      progress: bool = True):
    """Train one chapter-4 student (§5.5) and measure it at every checkpoint epoch.

    ``variant``: a key of :data:`ST_VARIANTS`. The student (50-35-35-22, initialized from
    ``seed``) learns from ``teacher`` on ``data.x_train``; at each of ``cfg.checkpoints`` it is
    measured on test images: clean agreement with the teacher (on all test images, and on the
    ``n_eval`` attacked ones), §5.4 robust accuracy (ℓ∞ PGD on the logit distance, μ and σ²
    over ``attack_repeats``), and :func:`specialization_at`.
    Resumable (checkpoints next to the chapter's results, removed at the end). Returns
    ``(values, arrays)`` for ``results.record``.
    """
    from tsrobust import attacks
    from tsrobust.models import build_student

    if variant not in ST_VARIANTS:
        raise ValueError(f"variant must be one of {tuple(ST_VARIANTS)}, got {variant!r}")
    check_ch04(cfg)
    spec = ST_VARIANTS[variant]
    device = _resolve_device(device)
    teacher = teacher.to(device).eval()
    x_test = data.x_test.to(device)
    x_eval, x_spec = x_test[: cfg.n_eval], x_test[: cfg.n_spec]
    eigvals, basis = patch_basis(data.x_train, cfg.n_pca, cfg.pca_rank)
    rows = {}

    def on_checkpoint(epoch, student):
        gen = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET + epoch)
        mu, var = attacks.robust_accuracy(
            student, teacher, x_eval, eps=cfg.attack_eps, alpha=cfg.attack_alpha,
            steps=cfg.attack_steps, norm="linf", repeats=cfg.attack_repeats, generator=gen)
        rows[epoch] = {"agreement": agreement(student, teacher, x_test),
                       "agreement_eval": agreement(student, teacher, x_eval),
                       "robust_mu": mu, "robust_var": var,
                       **specialization_at(student, teacher, x_spec, basis)}

    student = build_student(generator=torch.Generator().manual_seed(cfg.seed)).to(device)
    init = specialization_at(student.eval(), teacher, x_spec, basis)  # the untrained baseline
    folder = checkpoint_folder(cfg.profile, ST_CHAPTER, f"{variant}-seed{cfg.seed}")
    history = train_student(
        student, teacher, data.x_train, target=spec["target"], epochs=cfg.epochs, lr=cfg.lr,
        batch_size=cfg.batch_size, noise_std=cfg.noise_std if spec["noise"] else 0.0,
        optimizer=cfg.optimizer, checkpoint_dir=folder, checkpoint_epochs=cfg.checkpoints,
        on_checkpoint=on_checkpoint, generator=torch.Generator(device=device).manual_seed(
            cfg.seed), device=device, progress=progress)
    discard_checkpoints(folder)

    epochs = sorted(rows)
    n_layers = len(student.widths)
    values = {
        "variant": variant, **spec, "epochs": epochs,
        "agreement": [rows[e]["agreement"] for e in epochs],
        "agreement_eval": [rows[e]["agreement_eval"] for e in epochs],
        "robust_mu": [rows[e]["robust_mu"] for e in epochs],
        "robust_var": [rows[e]["robust_var"] for e in epochs],
        "mbnc": [rows[e]["mbnc"] for e in epochs],
        "ratio": [rows[e]["ratio"] for e in epochs],
        "rho_eps_in_pearson": [rows[e]["rho_eps_in_pearson"] for e in epochs],
        "dead_teacher": rows[epochs[0]]["dead_teacher"],
        "init": {"mbnc": init["mbnc"], "rho_eps_in_pearson": init["rho_eps_in_pearson"],
                 "eps_in_mean": float(init["eps_in_curve"].mean()),
                 "eps_out_mean": float(init["eps_out_curve"].mean()),
                 "dead_student": init["dead_student"]},
        "dead_student": [rows[e]["dead_student"] for e in epochs],
        "eps_in_mean": [float(rows[e]["eps_in_curve"].mean()) for e in epochs],
        "eps_out_mean": [float(rows[e]["eps_out_curve"].mean()) for e in epochs],
        "loss": history["loss"],
    }
    stack = lambda key: np.stack([np.asarray(rows[e][key]) for e in epochs])  # noqa: E731
    arrays = {
        "pca_eigenvalues": eigvals.numpy(),
        "eps_in_curve": stack("eps_in_curve"), "eps_out_curve": stack("eps_out_curve"),
        "eps_in": stack("eps_in"), "eps_out": stack("eps_out"),
        **{f"sorted_bnc_{l}": np.stack([rows[e]["sorted_bnc"][l].numpy() for e in epochs])
           for l in range(n_layers)},
        "nc_0": np.stack([rows[e]["nc"][0].numpy() for e in epochs]),
        "init_eps_in_curve": init["eps_in_curve"].numpy(),
        "init_eps_out_curve": init["eps_out_curve"].numpy(),
        **{f"init_sorted_bnc_{l}": init["sorted_bnc"][l].numpy() for l in range(n_layers)},
    }
    return values, arrays


def record_standard_training(cfg, data: CIFAR10, teacher: ConvNet, *, variant: str,
                             device="cpu", progress: bool = True):
    """:func:`standard_training` recorded as ``student_<variant>`` of chapter 4: loaded when
    recorded with the same parameters, data copy and teacher (by weight digest)."""
    return record_for(
        ST_CHAPTER, f"student_{variant}", cfg,
        lambda: standard_training(cfg, data, teacher, variant=variant, device=device,
                                  progress=progress),
        data=data, fingerprint={"teacher_digest": model_digest(teacher), "measures": MEASURES})


PAPER_TABLE3 = {
    # Source A, Table 3: robust accuracy (%) of ST students at epochs 50, 100, 150, 200, 300.
    "logit": (23.12, 30.72, 36.72, 48.52, 62.77),
    "label": (19.08, 20.81, 22.34, 23.42, 25.79),
}


def paper_epoch(epoch: int, epochs: int, paper=PAPER_CHECKPOINTS, paper_epochs: int = 300) -> int:
    """The paper checkpoint at the same fraction of training as ``epoch`` of ``epochs`` (the
    nearest one), e.g. epoch 1 of 3 ↔ epoch 100 of 300."""
    frac = epoch / epochs
    return min(paper, key=lambda p: (abs(p / paper_epochs - frac), p))
