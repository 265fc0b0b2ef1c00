"""Chapter 10: distillation manipulations (source C §4.2, App. A.3, Figs. 4, 5, A.6, A.7, Table 2).

Everything the chapter computes, checks and draws lives here; the notebook calls these
functions and shows what they return.

- The teacher is the adversarially trained (AT) ResNet-18 of chapter 9
  (:mod:`tsrobust.chapters.resnets`) at :func:`tsrobust.chapters.resnets.distillation_epoch`
  (source C's epoch 40 of 200, scaled); the standard-trained (ST) network of the same record
  set gives the hybrid targets' class order and the "≈ 0" robustness level.
- :func:`teacher_targets`: one fixed target per training image (A.3: the network's logits
  averaged over ``n_augment`` crops and flips, :func:`tsrobust.logits.distillation_targets`),
  recorded per network and epoch with the share of images it gets wrong.
- :func:`student_targets`: the targets of one student spec (:func:`student_specs`): normal,
  fix-k permute / average, correct-fix-1 (permute, as Table 2), hybrid; normal targets of the
  other teacher epochs (Fig. A.6); KL instead of L1 (Fig. A.7).
- :func:`record_student`: one student, distilled on clean images by
  :func:`tsrobust.training.train_classifier` (``targets=``, ``loss=``), measured (natural accuracy
  on the test images; adversarial accuracy per image, APGD-CE then APGD-DLR, §3) and recorded —
  one record per student, so that each can run as a job of its own (:func:`record_names`,
  :func:`record_one`). The students of Fig. 5 also carry their manifold geometry.
- :func:`exemplar_geometry`: Fig. 5's exemplar manifolds — for each of ``n_manifolds`` test
  images, ``manifold_points`` ℓ∞ PGD perturbations (ε = 8/255) against the network itself, seen
  after the stem and each block — measured by :func:`tsrobust.manifolds.manifold_analysis`.
- :func:`summary`, :func:`claim_rows`, tables and figures: the book leads with the largest
  recorded run (:func:`leading_run`), this build's own run is the pipeline check.

Where the source is silent (the student's recipe, how many augmentations make a target, the
size and the perturbations of the exemplar manifolds, KL's temperature) the choices are settings
of :data:`SETTINGS` or named constants here, stated in the chapter.
"""

from __future__ import annotations

import re
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
from tqdm.auto import tqdm

from tsrobust import attacks, bench, logits, manifolds, results
from tsrobust.chapters import resnets
from tsrobust.chapters.cifar import EVAL_SEED_OFFSET, larger_profiles_sentence, record_for
from tsrobust.data import CIFAR10, load_cifar10
from tsrobust.models import NUM_CLASSES, STAGE_NAMES, ResNet18
from tsrobust.params import Setting, resolve, resolve_notebook
from tsrobust.runtime import choose_device, resolve_precision
from tsrobust.training import (
    PAPER_EPOCHS,
    checkpoint_folder,
    discard_checkpoints,
    label_pgd,
    model_digest,
    predict,
    train_classifier,
)

CHAPTER = "10_distillation_manipulations"
"""Record key of this chapter (the networks are recorded under chapter 9's key)."""

NORMAL, CORRECT_FIX_1, HYBRID = "normal", "correct_fix_1", "hybrid"
PERMUTE, AVERAGE = logits.MANIPULATIONS
FIX_1 = "permute_k1"
"""Table 2's "Fix-1 (perm)" student."""
ROBUST_STUDENTS = (NORMAL, FIX_1)
NON_ROBUST_STUDENTS = (CORRECT_FIX_1, HYBRID)
"""Fig. 5's students: the two Table 2 finds robust and the two it finds not."""
MANIFOLD_NETS = ("at", "st") + ROBUST_STUDENTS + NON_ROBUST_STUDENTS
"""The networks of Fig. 5: the AT teacher, the ST network at the same epoch, four students."""

PAPER_TABLE2 = {NORMAL: ("75.2 ± 0.30", "30.4 ± 0.34"), FIX_1: ("77.6 ± 0.6", "13.3 ± 2.0"),
                CORRECT_FIX_1: ("92.1 ± 0.19", "0.1 ± 0.05"),
                HYBRID: ("87.86 ± 0.19", "0.00 ± 0.00")}
"""Source C, Table 2: natural and adversarial accuracy (%) of the students, mean ± sd of three
seeds. The text gives 12.43 % for fix-1's adversarial accuracy (:data:`PAPER_FIX1_TEXT`)."""
PAPER_FIX1_TEXT = 12.43
PAPER_SHARES = {3: 0.80, 7: 0.99}
"""Fig. 4B: "the top-3 values provide almost 80 % of the full robustness, but the top-7 values
are required to be within 99 %"."""
SHARE_TOL = 0.05
"""A share of the normal student's robustness within 5 points of the paper's counts as its
number (at the paper's settings only)."""
PAPER_TEACHER_WRONG = (19.6, 0.6)
"""§4.2: the epoch-40 AT teacher is wrong on 19.6 % ± 0.6 % of the training images."""
PAPER_ST_ADVERSARIAL = "0.00"
"""Table 1: the ST ResNet-18's adversarial accuracy (%)."""

STUDENT_SEED_OFFSET = 3000
"""Student k of a run starts from weights and draws batches from ``seed + 3000 + k``."""
MANIPULATION_SEED_OFFSET = 4000
"""The permutations of fix-k permute (and correct-fix-1) of student k: ``seed + 4000 + k``."""
TARGET_SEED_OFFSET = 5000
"""The augmentations averaged into a network's targets at epoch E: ``seed + 5000 + E``."""
MANIFOLD_SEED_OFFSET = 6000
"""The PGD starts of the exemplar manifolds and the Gaussian samples of the analysis."""
MANIFOLD_ALPHA_STEPS = 4
"""PGD step of the exemplar manifolds: ε / 4 (2/255 at ε = 8/255, the step of A.2's AT)."""

