"""What the CIFAR-10 chapters 3–5 share (source A §5): their common settings, the oracle teacher
and how results that depend on it are recorded.

- :data:`N_TRAIN`, :data:`N_TEST`, :data:`N_PCA`, :data:`PCA_RANK`, :data:`TEACHER_SETTINGS` and
  the students' optimizer settings: one definition each, so that chapter 4 and 5 students are
  trained alike and reuse the teacher chapter 3 recorded.
- :func:`oracle_teacher`: chapter 3's teacher, trained and pruned once per parameter set and
  recorded with provenance (weights in the result's arrays) under chapter 3's record key
  :data:`TEACHER_CHAPTER`; chapters 4 and 5 load it from there.
- :func:`record_for`: ``results.record`` for results that also depend on the data copy and the
  teacher (by weight digest).
- :data:`PAPER_CHECKPOINTS`, :func:`scaled_checkpoints`, :func:`paper_epoch`: the paper's student
  checkpoints (Tables 1 and 3), ours spread over a shorter run, and the paper checkpoint an epoch
  of ours is compared with (the nearest in epochs).
- The students' shared settings (:data:`STUDENT_OPTIMIZER` …, :data:`N_STUDENT`, the robust
  accuracy attack :data:`ATTACK_EPS`, :data:`ATTACK_ALPHA`, :data:`ATTACK_STEPS`) and the seeds
  of a comparison (:func:`seed_config`, :func:`seed_name`): chapters 4 and 5 train and attack
  their standard-trained students alike, so their numbers compare.
- Independent runs (:class:`tsrobust.results.Run`, jobs of ``python -m tsrobust.book run``):
  :func:`teacher_run` is the teacher as a run of its own (chapters 4–7's runs
  need it), :func:`notebook_inputs` the device, data and recorded teacher a notebook starts
  from.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from tsrobust import results
from tsrobust.data import CIFAR10, ROTATION_DEG, load_cifar10
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
from tsrobust.params import PROFILES, Setting, resolve
from tsrobust.runtime import PRECISIONS, choose_device, configure_cuda, resolve_precision
from tsrobust.training import (
    OPTIMIZERS,
    SCHEDULES,
    accuracy,
    agreement_rate,
    checkpoint_folder,
    discard_checkpoints,
    model_arrays,
    model_from_arrays,
    train_teacher,
)

TEACHER_CHAPTER = "03_oracle_teacher"
"""Record key of chapter 3, under which the oracle teacher (``teacher``, ``teacher_deep``) is
recorded; chapters 4 and 5 load it from there."""

# -- settings shared by chapters 3-5 ----------------------------------------------------------

N_TRAIN = Setting(int, smoke=2000, cpu=50_000, gpu=50_000, paper=50_000, min=1, max=50_000,
                  doc="CIFAR-10 training images (the teacher learns from all of them)")
N_TEST = Setting(int, smoke=500, cpu=10_000, gpu=10_000, paper=10_000, min=1, max=10_000,
                 doc="CIFAR-10 test images for accuracies")
N_PCA = Setting(int, smoke=500, cpu=10_000, gpu=10_000, paper=50_000, min=1, max=50_000,
                doc="training images whose 3×3×3 patches enter the patch PCA (§5.3)")
PCA_RANK = Setting(int, smoke=17, cpu=17, gpu=17, paper=17, min=1, max=27,
                   doc="eigenvectors spanning the data subspace U (§5.3: 17 of 27)")
PRECISION = Setting(str, smoke="auto", cpu="auto", gpu="auto", paper="auto",
                    choices=PRECISIONS,
                    doc="arithmetic of forward passes and attacks: 'auto' (bf16 where the device "
                        "multiplies bf16 natively, else fp32), 'fp32' or 'bf16'")

TEACHER_SETTINGS = {
    "n_train": N_TRAIN,
    "teacher_epochs": Setting(int, smoke=4, cpu=12, gpu=60, paper=200, min=1,
                              doc="teacher training epochs (not given in the source)"),
    "teacher_optimizer": Setting(str, smoke="sgd", cpu="adam", gpu="sgd", paper="sgd",
                                 choices=OPTIMIZERS,
                                 doc="teacher optimizer: SGD with momentum 0.9, or Adam"),
    "teacher_schedule": Setting(str, smoke="cosine", cpu="onecycle", gpu="cosine",
                                paper="cosine", choices=SCHEDULES,
                                doc="teacher learning-rate schedule: cosine from teacher_lr to 0, "
                                    "or one-cycle (warm-up to teacher_lr, then cosine to 0)"),
    "teacher_lr": Setting(float, smoke=0.05, cpu=2e-3, gpu=0.05, paper=0.05, min=0.0,
                          doc="teacher (peak) learning rate"),
    "teacher_batch_size": Setting(int, smoke=128, cpu=256, gpu=128, paper=128, min=1,
                                  doc="teacher minibatch size"),
    "teacher_weight_decay": Setting(float, smoke=5e-4, cpu=5e-4, gpu=5e-4, paper=5e-4, min=0.0,
                                    doc="teacher weight decay"),
    "teacher_augment": Setting(bool, smoke=True, cpu=True, gpu=True, paper=True,
                               doc="crop/flip(/rotation) augmentation while training the teacher"),
    "teacher_rotation_deg": Setting(float, smoke=ROTATION_DEG, cpu=0.0, gpu=ROTATION_DEG,
                                    paper=ROTATION_DEG, min=0.0, max=180.0,
                                    doc="largest rotation of the teacher's augmentation (0: crop "
                                        "and flip only; rotations resample bilinearly)"),
    "pruned_widths": Setting(tuple, smoke=PRUNED_WIDTHS, cpu=PRUNED_WIDTHS, gpu=PRUNED_WIDTHS,
                             paper=PRUNED_WIDTHS, min=1,
                             doc="teacher widths after fan-out pruning (§5.1)"),
    "teacher_finetune_epochs": Setting(int, smoke=0, cpu=5, gpu=5, paper=0, min=0,
                                       doc="epochs of label training of the pruned teacher "
                                           "(0: none; the source prunes without it)"),
    "teacher_finetune_lr": Setting(float, smoke=5e-4, cpu=1e-3, gpu=5e-3, paper=5e-3, min=0.0,
                                   doc="learning rate of that fine-tune (cosine to 0, the "
                                       "teacher's optimizer)"),
    "precision": PRECISION,
}
"""What the oracle teacher depends on (a recorded teacher is reused while these are unchanged).
The source is silent on how the teacher is trained. ``smoke``, ``gpu`` and ``paper`` use common
CIFAR-10 choices (SGD, momentum 0.9, cosine schedule, weight decay, crop/flip/rotation); ``cpu``
uses Adam with a one-cycle schedule and crop/flip only, which reaches a usable teacher in a dozen
epochs. Footnote 3 prunes *inactivated* channels; a teacher trained without pressure toward dead
channels loses accuracy when cut to 45-32-32-20 by fan-out norm, so the ``cpu`` and ``gpu``
profiles fine-tune the pruned teacher on the labels (``teacher_finetune_epochs``): the oracle the
students learn from is then the fine-tuned pruned net."""

STUDENT_OPTIMIZER = Setting(str, smoke="adam", cpu="adam", gpu="adam", paper="adam",
                            choices=OPTIMIZERS,
                            doc="student optimizer (not given in the source)")
STUDENT_LR = Setting(float, smoke=1e-3, cpu=1e-3, gpu=1e-3, paper=1e-3, min=0.0,
                     doc="student learning rate (constant, so epoch-e checkpoints are "
                         "e-epoch students)")
STUDENT_BATCH_SIZE = Setting(int, smoke=128, cpu=128, gpu=128, paper=128, min=1,
                             doc="student minibatch size")
"""Students of chapters 4 and 5 are trained alike (Adam at a constant rate: one rate serves both
the ℓ2 logit loss and the cross-entropy label loss, whose gradient scales differ), so that their
standard-trained students are comparable."""

STUDENT_IMAGES_DOC = ("training images the students learn from: the first of the teacher's "
                      "n_train (the cpu profile trains its students on 20 000 of them)")

ATTACK_EPS = Setting(float, smoke=10 / 255, cpu=10 / 255, gpu=10 / 255, paper=10 / 255, min=0.0,
                     doc="ℓ∞ budget of the robust-accuracy attack (§5.1: 10/255)")
ATTACK_ALPHA = Setting(float, smoke=0.01, cpu=0.01, gpu=0.01, paper=0.01, min=0.0,
                       doc="ℓ∞ PGD step size of the robust-accuracy attack (§5.1: 0.01)")
ATTACK_STEPS = Setting(int, smoke=5, cpu=40, gpu=40, paper=40, min=1,
                       doc="PGD steps of the robust-accuracy attack (§5.1: 40)")
"""The ℓ∞ PGD of the robust accuracy (§5.1, §5.4): one definition, so that the standard-trained
students of chapter 4 (Table 3) and chapter 5 (Table 1) are attacked alike and their numbers
compare."""


def seed_config(cfg, settings: dict, k: int):
    """The configuration of the ``k``-th seed of a run (``k`` = 0 is ``cfg`` itself): every
    parameter as ``cfg``'s, the seed ``cfg.seed + k``. Each seed is an independently initialized
    and trained student; the spread across seeds is the noise the verdicts judge by."""
    values = cfg.as_dict()
    profile = values.pop("profile")
    values.pop("seed")
    return resolve(settings, profile=profile, seed=cfg.seed + k, **values)


def seed_name(name: str, cfg, k: int) -> str:
    """The record name of the ``k``-th seed's run of ``name``: ``name`` itself for ``k`` = 0
    (the records of one-seed runs keep their names), else ``name_seed<cfg.seed + k>``."""
    return name if k == 0 else f"{name}_seed{cfg.seed + k}"

# -- seeds ------------------------------------------------------------------------------------

TEACHER_SEED_OFFSET = 10_000
"""The teacher's initialization and batches use ``seed + 10000``: students built from ``seed``
must not start from the teacher's own initial weights (same layer shapes, same draws)."""
EVAL_SEED_OFFSET = 2000
"""Robust evaluations draw from a generator seeded ``seed + 2000`` (chapter 4 adds the
checkpoint epoch): reproducible, and independent of the training generators, so a resumed run
measures the same."""

