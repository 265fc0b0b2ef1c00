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
# # 9. Logit distributions of adversarially trained networks
#
# Seguin et al. (source C) ask what adversarial training changes in a network's *outputs*. A
# standard-trained (ST) network can be distilled into a robust student only if its teacher was
# adversarially trained (AT; Goldblum et al., source C's reference [9]), so the robustness must
# show in the AT teacher's logits. §4.1 and appendix B compare the logits of three ST and three
# AT ResNet-18s on CIFAR-10 and report four differences:
#
# 1. **Smaller, skewed max logits (Fig. 1).** The largest logit of an AT network is drawn from a
#    distribution with a low mean and a long right tail (positive skew); an ST network's moves
#    quickly to a nearly symmetric distribution with a much larger mean. Late in training, after
#    the learning-rate drops, the AT network's distribution on its *training* images becomes
#    symmetric too, but on the *test* images it stays skewed (App. B.1, Fig. B.1).
# 2. **Smaller logit gaps (Fig. 2).** The gap between the largest and second-largest logit is
#    smaller for AT, with a peak at zero (Fig. 2A). Yet among an AT network's images, the larger
#    the gap the more likely the image is robust (Fig. 2B): small gaps are "a necessary condition
#    for high-confidence, robust responses", not robust themselves. Chapter 11 rebuilds the
#    analytic model the source offers for this.
# 3. **Different confident images (Fig. 3A–B, B.2).** Ranking the test images of each class by a
#    network's confidence, AT and ST networks disagree: on average 11.8 % of images are ranked
#    "very differently" (by more than half the largest rank) between an AT and an ST network,
#    1.1 % between two AT networks. The AT networks' most confident images are objects on plain
#    backgrounds (Fig. B.2).
# 4. **Different class orders (Fig. 3C–D, B.3).** The errors of both kinds of network fall on the
#    classes that rank high in the true class's average logit vector (Fig. 3C; ST "often" on the
#    second). The average overlap AO@k of the logit rank orders of two networks on the same image
#    is higher AT–AT than AT–ST (Fig. 3D, solid lines); when each image is compared with another
#    image of its class instead, the difference goes away — AT networks "showed less consistency
#    than ST networks" (dashed lines): their logits are tailored to the image, not to the class.
#    The nearest images in an AT network's logit space look alike in colour and shape; an ST
#    network's share the class (§4.3, Fig. B.3).
#
# Table 1 gives the networks' accuracies. Chapter 10 distils the same AT networks with
# manipulated targets (§4.2).
#
# **What our copy of the source lacks.** The figures did not survive the conversion, only their
# captions, so every "figure only" claim is tested in the direction its caption and text state.
# Table 1's CIFAR-10 natural-accuracy cells are garbled in our copy, and its CIFAR-100
# adversarial column is missing; the CIFAR-100 results (App. B.2, Figs. B.4–B.6) are not shown
# here, because no copy of CIFAR-100 is available offline to this book (the loader takes CIFAR-10
# only).
#
# **Where the source is silent or contradicts itself we chose, and every choice is a parameter.**
#
# - *The network.* §3 says "the TorchVision ResNet18 implementation"; A.2 says the architecture
#   was chosen to match reference [9], "which we used as the basis for our ResNet18
#   implementation". [9]'s ResNet-18 is the common CIFAR variant — a 3×3 stride-1 first
#   convolution and no max-pool — while torchvision's (7×7 stride 2, then a stride-2 max-pool) is
#   built for 224-pixel images and would shrink a 32×32 image to 8×8 before the first stage and
#   to 1×1 in the last. We default to the CIFAR variant, the one that matches the source's more
#   specific statement and the usual CIFAR-10 recipes (`stem = "cifar"`; `"imagenet"` gives
#   torchvision's). Pixels are normalized inside the network, so ε is in pixel units.
# - *Training* is A.2's recipe: SGD with momentum 0.9, learning rate 0.1 divided by 10 at epochs
#   100 and 150 of 200 (at the same fractions of a shorter run), batch 128, weight decay 2·10⁻⁴,
#   random crops and flips, 500 images per class held out for validation (fewer at the smaller
#   profiles: `holdout_per_class`).
# - *Adversarial training* is label-based ℓ∞ PGD-10 at ε = 8/255 with step 2/255, training on the
#   adversarial images only. The source took "the PGD implementation from [22]" (TRADES) and does
#   not say where PGD starts: TRADES' training loss starts at the image plus 0.001·N(0, I), its
#   evaluation PGD uniformly in the ε-ball. We start uniformly in the ball, as Madry et al.'s
#   algorithm that the source names ([20]); `at_start` offers `"small"` (TRADES' start) and
#   `"none"`. The attack runs with BatchNorm on its running statistics.
# - *Adversarial accuracy* is §3's: APGD-CE, then APGD-DLR on the images that survived it (100
#   steps each, ε = 8/255), on the first `n_eval` test images.
# - *Which networks.* Table 1's AT network is the one of epoch 40 of 200 (the distillation
#   teacher of §4.2), and the CIFAR-100 gap figure says "at epoch 40"; so the per-image
#   comparisons (Figs. 2, 3, B.2, B.3) use both kinds at the paper's epoch 40 scaled to the run
#   (`analysis_epoch`), and Table 1 shows AT there and ST at its last epoch. Figs. 1 and B.1 use
#   every snapshot epoch.
# - *Confidence* is the softmax probability of the predicted class (§4.1 ranks "on the softmax
#   values"), ranked within each class; "a rank difference of more than half of its maximum
#   value" is |Δrank| > ½ (n_c − 1) for a class of n_c images. *AO@k* is Webber et al.'s mean over
#   depths d ≤ k of the overlap of the top-d classes (the source's formula has O(k) where O(i) is
#   meant). The *permuted* AO pairs each image with a random other image of its class (a
#   derangement). *Fig. 3C* counts the errors on clean test images only (the records hold no
#   adversarial logits). *Fig. B.3* is a picture; we also count, over the first
#   `n_neighbour_seeds` test images, how many of their `neighbours` nearest images share their
#   class.
#
# **Seeds and verdicts.** Every number is a mean ± standard deviation over `seeds` ST and `seeds`
# AT networks, each trained from its own initialization (ST and AT of one seed start from
# different weights). A direction holds only beyond a margin from that spread: Student's t times
# the standard error of the difference between independent networks, or, where one AT network
# is compared with two kinds of partner (rank disagreement, AO@k), of its per-network paired
# difference; accuracies are floored by the binomial noise of their images. A reversal beyond the
# margin *differs*; anything within it, or a run with one seed, is *inconclusive*. Only a run at
# the paper's settings could *reproduce* a number, and every row states the run's scale.

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
seed: int = 0  # seed of the first ST/AT pair (seeds: seed, seed + 1, …)
# Every value below left at None takes the profile's value (see `cfg` after the next cell).
n_train: Optional[int] = None  # CIFAR-10 training images loaded (validation held out of them)
holdout_per_class: Optional[int] = None  # validation images per class (paper: 500)
n_test: Optional[int] = None  # CIFAR-10 test images whose logits are recorded
width: Optional[int] = None  # channels of the first ResNet stage (paper: 64)
stem: Optional[str] = None  # "cifar" (3×3, no max-pool) | "imagenet" (torchvision's)
epochs: Optional[int] = None  # training epochs (paper: 200)
lr: Optional[float] = None  # SGD learning rate before the drops (paper: 0.1)
batch_size: Optional[int] = None  # minibatch size (paper: 128)
weight_decay: Optional[float] = None  # weight decay (paper: 2e-4)
at_eps: Optional[float] = None  # ℓ∞ budget of AT and of the evaluation (paper: 8/255)
at_alpha: Optional[float] = None  # PGD step of AT (paper: 2/255)
at_steps: Optional[int] = None  # PGD steps of AT (paper: 10)
at_start: Optional[str] = None  # start of the training PGD: uniform | small | none
n_logit_train: Optional[int] = None  # training images whose logits are recorded
n_eval: Optional[int] = None  # test images attacked by APGD-CE + APGD-DLR
apgd_steps: Optional[int] = None  # iterations of each APGD attack (paper: 100)
precision: Optional[str] = None  # "auto" | "fp32" | "bf16" (training and attacks)
seeds: Optional[int] = None  # ST and AT networks per kind (paper: 3)
analysis_epoch: Optional[int] = None  # the paper's epoch compared, scaled: 20 | 40 | 100 | 200
bins: Optional[int] = None  # histogram bins of Figs. 1, 2A, B.1
gap_bins: Optional[int] = None  # equal-count logit-gap bins of Fig. 2B
ao_ks: Optional[list] = None  # depths k at which the AO@k claims are judged
n_neighbour_seeds: Optional[int] = None  # test images whose logit-space neighbours are counted
neighbours: Optional[int] = None  # neighbours per image (Fig. B.3: 5)

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust.chapters import ch09_logit_distributions as ch09
from tsrobust.data import load_cifar10
from tsrobust.params import resolve
from tsrobust.runtime import choose_device