STUDENT_SETTINGS = {
    "student_epochs": Setting(int, smoke=2, cpu=10, gpu=40, paper=PAPER_EPOCHS, min=1,
                              doc="epochs each student is distilled for, with the networks' "
                                  "recipe (A.2: SGD 0.1, momentum 0.9, the drops at 100 and 150 "
                                  "of 200 scaled; the source's students follow its reference "
                                  "[9], whose recipe A.2 is)"),
    "n_student": Setting(int, smoke=1000, cpu=6000, gpu=45_000, paper=45_000, min=10,
                         max=50_000,
                         doc="training images the students learn from: the first of the "
                             "networks' training split (A.2: the 45 000 left after 500 per "
                             "class are held out)"),
    "n_augment": Setting(int, smoke=2, cpu=4, gpu=8, paper=8, min=1,
                         doc="crops and flips each target is averaged over (A.3: 'several'; "
                             "not given)"),
    "ks": Setting(tuple, smoke=(1, 3, 7), cpu=(1, 2, 3, 5, 7), gpu=tuple(range(1, 11)),
                  paper=tuple(range(1, 11)), min=1, max=NUM_CLASSES,
                  doc="the k of the fix-k students (Fig. 4B: 1 … 10; k ≥ 9 leaves the targets "
                      "unchanged, see the chapter)"),
    "fix_k_average": Setting(bool, smoke=False, cpu=True, gpu=True, paper=True,
                             doc="also distil the fix-k (average) students (Fig. 4B's second "
                                 "curve)"),
    "student_seeds": Setting(int, smoke=1, cpu=1, gpu=3, paper=3, min=1,
                             doc="students per target spec, from seeds seed + 3000 + k (Table 2: "
                                 "three seeds)"),
    "teacher_sweep": Setting(bool, smoke=False, cpu=True, gpu=True, paper=True,
                             doc="distil the teacher's other kept epochs too (Fig. A.6)"),
    "kl_students": Setting(bool, smoke=False, cpu=True, gpu=True, paper=True,
                           doc="distil with KL on the softmax as well (Fig. A.7), from every "
                               "teacher epoch distilled with L1"),
    "n_student_eval": Setting(int, smoke=100, cpu=500, gpu=2000, paper=10_000, min=1,
                              max=10_000,
                              doc="test images (the first) whose adversarial accuracy is "
                                  "measured for every student"),
    "n_manifolds": Setting(int, smoke=8, cpu=50, gpu=100, paper=100, min=3, max=10_000,
                           doc="exemplar manifolds P of Fig. 5: the first test images "
                               "(not given in the source)"),
    "manifold_points": Setting(int, smoke=6, cpu=20, gpu=50, paper=50, min=2,
                               doc="ℓ∞ perturbations M per exemplar manifold (not given)"),
    "manifold_steps": Setting(int, smoke=2, cpu=10, gpu=10, paper=10, min=1,
                              doc="PGD steps of each perturbation (label ℓ∞ PGD against the "
                                  "analysed network, random start, step ε/4)"),
    "manifold_n_t": Setting(int, smoke=50, cpu=200, gpu=200, paper=200, min=1,
                            doc="Gaussian samples per manifold of the MFTMA (the reference "
                                "code's examples: 200-300)"),
}
"""The students' settings (the networks' are :data:`tsrobust.chapters.resnets.NETWORK_SETTINGS`).

The ``cpu`` profile distils 20 students (normal; fix-k permute and average for k = 1, 2, 3,
5, 7; correct-fix-1; hybrid; the three other teacher epochs; KL from the four) for 10 epochs on
6 000 images each and attacks each on 500 test images: :func:`work` counts it."""

SETTINGS = {**resnets.NETWORK_SETTINGS, **STUDENT_SETTINGS}
"""Chapter 10's parameters: chapter 9's networks (so that the teacher is one of them) and the
students'."""


def check_settings(cfg):
    """Cross-parameter checks (single values are checked by ``resolve``)."""
    split = cfg.n_train - NUM_CLASSES * cfg.holdout_per_class
    if cfg.n_student > split:
        raise ValueError(f"n_student = {cfg.n_student} exceeds the networks' training split "
                         f"({cfg.n_train} images less {cfg.holdout_per_class} per class = "
                         f"{split})")
    if cfg.n_student_eval > cfg.n_test or cfg.n_manifolds > cfg.n_test:
        raise ValueError(f"n_student_eval = {cfg.n_student_eval} and n_manifolds = "
                         f"{cfg.n_manifolds} must be ≤ n_test = {cfg.n_test}")
    if 1 not in cfg.ks or len(set(cfg.ks)) != len(cfg.ks):
        raise ValueError(f"ks {cfg.ks} must be distinct and hold 1 (Table 2's fix-1 student)")


def network_config(cfg):
    """The networks' configuration inside the chapter's ``cfg`` (chapter 9's record key)."""
    return resolve(resnets.NETWORK_SETTINGS, profile=cfg.profile, seed=cfg.seed,
                   **{k: getattr(cfg, k) for k in resnets.NETWORK_SETTINGS})


# -- student specs ------------------------------------------------------------------------------

_SPEC = re.compile(r"^(normal|correct_fix_1|hybrid|(permute|average)_k(\d+)|"
                   r"(teacher|kl)_e(\d+))$")


def parse_spec(spec: str, distillation_epoch: int) -> dict:
    """What a student spec means: ``{"target", "k", "epoch", "loss"}``. Specs: ``normal``,
    ``permute_k<k>``, ``average_k<k>``, ``correct_fix_1``, ``hybrid`` (teacher at the distillation
    epoch, L1); ``teacher_e<E>`` (normal targets of teacher epoch E, L1; Fig. A.6); ``kl_e<E>``
    (normal targets of epoch E, KL; Fig. A.7)."""
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise ValueError(f"unknown student spec {spec!r}: normal, permute_k<k>, average_k<k>, "
                         f"correct_fix_1, hybrid, teacher_e<E> or kl_e<E>")
    out = {"target": spec, "k": None, "epoch": distillation_epoch, "loss": "l1"}
    if m.group(2):
        out.update(target=m.group(2), k=int(m.group(3)))
    elif m.group(4):
        out.update(target=NORMAL, epoch=int(m.group(5)),
                   loss="kl" if m.group(4) == "kl" else "l1")
    return out


def l1_spec(epoch: int, distillation_epoch: int) -> str:
    """The spec of the L1 student of teacher epoch ``epoch`` (``normal`` at the distillation
    epoch)."""
    return NORMAL if epoch == distillation_epoch else f"teacher_e{epoch}"


def student_specs(cfg) -> list[str]:
    """Every student spec a run with ``cfg`` distils, in the order the chapter shows them."""
    net = network_config(cfg)
    d = resnets.distillation_epoch(net)
    epochs = resnets.teacher_epochs(net) if cfg.teacher_sweep else (d,)
    specs = [NORMAL, *(f"{PERMUTE}_k{k}" for k in cfg.ks)]
    if cfg.fix_k_average:
        specs += [f"{AVERAGE}_k{k}" for k in cfg.ks]
    specs += [CORRECT_FIX_1, HYBRID]
    specs += [f"teacher_e{e}" for e in epochs if e != d]
    if cfg.kl_students:
        specs += [f"kl_e{e}" for e in epochs]
    return specs


def label(spec: str) -> str:
    """How tables and legends name a student."""
    m = _SPEC.match(spec)
    if spec == NORMAL:
        return "normal"
    if spec in (CORRECT_FIX_1, HYBRID):
        return {CORRECT_FIX_1: "correct-fix-1 (perm)", HYBRID: "hybrid ST-AT"}[spec]
    if m and m.group(2):
        return f"fix-{m.group(3)} ({'perm' if m.group(2) == PERMUTE else 'avg'})"
    if m and m.group(4):
        return f"{'KL' if m.group(4) == 'kl' else 'L1'}, teacher epoch {m.group(5)}"
    return spec


# -- targets ------------------------------------------------------------------------------------

def networks(cfg, data: CIFAR10, *, device="cpu", progress: bool = True):
    """``(at, st)``: chapter 9's records of the AT and ST networks of ``cfg``'s seed with their
    kept weights (loaded, or trained and recorded when chapter 9 has not run)."""
    net = network_config(cfg)
    return tuple(resnets.trained_network(kind, net, data, keep_weights=True, device=device,
                                         progress=progress) for kind in ("at", "st"))


def _training_images(cfg, data: CIFAR10):
    """The students' images and labels: the first ``n_student`` of the networks' split."""
    train_idx, _ = resnets.split(network_config(cfg), data)
    idx = train_idx[:cfg.n_student]
    return data.x_train[idx], data.y_train[idx]