# -- the paper's checkpoints ------------------------------------------------------------------

PAPER_CHECKPOINTS = (50, 100, 150, 200, 300)
"""Epochs at which Tables 1 and 3 report students (§5.4, §5.5)."""
PAPER_EPOCHS = 300
"""The longest student training of §5.4–5.5."""


def scaled_checkpoints(epochs: int, paper=PAPER_CHECKPOINTS,
                       paper_epochs: int = PAPER_EPOCHS) -> tuple[int, ...]:
    """The paper's checkpoint epochs scaled to a run of ``epochs`` (distinct, ≥ 1, sorted)."""
    return tuple(sorted({max(1, round(e * epochs / paper_epochs)) for e in paper}))


def paper_epoch(epoch: int, paper=PAPER_CHECKPOINTS) -> int:
    """The paper checkpoint that our ``epoch`` is compared with: the one nearest in epochs (the
    earlier on a tie), e.g. epoch 2 ↔ 50, epoch 120 ↔ 100. Matched by epoch, not by fraction of
    training: a student trained 2 epochs is not a student trained 150, whatever its run's length
    (:func:`epochs_note` says where the two differ)."""
    return min(paper, key=lambda p: (abs(p - epoch), p))


def epochs_note(epoch: int, paper: int) -> str:
    """"" when our checkpoint and the paper's it is compared with have the same epoch, else
    the sentence that says they do not."""
    if epoch == paper:
        return ""
    return f"our epoch {epoch} vs the paper's {paper}: the epochs differ"


