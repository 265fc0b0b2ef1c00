"""What chapters 9 and 10 share (source C §3, A.2): the standard-trained (ST) and adversarially
trained (AT) ResNet-18s whose logits both chapters study, trained once per parameter set and
recorded with provenance.

- :data:`NETWORK_SETTINGS`: the networks' settings per profile — architecture (width, stem),
  source C's training recipe (A.2), the AT attack, and what is measured while they train.
- :func:`trained_network`: one network (``"st"`` or ``"at"``, one seed), trained (resumable) or
  loaded from its record under chapter 9's key :data:`NETWORK_CHAPTER`. The record holds, at
  every snapshot epoch (:func:`snapshot_epochs`: the paper's epochs of Figs. 1 and B.1 scaled to
  the run), the logits on the first ``n_logit_train`` training images and on the test images;
  the validation and test accuracies; the adversarial accuracy per evaluated test image (§3:
  APGD-CE then APGD-DLR) at :func:`eval_epochs`; and, when asked, the weights at the teacher
  epochs of Fig. A.6 (AT) or the distillation epoch (ST) (:func:`kept_epochs`; chapter 10
  distils from them).
- :func:`network_at`: the recorded weights of one of those epochs as a model.
- :func:`network_run`: one network as a :class:`tsrobust.results.Run` (a cluster job of its
  own; chapters 9 and 10 list it among their ``independent_runs`` under the same name, so a
  cluster trains it once).

Chapter 9 records the networks; chapter 10 loads its teacher from the same record (training it
itself when it is missing), so that the teacher of the distillations is one of the AT networks
whose logits chapter 9 shows.
"""

from __future__ import annotations

import numpy as np
import torch

from functools import partial

from tsrobust import attacks, results
from tsrobust.chapters.cifar import EVAL_SEED_OFFSET, PRECISION, record_for
from tsrobust.data import CIFAR10, HOLDOUT_PER_CLASS, holdout_split, load_cifar10
from tsrobust.models import RESNET_WIDTH, STEMS, ResNet18
from tsrobust.params import Setting, resolve
from tsrobust.runtime import choose_device, resolve_precision
from tsrobust.training import (
    AT_STARTS,
    PAPER_AT,
    PAPER_EPOCHS,
    accuracy,
    checkpoint_folder,
    discard_checkpoints,
    load_model_arrays,
    model_arrays,
    predict,
    train_classifier,
)

NETWORK_CHAPTER = "09_logit_distributions"
"""Record key under which the networks are recorded (``st_seed<s>``, ``at_seed<s>``)."""
KINDS = ("st", "at")
"""Standard training (cross-entropy on clean images) and adversarial training (label PGD)."""
KIND_SEED_OFFSET = {"st": 0, "at": 1000}
"""The ST and AT networks of one seed start from different weights and draw different batches
(seed + offset): the AT–ST comparisons of §4.1 are then between independent networks, like the
AT–AT ones between seeds."""

PAPER_SNAPSHOTS = (20, 40, 60, 100, 150, 200)
"""Epochs of source C at which the logits are looked at (Figs. 1, B.1 span 200 epochs; §4.2 uses
the epoch-40 teacher; the learning rate drops after 100 and 150)."""
PAPER_TEACHER_EPOCHS = (20, 40, 100, 200)
"""Teacher checkpoints of Fig. A.6 (the student's robustness against the teacher's epoch); 40 is
the teacher of every other distillation (§4.2, A.3)."""
DISTILLATION_TEACHER_EPOCH = 40
"""Source C §4.2: "we used the checkpoint from epoch 40 for all experiments"."""

