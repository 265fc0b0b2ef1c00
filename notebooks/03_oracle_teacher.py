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
# # 3. The oracle teacher
#
# Chapters 1 and 2 built teachers by hand. On real images there is no hand-made teacher, so
# Yang et al. (source A, §5.1) *train* one and then treat it as the oracle: from then on, the
# CIFAR-10 labels are never used again. A student learns only from the teacher's outputs, and
# an adversarial example is an input on which student and teacher disagree. Because the teacher
# is a network of the same kind as the student, we can ask *which student node copies which
# teacher node* — the specialization of chapters 1–2, now on images.
#
# The recipe of §5.1:
#
# * Teacher and student are **4-layer conv ReLU networks**, 3×3 kernels, followed by a linear
#   layer to the 10 logits. With no padding, the first layer sees the 30×30 patches of a 32×32
#   image, each of 3×3×3 = 27 dimensions (§5.3).
# * The teacher is trained with **64-64-64-64** channels and then **pruned to 45-32-32-20** by
#   removing the "inactivated" channels; footnote 3 defines inactive through *the norm of the
#   fan-out weights* — the weights that carry a channel's output to the next layer.
# * The student is **1.1× the pruned teacher**: 50-35-35-22. Being slightly wider than the
#   teacher (over-realized) lets every teacher node have a student that can copy it.
#
# This chapter trains and prunes the teacher (`tsrobust.chapters.cifar.oracle_teacher`; chapters
# 4 and 5 load the recorded one) and reproduces the left panel of Fig. 2: the eigen-spectrum of the
# 27-dimensional input patches, whose fast decay is the *low-rank input* that §3's theory
# needs. The 17 leading eigenvectors span the basis **U** of the data subspace 𝒳 used for ε_in
# and ε_out in chapters 4 and 5.
#
# **What the source leaves open, and our choices** (each is a parameter below):
#
# * *How the teacher is trained.* No optimizer, schedule, epoch count or accuracy is given. We
#   use SGD (momentum 0.9, weight decay 5·10⁻⁴), a cosine learning-rate schedule from 0.05, batch
#   128, and the usual augmentation (random crop with 4-pixel padding, horizontal flip, rotation
#   up to ±15°) — common CIFAR-10 choices.
# * *BatchNorm.* None. §3's analysis is about plain ReLU nodes, the NC of §5.2 compares raw
#   activations, and with BatchNorm a channel's influence would depend on normalization statistics
#   as well as on its fan-out weights, which is what footnote 3 ranks by. The nets use PyTorch's
#   default initialization.
# * *How many channels are "inactive".* The source reports the outcome (45-32-32-20), not a
#   threshold. We keep exactly those counts, ranking channels by the ℓ2 norm of their fan-out
#   weights: for layers 1–3 the slice of the next conv's kernel that reads the channel; for the
#   last layer the linear layer's columns that read it (a flattened map is *channel-major*:
#   all 24×24 positions of channel 0 first). No fine-tuning after pruning (none is mentioned);
#   we measure how much the pruning changes the teacher instead.
# * *The PCA.* Patches of `n_pca` training images, centred (the covariance), as
#   `tsrobust.specialization.patch_pca`.

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

profile: str = "smoke"  # smoke (CPU, minutes) | cpu (2 CPU cores, ~1 h) | gpu | paper
seed: int = 0  # seed of every random generator in this chapter
n_train: Optional[int] = None  # training images (teacher and students); None → profile value
n_test: Optional[int] = None  # test images for accuracies; None → profile value
teacher_epochs: Optional[int] = None  # teacher training epochs; None → profile value
teacher_optimizer: Optional[str] = None  # "sgd" (momentum 0.9) or "adam"; None → profile value
teacher_schedule: Optional[str] = None  # "cosine" or "onecycle"; None → profile value
teacher_lr: Optional[float] = None  # teacher (peak) learning rate; None → profile value
teacher_batch_size: Optional[int] = None  # teacher minibatch size; None → profile value
teacher_weight_decay: Optional[float] = None  # teacher weight decay; None → profile value
teacher_augment: Optional[bool] = None  # crop/flip(/rotation) for the teacher; None → profile
teacher_rotation_deg: Optional[float] = None  # largest rotation (0: none); None → profile value
pruned_widths: Optional[list] = None  # widths after fan-out pruning; None → profile value
teacher_finetune_epochs: Optional[int] = None  # label epochs of the pruned net; None → profile
teacher_finetune_lr: Optional[float] = None  # its learning rate (cosine); None → profile value
precision: Optional[str] = None  # "auto" | "fp32" | "bf16"; None → profile value
n_pca: Optional[int] = None  # training images whose patches enter the PCA; None → profile value
pca_rank: Optional[int] = None  # eigenvectors spanning U (§5.3: 17); None → profile value
cuda_mode: str = "default"  # on a GPU: "default", "deterministic" (reruns equal) or "fast"

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust.chapters import ch03_oracle_teacher as ch03
from tsrobust.data import load_cifar10
from tsrobust.params import resolve
from tsrobust.runtime import choose_device, configure_cuda

# every parameter of the cell above, by its name
cfg = resolve(ch03.SETTINGS, profile=profile, seed=seed,
              **{name: globals()[name] for name in ch03.SETTINGS})
device = choose_device()
configure_cuda(cuda_mode, device)  # no-op on a CPU; see the reproducing page
cfg

# %% [markdown]
# ## The data
#
# CIFAR-10 comes from the data root (`$TSROBUST_DATA`, default `~/.cache/tsrobust`); if it is
# missing, the official archive is downloaded and its md5 checked. The loader reports which copy
# it read, and every result below carries that line in its provenance.