# -- the run a chapter shows ----------------------------------------------------------------------

def larger_profiles_sentence(profile: str) -> str:
    """The sentence a CIFAR chapter ends its reading of a run with: which profiles run the same
    code at larger scale than ``profile`` (none after ``paper``: then empty)."""
    larger = [f"`{p}`" for p in PROFILES[PROFILES.index(profile) + 1:]]
    if not larger:
        return ""
    listed = larger[0] if len(larger) == 1 else ", ".join(larger[:-1]) + " and " + larger[-1]
    return (f" The {listed} profile" + ("s run" if len(larger) > 1 else " runs")
            + " the same code at larger scale; a run of one records its results, and this "
              "chapter then leads with it.")


def shown_run_markdown(shown_cfg, own_run: bool, build_profile: str, scale: str) -> str:
    """The sentence that says which run a chapter of 4–5 shows: the largest recorded one (with
    its teacher's accuracy, from chapter 3's record of that profile), or, when none larger than
    this build's is recorded, this build's own run — then a pipeline check, not a test at
    scale. ``scale``: the shown run's scale, as its rows state it."""
    if own_run:
        return (f"No run larger than this build's `{build_profile}` run is recorded in this copy "
                f"of the book, so the tables, figures and verdicts below are this build's own run "
                f"({scale}): a check that the pipeline works, not a test of the paper at scale.")
    teacher = results.load(TEACHER_CHAPTER, "teacher", shown_cfg.profile)
    oracle = ("" if teacher is None else
              f" Its oracle is chapter 3's `{shown_cfg.profile}` teacher, pruned to "
              f"{'-'.join(map(str, teacher.values['pruned_widths']))}, at "
              f"{100 * teacher.values['test_accuracy_pruned']:.1f} % test accuracy.")
    return (f"The tables, figures and verdicts below are the `{shown_cfg.profile}` run recorded "
            f"in the repository ({scale}), the largest recorded; every number in them, and in "
            f"the sentences computed from them, comes from that record.{oracle} This build's own "
            f"`{build_profile}` run is shown compactly at the end, as the pipeline check.")