# every parameter of the cell above, by its name
cfg = resolve(ch09.SETTINGS, profile=profile, seed=seed,
              **{name: globals()[name] for name in ch09.SETTINGS})
ch09.check_settings(cfg)
device = choose_device()
cfg

# %% [markdown]
# ## The scale of each profile
#
# The profiles run the same code at four scales. `gpu` and `paper` train the source's ResNet-18
# (width 64) with its recipe, `gpu` for fewer epochs and `paper` for the full 200. Adversarial
# training of a full-width ResNet-18 is out of reach on a CPU (with PGD-10 each AT epoch costs
# eleven passes over the data), so `cpu` trains a narrower ResNet-18 on a subset of CIFAR-10 for
# fewer epochs, the recipe and its learning-rate drops unchanged: a scale at which the directions
# of §4.1 can show, not its numbers. `smoke` checks the pipeline. The table is computed from the
# settings;
# the last two columns count passes of one image through the network (forward and backward),
# the APGD steps as an upper bound (APGD-DLR counted on every image).

# %%
display(Markdown(ch09.profiles_markdown()))

# %% [markdown]
# ## This build's networks
#
# For every seed, an ST and an AT network, trained (resumable) or loaded from their records. The
# first seed's records also keep weights — the AT network's at the teacher epochs, the ST
# network's at the distillation epoch — which chapter 10 distils from.

