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
# # 7. CCAT, robust features and the spread of specialization
#
# Chapters 4 and 5 varied how long and how a student learns from the oracle teacher and found
# robustness and specialization moving together. Source A tests the same link on two more ways
# of making a student robust, and asks one more question of the specialization itself:
#
# 1. **Confidence-calibrated adversarial training (CCAT, §5.6; Table 4, Figs. 11–12).** Stutz
#    et al.'s CCAT trains on adversarial examples whose label fades towards the uniform
#    distribution with the perturbation's size: with
#    $\lambda(\delta) = (1 - \min(1, \|\delta\|_\infty/\epsilon))^\rho$ the target of
#    $x + \delta$ is $\tilde y = \lambda\,\mathrm{onehot}(y) + (1 - \lambda)/K$. In source A's
#    teacher-student form the attack maximizes the largest logit gap between student and
#    teacher, $\delta = \arg\max_{\|\delta\|_\infty \le \epsilon} \max_k |s_k(x+\delta) -
#    t_k(x+\delta)|$, and y is the teacher's label. The paper trains CCAT with ρ = 5, 10 and 20
#    for 150 epochs and finds ρ = 10 the most robust (52.04 % against 47.25 % and 49.33 %) and
#    the most specialized, ρ = 20 second on both, and AT (84.07 %) far above every CCAT student,
#    with lower ε_in and ε_out curves.
# 2. **The robust-feature dataset (A.11; Table 5, Figs. 15–16).** After Ilyas et al., each
#    training image x gets a twin $x_r$ that the adversarially trained (AT) student cannot tell
#    from it, kept in the teacher's class by a second term (Eq. 35):
#    $x_r = \arg\min \alpha \|L_t(x_r) - L_t(x)\|^2 + \|f_M(x) - f_M(x_r)\|^2$, α = 0.5, where
#    $L_t$ are the teacher's logits and $f_M$ the AT student's representation. The standard-
#    trained (ST) student of 150 epochs is then fine-tuned for 150 epochs on
#    $(x_r, f^*(x_r))$ (RFT). The paper's Table 5 ranks AT (83.27 %) > ST of 300 epochs
#    (61.73 %) > RFT (45.39 %) > ST of 150 epochs (35.88 %), with RFT more specialized than the
#    ST student it started from and a slightly lower ε_out than the long ST student. (Its text
#    says "ST model (150 epochs) achieves better robustness" than RFT; its table says the
#    300-epoch one does, and we follow the table.)
# 3. **How specialization spreads over the teacher's nodes (A.10, Fig. 14).** For students from
#    three initializations, how many student nodes specialize (NC > 0.9) to each teacher node?
#    The paper finds them spread almost uniformly: no teacher node is a special, "robust" one.
#
# Across all of them, the paper's thesis is that specialization and robustness rank together;
# we test it as a rank correlation over every student of the chapter.
#
# **Robust accuracy and specialization** are measured as in chapters 4 and 5: the fraction of
# ℓ∞ PGD-40 examples (ε = 10/255, step 0.01, maximizing the ℓ2 distance between the two nets'
# logits) on which student and teacher agree, on `n_eval` test images that are the same for
# every student of a seed; the normalized correlation (NC) of student and teacher activations per
# layer with its sorted best-NC curve and mean (MBNC), and the first layer's ε_in/ε_out curves
# (chapter 5 explains them).
#
# **Where the source is silent we chose, and every choice is a parameter below.** *CCAT's
# training.* Stutz et al. mix clean and adversarial images; source A does not say how: each
# batch here is half clean, with the teacher's one-hot label, and half adversarial, with ỹ
# (`ccat_clean_fraction`, the default of Stutz et al.'s code). How δ is drawn is not given
# either. With sign-gradient PGD at step 0.01, ‖δ‖∞ reaches ε = 10/255 within four steps, and
# λ = 0: nearly every adversarial target would be the uniform distribution, whatever ρ. So each
# adversarial image is attacked inside a ball of radius r·ε, r uniform in [0, 1]
# (`ccat_random_radius`), and λ(δ) covers its whole range; that is where ρ matters. The soft label
# ỹ is a distribution over classes, so CCAT students learn by cross-entropy, like chapter 4's
# *label* students, while AT students learn the teacher's logits (chapter 5's AT, teacher-target).
# Chapter 4 found label training less specializing than logit training: part of any gap between
# AT and CCAT may come from that, not from the calibration. *The robust-feature dataset.* f_M is
# the AT student's last conv map, flattened — the input of its linear read-out, Ilyas et al.'s
# penultimate layer; x_r starts from another training image (`rf_start`) and is found by
# `rf_steps` Adam steps on the pixels (rate `rf_lr`), projected back into [0, 1] after each (the
# source names no optimizer); each seed builds its own dataset from its own AT student, for the
# first `n_rf` of the students' images. RFT sees as many images as the long ST student's extra
# epochs (`n_rf × rft_epochs = n_student × (st_long_epochs − epochs)`), the paper's "fair
# comparison". *A.10* does not say which students it counts; we count the AT students, the most
# specialized of the chapter.
#
# **Students.** Every student of a seed starts from the same initialization and is trained like
# chapters 4–5's (Adam at a constant rate 10⁻³, batch 128, on the first `n_student` training
# images, never a data label): AT (PGD on the ℓ2 logit distance, fit to the teacher's logits
# there), CCAT for each ρ, ST (logit) for `epochs` and `st_long_epochs` (the short one is the long
# one's checkpoint), and RFT.
#
# **Seeds and verdicts.** Every number is a mean ± standard deviation over `seeds`
# independently trained seeds. A direction holds only beyond a margin from that spread
# (Student's t times the standard error of the difference; for robust accuracies at least the
# binomial noise of `n_eval` images); a specialization row without a spread is *inconclusive*.
# The rank correlation counts beyond the one-sided 5 % level of Spearman's ρ under no
# association. Only a run at the paper's settings could *reproduce* a number; every row states
# the run's scale.
#
# **The `cpu` profile** trains seven students per seed, three seeds, on 10,000 images for 4
# epochs (ST long 8) with PGD-7 for AT and CCAT, makes 5,000 robust-feature images per seed in 40
# steps and fine-tunes RFT for 8 epochs on them; evaluation is the paper's PGD-40 on 1,000 test
# images. Counted in forward-and-backward passes of student and teacher on one image: AT 0.96 M,
# CCAT 1.62 M (half of each batch attacked), ST 0.24 M, the robust-feature dataset 0.60 M, RFT
# 0.12 M, evaluation 0.84 M — about 4.4 M, 41–61 minutes on two CPU cores at 1,200–1,800 images
# per second.

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
seed: int = 0  # seed of every random generator in this chapter (seeds: seed, seed + 1, …)
# Every value below left at None takes the profile's value (see `cfg` after the next cell).
n_train: Optional[int] = None  # training images of chapter 3's teacher
n_test: Optional[int] = None  # CIFAR-10 test images: the pool the evaluations draw from
n_student: Optional[int] = None  # training images the students learn from
seeds: Optional[int] = None  # students trained per comparison (A.10: three)
epochs: Optional[int] = None  # epochs of AT, CCAT and ST (short) (paper: 150)
st_long_epochs: Optional[int] = None  # epochs of ST (long) (paper: 300)
optimizer: Optional[str] = None  # student optimizer, adam | sgd (as chapters 4-5)
lr: Optional[float] = None  # student learning rate (not in the source; 10⁻³)
batch_size: Optional[int] = None  # student minibatch size (not in the source; 128)
at_eps: Optional[float] = None  # ℓ∞ budget of AT and CCAT (paper: 10/255)
at_alpha: Optional[float] = None  # PGD step of AT and CCAT (paper: 0.01)
at_steps: Optional[int] = None  # PGD steps of AT and CCAT (paper: 40)
rhos: Optional[list] = None  # CCAT's transition exponents ρ (paper: 5, 10, 20)
ccat_clean_fraction: Optional[float] = None  # share of each CCAT batch kept clean (0.5)
ccat_random_radius: Optional[bool] = None  # attack CCAT images inside r·ε, r ~ U(0, 1)
n_rf: Optional[int] = None  # images of the robust-feature dataset
rf_steps: Optional[int] = None  # Adam steps of Eq. 35 per image
rf_lr: Optional[float] = None  # Adam's rate on the pixels (0.01)
rf_alpha: Optional[float] = None  # α of Eq. 35 (paper: 0.5)
rf_start: Optional[str] = None  # x_r starts from another image | noise
rft_epochs: Optional[int] = None  # epochs of the RFT fine-tune on the robust-feature images
n_eval: Optional[int] = None  # test images attacked per evaluation
repeats: Optional[int] = None  # repeated evaluations of the robust accuracy
eval_steps: Optional[int] = None  # PGD steps of the evaluation (as chapters 4-5)
linf_eps: Optional[float] = None  # ℓ∞ budget of the evaluation (10/255)
linf_alpha: Optional[float] = None  # ℓ∞ PGD step of the evaluation (0.01)
n_spec: Optional[int] = None  # test images whose activations give the NC
n_pca: Optional[int] = None  # training images of the patch PCA
pca_rank: Optional[int] = None  # eigenvectors spanning U (paper: 17)
precision: Optional[str] = None  # "auto" | "fp32" | "bf16" (training and attacks)

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust.chapters import ch07_ccat_robust_features as ch07
from tsrobust.chapters.cifar import oracle_teacher
from tsrobust.data import load_cifar10
from tsrobust.params import resolve
from tsrobust.runtime import choose_device