# -- recording ----------------------------------------------------------------------------------

MEASURES = "dead teacher nodes excluded; untrained baseline; paired evaluations"
"""What the recorded measurements of chapters 4–5 contain (part of their fingerprint: a record
made before these definitions is recomputed, not mixed with new ones)."""


def record_for(chapter: str, name: str, cfg, compute, *, data: CIFAR10, fingerprint: dict,
               device=None):
    """``results.record`` for results that depend on more than the parameters: the data copy
    and ``fingerprint`` (e.g. the digest of the teacher used). ``fingerprint`` is stored in the
    values; a recorded result whose fingerprint or data copy differs is recomputed."""

    def with_fingerprint():
        out = compute()
        values, arrays = out if isinstance(out, tuple) else (out, None)
        return {**values, **fingerprint}, arrays

    res = results.record(chapter, name, cfg, with_fingerprint, dataset=data.description,
                         device=device)
    stale = any(res.values.get(k) != v for k, v in fingerprint.items())
    if res.loaded and (stale or data.copy not in str(res.provenance.get("dataset"))):
        start = time.perf_counter()
        values, arrays = with_fingerprint()
        res = results.save(chapter, name, cfg, values, arrays,
                           seconds=time.perf_counter() - start, dataset=data.description,
                           device=device)
    return res


# -- the oracle teacher (§5.1) ------------------------------------------------------------------