# %%
data = load_cifar10(n_train=cfg.n_train, n_test=cfg.n_test, device="cpu")
own = ch09.record_networks(cfg, data, device=device)
display(Markdown(data.notice))
results.records_markdown(own["st"] + own["at"])

# %% [markdown]
# ## The run this chapter shows
#
# The book leads with the largest run recorded in the repository: if every network of a larger
# profile (`cpu`, `gpu`, `paper`) is recorded with that profile's settings, the tables, figures
# and verdicts below are that run's, and this build's run is the pipeline check at the end.

# %%
shown_cfg, shown, own_run = ch09.leading_runs(cfg, own)
shown_data = ch09.data_for(shown_cfg, data)  # the shown run's images and labels
analysis = ch09.analyse(shown, shown_cfg, shown_data.y_test.numpy())
display(Markdown(ch09.shown_markdown(shown_cfg, own_run, cfg.profile)))
if not own_run:
    display(results.records_markdown(shown["st"] + shown["at"]))

# %% [markdown]
# ## Table 1: accuracies
#
# Natural accuracy on the test images and adversarial accuracy (APGD-CE then APGD-DLR, ε = 8/255)
# on the first `n_eval` of them, mean ± sd over the seeds, beside what our copy of Table 1 says.
# Then the AT networks at every evaluated epoch (the teacher epochs of chapter 10).

# %%
display(Markdown(ch09.table1_markdown(analysis)))
display(Markdown(ch09.teacher_epochs_markdown(shown)))

# %% [markdown]
# ## The max logit over training (Fig. 1)

# %%
ch09.plot_distributions(shown, "max", shown_cfg.bins)
plt.show()

# %% [markdown]
# **Figure 9.1** (source C, Fig. 1). The largest logit of each image at every snapshot epoch (the
# paper's epochs 20, 40, 60, 100, 150, 200 scaled to the run; darker = later), for the first ST
# network (left) and AT network (right), on the training images (top) and test images (bottom).
# The paper sees the ST distribution move right early and become symmetric, while the AT
# distribution keeps a low mean and a long right tail until late in training — on the test images
# to the end.

# %%
ch09.plot_moments(analysis)
plt.show()

# %% [markdown]
# **Figure 9.2** (Figs. 1 and B.1 in numbers). The mean (top) and skew (bottom) of the max logit
# (left) and logit gap (right) per epoch, mean ± sd over the seeds; solid: training images,
# dashed: test images. The paper's claims are that AT (red) lies below ST (blue) in the top row
# and above it in the bottom row, its skew positive (above the gray line).

# %% [markdown]
# ## The logit gap and robustness (Figs. 2, B.1)

# %%
ch09.plot_distributions(shown, "gap", shown_cfg.bins)
plt.show()