NETWORK_SETTINGS = {
    "n_train": Setting(int, smoke=2000, cpu=10_000, gpu=50_000, paper=50_000, min=20,
                       max=50_000,
                       doc="CIFAR-10 training images loaded (the first ones); the validation "
                           "images are held out of them"),
    "holdout_per_class": Setting(int, smoke=20, cpu=100, gpu=HOLDOUT_PER_CLASS,
                                 paper=HOLDOUT_PER_CLASS, min=0,
                                 doc="validation images held out per class (A.2: 500)"),
    "n_test": Setting(int, smoke=500, cpu=10_000, gpu=10_000, paper=10_000, min=1, max=10_000,
                      doc="CIFAR-10 test images whose logits are recorded"),
    "width": Setting(int, smoke=8, cpu=16, gpu=RESNET_WIDTH, paper=RESNET_WIDTH, min=1,
                     doc="channels of the ResNet-18's first stage (64 in the source; the "
                         "stages have 1, 2, 4, 8 times this)"),
    "stem": Setting(str, smoke="cifar", cpu="cifar", gpu="cifar", paper="cifar", choices=STEMS,
                    doc="first layer: 'cifar' (3×3 stride 1, no max-pool; A.2's reference "
                        "implementation) or 'imagenet' (torchvision's 7×7 stride 2 + max-pool; "
                        "§3's wording)"),
    "epochs": Setting(int, smoke=2, cpu=10, gpu=40, paper=PAPER_EPOCHS, min=1,
                      doc="training epochs (A.2: 200; the learning-rate drops at 100 and 150 "
                          "of 200 are scaled to the run)"),
    "lr": Setting(float, smoke=0.1, cpu=0.1, gpu=0.1, paper=0.1, min=0.0,
                  doc="SGD learning rate before the drops (A.2: 0.1, momentum 0.9)"),
    "batch_size": Setting(int, smoke=128, cpu=128, gpu=128, paper=128, min=1,
                          doc="minibatch size (A.2: 128)"),
    "weight_decay": Setting(float, smoke=2e-4, cpu=2e-4, gpu=2e-4, paper=2e-4, min=0.0,
                            doc="weight decay (A.2: 2e-4)"),
    "at_eps": Setting(float, smoke=PAPER_AT["eps"], cpu=PAPER_AT["eps"], gpu=PAPER_AT["eps"],
                      paper=PAPER_AT["eps"], min=0.0,
                      doc="ℓ∞ budget of adversarial training and of the evaluation (8/255)"),
    "at_alpha": Setting(float, smoke=PAPER_AT["alpha"], cpu=PAPER_AT["alpha"],
                        gpu=PAPER_AT["alpha"], paper=PAPER_AT["alpha"], min=0.0,
                        doc="PGD step of adversarial training (A.2: 2/255)"),
    "at_steps": Setting(int, smoke=2, cpu=PAPER_AT["steps"], gpu=PAPER_AT["steps"],
                        paper=PAPER_AT["steps"], min=1,
                        doc="PGD steps of adversarial training (A.2: 10)"),
    "at_start": Setting(str, smoke=PAPER_AT["start"], cpu=PAPER_AT["start"],
                        gpu=PAPER_AT["start"], paper=PAPER_AT["start"], choices=AT_STARTS,
                        doc="start of the training PGD (the source does not say; uniform in "
                            "the ball as Madry et al.)"),
    "n_logit_train": Setting(int, smoke=500, cpu=5000, gpu=10_000, paper=45_000, min=1,
                             doc="training images (the first of the training split) whose "
                                 "logits are recorded at every snapshot (Figs. 1, B.1)"),
    "n_eval": Setting(int, smoke=100, cpu=1000, gpu=2000, paper=10_000, min=1, max=10_000,
                      doc="test images (the first) attacked for the adversarial accuracy"),
    "apgd_steps": Setting(int, smoke=10, cpu=100, gpu=100, paper=100, min=1,
                          doc="iterations of APGD-CE and of APGD-DLR (§3; Croce & Hein: 100)"),
    "precision": PRECISION,
}
"""The networks of source C (A.2) and what is measured on them. ``gpu`` and ``paper`` are the
source's ResNet-18 and recipe (``gpu`` for 40 epochs); ``cpu`` a ResNet-18 a quarter as wide on
10 000 images for 10 epochs — the recipe unchanged, the learning-rate drops at the same fractions
of the run; ``smoke`` checks the pipeline."""


def network_config(profile: str, seed: int, **overrides):
    """The resolved :data:`NETWORK_SETTINGS` of ``profile`` (``overrides``: values to change)."""
    return resolve(NETWORK_SETTINGS, profile=profile, seed=seed, **overrides)


def scaled_epochs(epochs: int, paper_epochs) -> tuple[int, ...]:
    """The paper's epochs ``paper_epochs`` (of a 200-epoch run) at the same fractions of a run of
    ``epochs``: distinct, ≥ 1, sorted (40 and 200 of 200 → 3 and 15 of 15)."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int ≥ 1, got {epochs!r}")
    return tuple(sorted({max(1, int(np.floor(e * epochs / PAPER_EPOCHS + 0.5)))
                         for e in paper_epochs}))


def snapshot_epochs(cfg) -> tuple[int, ...]:
    """Epochs at which a network's logits are recorded: :data:`PAPER_SNAPSHOTS` scaled."""
    return scaled_epochs(cfg.epochs, PAPER_SNAPSHOTS)


def teacher_epochs(cfg) -> tuple[int, ...]:
    """Epochs whose AT weights are kept for distillation: :data:`PAPER_TEACHER_EPOCHS` scaled."""
    return scaled_epochs(cfg.epochs, PAPER_TEACHER_EPOCHS)


def distillation_epoch(cfg) -> int:
    """Our epoch of source C's distillation teacher (its epoch 40 of 200, scaled)."""
    return scaled_epochs(cfg.epochs, (DISTILLATION_TEACHER_EPOCH,))[0]