# every parameter of the cell above, by its name
cfg = resolve(ch07.SETTINGS, profile=profile, seed=seed,
              **{name: globals()[name] for name in ch07.SETTINGS})
ch07.check_settings(cfg)
device = choose_device()
cfg

# %% [markdown]
# ## The teacher and the data
#
# The teacher is chapter 3's: the 64-64-64-64 net trained on CIFAR-10 labels and pruned by
# fan-out norm to 45-32-32-20, loaded from chapter 3's record when one exists for the same
# parameters (and trained here otherwise). Students (50-35-35-22) never see a data label.

# %%
data = load_cifar10(n_train=cfg.n_train, n_test=cfg.n_test, device="cpu")
_, teacher, teacher_res = oracle_teacher(cfg.profile, cfg.seed, data, device=device)
display(Markdown(
    f"{data.notice} Teacher (pruned {list(teacher.widths)}): test accuracy "
    f"{100 * teacher_res.values['test_accuracy_pruned']:.1f} % on the CIFAR-10 labels "
    f"(chapter 3's measurement, on its first {teacher_res.values['n_test_used']} test images)."))
teacher_res

# %% [markdown]
# ## This build's students
#
# For each seed: AT, CCAT for every ρ, ST (short and long) and RFT, each measured when its
# training ends. Each seed's run is recorded with the teacher's weight digest; a run made with
# another teacher is recomputed.