# %% [markdown]
# **Figure 9.3** (source C, Fig. B.1). As Figure 9.1 for the logit gap. The paper finds the two
# kinds' gaps on the training images alike after epoch 100 (of 200), while on the test images the
# AT gaps stay small and skewed.

# %%
ch09.plot_gaps(shown, analysis, shown_cfg.bins)
plt.show()

# %% [markdown]
# **Figure 9.4** (source C, Fig. 2). (A) The logit gaps of ST and AT on the test images at the
# analysis epoch, all seeds pooled: the paper finds AT's peaked at zero with few beyond five.
# (B) The AT networks' adversarial accuracy per logit-gap bin (equal-count bins of the attacked
# test images, each drawn at its median gap), mean ± sd over the seeds: the paper finds it rising
# with the gap — a large gap "a strong indicator of adversarial accuracy".

# %% [markdown]
# ## Which images each network is confident about (Figs. 3A–B, B.2)

# %%
ch09.plot_ranks(shown, analysis, shown_data.y_test.numpy())
plt.show()

# %% [markdown]
# **Figure 9.5** (source C, Fig. 3A–B). (A) Each frog test image's rank by the first ST network's
# confidence against its rank by the first AT network's; orange: ranked far apart (more than half
# the largest rank). (B) For every pair of networks the share of test images ranked far apart,
# mean over the classes. The paper: 11.8 % between AT and ST networks, 1.1 % between AT networks —
# a bright AT–ST block and a dark AT–AT block.

# %%
ch09.plot_confidence_grid(shown, analysis, shown_data)
plt.show()

# %% [markdown]
# **Figure 9.6** (source C, Fig. B.2). Frog test images in four quadrants of confidence: top
# left, ST confident and AT not; top right, both confident; bottom left, neither; bottom right, AT
# confident and ST not. The paper sees the AT network's confident frogs (right) on plain
# backgrounds with a clear shape, and the ST network confident also on cluttered images (top
# left).

# %% [markdown]
# ## Which classes each network ranks next (Figs. 3C–D, B.3)

# %%
ch09.plot_errors(analysis)
plt.show()

# %% [markdown]
# **Figure 9.7** (source C, Fig. 3C). For the errors on clean test images, the rank of the
# predicted class in the true class's average logit vector (over the correctly classified images
# of that class), mean ± sd over the seeds. Rank 1 is the true class itself; the paper finds both
# kinds erring mostly on high ranks, ST "often" on rank 2 and AT on a broader set.

# %%
ch09.plot_overlap(analysis)
plt.show()

# %% [markdown]
# **Figure 9.8** (source C, Fig. 3D). AO@k between the logit rank orders of two networks on the
# same image (solid) and on two images of the same class (dashed), mean ± sd over the networks.
# The paper finds AT–AT above AT–ST on the same image, and the difference gone when the images are
# permuted within their class.

# %%
ch09.plot_neighbours(shown, analysis, shown_data, shown_cfg.neighbours)
plt.show()

# %% [markdown]
# **Figure 9.9** (source C, Fig. B.3). Left: the first test image of five classes; then its five
# nearest test images by cosine similarity of the first ST network's logits (middle) and of the
# first AT network's (right); red titles mark neighbours of another class. The paper sees the AT
# neighbours alike in colour and shape across classes, the ST neighbours mostly of the seed's
# class. The claims table counts that last point over the first `n_neighbour_seeds` images.

# %% [markdown]
# ## Which claims held at this scale

# %%
claims = ch09.claim_rows(analysis, shown_cfg)
display(results.compare(claims, shown["at"][0]))
display(Markdown(results.claim_summary(claims)))

# %% [markdown]
# Each row compares numbers of the shown run in the direction the paper states: "direction
# holds" beyond the margin its note gives, "differs" for a reversal beyond it, "inconclusive"
# within it. The provenance line is the first AT network's; the records table above lists them
# all.

# %%
display(Markdown(ch09.reading_markdown(shown_cfg, own_run)))

# %% [markdown]
# ## Pipeline check: this build's run
#
# The run this build made (in CI, the `smoke` profile of the table above) tests that the
# chapter's code runs end to end, not the paper. Its Table 1, and the verdicts its rows would
# get:

# %%
own_analysis = analysis if own_run else ch09.analyse(own, cfg, data.y_test.numpy())
display(Markdown(ch09.pipeline_markdown(own_analysis, cfg)))