# %%
data = load_cifar10(device=device, n_train=cfg.n_train, n_test=cfg.n_test)
display(Markdown(data.notice))

# %% [markdown]
# ## Training and pruning the teacher
#
# `oracle_teacher` trains the 64-64-64-64 teacher on the labels, prunes it by fan-out norm and
# records both (weights included) with their provenance; a rerun with the same parameters loads
# them. A killed run resumes from its last epoch.
#
# Footnote 3 removes *inactive* channels, found by their small fan-out weight norm. One kind of
# inactive channel escapes that test: a **dead** ReLU, whose output is zero on every input. No
# gradient reaches its fan-out weights, so they keep the size they had at initialization, which
# after a short training can exceed that of live channels (weight decay shrinks them only
# slowly). We therefore first check, on up to 1,000 training images, which channels ever fire; a
# channel that never does counts as fan-out norm 0 and is pruned first. Among live channels the
# fan-out norm decides, as in the source.

# %%
teacher_full, teacher, teacher_res = ch03.teacher(cfg, data, device=device)
shown, own_run = ch03.leading(teacher_res, ch03.TEACHER_SETTINGS)  # the largest recorded run
tv = shown.values
display(Markdown(ch03.shown_markdown(shown, own_run, cfg.profile, "the teacher")))
display(Markdown(ch03.teacher_markdown(tv, shown.provenance["parameters"]["n_train"])))
display(shown)

# %%
ch03.plot_history(tv)
plt.show()

# %% [markdown]
# **Figure 3.1.** The teacher's loss per epoch (left) and its accuracy (right) on its augmented
# training batches and, where recorded, on the test images; after the dashed line, the pruned
# teacher's fine-tune on the labels, where the profile has one (the table above gives the pruned
# teacher's accuracy before its first fine-tune epoch). A smoke teacher sees a few thousand images for a few epochs and stays far from a
# good classifier: enough for the pipeline, since the students of chapters 4–5 need *a* fixed
# teacher to copy, not an accurate one.

# %%
ch03.plot_fanout_norms(tv)
plt.show()
display(Markdown(ch03.pruned_mass_markdown(tv)))

# %% [markdown]
# **Figure 3.2.** Each channel's fan-out weight norm, sorted, per layer; blue bars are the
# channels kept in 45-32-32-20, red bars the live channels pruned, gray bars the dead channels
# (pruned whatever their norm, since they pass nothing on). If the pruned live channels were truly
# *inactivated* (footnote 3), the red bars would sit far below the blue ones and carry almost
# none of the fan-out mass, and pruning would leave the teacher's predictions unchanged. How clear
# the gap is depends on how long the teacher trained: a short run leaves many channels of similar
# norm.

# %%
results.compare(ch03.claim_rows(teacher=tv, teacher_scale=ch03.scale_of(shown)), shown)

# %% [markdown]
# ## Low-rank input: the patch spectrum (Fig. 2, left)
#
# §5.3: "each input with shape (3, 32, 32) can be decomposed into 30×30 patches, and each patch
# has 3×3×3 = 27 dimensions … the fast-decaying eigenvalues show their low-rank structure." The
# first conv layer only ever sees these patches, so its filters are constrained by the data only
# inside the subspace the patches fill.

# %%
own_pca = ch03.record_spectrum(cfg, data)
pca, own_pca_run = ch03.leading(own_pca, ch03.SETTINGS)
pca_rank = pca.provenance["parameters"]["pca_rank"]
display(Markdown(ch03.shown_markdown(pca, own_pca_run, cfg.profile, "the patch spectrum")))
ch03.plot_spectrum(pca.values, pca_rank)
plt.show()
display(pca)

# %% [markdown]
# **Figure 3.3.** The 27 eigenvalues of the covariance of all 3×3×3 patches, largest first (log
# scale); the shaded components form the basis U of chapters 4–5. The spectrum falls by orders
# of magnitude: a handful of directions (local brightness and colour, then low-frequency edges)
# carry nearly all the variance, and the last components — high-frequency, colour-opponent
# patterns — are nearly absent. These are the "weak" directions along which §4 expects students
# to stay unconstrained.

# %%
results.compare(ch03.claim_rows(spectrum=pca.values, pca_rank=pca_rank,
                                official=data.official), pca)

# %% [markdown]
# ## What this chapter establishes
#
# * A teacher of the §5.1 architecture, trained on CIFAR-10 and pruned to 45-32-32-20, is
#   recorded with its weights; chapters 4 and 5 load it and never look at the labels again.
# * Whether the pruned channels were "inactive" is measured, not assumed: Fig. 3.2 and the
#   agreement of the pruned with the trained teacher show how much the pruning changed the
#   function. A short-trained teacher, as in the smoke profile, leaves kept and pruned channels
#   of similar norm, so pruning can change its predictions; longer training with weight decay
#   drives more channels towards zero fan-out. Dead channels, which fan-out norm alone cannot
#   see, are pruned first; removing live channels can leave a few later channels of the pruned
#   teacher dead, and the counts above say how many.
# * The input patches are strongly low-rank (Fig. 3.3), the premise of §3–4: students are pinned
#   down inside the span of U and free outside it.
#
# Rerun with `-p profile gpu` (one GPU) or `-p profile paper` for the full training set and a
# teacher trained for 60 or 200 epochs.

# %% [markdown]
# ## Pipeline check: this build's run

# %%
display(Markdown(ch03.pipeline_markdown(teacher_res, own_pca)))