# %%
own = ch07.record_seeds(cfg, data, teacher, device=device)
results.records_markdown(own)

# %% [markdown]
# ## The run this chapter shows
#
# The book leads with the largest run recorded in the repository: if every seed of a larger
# profile (`cpu`, `gpu`, `paper`) is recorded with that profile's settings, the tables, figures
# and verdicts below are that run's, and this build's run is the pipeline check at the end.

# %%
shown_cfg, shown, own_run = ch07.leading_runs(cfg, own)
runs = [r.values for r in shown]
display(Markdown(ch07.shown_markdown(shown_cfg, own_run, cfg.profile)))
if not own_run:
    display(results.records_markdown(shown))

# %% [markdown]
# ## CCAT against AT (Table 4)
#
# Our robust accuracies (mean ± sd over the seeds) beside the paper's, whose students trained
# 150 epochs on 50,000 images with PGD-40. The paper's AT number here, 84.07 %, is the talk's;
# its Table 1 gives 87.57 % for AT (150) and its Table 5 83.27 %. Then every seed's numbers:

# %%
display(Markdown(ch07.table4_markdown(runs)))
display(Markdown(ch07.seeds_markdown(runs)))

# %%
ch07.plot_sorted_bnc(shown, [c for c in runs[0]["columns"] if c.startswith("CCAT")] + ["AT"],
                     "Sorted BNC curves, CCAT (blue, darker = larger ρ) and AT (black)")
plt.show()

# %% [markdown]
# **Figure 7.1** (source A, Fig. 11). For every layer, each teacher node's best normalized
# correlation with any student node, sorted (mean over seeds, band ± sd); higher curves mean
# more teacher nodes have a student copying them. The dotted gray curve is the untrained student
# all of them start from. The paper finds the ρ = 10 curve highest among CCAT and reads the
# order of the curves as the order of Table 4.

# %%
ch07.plot_eps_curves(shown, [c for c in runs[0]["columns"] if c.startswith("CCAT")] + ["AT"],
                     "First-layer ε_in / ε_out curves, CCAT (blue) and AT (black)")