N_ACTIVITY = 1000
"""Training images on which pruning checks which teacher channels ever fire (a channel that is
zero at every position of all of them counts as dead)."""
PRUNING = "fan-out norm, dead channels first"
"""How the teacher is pruned (part of its record's fingerprint: a teacher pruned otherwise is
recomputed)."""


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
    """The oracle teacher of §5.1: train the 64-64-64-64 teacher on ``data``'s labels, prune it to
    ``pruned_widths`` by fan-out norm (footnote 3; channels that never fire on the first
    :data:`N_ACTIVITY` training images go first), and record both with provenance.

    Loads the recorded teacher when one exists for the same parameters and data copy, else
    trains it (resumable after a kill). The test accuracies are those of the run that trained
    it (on its ``n_test_used`` test images). ``deep``: the 5-layer teacher of Fig. 5 (record
    ``teacher_deep``). ``overrides``: values of :data:`TEACHER_SETTINGS` (None → profile's).
    With ``teacher_finetune_epochs`` > 0 the pruned teacher is then trained on the labels for
    that many epochs (cosine from ``teacher_finetune_lr``): the oracle is the fine-tuned pruned
    net. Returns ``(teacher_full, teacher_pruned, result)``, both models in eval mode on
    ``device``; ``result.values`` has the test accuracies of the full teacher, of the pruned one
    before (``test_accuracy_pruned_only``) and after the fine-tune (``test_accuracy_pruned``),
    fan-out norms, kept channels, and the training histories with a test accuracy per epoch.
    """
    cfg = teacher_config(profile, seed, data, deep=deep, **overrides)
    full_widths = DEEP_TEACHER_WIDTHS if deep else TEACHER_WIDTHS
    if len(cfg.pruned_widths) != len(full_widths):
        raise ValueError(
            f"pruned_widths {cfg.pruned_widths} must have {len(full_widths)} layers like the "
            f"teacher {full_widths}"
        )
    name = "teacher_deep" if deep else "teacher"
    device = choose_device(device)
    folder = checkpoint_folder(cfg.profile, TEACHER_CHAPTER, f"{name}-seed{cfg.seed}")

    def compute():
        init = torch.Generator().manual_seed(cfg.seed + TEACHER_SEED_OFFSET)
        gen = torch.Generator(device=device).manual_seed(cfg.seed + TEACHER_SEED_OFFSET)
        x_test, y_test = data.x_test.to(device), data.y_test.to(device)
        full = ConvNet(full_widths, generator=init).to(device)
        common = dict(batch_size=cfg.teacher_batch_size, augment=cfg.teacher_augment,
                      rotation_deg=cfg.teacher_rotation_deg, optimizer=cfg.teacher_optimizer,
                      weight_decay=cfg.teacher_weight_decay, generator=gen, device=device,
                      precision=cfg.precision, progress=progress)
        curve: dict[int, float] = {}
        history = train_teacher(
            full, data, epochs=cfg.teacher_epochs, lr=cfg.teacher_lr,
            schedule=cfg.teacher_schedule, checkpoint_dir=folder,
            checkpoint_epochs=range(1, cfg.teacher_epochs + 1),
            on_checkpoint=lambda e, m: curve.__setitem__(e, accuracy(m, x_test, y_test)),
            **common)
        history["test_accuracy"] = [curve[e] for e in history["epoch"]]
        full.eval()
        x_act = data.x_train[:N_ACTIVITY].to(device)
        pruned = prune_by_fanout(full, cfg.pruned_widths, x_act).eval()
        pruned_only = accuracy(pruned, x_test, y_test)
        agreement_only = agreement_rate(pruned, full, x_test)
        finetune = None
        if cfg.teacher_finetune_epochs:
            ft_curve: dict[int, float] = {}
            finetune = train_teacher(
                pruned, data, epochs=cfg.teacher_finetune_epochs, lr=cfg.teacher_finetune_lr,
                schedule="cosine", checkpoint_dir=folder / "finetune",
                checkpoint_epochs=range(1, cfg.teacher_finetune_epochs + 1),
                on_checkpoint=lambda e, m: ft_curve.__setitem__(e, accuracy(m, x_test, y_test)),
                **common)
            finetune["test_accuracy"] = [ft_curve[e] for e in finetune["epoch"]]
            pruned.eval()
        values = {
            "n_test_used": len(x_test),
            "full_widths": list(full_widths),
            "pruned_widths": list(cfg.pruned_widths),
            "test_accuracy_full": accuracy(full, x_test, y_test),
            "test_accuracy_pruned_only": pruned_only,
            "agreement_pruned_only_full": agreement_only,
            "test_accuracy_pruned": accuracy(pruned, x_test, y_test),
            "train_accuracy_full": accuracy(full, data.x_train.to(device),
                                            data.y_train.to(device)),
            "agreement_pruned_full": agreement_rate(pruned, full, x_test),
            "fanout_norms": [n.cpu().tolist() for n in fanout_norms(full)],
            "dead_channels": [(~a).nonzero().flatten().cpu().tolist()
                              for a in active_channels(full, x_act)],
            "dead_channels_pruned": [(~a).nonzero().flatten().cpu().tolist()
                                     for a in active_channels(pruned, x_act)],
            "kept_channels": [k.cpu().tolist()
                              for k in kept_channels(full, cfg.pruned_widths, x_act)],
            "history": history,
            "finetune_history": finetune,
            "precision": resolve_precision(cfg.precision, device),
        }
        arrays = {**model_arrays("full", full), **model_arrays("pruned", pruned)}
        return values, arrays

    res = record_for(TEACHER_CHAPTER, name, cfg, compute, data=data, device=device,
                     fingerprint={"init_seed": cfg.seed + TEACHER_SEED_OFFSET,
                                  "pruning": PRUNING})
    discard_checkpoints(folder)
    full = model_from_arrays(res.arrays, "full", res.values["full_widths"], device=device)
    pruned = model_from_arrays(res.arrays, "pruned", res.values["pruned_widths"], device=device)
    return full, pruned, res