def eval_epochs(kind: str, cfg) -> tuple[int, ...]:
    """Epochs at which the adversarial accuracy is measured: the teacher epochs for AT (Fig. A.6
    sets the students' robustness beside their teachers'), the last epoch for ST (whose
    adversarial accuracy is ≈ 0 throughout)."""
    _check_kind(kind)
    return teacher_epochs(cfg) if kind == "at" else (cfg.epochs,)


def kept_epochs(kind: str, cfg) -> tuple[int, ...]:
    """Epochs whose weights a record made with ``keep_weights`` holds: the teacher epochs for AT
    (Fig. A.6), the distillation epoch for ST (the hybrid targets of §4.2 take the ST network's
    logit order at the teacher's epoch)."""
    _check_kind(kind)
    return teacher_epochs(cfg) if kind == "at" else (distillation_epoch(cfg),)


def _check_kind(kind: str):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def build_network(cfg, *, seed: int = 0) -> ResNet18:
    """A ResNet-18 of ``cfg``'s width and stem, initialized from a generator seeded ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return ResNet18(width=cfg.width, stem=cfg.stem, generator=gen)


def network_name(kind: str, cfg) -> str:
    """Record name of a network: ``st_seed<s>`` / ``at_seed<s>``."""
    _check_kind(kind)
    return f"{kind}_seed{cfg.seed}"


def split(cfg, data: CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, validation)`` into ``data.x_train`` (A.2: ``holdout_per_class`` images
    per class held out; the same split for every seed)."""
    if len(data.x_train) != cfg.n_train:
        raise ValueError(f"data has {len(data.x_train)} training images, the settings "
                         f"{cfg.n_train}; load CIFAR-10 with n_train={cfg.n_train}")
    return holdout_split(data.y_train, cfg.holdout_per_class, seed=0)


def trained_network(kind: str, cfg, data: CIFAR10, *, keep_weights: bool = False, device="cpu",
                    progress: bool = True):
    """The ``kind`` network of ``cfg`` (one seed), loaded from its record or trained and recorded.

    Training: :func:`tsrobust.training.train_classifier` with A.2's recipe on the training split
    of :func:`split` (crop + flip), standard (``"st"``) or with label ℓ∞ PGD (``"at"``: ε
    ``at_eps``, step ``at_alpha``, ``at_steps`` steps, ``at_start``); resumable after a kill.
    At every :func:`snapshot_epochs` epoch the record gets the logits on the first
    ``n_logit_train`` images of the training split (``train_logits_e<E>``) and on the test images
    (``test_logits_e<E>``), the validation and test accuracies; at :func:`eval_epochs`, whether
    each of the first ``n_eval`` test images survives APGD-CE then APGD-DLR at ε ``at_eps``
    (``robust_e<E>``; starts drawn from a generator seeded ``seed + 2000 + E``). Initial
    weights and batches come from ``seed +`` :data:`KIND_SEED_OFFSET`. With
    ``keep_weights`` the weights at :func:`kept_epochs` are recorded too (``weights_e<E>__…``;
    :func:`network_at` rebuilds them). Returns the :class:`tsrobust.results.Result`.
    """
    _check_kind(kind)
    if cfg.n_logit_train > cfg.n_train - 10 * cfg.holdout_per_class:
        raise ValueError(f"n_logit_train={cfg.n_logit_train} exceeds the training split "
                         f"({cfg.n_train} images less {cfg.holdout_per_class} per class)")
    if cfg.n_eval > cfg.n_test:
        raise ValueError(f"n_eval={cfg.n_eval} exceeds n_test={cfg.n_test}")
    device = choose_device(device)
    name = network_name(kind, cfg)
    folder = checkpoint_folder(cfg.profile, NETWORK_CHAPTER, name)
    snaps = snapshot_epochs(cfg)
    evals = eval_epochs(kind, cfg)
    kept = kept_epochs(kind, cfg) if keep_weights else ()

    def compute():
        train_idx, val_idx = split(cfg, data)
        x, y = data.x_train[train_idx], data.y_train[train_idx]
        x_val, y_val = data.x_train[val_idx].to(device), data.y_train[val_idx].to(device)
        x_logit = x[:cfg.n_logit_train].to(device)
        x_test, y_test = data.x_test.to(device), data.y_test.to(device)
        model = build_network(cfg, seed=cfg.seed + KIND_SEED_OFFSET[kind])
        values = {"snapshot_epochs": list(snaps), "eval_epochs": list(evals),
                  "kept_epochs": list(kept), "n_train_split": len(train_idx),
                  "n_validation": len(val_idx), "validation_accuracy": {},
                  "test_accuracy": {}, "adversarial_accuracy": {}}
        arrays = {}

        def on_checkpoint(epoch, m):
            if epoch in snaps:
                arrays[f"train_logits_e{epoch}"] = predict(m, x_logit).float().cpu().numpy()
                test_logits = predict(m, x_test).float()
                arrays[f"test_logits_e{epoch}"] = test_logits.cpu().numpy()
                values["validation_accuracy"][str(epoch)] = (
                    accuracy(m, x_val, y_val) if len(x_val) else None)
                values["test_accuracy"][str(epoch)] = float(
                    (test_logits.argmax(1) == y_test).float().mean())
            if epoch in evals:
                gen = torch.Generator(device=device).manual_seed(
                    cfg.seed + EVAL_SEED_OFFSET + epoch)
                _, robust = attacks.apgd_ce_dlr(
                    m, x_test[:cfg.n_eval], y_test[:cfg.n_eval], eps=cfg.at_eps,
                    steps=cfg.apgd_steps, generator=gen, precision=cfg.precision)
                arrays[f"robust_e{epoch}"] = robust.cpu().numpy()
                values["adversarial_accuracy"][str(epoch)] = float(robust.float().mean())
            if epoch in kept:
                arrays.update(model_arrays(f"weights_e{epoch}", m))

        adversarial = None if kind == "st" else {
            "eps": cfg.at_eps, "alpha": cfg.at_alpha, "steps": cfg.at_steps,
            "start": cfg.at_start}
        gen = torch.Generator(device=device).manual_seed(cfg.seed + KIND_SEED_OFFSET[kind])
        history = train_classifier(
            model, x, y, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
            weight_decay=cfg.weight_decay, adversarial=adversarial, generator=gen,
            device=device, checkpoint_dir=folder,
            checkpoint_epochs=sorted({*snaps, *evals, *kept}), on_checkpoint=on_checkpoint,
            progress=progress, precision=cfg.precision)
        values["history"] = history
        values["precision"] = resolve_precision(cfg.precision, device)
        return values, arrays

    res = record_for(NETWORK_CHAPTER, name, cfg, compute, data=data, device=device,
                     fingerprint={"kind": kind, "kept_epochs": list(kept)})
    discard_checkpoints(folder)
    return res