plt.show()

# %% [markdown]
# **Figure 7.2** (source A, Fig. 12). For each first-layer teacher filter, the in-subspace (left)
# and off-subspace (right) part of its difference to the best student's filter, sorted; lower
# means a closer copy. The paper finds AT below every CCAT curve on both sides.

# %% [markdown]
# ## The robust-feature dataset (Table 5)
#
# The first images of the first seed's dataset: the targets x, the images the optimization
# started from, and the x_r it reached — images the AT student represents like x and the teacher
# scores like x.

# %%
ch07.plot_grid(shown[0])
plt.show()
display(Markdown(
    "Eq. 35, mean over the dataset, before → after the steps: "
    + "; ".join(f"seed {v['seed']}: {v['rf_objective'][0]:.4g} → {v['rf_objective'][-1]:.4g}"
                for v in runs) + "."))

# %% [markdown]
# **Figure 7.3** (source A shows no such grid). Top: targets; middle: starts; bottom: x_r. How
# far x_r moves from its start towards its target's look depends on the steps spent
# (`rf_steps`); the paper's Table 5 trains on x_r that fool only the AT student's features and the
# teacher's logits, not the eye.
#
# Our Table 5 beside the paper's:

# %%
display(Markdown(ch07.table5_markdown(runs)))

# %%
ch07.plot_sorted_bnc(shown, ["AT", "ST_short", "ST_long", "RFT"],
                     "Sorted BNC curves, AT, ST (short, dashed; long, solid) and RFT")
plt.show()

# %% [markdown]
# **Figure 7.4** (source A, Fig. 15). As Figure 7.1 for Table 5's students. The paper finds AT
# highest, RFT above the short ST student it is fine-tuned from, and RFT close to the long ST
# student.

# %%
ch07.plot_eps_curves(shown, ["AT", "ST_short", "ST_long", "RFT"],
                     "First-layer ε_in / ε_out curves, AT, ST and RFT")
plt.show()

# %% [markdown]
# **Figure 7.5** (source A, Fig. 16). The paper finds RFT's ε_in curve like the long ST
# student's and its ε_out curve slightly lower, and reads it as the robust features fixing the
# *out-of-plane* weakness while the in-plane one, the more harmful (Table 2), remains.

# %% [markdown]
# ## Specialization and robustness across all students

# %%
ch07.plot_rank(runs)
plt.show()

# %% [markdown]
# **Figure 7.6.** Every student of every seed: its MBNC averaged over the four layers against its
# ℓ∞ robust accuracy. Source A's thesis is that the two rank together; the title gives
# Spearman's ρ over all points, and the table of claims judges it.

# %% [markdown]
# ## How specialization spreads over the teacher's nodes (A.10)

# %%
ch07.plot_counts(runs)
plt.show()
display(Markdown(ch07.uniformity_markdown(runs)))

# %% [markdown]
# **Figure 7.7** (source A, Fig. 14). Rows: layers; columns: seeds. For every live teacher node
# (dead ones are left out, as everywhere), the number of the AT student's nodes whose NC with it
# exceeds 0.9. The paper sees the bars spread evenly and alike across seeds. A χ² test against
# equal counts (summed over seeds) decides in every layer with at least one specialized pair per
# teacher node; layers with fewer say nothing either way.

# %% [markdown]
# ## Which claims held at this scale

# %%
claims = ch07.claim_rows(runs, shown_cfg)
display(results.compare(claims, shown[0]))
display(Markdown(results.claim_summary(claims)))

# %% [markdown]
# Each row compares numbers of the shown run in the direction the paper states: "direction
# holds", "differs" (a reversal, or a difference within the noise), or "inconclusive" where the
# run has no spread to judge by. The margins say how large a difference had to be to count.

# %%
display(Markdown(ch07.reading_markdown(shown_cfg, own_run)))

# %% [markdown]
# ## Pipeline check: this build's run
#
# The run this build made (in CI, the `smoke` profile: 500 images, one epoch (ST long two),
# two-step PGD, 100 robust-feature images) tests that the chapter's code runs end to end, not the
# paper.
# Its numbers, and the verdicts its rows would get, compactly:

# %%
display(Markdown(ch07.pipeline_markdown([r.values for r in own], cfg)))