# -- independent runs (cluster jobs) ------------------------------------------------------------

def notebook_inputs(cfg, *, cuda_mode: str | None = "default", data_on_device: bool = True):
    """``(device, data, teacher)`` as a CIFAR chapter's notebook starts: the device
    (``configure_cuda(cuda_mode)`` unless ``None``: chapters 6 and 7 leave torch's defaults),
    ``cfg.n_train`` / ``cfg.n_test`` CIFAR-10 images (on the device, or the CPU with
    ``data_on_device=False``) and chapter 3's pruned oracle teacher for ``cfg``'s profile and
    seed (loaded when recorded)."""
    device = choose_device()
    if cuda_mode is not None:
        configure_cuda(cuda_mode, device)
    data = load_cifar10(device=device if data_on_device else "cpu", n_train=cfg.n_train,
                        n_test=cfg.n_test)
    _, teacher, _ = oracle_teacher(cfg.profile, cfg.seed, data, device=device)
    return device, data, teacher


def _record_teacher(profile: str, seed: int, n_train: int, n_test: int, data_on_device: bool,
                    cuda_mode: str | None, overrides: dict):
    device = choose_device()
    if cuda_mode is not None:
        configure_cuda(cuda_mode, device)
    data = load_cifar10(device=device if data_on_device else "cpu", n_train=n_train,
                        n_test=n_test)
    return oracle_teacher(profile, seed, data, device=device, **overrides)[2]


def teacher_run(cfg, *, cuda_mode: str | None = "default", data_on_device: bool = True,
                **overrides) -> results.Run:
    """Chapter 3's oracle teacher for ``cfg`` (a chapter's configuration: its profile, seed,
    ``n_train``, ``n_test``) as a :class:`tsrobust.results.Run`, recorded as
    :func:`oracle_teacher` records it: the run every run of chapters 4–7 needs first.
    ``overrides``: values of :data:`TEACHER_SETTINGS` (chapter 3's parameters; chapters 4–7
    use the profile's)."""
    teacher_cfg = resolve(TEACHER_SETTINGS, profile=cfg.profile, seed=cfg.seed,
                          n_train=cfg.n_train, **overrides)
    return results.Run(
        f"{TEACHER_CHAPTER}/teacher",
        partial(_record_teacher, cfg.profile, cfg.seed, cfg.n_train, cfg.n_test, data_on_device,
                cuda_mode, overrides),
        settings=teacher_cfg.as_dict())