def teacher_targets(cfg, data: CIFAR10, kind: str, epoch: int, *, device="cpu",
                    progress: bool = True):
    """The fixed targets of network ``kind`` at ``epoch`` on the students' images (A.3), recorded
    as ``targets_<kind>_e<E>``: ``arrays["targets"]`` [n_student, 10] float32,
    ``arrays["wrong"]`` whether each image's target argmax misses its label, and
    ``values["wrong_share"]``."""
    net_cfg = network_config(cfg)
    res = dict(zip(("at", "st"), networks(cfg, data, device=device, progress=progress)))[kind]
    model = resnets.network_at(res, epoch, net_cfg, device=device)

    def compute():
        x, y = _training_images(cfg, data)
        gen = torch.Generator(device=model.fc.weight.device).manual_seed(
            cfg.seed + TARGET_SEED_OFFSET + epoch)
        t = logits.distillation_targets(model, x, n_augment=cfg.n_augment, generator=gen,
                                        precision=cfg.precision).float().cpu()
        wrong = (t.argmax(1) != y).numpy()
        return ({"kind": kind, "epoch": epoch, "wrong_share": float(wrong.mean()),
                 "n": len(t)}, {"targets": t.numpy(), "wrong": wrong})

    return record_for(CHAPTER, f"targets_{kind}_e{epoch}", cfg, compute, data=data,
                      device=choose_device(device),
                      fingerprint={"network_digest": model_digest(model)})


