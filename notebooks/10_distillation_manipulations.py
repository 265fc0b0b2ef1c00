# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10. Distillation manipulations
#
# Goldblum et al. (source C's reference [9]) showed that a student distilled from an
# adversarially trained (AT) teacher on clean images alone inherits much of its robustness: the
# teacher's outputs carry it. Seguin et al. (source C, §4.2) ask *where* in the outputs it sits,
# by manipulating the teacher's logits before the student learns them (their Fig. 4A):
#
# - **fix-k (permute):** in every image's logit vector keep the k largest values at their
#   classes and permute the other 10 − k values at random among the other classes — the values
#   stay, the inter-class information below the top k goes;
# - **fix-k (average):** keep the top k and set the rest to their mean;
# - **correct-fix-1:** fix-1 (permute), then, where the teacher is wrong on a training image
#   (19.6 % ± 0.6 % of them for its epoch-40 teacher), swap the values of its predicted class and
#   the label — the target then always names the right class;
# - **hybrid ST-AT:** the AT teacher's sorted logit *values* placed in the class *order* of a
#   standard-trained (ST) network.
#
# Its findings (Table 2, Fig. 4B): normal distillation gives a student 75.2 % natural and 30.4 %
# adversarial accuracy; fix-1 keeps 13.3 % (the text says 12.43 %); correct-fix-1 (0.1 %) and the
# hybrid (0.00 %) keep none, while being *more* accurate on clean images (92.1 %, 87.86 %); the
# top 3 logits carry almost 80 % of the robustness and the top 7 are needed for 99 %. So the
# robustness lives in the teacher's inter-class information, much of it in the training images
# the teacher gets wrong. Appendix A.3 adds two observations about the set-up: a teacher's epoch
# matters (students of the epoch-20 teacher reach nearly 40 % adversarial accuracy, those of the
# epoch-200 teacher 0 %; Fig. A.6), and L1 distillation of the logits transfers more robustness
# than KL distillation of the softmax (25 points more at the epoch-100 teacher; Fig. A.7).
# Fig. 5 follows ℓ∞ balls of radius 8/255 around single test images through the blocks of the
# networks with the mean-field manifold analysis (MFTMA, `tsrobust.manifolds`): the
# non-robust students' exemplar manifolds lose capacity and grow in radius early, like the ST
# network's.
#
# **Adversarial accuracy** is source C's (§3): the share of test images a network still
# classifies correctly after APGD-CE and then APGD-DLR on the survivors, ℓ∞ with ε = 8/255
# (`tsrobust.attacks.apgd_ce_dlr`), on the same `n_student_eval` test images and attack starts for
# every student — so two students are compared image by image.
#
# **The teacher and the ST network are chapter 9's**, loaded from its records (and trained here
# when they are missing): ResNet-18s of the chapter's width trained with source C's recipe (A.2),
# standard or with PGD-10 adversarial training. The teacher is the AT network's checkpoint at the
# paper's epoch 40 of 200, scaled to the run (epoch 2 of 10 in the `cpu` profile); the hybrid's
# class order comes from the ST network at the same epoch; Fig. A.6 distils the AT network's
# other kept checkpoints (the paper's epochs 20, 100 and 200, scaled).
#
# **Where the source is silent we chose, and every choice is a parameter below.** *The targets*
# (A.3): each training image gets one fixed target, the network's logits averaged over
# `n_augment` random crops (zero padding 4) and flips; the source averages over "several batches
# and data augmentations" and does not say how many. Our networks run in evaluation mode when
# they make targets, so only the augmentations vary. The permutations are drawn once per student.
# *The students* are ResNet-18s like the networks, trained from their own initialization with the
# networks' recipe (SGD 0.1 with momentum 0.9, weight decay 2·10⁻⁴, batch 128, the drops at
# epochs 100 and 150 of 200 scaled to `student_epochs`) on the first `n_student` images of the
# networks' training split, each image crop-and-flip augmented against its fixed target: L1
# between the logits, or KL between the softmaxes at temperature 1 (the source names no
# temperature for it). *Fix-k for k ≥ 9* leaves every target as it is (one value permuted or
# averaged with itself): those students are normal students. *Fig. 5's manifolds*: the first
# `n_manifolds` test images, `manifold_points` perturbations each, made by label ℓ∞ PGD against
# the network analysed (`manifold_steps` steps of ε/4 from random starts in the ball); the
# source does not say how it drew its perturbations or how many. Each network's
# representations after its stem and each of its four stages are measured; capacity is the
# mean-field estimate of the load P/N at which random labels of whole manifolds stop being
# linearly separable, radius and dimension the size and spread of the manifolds' anchor points
# (Chung et al. 2018; source C, A.4).
#
# **Verdicts.** A direction holds only beyond a margin: two standard errors of the mean
# per-image difference between the two students (paired: the same images and attack starts), at
# least 2 points, and at least the spread across seeds where there are several. "Differs" is a
# reversal beyond the margin; a difference within it is inconclusive. A claim that a student has
# *no* robustness (≈ 0) holds when it is no more robust than the ST network beyond the margin
# *and* the margin is smaller than the robustness the manipulation is said to remove. Only a run
# at the paper's settings could *reproduce* a number; every row states the run's scale.
#
# **The `cpu` profile** distils 20 students (normal; fix-k permute and average for k = 1, 2, 3, 5,
# 7; correct-fix-1; hybrid; the normal students of the three other teacher checkpoints and the KL
# students of all four) from chapter 9's width-16 networks, each for 10 epochs on 6,000 images,
# and attacks each with APGD-100 on 500 test images: 1.2 M training passes — about 35 minutes on
# two cores, where the width-16 network, in bf16 and channels-last, trains about 600 images per
# second — and at most 1 M APGD steps per image (fewer in practice, as APGD-DLR attacks only
# APGD-CE's survivors), plus a few minutes for targets, test accuracies and six manifold
# analyses: under an hour on top of chapter 9's networks when they are not yet recorded. The
# reproducing page's cost table gives the recorded run's time. The sentence under the records below
# counts the run's work from its settings.