def network_at(res, epoch: int, cfg, *, device="cpu") -> ResNet18:
    """The network of record ``res`` at ``epoch`` (one of its ``kept_epochs``), in eval mode."""
    kept = res.values.get("kept_epochs", [])
    if epoch not in kept:
        raise ValueError(f"the record {res.name} keeps the weights of epochs {kept}, not "
                         f"{epoch}; record it with keep_weights=True")
    return load_model_arrays(build_network(cfg), res.arrays, f"weights_e{epoch}",
                             device=choose_device(device))


def shown_markdown(shown_profile: str, own_run: bool, build_profile: str, scale: str) -> str:
    """The sentence that says which run chapters 9 and 10 show: the largest recorded one (of
    ``shown_profile``), or this build's own run — then a pipeline check, not a test at scale.
    ``scale``: the shown run's scale, as the chapter's rows state it."""
    if own_run:
        return (f"No run larger than this build's `{build_profile}` run is recorded in this copy "
                f"of the book, so the tables, figures and verdicts below are this build's own run "
                f"({scale}): a check that the pipeline works, not a test of the paper at scale.")
    return (f"The tables, figures and verdicts below are the `{shown_profile}` run recorded in "
            f"the repository ({scale}), the largest recorded; every number in them comes from "
            f"its records. This build's own `{build_profile}` run is shown compactly at the end, "
            f"as the pipeline check.")


def _network_job(kind: str, values: dict, keep_weights: bool):
    values = dict(values)
    cfg = network_config(values.pop("profile"), values.pop("seed"), **values)
    data = load_cifar10(n_train=cfg.n_train, n_test=cfg.n_test, device="cpu")
    return trained_network(kind, cfg, data, keep_weights=keep_weights, device=choose_device())


def network_run(kind: str, cfg, *, keep_weights: bool = False) -> results.Run:
    """:func:`trained_network` of ``kind`` at ``cfg`` as a :class:`tsrobust.results.Run`, on the
    images a notebook of chapters 9–10 loads (the first ``n_train`` / ``n_test``, on the CPU)
    and the device it chooses. ``keep_weights`` is part of what the record holds: a chapter's
    run and another's of the same name must agree on it (chapters 9 and 10 keep the weights of
    their first seed)."""
    _check_kind(kind)
    return results.Run(f"{NETWORK_CHAPTER}/{network_name(kind, cfg)}",
                       partial(_network_job, kind, cfg.as_dict(), keep_weights),
                       settings={**cfg.as_dict(), "keep_weights": keep_weights})