def student_targets(spec: dict, at: torch.Tensor, labels: torch.Tensor,
                    st: torch.Tensor | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """The targets of a parsed spec (:func:`parse_spec`) from the teacher's fixed targets ``at``
    (and, for hybrid, the ST network's ``st``): normal as they are; fix-k permute / average
    (:func:`tsrobust.logits.fix_k_permute`, ``fix_k_average``); correct-fix-1 on the permute
    fix-1 targets (Table 2's "(perm)"); hybrid = AT values in ST's class order."""
    target = spec["target"]
    if target == NORMAL:
        return at.clone()
    if target == PERMUTE:
        return logits.fix_k_permute(at, spec["k"], generator)
    if target == AVERAGE:
        return logits.fix_k_average(at, spec["k"])
    if target == CORRECT_FIX_1:
        return logits.correct_fix_1(at, labels, manipulation=PERMUTE, generator=generator)
    if target == HYBRID:
        if st is None:
            raise ValueError("hybrid targets need the ST network's targets")
        return logits.hybrid(at, st)
    raise ValueError(f"unknown target {target!r}")


def kept_share(spec: dict, targets: torch.Tensor, at: torch.Tensor, labels: torch.Tensor,
               st: torch.Tensor | None = None) -> float:
    """Share of rows whose top class is what the manipulation must keep: the teacher's (normal,
    fix-k), the label (correct-fix-1), the ST network's (hybrid) — that class holds the row's
    largest value (ties allowed: bf16 logits tie now and then, and ``argmax`` then picks the
    first of the tied classes). 1 on a correct run."""
    want = (labels if spec["target"] == CORRECT_FIX_1 else
            st.argmax(1) if spec["target"] == HYBRID else at.argmax(1))
    kept = targets.gather(1, want.to(targets.device).long()[:, None])[:, 0]
    return float((kept == targets.max(1).values).float().mean())


# -- Fig. 5: exemplar manifolds -------------------------------------------------------------------

def exemplar_geometry(model: ResNet18, x: torch.Tensor, y: torch.Tensor, cfg, *,
                      progress: bool = True) -> dict:
    """Fig. 5 for one network: each image of ``x`` makes an exemplar manifold of
    ``manifold_points`` ℓ∞ perturbations (ε ``at_eps``) — label PGD against ``model`` itself,
    ``manifold_steps`` steps of ε/4 from uniform random starts (the source does not say how it
    drew its perturbations) — whose representations after the stem and each block
    (:meth:`ResNet18.activations`) are measured by :func:`tsrobust.manifolds.manifold_analysis`.
    Returns per stage (:data:`tsrobust.models.STAGE_NAMES`) the capacity, radius, dimension and
    center correlation, and the per-manifold capacities and radii."""
    device = next(model.parameters()).device
    m = cfg.manifold_points
    gen = torch.Generator(device=device).manual_seed(cfg.seed + MANIFOLD_SEED_OFFSET)
    xs, ys = x.to(device).repeat_interleave(m, 0), y.to(device).repeat_interleave(m, 0)
    adv = label_pgd(model, xs, ys, eps=cfg.at_eps, alpha=cfg.at_eps / MANIFOLD_ALPHA_STEPS,
                    steps=cfg.manifold_steps, start="uniform", generator=gen,
                    precision=cfg.precision)
    with torch.no_grad(), attacks.frozen(model):
        maps = [torch.cat(parts) for parts in zip(*(
            [a.float().flatten(1).cpu() for a in model.activations(b)]
            for b in adv.split(256)))]
    out = {k: [] for k in ("capacity", "radius", "dimension", "center_correlation",
                           "capacities", "radii")}
    for stage in tqdm(maps, desc="manifold analysis", disable=not progress):
        g = manifolds.manifold_analysis(list(stage.view(len(x), m, -1).numpy()),
                                        n_t=cfg.manifold_n_t,
                                        seed=cfg.seed + MANIFOLD_SEED_OFFSET, progress=False)
        for k in ("capacity", "radius", "dimension", "center_correlation"):
            out[k].append(float(getattr(g, k)))
        out["capacities"].append(g.capacities.tolist())
        out["radii"].append(g.radii.tolist())
    return out


def _manifold_images(cfg, data: CIFAR10):
    return data.x_test[:cfg.n_manifolds], data.y_test[:cfg.n_manifolds]


def record_network_manifolds(cfg, data: CIFAR10, kind: str, *, device="cpu",
                             progress: bool = True):
    """Fig. 5's geometry of the AT teacher or the ST network at the distillation epoch, recorded
    as ``manifolds_<kind>``."""
    net_cfg = network_config(cfg)
    res = dict(zip(("at", "st"), networks(cfg, data, device=device, progress=progress)))[kind]
    model = resnets.network_at(res, resnets.distillation_epoch(net_cfg), net_cfg, device=device)
    return record_for(CHAPTER, f"manifolds_{kind}", cfg,
                      lambda: {"manifolds": exemplar_geometry(model, *_manifold_images(cfg, data),
                                                              cfg, progress=progress)},
                      data=data, device=choose_device(device),
                      fingerprint={"network_digest": model_digest(model)})


# -- one student ----------------------------------------------------------------------------------

def student_name(spec: str, cfg, k: int) -> str:
    """Record name of student ``k`` of ``spec``: ``<spec>_seed<seed + k>``."""
    return f"{spec}_seed{cfg.seed + k}"


def record_student(cfg, data: CIFAR10, spec: str, k: int = 0, *, device="cpu",
                   progress: bool = True):
    """Distil, measure and record student ``k`` of ``spec`` (module docstring).

    The student is a ResNet-18 like the networks (width, stem), initialized and batched from
    ``seed + 3000 + k``, trained for ``student_epochs`` with the networks' recipe on the first
    ``n_student`` images of their split (crop + flip, no rotation) against its spec's fixed
    targets (:func:`student_targets`), resumable. Recorded: natural accuracy on the ``n_test``
    test images (per image in ``arrays["natural"]``), whether each of the first
    ``n_student_eval`` survives APGD-CE then APGD-DLR at ε ``at_eps`` (``arrays["robust"]``;
    starts from ``seed + 2000``, the same for every student), the share of its targets that keep
    the class they must (:func:`kept_share`), the training history, and for the first student of
    Fig. 5's specs its exemplar-manifold geometry."""
    check_settings(cfg)
    device = choose_device(device)
    net_cfg = network_config(cfg)
    d = resnets.distillation_epoch(net_cfg)
    parsed = parse_spec(spec, d)
    if parsed["k"] is not None and parsed["k"] not in cfg.ks:
        raise ValueError(f"k = {parsed['k']} is not among ks = {cfg.ks}")
    if parsed["epoch"] not in resnets.teacher_epochs(net_cfg):
        raise ValueError(f"teacher epoch {parsed['epoch']} is not kept; the kept ones are "
                         f"{resnets.teacher_epochs(net_cfg)}")
    if not 0 <= k < cfg.student_seeds:
        raise ValueError(f"student index k = {k} must lie in [0, {cfg.student_seeds})")
    common = dict(device=device, progress=progress)
    at_t = teacher_targets(cfg, data, "at", parsed["epoch"], **common)
    st_t = teacher_targets(cfg, data, "st", d, **common) if parsed["target"] == HYBRID else None
    name = student_name(spec, cfg, k)
    folder = checkpoint_folder(cfg.profile, CHAPTER, name)

    def compute():
        x, y = _training_images(cfg, data)
        at = torch.from_numpy(at_t.arrays["targets"])
        st = None if st_t is None else torch.from_numpy(st_t.arrays["targets"])
        gen = torch.Generator().manual_seed(cfg.seed + MANIPULATION_SEED_OFFSET + k)
        targets = student_targets(parsed, at, y, st, gen)
        seed = cfg.seed + STUDENT_SEED_OFFSET + k
        student = resnets.build_network(net_cfg, seed=seed)
        history = train_classifier(
            student, x, y, epochs=cfg.student_epochs, lr=cfg.lr, batch_size=cfg.batch_size,
            weight_decay=cfg.weight_decay, targets=targets, loss=parsed["loss"],
            generator=torch.Generator(device=device).manual_seed(seed), device=device,
            checkpoint_dir=folder, progress=progress, precision=cfg.precision)
        student.eval()
        x_test, y_test = data.x_test.to(device), data.y_test.to(device)
        natural = (predict(student, x_test).argmax(1) == y_test).cpu().numpy()
        gen_eval = torch.Generator(device=device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
        _, robust = attacks.apgd_ce_dlr(
            student, x_test[:cfg.n_student_eval], y_test[:cfg.n_student_eval], eps=cfg.at_eps,
            steps=cfg.apgd_steps, generator=gen_eval, precision=cfg.precision)
        values = {"spec": spec, "k_index": k, "parsed": parsed,
                  "natural_accuracy": float(natural.mean()),
                  "adversarial_accuracy": float(robust.float().mean()),
                  "kept_share": kept_share(parsed, targets, at, y, st),
                  "target_wrong_share": float((targets.argmax(1) != y).float().mean()),
                  "history": history,
                  "precision": resolve_precision(cfg.precision, device)}
        if spec in MANIFOLD_NETS and k == 0:
            values["manifolds"] = exemplar_geometry(student, *_manifold_images(cfg, data), cfg,
                                                    progress=progress)
        return values, {"natural": natural, "robust": robust.cpu().numpy()}

    fingerprint = {"targets_digest": at_t.values["network_digest"]
                   + ("" if st_t is None else "+" + st_t.values["network_digest"])}
    res = record_for(CHAPTER, name, cfg, compute, data=data, device=device,
                     fingerprint=fingerprint)
    discard_checkpoints(folder)
    return res


# -- the run: its records, recorded one by one ----------------------------------------------------

def record_names(cfg) -> dict:
    """The records a run with ``cfg`` makes or reads, ``{key: (chapter, name, config)}``: the two
    networks (chapter 9's), the targets of every teacher epoch used and of the ST network, the
    manifold geometry of the AT and ST networks, and one record per student (key
    ``student:<spec>:<k>``). Each key can be recorded alone (:func:`record_one`)."""
    net = network_config(cfg)
    d = resnets.distillation_epoch(net)
    out = {f"net_{kind}": (resnets.NETWORK_CHAPTER, resnets.network_name(kind, net), net)
           for kind in ("at", "st")}
    epochs = sorted({parse_spec(s, d)["epoch"] for s in student_specs(cfg)})
    out.update({f"targets_at_e{e}": (CHAPTER, f"targets_at_e{e}", cfg) for e in epochs})
    out[f"targets_st_e{d}"] = (CHAPTER, f"targets_st_e{d}", cfg)
    out.update({f"manifolds_{kind}": (CHAPTER, f"manifolds_{kind}", cfg) for kind in ("at", "st")})
    for spec in student_specs(cfg):
        for k in range(cfg.student_seeds):
            out[f"student:{spec}:{k}"] = (CHAPTER, student_name(spec, cfg, k), cfg)
    return out


def record_one(cfg, data: CIFAR10, key: str, *, device="cpu", progress: bool = True):
    """Record (or load) the one record ``key`` of :func:`record_names`; what it needs (the
    networks, the targets) is loaded from its records, or made and recorded first."""
    if key not in record_names(cfg):
        raise ValueError(f"unknown record key {key!r}; the run's keys are "
                         f"{', '.join(record_names(cfg))}")
    common = dict(device=device, progress=progress)
    kind, _, rest = key.partition("_")
    if key.startswith("student:"):
        _, spec, k = key.split(":")
        return record_student(cfg, data, spec, int(k), **common)
    if kind == "net":
        return dict(zip(("at", "st"), networks(cfg, data, **common)))[rest]
    if kind == "targets":
        net_kind, _, epoch = rest.partition("_e")
        return teacher_targets(cfg, data, net_kind, int(epoch), **common)
    return record_network_manifolds(cfg, data, rest, **common)


def _record_job(profile: str, params: dict, key: str):
    cfg = resolve_notebook(SETTINGS, profile, params)
    data = load_cifar10(n_train=cfg.n_train, n_test=cfg.n_test, device="cpu")
    return record_one(cfg, data, key, device=choose_device())


def independent_runs(profile: str, **params) -> list[results.Run]:
    """Every record of :func:`record_names` as a run of its own (a cluster job), with the
    notebook's settings for ``params``: the two networks (chapter 9's first seed, under the
    names chapter 9's runs have: a cluster trains them once), then the targets and the
    manifold geometry (after the networks), then every student (after the targets) side by
    side."""
    cfg = resolve_notebook(SETTINGS, profile, params)
    check_settings(cfg)
    names = record_names(cfg)
    net = network_config(cfg)
    nets = tuple(resnets.network_run(kind, net, keep_weights=True) for kind in ("at", "st"))

    def run(key, needs):
        chapter, name, rec_cfg = names[key]
        return results.Run(f"{chapter}/{name}", partial(_record_job, profile, params, key),
                           settings=rec_cfg.as_dict(), needs=needs)

    targets = tuple(run(key, nets) for key in names if key.startswith("targets_"))
    manifolds = [run(key, nets) for key in names if key.startswith("manifolds_")]
    students = [run(key, targets) for key in names if key.startswith("student:")]
    return [*nets, *targets, *manifolds, *students]


def record_all(cfg, data: CIFAR10, *, device="cpu", progress: bool = True) -> dict:
    """Every record of the run, in order (networks, targets, manifolds, students)."""
    check_settings(cfg)
    keys = list(record_names(cfg))
    return {key: record_one(cfg, data, key, device=device, progress=progress)
            for key in tqdm(keys, desc="chapter 10 records", disable=not progress)}


def leading_run(cfg, own: dict) -> tuple:
    """``(config, records, own_run)``: every record of the largest profile above ``cfg``'s that
    is completely recorded (:func:`tsrobust.results.largest_recorded_set`), else this build's
    own ``own``."""
    big, found = results.largest_recorded_set(cfg, SETTINGS, record_names)
    if found is None:
        return cfg, own, True
    return big, found, False


def summary(found: dict, cfg) -> dict:
    """The numbers :func:`claim_rows`, the tables and the figures read, from the records of one
    run: per student spec a list (one per seed) of ``{"natural", "robust"}`` per-image booleans;
    the AT network's per-image robustness at its evaluated epochs and the ST network's at its
    last; the targets' per-image errors; the manifold geometry of Fig. 5's networks."""
    net = network_config(cfg)
    d = resnets.distillation_epoch(net)
    at, st = found["net_at"], found["net_st"]
    students: dict[str, list] = {}
    geometry = {"at": found["manifolds_at"].values["manifolds"],
                "st": found["manifolds_st"].values["manifolds"]}
    for key, res in found.items():
        if key.startswith("student:"):
            _, spec, k = key.split(":")
            students.setdefault(spec, []).append(
                {"natural": np.asarray(res.arrays["natural"], bool),
                 "robust": np.asarray(res.arrays["robust"], bool),
                 "kept_share": res.values["kept_share"]})
            if "manifolds" in res.values:
                geometry[spec] = res.values["manifolds"]
    return {
        "students": students,
        "distillation_epoch": d,
        "teacher_epochs": list(resnets.teacher_epochs(net)),
        "at_robust": {int(e[len("robust_e"):]): np.asarray(a, bool)
                      for e, a in at.arrays.items() if e.startswith("robust_e")},
        "at_natural": {int(e): v for e, v in at.values["test_accuracy"].items()},
        "st_robust": np.asarray(st.arrays[f"robust_e{net.epochs}"], bool),
        "st_natural": st.values["test_accuracy"][str(net.epochs)],
        "wrong": {"at": {int(k[len("targets_at_e"):]): np.asarray(r.arrays["wrong"], bool)
                         for k, r in found.items() if k.startswith("targets_at_e")},
                  "st": np.asarray(found[f"targets_st_e{d}"].arrays["wrong"], bool)},
        "manifolds": geometry,
        "st_epoch": net.epochs,
    }


# -- numbers and margins --------------------------------------------------------------------------

def _per_image(seeds: list[dict], key: str, n: int | None = None) -> np.ndarray:
    """The per-image booleans ``key`` averaged over the seeds (first ``n`` images)."""
    return np.mean([np.asarray(v[key][:n], float) for v in seeds], 0)


def accuracy(seeds: list[dict], key: str = "robust") -> float:
    """Mean over seeds of a student's accuracy (a fraction): ``"robust"`` or ``"natural"``."""
    return float(np.mean([np.mean(v[key]) for v in seeds]))


def difference(a: list[dict], b: list[dict], key: str = "robust") -> tuple[float, float]:
    """``(acc(a) − acc(b), margin)`` on the images both were measured on: the margin is two
    standard errors of the mean per-image difference (the seeds' per-image average; paired, as
    every student meets the same images and attack starts), at least
    :data:`tsrobust.results.ACC_MARGIN`, and at least the seeds' margin
    (:func:`tsrobust.results.seed_margin`) when both sides have several seeds."""
    n = min(len(a[0][key]), len(b[0][key]))
    ra, rb = _per_image(a, key, n), _per_image(b, key, n)
    margin = results.paired_margin(ra, rb, floor=results.ACC_MARGIN)
    if len(a) > 1 and len(b) > 1:
        seeds = results.seed_margin([np.mean(v[key][:n]) for v in a],
                                    [np.mean(v[key][:n]) for v in b])
        margin = max(margin, seeds or 0.0)
    return float(ra.mean() - rb.mean()), float(margin)


def share_of_normal(run: dict, spec: str) -> float | None:
    """A student's adversarial accuracy as a share of the normal student's (Fig. 4B's "% of the
    full robustness"); None when the normal student has none."""
    base = accuracy(run["students"][NORMAL])
    return None if base <= 0 else accuracy(run["students"][spec]) / base


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _acc_text(run: dict, spec: str, key: str = "robust") -> str:
    seeds = run["students"][spec]
    if len(seeds) == 1:
        return _pct(accuracy(seeds, key))
    return results.mean_pm([100 * np.mean(v[key]) for v in seeds], ".1f") + " %"


def _margin(m: float) -> str:
    return f"margin {100 * m:.1f} points (2 SE of the paired per-image difference, ≥ 2)"


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def scale_note(cfg) -> str:
    """The run's scale, as every row states it ("paper settings" only when they are)."""
    if results.at_paper_scale(cfg, SETTINGS):
        return f"{cfg.profile} profile, paper settings, {cfg.student_seeds} student seeds"
    return (f"{cfg.profile} profile: ResNet-18 of width {cfg.width} on {cfg.n_student} images, "
            f"networks {_n(cfg.epochs, 'epoch')} (teacher epoch "
            f"{resnets.distillation_epoch(network_config(cfg))}), students "
            f"{_n(cfg.student_epochs, 'epoch')}, {_n(cfg.student_seeds, 'seed')}, "
            f"APGD-{cfg.apgd_steps} on {cfg.n_student_eval} test images (paper: width 64, "
            f"45 000 images, 200 epochs, teacher epoch 40, 3 seeds, APGD-100 on 10 000)")


def _paper_scale(verdict: str, cfg, close: bool) -> str:
    """``"reproduced"`` in place of a holding direction when the run has the paper's settings and
    its number is close to the paper's; else ``verdict``."""
    if verdict == "direction holds" and close and results.at_paper_scale(cfg, SETTINGS):
        return "reproduced"
    return verdict


def _above(run: dict, a: str, b: str, key: str = "robust"):
    diff, m = difference(run["students"][a], run["students"][b], key)
    return results.direction_verdict(diff, m), m


def _st(run: dict) -> list[dict]:
    return [{"robust": run["st_robust"]}]


def claim_rows(run: dict, cfg) -> list[results.Row]:
    """The claims of §4.2 (Table 2, Fig. 4B, the teacher's training errors), A.3 (Figs. A.6,
    A.7) and Fig. 5, checked on ``run`` (:func:`summary`). A direction holds only beyond its
    margin; "differs" is a reversal beyond it; a claim of "≈ 0" holds when the student is no
    more robust than the ST network beyond the margin while the margin could show the robustness
    the claim denies (:func:`tsrobust.results.no_effect_verdict`). Rows whose students the run
    did not distil are left out."""
    s = run["students"]
    rows = []
    # Table 2 and [9]: distillation transfers robustness
    d, m = difference(s[NORMAL], _st(run))
    rows.append(("Normal distillation transfers robustness: the normal student is more robust "
                 "than the ST network", f"{_acc_text(run, NORMAL)} vs "
                 f"{_pct(float(np.mean(run['st_robust'])))}",
                 f"{PAPER_TABLE2[NORMAL][1]} vs {PAPER_ST_ADVERSARIAL} (Table 1)",
                 "Table 2, [9]", results.direction_verdict(d, m), _margin(m)))
    v, m = _above(run, NORMAL, FIX_1)
    rows.append(("Fix-1 (perm) targets lose much of the robustness: normal > fix-1",
                 f"{_acc_text(run, NORMAL)} vs {_acc_text(run, FIX_1)}",
                 f"{PAPER_TABLE2[NORMAL][1]} vs {PAPER_TABLE2[FIX_1][1]} (text: "
                 f"{PAPER_FIX1_TEXT})", "Table 2, §4.2", v, _margin(m)))
    v, m = _above(run, FIX_1, CORRECT_FIX_1)
    rows.append(("Correcting the teacher's wrong training images removes what fix-1 keeps: "
                 "fix-1 > correct-fix-1", f"{_acc_text(run, FIX_1)} vs "
                 f"{_acc_text(run, CORRECT_FIX_1)}",
                 f"{PAPER_TABLE2[FIX_1][1]} vs {PAPER_TABLE2[CORRECT_FIX_1][1]}", "Table 2, §4.2",
                 v, _margin(m)))
    for spec, refuter in ((CORRECT_FIX_1, FIX_1), (HYBRID, NORMAL)):
        effect, m = difference(s[spec], _st(run))
        refuting, _ = difference(s[refuter], _st(run))
        rows.append((f"The {label(spec)} student has no adversarial robustness (≈ 0, as the ST "
                     f"network)", f"{_acc_text(run, spec)} (ST network "
                     f"{_pct(float(np.mean(run['st_robust'])))})",
                     PAPER_TABLE2[spec][1], "Table 2, §4.2",
                     results.no_effect_verdict(effect, m, refuting),
                     f"{_margin(m)}; holds only if the margin is below the robustness "
                     f"{label(refuter)} keeps over the ST network ({100 * refuting:.1f} points)"))
    verdicts = [_above(run, spec, NORMAL, "natural") for spec in NON_ROBUST_STUDENTS]
    rows.append(("The non-robust students are more accurate on clean images than the normal "
                 "student (correct-fix-1 and hybrid > normal)",
                 ", ".join(f"{label(c)} {_acc_text(run, c, 'natural')}"
                           for c in (NORMAL,) + NON_ROBUST_STUDENTS),
                 f"normal {PAPER_TABLE2[NORMAL][0]}, correct-fix-1 "
                 f"{PAPER_TABLE2[CORRECT_FIX_1][0]}, hybrid {PAPER_TABLE2[HYBRID][0]}",
                 "Table 2", results.combined_verdict(v for v, _ in verdicts),
                 "both beyond their margins: " + ", ".join(_margin(m) for _, m in verdicts)))
    # Fig. 4B: robustness grows with k
    for manipulation in (PERMUTE, AVERAGE):
        ks = sorted(int(spec.split("_k")[1]) for spec in s
                    if spec.startswith(f"{manipulation}_k"))
        if len(ks) < 2:
            continue
        top, low = f"{manipulation}_k{ks[-1]}", f"{manipulation}_k{ks[0]}"
        v, m = _above(run, top, low)
        rows.append((f"Robustness grows with k (fix-k, {manipulation}): fix-{ks[-1]} > "
                     f"fix-{ks[0]}", ", ".join(f"k = {k}: {_acc_text(run, f'{manipulation}_k{k}')}"
                                              for k in ks),
                     "grows up to k = 7 (Fig. 4B)", "Fig. 4B", v, _margin(m)))
    for k, paper in PAPER_SHARES.items():
        spec = f"{PERMUTE}_k{k}"
        if spec not in s:
            continue
        share = share_of_normal(run, spec)
        close = share is not None and abs(share - paper) <= SHARE_TOL
        shown = f"{results.fmt(share, '.0%')} of normal's ({_acc_text(run, spec)})"
        if k == 3:
            parts = [_above(run, NORMAL, spec), _above(run, spec, FIX_1)]
            v = _paper_scale(results.combined_verdict(p for p, _ in parts), cfg, close)
            rows.append(("The top-3 values carry most but not all of the robustness (≈ 80 %): "
                         "fix-1 < fix-3 < normal", shown, f"≈ {paper:.0%}", "Fig. 4B, §4.2", v,
                         "both beyond their margins: "
                         + ", ".join(_margin(m) for _, m in parts)))
        else:
            effect, m = difference(s[NORMAL], s[spec])
            refuting, _ = difference(s[NORMAL], s[FIX_1])
            v = _paper_scale(results.no_effect_verdict(effect, m, refuting), cfg, close)
            rows.append(("The top-7 values carry (nearly) all of the robustness (≈ 99 %): "
                         "fix-7 ≈ normal", shown, f"≈ {paper:.0%}", "Fig. 4B, §4.2", v,
                         f"normal − fix-7 within {_margin(m)}, which must be below normal − "
                         f"fix-1 ({100 * refuting:.1f} points)"))
    # the teacher's errors on the training set
    e = run["distillation_epoch"]
    wrong_at, wrong_st = run["wrong"]["at"][e], run["wrong"]["st"]
    diff = float(wrong_at.mean() - wrong_st.mean())
    m = results.paired_margin(wrong_at.astype(float), wrong_st.astype(float),
                              floor=results.ACC_MARGIN)
    close = abs(100 * wrong_at.mean() - PAPER_TEACHER_WRONG[0]) <= 2 * PAPER_TEACHER_WRONG[1]
    rows.append(("The AT teacher is wrong on a sizable share of its training images, more than "
                 "the ST network at that epoch", f"{_pct(wrong_at.mean())} (ST: "
                 f"{_pct(wrong_st.mean())})",
                 f"{PAPER_TEACHER_WRONG[0]} ± {PAPER_TEACHER_WRONG[1]} % (ST: not given)",
                 "§4.2", _paper_scale(results.direction_verdict(diff, m), cfg, close),
                 f"{_margin(m)}; the share of the students' images whose averaged target "
                 f"misses the label; the ST comparison is ours"))
    # Fig. A.6: late teachers do not distil their robustness
    late = max(run["teacher_epochs"])
    late_spec = l1_spec(late, e)
    if late_spec != NORMAL and late_spec in s:
        v, m = _above(run, NORMAL, late_spec)
        rows.append((f"A late teacher distils less robustness: epoch {e} > epoch {late} (the "
                     f"paper's 40 > 200)", f"{_acc_text(run, NORMAL)} vs "
                     f"{_acc_text(run, late_spec)}",
                     "≈ 30 % vs ≈ 0 % (Fig. A.6: ≈ 40 % at epoch 20)", "Fig. A.6, A.3", v,
                     _margin(m)))
    # Fig. A.7: L1 on logits beats KL on softmax — before the last teacher epoch, whose students
    # the paper finds without robustness under either loss (Fig. A.6)
    pairs = [(l1_spec(ep, e), f"kl_e{ep}") for ep in run["teacher_epochs"]
             if f"kl_e{ep}" in s and l1_spec(ep, e) in s and (ep < late or ep == e)]
    if pairs:
        parts = [_above(run, a, b) for a, b in pairs]
        rows.append(("L1 logit distillation transfers more robustness than KL on the softmax, "
                     "at every teacher epoch before the last",
                     ", ".join(f"epoch {b[4:]}: {_acc_text(run, a)} vs {_acc_text(run, b)}"
                               for a, b in pairs),
                     "L1 above KL throughout; 25 points at epoch 100 (Fig. A.7)", "Fig. A.7, A.3",
                     results.combined_verdict(p for p, _ in parts),
                     "every epoch beyond its margin: " + ", ".join(_margin(m) for _, m in parts)))
    # Fig. 5: the geometry of the exemplar manifolds
    g = run["manifolds"]
    if all(n in g for n in ROBUST_STUDENTS[:1] + NON_ROBUST_STUDENTS):
        for key, stage, what, sign in (("capacities", -1, "capacity", 1),
                                       ("radii", 1, "radius", -1)):
            parts = []
            for other in NON_ROBUST_STUDENTS:
                a = np.asarray(g[NORMAL][key][stage], float)
                b = np.asarray(g[other][key][stage], float)
                diff = sign * float(a.mean() - b.mean())
                mm = results.paired_margin(a, b)
                parts.append((results.direction_verdict(diff, mm), other, mm))
            where = STAGE_NAMES[stage]
            rows.append((f"Exemplar manifolds of the non-robust students (correct-fix-1, hybrid) "
                         f"have {'lower capacity' if sign > 0 else 'a larger radius'} than the "
                         f"normal student's ({where})",
                         f"normal {g[NORMAL][what][stage]:.3g}; " + ", ".join(
                             f"{label(o)} {g[o][what][stage]:.3g}" for o in NON_ROBUST_STUDENTS),
                         ("lower, near the ST teacher's" if sign > 0 else
                          "larger from the early blocks on") + " (figure only)",
                         "Fig. 5A" if sign > 0 else "Fig. 5B",
                         results.combined_verdict(p for p, _, _ in parts),
                         "paired over the manifolds, 2 SE: " + ", ".join(
                             f"{label(o)} {mm:.3g}" for _, o, mm in parts)))
    out = [results.Row(q, ours, paper, src, v, f"{note}; {scale_note(cfg)}")
           for q, ours, paper, src, v, note in rows]
    kept = [v["kept_share"] for seeds in s.values() for v in seeds]
    out.append(results.Row(
        "Every manipulated target keeps the class it must (fix-k: the teacher's top class; "
        "correct-fix-1: the label; hybrid: the ST network's top class)",
        f"lowest share over {len(kept)} students: {min(kept):.3f}", "(by construction)",
        "§4.2", results.sanity_check(min(kept) == 1.0),
        "share of the training images whose target's argmax is that class"))
    return out


# -- tables ----------------------------------------------------------------------------------------

def table2_markdown(run: dict) -> str:
    """Table 2: natural and adversarial accuracy of the four students, ours beside the paper's,
    with the teacher and the ST network."""
    e = run["distillation_epoch"]
    lines = ["| network | natural, ours | natural, paper | adversarial, ours | "
             "adversarial, paper |", "|---|---|---|---|---|"]
    for spec in (NORMAL, FIX_1, CORRECT_FIX_1, HYBRID):
        if spec in run["students"]:
            lines.append(f"| {label(spec)} student | {_acc_text(run, spec, 'natural')} | "
                         f"{PAPER_TABLE2[spec][0]} | {_acc_text(run, spec)} | "
                         f"{PAPER_TABLE2[spec][1]} |")
    lines.append(f"| AT teacher, epoch {e} | {_pct(run['at_natural'][e])} | — | "
                 f"{_pct(float(np.mean(run['at_robust'][e]))) if e in run['at_robust'] else '—'}"
                 f" | 41.5 ± 0.63 (Table 1) |")
    lines.append(f"| ST network, epoch {run['st_epoch']} | {_pct(run['st_natural'])} | — | "
                 f"{_pct(float(np.mean(run['st_robust'])))} | {PAPER_ST_ADVERSARIAL} (Table 1) |")
    return "\n".join(lines)


def students_markdown(run: dict) -> str:
    """Every student of the run: natural and adversarial accuracy, per seed averaged."""
    lines = ["| student | seeds | natural (%) | adversarial (%) | share of normal's |",
             "|---|---|---|---|---|"]
    for spec, seeds in run["students"].items():
        lines.append(f"| {label(spec)} | {len(seeds)} | {_acc_text(run, spec, 'natural')} | "
                     f"{_acc_text(run, spec)} | {results.fmt(share_of_normal(run, spec), '.0%')}"
                     " |")
    return "\n".join(lines)


def work(cfg) -> dict:
    """What a run with ``cfg`` computes beyond chapter 9's networks, counted from the settings:
    student training passes (image forward + backward), target passes (forward), the most
    APGD steps per image summed (APGD-CE on all, APGD-DLR on all survivors at worst), and the
    PGD steps of the exemplar manifolds."""
    specs = student_specs(cfg)
    n = len(specs) * cfg.student_seeds
    epochs = {parse_spec(s, resnets.distillation_epoch(network_config(cfg)))["epoch"]
              for s in specs}
    nets = len(MANIFOLD_NETS)
    return {"students": n,
            "train_passes": n * cfg.student_epochs * cfg.n_student,
            "target_passes": (len(epochs) + 1) * cfg.n_augment * cfg.n_student,
            "apgd_steps": n * cfg.n_student_eval * 2 * cfg.apgd_steps,
            "test_passes": n * cfg.n_test,
            "manifold_pgd_steps": nets * cfg.n_manifolds * cfg.manifold_points
                                  * cfg.manifold_steps}


def run_flops(cfg) -> int:
    """FLOPs of a run with ``cfg`` beyond chapter 9's networks (:mod:`tsrobust.bench`): the
    passes of :func:`work` through a ResNet-18 of the networks' width and stem — training steps
    (forward, input and weight gradients), APGD and manifold PGD steps (forward and input
    gradient), target and test passes (forward). An upper bound through APGD-DLR's share."""
    macs = bench.layer_macs(resnets.build_network(network_config(cfg)))
    w = work(cfg)
    return (w["train_passes"] * bench.net_flops(macs, train=True)
            + (w["apgd_steps"] + w["manifold_pgd_steps"]) * bench.net_flops(macs, input_grad=True)
            + (w["target_passes"] + w["test_passes"]) * bench.net_flops(macs))


def work_markdown(cfg) -> str:
    """:func:`work` in a sentence."""
    w = work(cfg)
    return (f"This `{cfg.profile}` run distils {w['students']} students: "
            f"{w['train_passes']:,} training passes, {w['target_passes']:,} target passes, at "
            f"most {w['apgd_steps']:,} APGD steps per image, {w['test_passes']:,} test "
            f"passes and {w['manifold_pgd_steps']:,} PGD steps for the exemplar manifolds "
            f"(chapter 9's networks not counted).")


# -- figures ---------------------------------------------------------------------------------------

def plot_fix_k(run: dict):
    """Fig. 4B: adversarial accuracy of the fix-k students against k (permute, average), with
    the normal student and the ST network as levels (left), and as a share of the normal
    student's robustness with the paper's 80 % at k = 3 and 99 % at k = 7 (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    normal = accuracy(run["students"][NORMAL])
    for manipulation, style in ((PERMUTE, "o-"), (AVERAGE, "s--")):
        ks = sorted(int(s.split("_k")[1]) for s in run["students"]
                    if s.startswith(f"{manipulation}_k"))
        if not ks:
            continue
        acc = [accuracy(run["students"][f"{manipulation}_k{k}"]) for k in ks]
        axes[0].plot(ks, [100 * a for a in acc], style, label=f"fix-k ({manipulation})")
        if normal > 0:
            axes[1].plot(ks, [a / normal for a in acc], style, label=f"fix-k ({manipulation})")
    axes[0].axhline(100 * normal, color="k", lw=1, label="normal student")
    axes[0].axhline(100 * float(np.mean(run["st_robust"])), color="tab:red", ls=":",
                    label="ST network")
    axes[1].plot(list(PAPER_SHARES), list(PAPER_SHARES.values()), "k*", ms=12,
                 label="paper (§4.2)")
    axes[1].axhline(1.0, color="k", lw=1)
    axes[0].set_ylabel("adversarial accuracy (%)")
    axes[1].set_ylabel("share of the normal student's")
    for ax in axes:
        ax.set_xlabel("k (top logits kept)")
        ax.legend(fontsize=8)
    fig.suptitle("Fix-k distillation: robustness against the number of logits kept")
    fig.tight_layout()
    return fig


def plot_teacher_epochs(run: dict):
    """Fig. A.6: the L1 students' natural and adversarial accuracy against the teacher's epoch,
    with the teacher's own adversarial accuracy; None when the run has one teacher epoch."""
    e = run["distillation_epoch"]
    eps = [ep for ep in run["teacher_epochs"] if l1_spec(ep, e) in run["students"]]
    if len(eps) < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key, style, name in (("natural", "o-", "student, natural"),
                             ("robust", "s-", "student, adversarial")):
        ax.plot(eps, [100 * accuracy(run["students"][l1_spec(ep, e)], key) for ep in eps],
                style, label=name)
    have = [ep for ep in eps if ep in run["at_robust"]]
    ax.plot(have, [100 * float(np.mean(run["at_robust"][ep])) for ep in have], "k^:",
            label="teacher, adversarial")
    ax.set_xlabel("teacher epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Students distilled from the AT teacher's checkpoints")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_losses(run: dict):
    """Fig. A.7: L1 (logits) against KL (softmax) students per teacher epoch; None without KL
    students."""
    e = run["distillation_epoch"]
    eps = [ep for ep in run["teacher_epochs"]
           if f"kl_e{ep}" in run["students"] and l1_spec(ep, e) in run["students"]]
    if not eps:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    x = np.arange(len(eps))
    for ax, key, title in ((axes[0], "natural", "natural accuracy"),
                           (axes[1], "robust", "adversarial accuracy")):
        for i, (name, spec_of) in enumerate((("L1 on logits", lambda ep: l1_spec(ep, e)),
                                             ("KL on softmax", lambda ep: f"kl_e{ep}"))):
            ax.bar(x + (i - 0.5) * 0.38, [100 * accuracy(run["students"][spec_of(ep)], key)
                                          for ep in eps], 0.38, label=name)
        ax.set_xticks(x, [str(ep) for ep in eps])
        ax.set_xlabel("teacher epoch")
        ax.set_ylabel(f"{title} (%)")
        ax.set_title(title)
    axes[1].legend(fontsize=8)
    fig.suptitle("Distillation loss: L1 on the logits against KL on the softmax")
    fig.tight_layout()
    return fig


MANIFOLD_STYLE = {"at": ("k-", "AT teacher"), "st": ("r:", "ST network"),
                  NORMAL: ("b-", "normal student"), FIX_1: ("c-", "fix-1 (perm) student"),
                  CORRECT_FIX_1: ("m--", "correct-fix-1 student"),
                  HYBRID: ("y--", "hybrid student")}


def plot_manifolds(run: dict):
    """Fig. 5: manifold capacity, radius and dimension of the exemplar manifolds after the stem
    and each block, for the teacher, the ST network and the four students."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    stages = np.arange(len(STAGE_NAMES))
    for net, (style, name) in MANIFOLD_STYLE.items():
        g = run["manifolds"].get(net)
        if g is None:
            continue
        for ax, key in zip(axes, ("capacity", "radius", "dimension")):
            ax.plot(stages, g[key], style, marker="o", ms=3, label=name)
    for ax, key in zip(axes, ("capacity α_M", "radius R_M", "dimension D_M")):
        ax.set_xticks(stages, STAGE_NAMES)
        ax.set_xlabel("representation")
        ax.set_ylabel(key)
    axes[0].legend(fontsize=7)
    fig.suptitle("Exemplar manifolds of ℓ∞ perturbations (ε = 8/255) through the network")
    fig.tight_layout()
    return fig


# -- what the notebook says about the run ----------------------------------------------------------

def shown_markdown(shown_cfg, own_run: bool, build_profile: str) -> str:
    """Which run the chapter shows: the largest recorded, or this build's own (a pipeline
    check)."""
    return resnets.shown_markdown(shown_cfg.profile, own_run, build_profile,
                                  scale_note(shown_cfg))


def reading_markdown(shown_cfg, own_run: bool) -> str:
    """How far the shown run can test §4.2, from its settings."""
    if results.at_paper_scale(shown_cfg, SETTINGS):
        return ("This run has the paper's settings: its numbers can be read against Table 2, "
                "and its directions are judged by the noise of its images and seeds.")
    text = (f"This `{shown_cfg.profile}` run distils a ResNet-18 of width {shown_cfg.width} on "
            f"{shown_cfg.n_student} images for {_n(shown_cfg.student_epochs, 'epoch')} from a "
            f"teacher trained {_n(shown_cfg.epochs, 'epoch')} (the paper: width 64, 45,000 "
            f"images, 200 epochs): it cannot reproduce Table 2's numbers, only test whether its directions "
            f"already show at this scale, judged by the paired noise of "
            f"{shown_cfg.n_student_eval} attacked test images"
            + (f" and {shown_cfg.student_seeds} seeds." if shown_cfg.student_seeds > 1 else
               " and one seed per student (the spread across seeds is not measured)."))
    if own_run and shown_cfg.profile == "smoke":
        text += (" At the smoke scale the networks have barely begun to learn: the run shows "
                 "that the pipeline works end to end, not whether the claims hold.")
    return text + larger_profiles_sentence(shown_cfg.profile)


def pipeline_markdown(own: dict, cfg) -> str:
    """This build's own run, compactly: every student's accuracies and the verdicts its rows
    would get."""
    run = summary(own, cfg)
    return (students_markdown(run) + f"\n\nThis build's `{cfg.profile}` run "
            f"({scale_note(cfg)}) — its claim rows would read: "
            f"{results.verdict_counts(claim_rows(run, cfg))}.")