# %% tags=["remove-cell"]
# On Colab: clone this book at its commit, install it and work inside the clone (committed
# records, chapter 3's teacher, the commit); elsewhere this cell does nothing.
import importlib.util
import os
import subprocess
import sys

BOOK_COMMIT = "HEAD"  # the commit the book was built from; HEAD: the default branch
DRIVE_RESULTS = False  # Colab: True keeps results/ on Google Drive, past a recycled runtime
if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
    repo, git = "/content/tsrobust", ["git", "-C", "/content/tsrobust"]
    if not os.path.isdir(repo):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "https://github.com/tsrobust/tsrobust", repo], check=True)
        if BOOK_COMMIT != "HEAD":
            subprocess.run(git + ["fetch", "-q", "--depth", "1", "origin", BOOK_COMMIT], check=True)
            subprocess.run(git + ["checkout", "-q", "FETCH_HEAD"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", repo], check=True)
    os.chdir(repo)
    sys.path.insert(0, repo)
    if DRIVE_RESULTS:
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["TSROBUST_RESULTS"] = "/content/drive/MyDrive/tsrobust-results"
        if not os.path.isdir(os.environ["TSROBUST_RESULTS"]):
            subprocess.run(["cp", "-r", "results", os.environ["TSROBUST_RESULTS"]], check=True)

# %% tags=["parameters"]
from typing import Optional  # None below means "the profile's value"

profile: str = "smoke"  # smoke (CPU, minutes) | cpu (2 CPU cores) | gpu | paper
seed: int = 0  # seed of the networks (chapter 9's first seed) and of every generator here
# Every value below left at None takes the profile's value (see `cfg` after the next cell).
student_epochs: Optional[int] = None  # epochs each student is distilled for (paper: 200)
n_student: Optional[int] = None  # training images the students learn from (paper: 45,000)
n_augment: Optional[int] = None  # crops and flips averaged into each target (not given)
ks: Optional[list] = None  # k of the fix-k students (paper: 1 … 10)
fix_k_average: Optional[bool] = None  # also distil the fix-k (average) students
student_seeds: Optional[int] = None  # students per target spec (paper: 3)
teacher_sweep: Optional[bool] = None  # distil the teacher's other checkpoints (Fig. A.6)
kl_students: Optional[bool] = None  # distil with KL on the softmax too (Fig. A.7)
n_student_eval: Optional[int] = None  # test images attacked per student
n_manifolds: Optional[int] = None  # exemplar manifolds of Fig. 5 (test images)
manifold_points: Optional[int] = None  # ℓ∞ perturbations per exemplar manifold
manifold_steps: Optional[int] = None  # PGD steps of each perturbation
manifold_n_t: Optional[int] = None  # Gaussian samples per manifold of the MFTMA
precision: Optional[str] = None  # "auto" | "fp32" | "bf16" (training and attacks)

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust.chapters import ch10_distillation_manipulations as ch10
from tsrobust.chapters import resnets
from tsrobust.data import load_cifar10
from tsrobust.params import resolve
from tsrobust.runtime import choose_device

# every parameter of the cell above, by its name (the networks' settings are the profile's)
cfg = resolve(ch10.SETTINGS, profile=profile, seed=seed,
              **{name: globals().get(name) for name in ch10.STUDENT_SETTINGS},
              precision=precision)
ch10.check_settings(cfg)
device = choose_device()
cfg

# %% [markdown]
# ## The teacher and the ST network
#
# Chapter 9's two networks of this seed, with the weights of their kept checkpoints. The
# teacher's adversarial accuracy was measured by chapter 9 on its first `n_eval` test images.

# %%
data = load_cifar10(n_train=cfg.n_train, n_test=cfg.n_test, device="cpu")
at_res, st_res = ch10.networks(cfg, data, device=device)
net = ch10.network_config(cfg)
epoch = resnets.distillation_epoch(net)
display(Markdown(
    f"{data.notice} Teacher: the AT network at epoch {epoch} of {net.epochs}, test accuracy "
    f"{100 * at_res.values['test_accuracy'][str(epoch)]:.1f} %, adversarial accuracy "
    + (f"{100 * at_res.values['adversarial_accuracy'][str(epoch)]:.1f} %"
       if str(epoch) in at_res.values["adversarial_accuracy"] else "not measured")
    + f"; the ST network at its last epoch: test accuracy "
    f"{100 * st_res.values['test_accuracy'][str(net.epochs)]:.1f} %, adversarial accuracy "
    f"{100 * st_res.values['adversarial_accuracy'][str(net.epochs)]:.1f} %."))

# %% [markdown]
# ## This build's students
#
# Every record of the run: the targets of each teacher checkpoint used and of the ST network,
# the manifold geometry of the two networks, and one record per student. Each is loaded when it
# is recorded with the same settings and the same networks, and made otherwise.

# %%
display(Markdown(ch10.work_markdown(cfg)))
own = ch10.record_all(cfg, data, device=device)
results.records_markdown([r for k, r in own.items() if not k.startswith("net_")])

# %% [markdown]
# ## The run this chapter shows
#
# The book leads with the largest run recorded in the repository: if every record of a larger
# profile (`cpu`, `gpu`, `paper`) is there with that profile's settings, the tables, figures and
# verdicts below are that run's, and this build's run is the pipeline check at the end.

# %%
shown_cfg, shown, own_run = ch10.leading_run(cfg, own)
run = ch10.summary(shown, shown_cfg)
display(Markdown(ch10.shown_markdown(shown_cfg, own_run, cfg.profile)))

# %% [markdown]
# ## Table 2: what the manipulations leave of the robustness
#
# Our students beside the paper's (mean ± sd over seeds where there are several), with the
# teacher and the ST network for reference; accuracies in %.

# %%
display(Markdown(ch10.table2_markdown(run)))
display(Markdown(ch10.students_markdown(run)))

# %% [markdown]
# ## Fig. 4B: how many logits carry the robustness

# %%
ch10.plot_fix_k(run)
plt.show()

# %% [markdown]
# **Figure 10.1** (source C, Fig. 4B). Left: adversarial accuracy of the fix-k students against
# k, with the normal student (black) and the ST network (red, dotted) as levels. Right: the same
# as a share of the normal student's robustness; the stars are the paper's "almost 80 %" at k = 3
# and "within 99 %" at k = 7. The paper's curve climbs until k = 7; a flat curve near the ST level
# would mean the students learnt no robustness at all, a flat curve near the normal level that
# the top logit already carries it.

# %% [markdown]
# ## Fig. A.6 and A.7: the teacher's checkpoint and the loss
#
# Shown when the run distils the teacher's other checkpoints (`teacher_sweep`) and KL students
# (`kl_students`); the smoke profile does neither.

# %%
for fig in (ch10.plot_teacher_epochs(run), ch10.plot_losses(run)):
    if fig is not None:
        plt.show()

# %% [markdown]
# **Figure 10.2** (source C, Fig. A.6). Natural and adversarial accuracy of the L1 students of
# each kept teacher checkpoint, and the teacher's own adversarial accuracy there. The paper's
# students lose their robustness as the teacher trains on past the first learning-rate drop,
# although the teacher keeps its own. **Figure 10.3** (source C, Fig. A.7). The same students
# against students distilled with KL on the softmax from the same targets; the paper's L1
# students are the more robust at every checkpoint.

# %% [markdown]
# ## Fig. 5: exemplar manifolds through the blocks

# %%
ch10.plot_manifolds(run)
plt.show()

# %% [markdown]
# **Figure 10.4** (source C, Fig. 5A–C). For each network, the exemplar manifolds — each a test
# image's ℓ∞ perturbations of radius 8/255 against that network — after the stem and each stage:
# capacity (higher: more linearly separable), radius and dimension. The paper finds the
# non-robust students (correct-fix-1, hybrid) with capacity falling off in the early layers, like
# the ST network, because their manifolds' radius grows there, and dimensions alike across
# networks. Its Fig. 5D (center correlations) is in the records (`center_correlation`).

# %% [markdown]
# ## Which claims held at this scale

# %%
claims = ch10.claim_rows(run, shown_cfg)
display(results.compare(claims, shown["net_at"]))
display(Markdown(results.claim_summary(claims)))

# %% [markdown]
# Each row compares numbers of the shown run in the direction the paper states: "direction
# holds" beyond the margin in the note, "differs" for a reversal beyond it, "inconclusive" within
# it. The source line under the table is the teacher's record.

# %%
display(Markdown(ch10.reading_markdown(shown_cfg, own_run)))

# %% [markdown]
# ## Pipeline check: this build's run
#
# The run this build made (in CI, the `smoke` profile: a ResNet-18 of width 8, students of two
# epochs on 1,000 images, APGD-10 on 100 test images) tests that the chapter's code runs end to
# end, not the paper. Its numbers, and the verdicts its rows would get, compactly:

# %%
display(Markdown(ch10.pipeline_markdown(own, cfg)))
