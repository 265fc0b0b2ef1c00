"""Deliberate bugs the tests must catch: ``python tests/mutants.py [NAME ...] [--list]``.

Each mutant below is one plausible bug where the book's conclusions rest — a resumed run that
silently restarts, adversarial training on the clean batch, a claim whose direction is reversed,
a flag or a generator that is ignored, an attack that draws from the global RNG. For each, the
script copies the working tree to a temporary folder, plants the bug in the copy (an exact text
replacement that must match once), runs the tests named for it against the copy (the copy first
on ``sys.path`` and on ``PYTHONPATH``, so subprocesses import it too) and prints whether they
caught it and with which test. The unchanged copy is run first: its tests must pass, or a catch
proves nothing. It exits 0 only when every mutant is caught; a mutant whose text no longer
matches the package is reported as stale (fix the list, not the package). It is a script for
whoever changes the joins it covers, not a CI step (it takes minutes); ``NAME`` arguments run
only the mutants whose name contains one of them.

Why a hand-written list rather than a mutation library (mutmut, cosmic-ray): those plant every
syntactic change of every line (thousands here: operators, constants, strings), each one a run of
the suite — hours on two cores — and most of the survivors say nothing (a changed error message,
an equivalent rewrite). The bugs that matter here are semantic and span lines ("feed the clean
batch", "ignore the checkpoint"); the ones listed were found surviving by an audit or are the
claim logic the chapters' verdicts rest on, and each comes with the tests that must catch it, so
the whole list runs in minutes and a survivor names the join that is unguarded. Add a mutant
with every bug of that kind you fix.

Not a test module: pytest collects only ``test_*.py`` (and ``__test__`` says so again).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__test__ = False

ROOT = Path(__file__).resolve().parents[1]
SKIP = (".git", ".venv", "_build", ".data", ".whl", "__pycache__", ".pytest_cache",
        "checkpoints", "*.egg-info", ".ipynb_checkpoints")
"""Not copied: version control, environments, builds, data, caches, checkpoints."""
PYTEST = ("-x", "-q", "-p", "no:cacheprovider")

TRAINING = "tsrobust/training.py"
ATTACKS = "tsrobust/attacks.py"
CH05 = "tsrobust/chapters/ch05_adversarial_training.py"
LOGITS = "tsrobust/logits.py"
MANIFOLDS = "tsrobust/manifolds.py"
CH06 = "tsrobust/chapters/ch06_in_out_plane_at.py"
SPEC = "tsrobust/specialization.py"
CH07 = "tsrobust/chapters/ch07_ccat_robust_features.py"
CH09 = "tsrobust/chapters/ch09_logit_distributions.py"
RESNETS = "tsrobust/chapters/resnets.py"
CH10 = "tsrobust/chapters/ch10_distillation_manipulations.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    """pytest arguments: the tests that must catch it."""
    more: tuple[tuple[str, str], ...] = ()
    """Further (old, new) replacements in the same file, for a bug that spans lines."""


MUTANTS = [
    # -- resume ------------------------------------------------------------------------------
    Mutant("resume: _fit ignores its checkpoint and retrains from scratch", TRAINING,
           "    if folder is not None and (folder / STATE_FILE).exists():",
           "    if False:",
           ("tests/test_training.py", "-k", "resume or sigkill")),
    Mutant("resume: a killed write's temporary is left in the checkpoint folder", TRAINING,
           "        remove_temporaries(folder)  # half-written files of a run killed inside a write",
           "        pass",
           ("tests/test_training.py", "-k", "sigkill")),
    Mutant("io: remove_temporaries removes nothing", "tsrobust/io.py",
           "    for p in stale:\n        p.unlink(missing_ok=True)\n",
           "",
           ("tests/test_io.py",)),
    Mutant("records: a writer does not check that its JSON and arrays belong together",
           "tsrobust/results.py",
           "        if not arrays or _pair_matches(json_path, npz_path):",
           "        if True:",
           ("tests/test_results.py", "-k", "writers or beside")),
    Mutant("records: a JSON beside other arrays is loaded", "tsrobust/results.py",
           '        if doc.get("arrays_digest") in (None, arrays_digest(arrays)):\n'
           "            return Result(",
           "        if True:\n            return Result(",
           ("tests/test_results.py", "-k", "writers or beside")),
    # -- cluster jobs --------------------------------------------------------------------------
    Mutant("run: a failed chapter's partial notebook is rendered", "tsrobust/book/cluster.py",
           '            (src / f"{j.notebook}.ipynb").unlink(missing_ok=True)',
           "            pass",
           ("tests/book/test_cluster.py", "-k", "failing")),
    Mutant("run: a pre-empted chapter job is not resubmitted", "tsrobust/book/cluster.py",
           "        return super().checkpoint(*args, **kwargs)",
           "        return None",
           ("tests/book/test_cluster.py", "-k", "preempted")),
    # -- adversarial training ----------------------------------------------------------------
    Mutant("AT: PGD examples computed, the clean batch trained on", TRAINING,
           "            xb = attacks.pgd(attacks.oracle_objective(student, teacher), xb,",
           "            _ = attacks.pgd(attacks.oracle_objective(student, teacher), xb,",
           ("tests/test_training.py", "-k", "adversarial")),
    Mutant("AT: the teacher's target taken on the clean batch", TRAINING,
           "        if adversarial is not None:\n            student.eval()\n",
           "        x_clean = xb\n        if adversarial is not None:\n            student.eval()\n",
           ("tests/test_training.py", "-k", "adversarial"),
           more=(("                    t = teacher(xb).float()",
                  "                    t = teacher(x_clean).float()"),)),
    # -- claim logic (chapter 5, §5.4) -------------------------------------------------------
    Mutant("ch05: ε curve direction reversed", CH05,
           "results.direction_verdict(mean(b) - mean(a), m), results.margin_text(m)))",
           "results.direction_verdict(mean(a) - mean(b), m), results.margin_text(m)))",
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "claim")),
    Mutant("results: a claim of several parts — every part → any part", "tsrobust/results.py",
           '    return "direction holds" if all(v == "direction holds" for v in verdicts) else',
           '    return "direction holds" if any(v == "direction holds" for v in verdicts) else',
           ("tests/test_results.py", "tests/chapters/test_ch05_adversarial_training.py",
            "-k", "claim or combined")),
    Mutant("results: a tie within the noise counted as a reversal", "tsrobust/results.py",
           '    return "differs" if d < -margin else "inconclusive"',
           '    return "differs" if d < margin else "inconclusive"',
           ("tests/test_results.py", "tests/chapters/test_ch04_standard_training.py",
            "-k", "direction or inconclusive")),
    Mutant("ch05: augmentation verdict inverted", CH05,
           "verdicts.append(results.direction_verdict(x - mean(y), m))",
           "verdicts.append(results.direction_verdict(mean(y) - x, m))",
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "claim")),
    Mutant("ch05: the transfer row attacks with the student (white-box), not the surrogate", CH05,
           "attacks.transfer_attack(\n            surrogate, teacher, xb,",
           "attacks.transfer_attack(\n            student, teacher, xb,",
           ("tests/chapters/test_ch05_adversarial_training.py", "-k", "transfer_row")),
    # -- in-plane / out-of-plane AT (chapter 6, §5.4 Table 2) --------------------------------
    Mutant("in/out split: x_in is the run farther from the subspace", ATTACKS,
           "    return (torch.where(first_in, runs[0], runs[1]), torch.where(first_in, runs[1], runs[0]),",
           "    return (torch.where(first_in, runs[1], runs[0]), torch.where(first_in, runs[0], runs[1]),",
           ("tests/test_attacks.py", "-k", "in_out")),
    Mutant("in/out AT: the select key ignored, always x_in", TRAINING,
           '                xb = (x_in if adversarial["select"] == "in" else x_out).contiguous(',
           "                xb = x_in.contiguous(",
           ("tests/test_training.py", "-k", "in_out")),
    Mutant("projected PGD: each pixel clamped to ±ε, leaving the subspace", ATTACKS,
           "        return (x + delta * _view(scale, delta)).clamp(0, 1)",
           "        return (x + delta.clamp(-eps, eps)).clamp(0, 1)",
           ("tests/test_attacks.py", "-k", "projected")),
    Mutant("patch split: the out side's projection not removed from δ for the in side", SPEC,
           '        part = outside if side == "out" else delta.reshape(len(delta), -1).float() - outside',
           '        part = outside if side == "out" else delta.reshape(len(delta), -1).float()',
           ("tests/test_specialization.py", "-k", "split")),
    Mutant("ch06: a reversed attack gap called inconclusive", CH06,
           "    if -gap > margin or margin < PAPER_ATTACK_GAP:",
           "    if margin < PAPER_ATTACK_GAP:",
           ("tests/chapters/test_ch06_in_out_plane_at.py", "-k", "claim")),
    Mutant("ch06: ε rows' direction reversed", CH06,
           "                _seed_mean(b) - _seed_mean(a), m),",
           "                _seed_mean(a) - _seed_mean(b), m),",
           ("tests/chapters/test_ch06_in_out_plane_at.py", "-k", "claim")),
    # -- claim logic (other chapters, the verdict functions) ---------------------------------
    Mutant("ch01: weak-teacher correlation direction reversed",
           "tsrobust/chapters/ch01_specialization_toys.py",
           "results.exceeds(-rho, 0.0, m)", "results.exceeds(rho, 0.0, m)",
           ("tests/chapters/test_ch01_specialization_toys.py", "-k", "claim")),
    Mutant("ch02: adversarial training's ε_out direction reversed",
           "tsrobust/chapters/ch02_low_rank_specialization.py",
           "    diffs = np.log10(a) - np.log10(b) if log else a - b\n",
           "    diffs = np.log10(b) - np.log10(a) if log else b - a\n",
           ("tests/chapters/test_ch02_low_rank_specialization.py", "-k", "claim")),
    Mutant("ch03: the eigenvalue spread's direction reversed",
           "tsrobust/chapters/ch03_oracle_teacher.py",
           "_direction(spread > SPREAD_RATIO),", "_direction(spread < SPREAD_RATIO),",
           ("tests/chapters/test_ch03_oracle_teacher.py", "-k", "claims")),
    Mutant("ch08: sign of the sparse student's α1 reversed",
           "tsrobust/chapters/ch08_active_teacher.py",
           'direction_holds=e["sparse_alpha_1"] < 0),',
           'direction_holds=e["sparse_alpha_1"] > 0),',
           ("tests/chapters/test_ch08_active_teacher.py", "-k", "example41")),
    Mutant("logit model: Eq. 10 without the (g − ψ)² term our substitution gives",
           "tsrobust/logit_model.py",
           "            - 2 * (n - 2) / (n - 1) * eps_error * omega_err * d ** 2)",
           "            - 0 * d)",
           ("tests/test_logit_model.py", "-k", "gap_change")),
    Mutant("logit model: f± with a wrong discriminant (2E + 1 for 2E − 1)",
           "tsrobust/logit_model.py",
           "    disc = np.where(2 * e - 1 >= 0, 2 * e - 1, np.nan)",
           "    disc = np.where(2 * e + 1 >= 0, 2 * e + 1, np.nan)",
           ("tests/test_logit_model.py", "-k", "f_derived")),
    Mutant("ch11: the exact-loss row ignores how close the minimiser gets to the infimum",
           "tsrobust/chapters/ch11_logit_model.py",
           '    at_edge = all(abs(ex[c]["loss"] - ex[c]["infimum"]) < 1e-3',
           '    at_edge = all(abs(ex[c]["loss"] - ex[c]["infimum"]) < 1e3',
           ("tests/chapters/test_ch11_logit_model.py", "-k", "claim")),
    Mutant("results: a tie counts as a direction (exceeds ≥)", "tsrobust/results.py",
           "return float(a) > float(b) + float(margin)",
           "return float(a) >= float(b) + float(margin)",
           ("tests/test_results.py", "tests/chapters/test_ch05_adversarial_training.py",
            "-k", "verdict or claim")),
    Mutant("results: a run too noisy to resolve the tolerance reproduces",
           "tsrobust/results.py",
           "if paper_scale and abs(float(ours) - float(paper)) <= tol and float(noise) <= tol:",
           "if paper_scale and abs(float(ours) - float(paper)) <= tol:",
           ("tests/test_results.py", "tests/chapters/test_ch05_adversarial_training.py",
            "-k", "verdict or claim")),
    # -- flags and generators that may be ignored --------------------------------------------
    Mutant("precision: the teacher's forward pass ignores it", TRAINING,
           "        with _autocast(device, precision):\n            logits = model(xb)",
           '        with _autocast(device, "fp32"):\n            logits = model(xb)',
           ("tests/test_training.py", "-k", "precision")),
    Mutant("precision: fgsm checks it, then ignores it", ATTACKS,
           "grad = _input_grad(objective, x, runtime.resolve_precision(precision, x.device), "
           "chunk_size)",
           "grad = _input_grad(objective, x, runtime.resolve_precision(precision, x.device) "
           "and \"fp32\", chunk_size)",  # still checked, then ignored
           ("tests/test_attacks.py", "-k", "precision")),
    Mutant("channels_last: the student's flag ignored", TRAINING,
           "    adversarial = _check_adversarial(adversarial)\n    device = choose_device(device)\n"
           "    precision = runtime.resolve_precision(precision, device)\n"
           "    fmt = _memory_format(channels_last)",
           "    adversarial = _check_adversarial(adversarial)\n    device = choose_device(device)\n"
           "    precision = runtime.resolve_precision(precision, device)\n"
           "    fmt = _memory_format(True)",
           ("tests/test_training.py", "-k", "channels_last")),
    Mutant("channels_last: the student's augmented batch left NCHW", TRAINING,
           "                                noise_std=noise_std, resample=resample\n"
           "                                ).contiguous(memory_format=fmt)",
           "                                noise_std=noise_std, resample=resample\n"
           "                                )",
           ("tests/test_training.py", "-k", "channels_last")),
    Mutant("channels_last: the teacher's weights left NCHW beside a channels-last student",
           TRAINING, "    teacher.to(device=device, memory_format=fmt)",
           "    teacher.to(device=device)",
           ("tests/test_training.py", "-k", "channels_last")),
    Mutant("data: a random subset ignores the generator", "tsrobust/data.py",
           "    if generator is None:\n        idx = np.arange(n)",
           "    if True:\n        idx = np.arange(n)",
           ("tests/test_data.py", "-k", "subset")),
    Mutant("transfer: examples made by the teacher against itself, not the surrogate", ATTACKS,
           "        return pgd(oracle_objective(surrogate, teacher), x,",
           "        return pgd(oracle_objective(teacher, teacher), x,",
           ("tests/test_attacks.py", "-k", "transfer")),
    # -- logit statistics and distillation targets (source C) ----------------------------------
    Mutant("logits: average overlap as the source prints it (every term O(k))", LOGITS,
           "    return total / k\n", "    return common / k\n",
           ("tests/test_logits.py", "-k", "average_overlap")),
    Mutant("logits: the AO@k curve without the running mean over depths", LOGITS,
           "    ao = np.cumsum(overlap, axis=1) / depth\n", "    ao = overlap\n",
           ("tests/test_logits.py", "-k", "average_overlap")),
    Mutant("logits: a rank difference of exactly half the maximum counts as far apart", LOGITS,
           "np.abs(ra[idx] - rb[idx]) > threshold", "np.abs(ra[idx] - rb[idx]) >= threshold",
           ("tests/test_logits.py", "-k", "rank_disagreement")),
    Mutant("logits: skewness normalized by m2, not m2^(3/2)", LOGITS,
           "np.mean(d ** 3) / m2 ** 1.5", "np.mean(d ** 3) / m2",
           ("tests/test_logits.py", "-k", "skew")),
    Mutant("logits: fix-k permute leaves the classes below the top k in place", LOGITS,
           "out.scatter_(1, idx[:, k:], vals[:, k:].gather(1, perm))",
           "out.scatter_(1, idx[:, k:], vals[:, k:])",
           ("tests/test_logits.py", "-k", "fix_k")),
    Mutant("logits: correct-fix-1 never moves the top value to the label", LOGITS,
           "    out[wrong, y[wrong]] = top\n", "",
           ("tests/test_logits.py", "-k", "correct_fix_1")),
    Mutant("logits: hybrid takes the ST values in the AT order", LOGITS,
           "    vals = values_from.sort(", "    vals = order_from.sort(",
           ("tests/test_logits.py", "-k", "hybrid")),
    Mutant("logits: distillation targets rotate the images too", LOGITS,
           "flip=flip,\n                                             rotation_deg=0.0)",
           "flip=flip)",
           ("tests/test_logits.py", "-k", "distillation")),
    # -- manifold analysis (MFTMA) -------------------------------------------------------------
    Mutant("manifolds: the interior anchor is the farthest point, not the nearest", MANIFOLDS,
           "    if overlap.min() + t[d] >= 0:  # T satisfies every constraint: V = T, F = 0 "
           "(interior)\n        return pts[np.argmin(overlap)], 0.0",
           "    if overlap.min() + t[d] >= 0:  # T satisfies every constraint: V = T, F = 0 "
           "(interior)\n        return pts[np.argmax(overlap)], 0.0",
           ("tests/test_manifolds.py",)),
    Mutant("manifolds: the center coordinate dropped from S_j = (s_j, 1)", MANIFOLDS,
           "a = np.vstack([pts.T, np.ones((1, m))])", "a = np.vstack([pts.T, np.zeros((1, m))])",
           ("tests/test_manifolds.py",)),
    Mutant("manifolds: the mean of all points not subtracted", MANIFOLDS,
           "        x = clouds[i].astype(np.float64) - origin\n",
           "        x = clouds[i].astype(np.float64)\n",
           ("tests/test_manifolds.py",)),
    Mutant("manifolds: center_rank ignored", MANIFOLDS,
           "    if center_rank:\n", "    if False:\n",
           ("tests/test_manifolds.py", "-k", "center")),
    # -- source C: APGD, adversarial accuracy, the classifier's training, ResNet-18 ----------
    Mutant("APGD: no momentum", ATTACKS,
           "            a = APGD_MOMENTUM if i > 0 else 1.0",
           "            a = 1.0",
           ("tests/test_attacks.py", "-k", "apgd_follows")),
    Mutant("APGD: a halved step does not return to the best point", ATTACKS,
           "                x_adv = torch.where(_view(halve, x), x_best, x_adv)  # back to the best",
           "                x_adv = x_adv  # back to the best",
           ("tests/test_attacks.py", "-k", "apgd_follows")),
    Mutant("APGD: a broken image counts as broken only while misclassified", ATTACKS,
           "            broken |= wrong",
           "            broken = wrong",
           ("tests/test_attacks.py", "-k", "apgd")),
    Mutant("DLR: the denominator uses the second logit, not the third", ATTACKS,
           "        z[:, -1] - z[:, -3] + DLR_EPS)",
           "        z[:, -1] - z[:, -2] + DLR_EPS)",
           ("tests/test_attacks.py", "-k", "dlr")),
    Mutant("adversarial accuracy: APGD-DLR attacks every image, not the survivors", ATTACKS,
           "            for idx in robust.nonzero().squeeze(1).split(batch_size):",
           "            for idx in torch.arange(len(x), device=x.device).split(batch_size):",
           ("tests/test_attacks.py", "-k", "adversarial_accuracy")),
    Mutant("classifier AT: the attack runs in training mode (BatchNorm batch statistics)",
           TRAINING,
           "    with attacks.frozen(model):\n        return attacks.pgd(attacks.ce_objective(",
           "    with contextlib.nullcontext():\n        return attacks.pgd(attacks.ce_objective(",
           ("tests/test_training.py", "-k", "classifier or label_pgd")),
    Mutant("classifier AT: examples computed, the clean batch trained on", TRAINING,
           "            xb = label_pgd(model, xb, yb,",
           "            _ = label_pgd(model, xb, yb,",
           ("tests/test_training.py", "-k", "classifier")),
    Mutant("classifier AT: the attack ignores the precision", TRAINING,
           "                           generator=generator, precision=precision\n"
           "                           ).contiguous(memory_format=fmt)",
           "                           generator=generator, precision=\"fp32\"\n"
           "                           ).contiguous(memory_format=fmt)",
           ("tests/test_training.py", "-k", "classifier")),
    Mutant("classifier: the paper's milestones not scaled to a shorter run", TRAINING,
           "    ms = scaled_milestones(epochs) if milestones is None",
           "    ms = PAPER_MILESTONES if milestones is None",
           ("tests/test_training.py", "-k", "classifier")),
    Mutant("holdout split: drawn from all images, not per class", "tsrobust/data.py",
           "        held.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])",
           "        held.append(torch.randperm(len(y), generator=g)[:per_class])",
           ("tests/test_data.py", "-k", "holdout")),
    Mutant("ResNet-18: the CIFAR stem keeps torchvision's max-pool", "tsrobust/models.py",
           "                self.maxpool = nn.Identity()",
           "                self.maxpool = nn.MaxPool2d(3, 2, 1)",
           ("tests/test_models.py", "-k", "resnet")),
    # -- CCAT, robust features, specialization counts (chapter 7) -----------------------------
    Mutant("ccat: λ(δ) ignores ρ", "tsrobust/ccat.py",
           "    return (1 - (norm / eps).clamp(max=1.0)).pow(rho)",
           "    return (1 - (norm / eps).clamp(max=1.0))",
           ("tests/test_ccat.py", "-k", "transition or calibrated")),
    Mutant("ccat: ỹ mixes λ the wrong way round", "tsrobust/ccat.py",
           "    return lam * onehot + (1 - lam) / num_classes",
           "    return (1 - lam) * onehot + lam / num_classes",
           ("tests/test_ccat.py", "-k", "calibrated or ccat_batch")),
    Mutant("ccat: the CCAT images computed, the clean batch trained on", TRAINING,
           "            xb, soft = ccat_lib.ccat_batch(student, teacher, xb, generator=generator,",
           "            _, soft = ccat_lib.ccat_batch(student, teacher, xb, generator=generator,",
           ("tests/test_ccat.py", "-k", "train_student")),
    Mutant("robust features: x_r not projected onto [0, 1]", "tsrobust/robust_features.py",
           "                x_r.clamp_(0, 1)", "                pass",
           ("tests/test_robust_features.py",)),
    Mutant("specialization: NC = 0.9 counts as specialized", "tsrobust/specialization.py",
           "    return (torch.as_tensor(nc) > threshold).sum(0)",
           "    return (torch.as_tensor(nc) >= threshold).sum(0)",
           ("tests/test_specialization.py", "-k", "specialized_counts")),
    Mutant("ch07: the rank correlation's direction reversed", CH07,
           "                 results.direction_verdict(rho, m),",
           "                 results.direction_verdict(-rho, m),",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "rank")),
    Mutant("ch07: Table 5's order read backwards", CH07,
           "    for a, b in zip(TABLE5_ORDER, TABLE5_ORDER[1:]):",
           "    for a, b in zip(TABLE5_ORDER[1:], TABLE5_ORDER):",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "table5")),
    Mutant("ch07: uniformity rejected when p is large", CH07,
           "    rejected = [t for t in testable if t[\"p\"] < UNIFORMITY_P]",
           "    rejected = [t for t in testable if t[\"p\"] > UNIFORMITY_P]",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "uniformity")),
    Mutant("ch09: no seed's networks keep their weights (chapter 10 finds no teacher)", CH09,
           "keep_weights=k == 0,", "keep_weights=False,",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "record_networks")),
    Mutant("ch09: a paired claim's differences taken the wrong way round", CH09,
           "        diffs = np.asarray([x - y for x, y in pairs",
           "        diffs = np.asarray([y - x for x, y in pairs",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "claim")),
    Mutant("ch09: an AT network's AT–AT rank share counts its zero with itself", CH09,
           "    per_seed[\"rank_at_at\"] = [float(np.mean([matrix[i, j] for j in at_idx if j != i]))",
           "    per_seed[\"rank_at_at\"] = [float(np.mean([matrix[i, j] for j in at_idx]))",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "rank_shares")),
    Mutant("ch09: Fig. 2B's above/below-median split reversed", CH09,
           "        hi = g > np.median(g)", "        hi = g <= np.median(g)",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "gap_bins")),
    Mutant("ch09: Table 1's AT network taken at its last epoch, not at epoch 40 scaled", CH09,
           "    epochs = {\"st\": cfg.epochs, \"at\": resnets.distillation_epoch(cfg)}",
           "    epochs = {\"st\": cfg.epochs, \"at\": cfg.epochs}",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "table1")),
    Mutant("ch09: a number reproduced at any scale", CH09,
           "    paper_scale = results.at_paper_scale(cfg, SETTINGS)", "    paper_scale = True",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "reproduced")),
    Mutant("ch09: Fig. 3D's dashed lines without the within-class permutation", CH09,
           "permute_within_class=perm,", "permute_within_class=False,",
           ("tests/chapters/test_ch09_logit_distributions.py", "-k", "overlaps")),
    Mutant("resnets: ST and AT of one seed start from the same weights", RESNETS,
           "KIND_SEED_OFFSET = {\"st\": 0, \"at\": 1000}", "KIND_SEED_OFFSET = {\"st\": 0, \"at\": 0}",
           ("tests/chapters/test_resnets.py", "-k", "round_trip")),
    Mutant("resnets: the paper's epochs scaled by rounding down", RESNETS,
           "    return tuple(sorted({max(1, int(np.floor(e * epochs / PAPER_EPOCHS + 0.5)))",
           "    return tuple(sorted({max(1, int(np.floor(e * epochs / PAPER_EPOCHS)))",
           ("tests/chapters/test_resnets.py", "-k", "scaled_epochs")),
    # -- distillation from fixed targets (source C A.3) and chapter 10 ----------------------
    Mutant("distillation: each batch fit to the first rows of the targets", TRAINING,
           "               else distillation_loss(out, targets[idx], loss))",
           "               else distillation_loss(out, targets[:len(idx)], loss))",
           ("tests/test_training.py", "-k", "distillation")),
    Mutant("distillation: KL taken the wrong way round", TRAINING,
           "        return F.kl_div(F.log_softmax(student_logits.float(), 1),\n"
           "                        F.log_softmax(targets.float(), 1), log_target=True,",
           "        return F.kl_div(F.log_softmax(targets.float(), 1),\n"
           "                        F.log_softmax(student_logits.float(), 1), log_target=True,",
           ("tests/test_training.py", "-k", "distillation_losses")),
    Mutant("distillation: a resume state that does not name its targets", TRAINING,
           '               **({"loss": loss, "targets": tensor_digest(targets)}',
           '               **({"loss": loss}',
           ("tests/test_training.py", "-k", "distillation_resumed")),
    Mutant("ch10: correct-fix-1 built on the average fix-1 targets", CH10,
           "        return logits.correct_fix_1(at, labels, manipulation=PERMUTE, generator=generator)",
           "        return logits.correct_fix_1(at, labels, manipulation=AVERAGE, generator=generator)",
           ("tests/chapters/test_ch10_distillation_manipulations.py", "-k", "student_targets")),
    Mutant("ch10: a student's '≈ 0' judged with the sign of its robustness reversed", CH10,
           "                     results.no_effect_verdict(effect, m, refuting),",
           "                     results.no_effect_verdict(-effect, m, refuting),",
           ("tests/chapters/test_ch10_distillation_manipulations.py", "-k", "at_zero")),
    Mutant("ch10: robustness growing with k read backwards", CH10,
           "        v, m = _above(run, top, low)",
           "        v, m = _above(run, low, top)",
           ("tests/chapters/test_ch10_distillation_manipulations.py", "-k", "grows_with_k")),
    Mutant("ch10: exemplar manifolds cut across images", CH10,
           "        g = manifolds.manifold_analysis(list(stage.view(len(x), m, -1).numpy()),",
           "        g = manifolds.manifold_analysis(list(stage.view(m, len(x), -1).numpy()),",
           ("tests/chapters/test_ch10_distillation_manipulations.py", "-k", "exemplar")),
    # -- the global RNG ----------------------------------------------------------------------
    Mutant("RNG: the ℓ2 start's direction from the global RNG", ATTACKS,
           "    if norm == \"l2\":  # a Gaussian direction scaled to a uniform radius, as "
           "torchattacks' PGDL2\n",
           "    if norm == \"l2\":  # a Gaussian direction scaled to a uniform radius, as "
           "torchattacks' PGDL2\n        d = torch.randn_like(d)\n",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: the ℓ1 start's Laplace draw from the global RNG", ATTACKS,
           "torch.log1p(-torch.rand(x.shape, generator=generator, device=x.device,",
           "torch.log1p(-torch.rand(x.shape, device=x.device,",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: CW reseeds the global RNG", ATTACKS,
           "    _check_budget(0.0, lr, steps)\n",
           "    _check_budget(0.0, lr, steps)\n    torch.manual_seed(0)\n",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: robust accuracy attacks with the global generator", ATTACKS,
           "                x_adv = make_adversarial(xb, generator)",
           "                x_adv = make_adversarial(xb, torch.default_generator)",
           ("tests/test_attacks.py", "-k", "rng")),
    Mutant("RNG: adversarial training's starts from the global generator", TRAINING,
           "random_start=True, generator=generator, precision=precision,",
           "random_start=True, generator=torch.default_generator, precision=precision,",
           ("tests/test_training.py", "-k", "rng")),
    # -- GPU path, widgets, Colab -------------------------------------------------------------
    Mutant("runtime: deterministic CUDA mode leaves TF32 convolutions on", "tsrobust/runtime.py",
           "    torch.backends.cudnn.allow_tf32 = not deterministic  # torch's default is True",
           "    torch.backends.cudnn.allow_tf32 = True",
           ("tests/test_runtime.py", "-k", "configure_cuda")),
    Mutant("runtime: channels-last in fp32 on a GPU", "tsrobust/runtime.py",
           '    return resolve_precision(precision, device) == "bf16"',
           "    return True",
           ("tests/test_runtime.py", "-k", "channels_last")),
    Mutant("plotting: a live figure is drawn only when a control moves", "tsrobust/plotting.py",
           "    images = [widgets.Image(value=figure_png(fig), format=\"png\",",
           "    images = [widgets.Image(format=\"png\",",
           ("tests/test_plotting.py", "-k", "live_figure")),
    Mutant("colab: the build's commit is not written into the Colab cell", "tsrobust/book/colab.py",
           '    return source.replace(old, f\'BOOK_COMMIT = "{commit}"\')',
           "    return source",
           ("tests/book/test_colab.py",)),
    Mutant("bench: the AT students' PGD steps are not counted", "tsrobust/bench.py",
           "    return epochs * images * (per_image + pgd_steps * attack)",
           "    return epochs * images * per_image",
           ("tests/test_bench.py", "-k", "run_flops")),
    # -- independent runs and costs ------------------------------------------------------------
    Mutant("cluster: a chapter is submitted before its runs are recorded",
           "tsrobust/book/cluster.py",
           '            elif all(by_name[n].status == "done" for n in j.needs):',
           "            elif True:",
           ("tests/book/test_runs.py", "-k", "waits or failed")),
    Mutant("cluster: two chapters may record one run with different settings",
           "tsrobust/book/cluster.py",
           "        elif old.settings != run.settings:",
           "        elif False:",
           ("tests/book/test_runs.py", "-k", "refused")),
    Mutant("ch06: a seed's run records the next seed", CH06,
           "    return record_seed(cfg, data, teacher, k, device=device)",
           "    return record_seed(cfg, data, teacher, min(k + 1, cfg.seeds - 1), device=device)",
           ("tests/book/test_runs.py", "-k", "own_seed")),
    Mutant("cifar: the teacher run ignores chapter 3's teacher parameters", "tsrobust/chapters/cifar.py",
           "                          n_train=cfg.n_train, **overrides)",
           "                          n_train=cfg.n_train)",
           ("tests/book/test_runs.py", "-k", "teacher_with_its_parameters or refused")),
    Mutant("costs: the cpu profile is estimated at the GPU's throughput", "tsrobust/book/costs.py",
           '            out[(profile, chapter)] = {"flops": n, "seconds": n / rate[0], "basis": "cpu"}',
           '            out[(profile, chapter)] = {"flops": n, "seconds": n / gpu, "basis": "cpu"}',
           ("tests/book/test_costs.py", "-k", "estimated")),
    Mutant("costs: a run under way counted as the chapter's measured cost",
           "tsrobust/book/costs.py",
           '        (partial if need is not None and not need <= row["names"] else complete)[key] = row',
           '        complete[key] = row',
           ("tests/book/test_costs.py", "-k", "under_way")),
    Mutant("ch07: every CCAT image counted as attacked", CH07,
           "    attacked = round(n * (1 - cfg.ccat_clean_fraction))",
           "    attacked = n",
           ("tests/chapters/test_ch07_ccat_robust_features.py", "-k", "run_flops")),
]

def _copy(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*SKIP), symlinks=True)
    return dest


def _pytest(tree: Path, args) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *PYTEST, *args], cwd=tree, env=env,
                          capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].split(" ", 1)[1]
    return "?"


def _plant(tree: Path, m: Mutant) -> str | None:
    """Apply the mutant to the copy; the reason it cannot be applied, or None."""
    path = tree / m.file
    text = path.read_text()
    for old, new in ((m.old, m.new), *m.more):
        if text.count(old) != 1:
            return f"stale: the text to replace occurs {text.count(old)} times in {m.file}"
        text = text.replace(old, new)
    path.write_text(text)
    return None


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for m in MUTANTS:
            print(f"{m.name}\n    {m.file}; pytest {shlex.join(m.tests)}")
        return 0
    chosen = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    if not chosen:
        print(f"no mutant's name contains any of {argv}; --list shows them")
        return 1
    with tempfile.TemporaryDirectory(prefix="tsrobust-mutants-") as tmp:
        tmp = Path(tmp)
        base = _copy(tmp / "base")
        files = sorted({a for m in chosen for a in m.tests if a.startswith("tests/")})
        rc, out, secs = _pytest(base, files)
        print(f"unchanged copy: pytest {' '.join(files)} → exit {rc} ({secs:.0f} s)")
        if rc != 0:
            print(out[-3000:])
            print("the unchanged copy fails its tests: fix that first; no mutant was run")
            return 1
        shutil.rmtree(base)
        failed = []
        for i, m in enumerate(chosen, 1):
            tree = _copy(tmp / f"m{i}")
            problem = _plant(tree, m)
            if problem is None:
                rc, out, secs = _pytest(tree, m.tests)
                if rc == 1:
                    status = f"caught    ({secs:4.0f} s) by {_first_failure(out)}"
                elif rc == 0:
                    status = f"SURVIVED  ({secs:4.0f} s) pytest {shlex.join(m.tests)} passed"
                else:
                    status = f"ERROR     pytest exit {rc}: {out.strip().splitlines()[-1:]}"
            else:
                status = problem.upper()[:5] + problem[5:]
            if not status.startswith("caught"):
                failed.append(m.name)
            print(f"[{i:2}/{len(chosen)}] {m.name}\n        {status}", flush=True)
            shutil.rmtree(tree)
    print(f"\n{len(chosen) - len(failed)} of {len(chosen)} mutants caught"
          + (": every one." if not failed else "; not caught: " + "; ".join(failed)))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
