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
# # 1. Student specialization: the theory toys
#
# In the **teacher-student setting** a fixed network, the *teacher* f*, labels the inputs, and
# a second network, the *student* f, is trained on the pairs (x, f*(x)). Because the target is
# itself a network of bounded size, we can open the black box and compare the two networks node
# by node. Tian's talk (source D) summarises what happens for ReLU networks: after training,
# student nodes **specialize**, i.e. individual student nodes become copies of individual
# teacher nodes, and the remaining student nodes are switched off by small fan-out weights.
# Yang et al. (source A) build their explanation of adversarial examples on this picture; the
# next chapter extends it to low-rank data, this one reruns the talk's toys:
#
# 1. the **analytic population gradient** of one ReLU node under Gaussian input, checked against
#    Monte Carlo;
# 2. a **2-D teacher and an over-realized student**: the student's ReLU boundaries move onto
#    the teacher's;
# 3. the **L-shaped curve at convergence**: specialized student nodes carry fan-out weight,
#    unspecialized ones carry almost none (Corollary 1 of source A; Tian 2019);
# 4. **weak teacher nodes learn slowly**: with teacher fan-out ‖v*_j‖ ∝ 1/j^p, the strong nodes
#    are copied first;
# 5. **data augmentation matters** ("Lesson 2"): augmenting the data with the teacher's
#    directions in mind needs fewer samples than teacher-agnostic augmentation, and the talk's
#    gradient condition for ε-alignment evaluated on the runs.
#
# All the work is done by the package: the networks, training and measurements by
# `tsrobust.theory`, this chapter's experiments, figures and verdicts by
# `tsrobust.chapters.ch01_specialization_toys`. Each cell below calls one experiment and records
# its result with its provenance, so a rerun with the same parameters loads the recorded numbers
# instead of recomputing them.

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

profile: str = "smoke"  # smoke (CPU, minutes) | gpu (one GPU) | paper (the source's settings)
seed: int = 0  # seed of every random generator in this chapter
n_train: Optional[int] = None  # training inputs of every toy; None → profile value
steps: Optional[int] = None  # full-batch gradient steps per training run; None → profile value
lr: Optional[float] = None  # SGD learning rate (momentum 0.9); None → profile value
toy_student_width: Optional[int] = None  # student nodes of the 2-D toy; None → profile value
ls_student_width: Optional[int] = None  # student nodes, L-shape experiment; None → profile value
weak_decay: Optional[float] = None  # p in the teacher fan-out ‖v*_j‖ ∝ 1/j^p; None → profile value
aug_repeats: Optional[int] = None  # seeds per size of Aug(D) runs (≥ 2); None → profile value
cuda_mode: str = "default"  # on a GPU: "default", "deterministic" (reruns equal) or "fast"

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust.chapters import ch01_specialization_toys as ch
from tsrobust.params import resolve
from tsrobust.plotting import show_plotly
from tsrobust.runtime import choose_device, configure_cuda

cfg = resolve(ch.SETTINGS, profile=profile, seed=seed, n_train=n_train, steps=steps, lr=lr,
              toy_student_width=toy_student_width, ls_student_width=ls_student_width,
              weak_decay=weak_decay, aug_repeats=aug_repeats)
device = choose_device()
configure_cuda(cuda_mode, device)  # no-op on a CPU; see the reproducing page
cfg

# %% [markdown]
# The sources give no sizes for these toys (the talk shows figures only), so the sizes are our
# choice and every one of them is a parameter above. The `smoke` profile (a CPU minute) uses
# d = 10 inputs, 5 teacher and 25 student nodes for the L-shape, a 4-node teacher and a 12-node
# student for the 2-D toy, 1000 training inputs and 2000 full-batch steps; `gpu` and `paper`
# (identical, since the sources fix nothing) use d = 20, 10 teacher and 50 student nodes,
# 10 000 inputs and 20 000 steps. Teacher and student have C = 5 outputs; the teacher's input
# weights are random unit vectors with biases in ±0.5, so that every teacher boundary crosses
# the data (the talk's assumption that teacher boundaries are *visible*). Students start from
# PyTorch's default initialisation and are trained with SGD (momentum 0.9) on the ℓ2 loss
# ½‖f(x) − f*(x)‖².

# %% [markdown]
# ## 1.1 The analytic population gradient of a ReLU node
#
# Take one ReLU node σ(wᵀx) as the student and one, σ(w*ᵀx), as the teacher, with standard
# Gaussian input x ~ N(0, I_d) and the loss J(w) = ½ (σ(w*ᵀx) − σ(wᵀx))². The talk's slide
# "An Analytic Formula" gives its expected gradient in closed form (for N samples it is N
# times this). The slide writes the factor in front of sin θ as ‖w*_X‖ / ‖w‖; no X enters the
# expectation, and the factor is the teacher norm ‖w*‖, which is what the check below tests:
#
# $$
# \mathbb{E}_x\left[\nabla_w J\right] = \frac{1}{2}(w - w^*) + \frac{1}{2\pi}\left(\theta\, w^*
#   - \frac{\|w^*\|}{\|w\|}\sin\theta \; w\right),
# $$
#
# where θ is the angle between w and w*. The first term is what a *linear* node would give:
# alone it would drive w straight to w* (global convergence). The second term comes from the
# ReLU *gating*, 1[wᵀx > 0]: it vanishes at θ = 0 and is largest when the two half-spaces
# overlap least. The package implements the formula as `relu_population_gradient(w, w_star)`.
#
# We check it against the Monte-Carlo mean of the per-sample gradient
# (σ(wᵀx) − σ(w*ᵀx)) 1[wᵀx > 0] x over N Gaussian draws, for several angles θ, several N and
# independent repeats. The check runs at **unequal norms** (‖w‖ = 1.5, ‖w*‖ = 0.6 in every
# profile): at ‖w‖ = ‖w*‖ the disputed factor ‖w*‖/‖w‖ equals 1 and no check could tell it from
# a formula without it. If the formula is right, the Monte-Carlo error is pure sampling noise
# and shrinks as 1/√N; a wrong term would show up as an error that stops shrinking.

# %%
grad = results.record(ch.CHAPTER, "gradient_check", cfg, lambda: ch.gradient_experiment(
    d=cfg.grad_dim, angles_deg=cfg.grad_angles_deg, sample_sizes=cfg.grad_sample_sizes,
    repeats=cfg.grad_repeats, seed=cfg.seed, norm_w=cfg.grad_norm_w,
    norm_w_star=cfg.grad_norm_w_star))
grad

# %%
ch.plot_gradient_check(grad.values, grad.arrays, cfg.grad_angles_deg)
plt.show()

# %% [markdown]
# **Figure 1.1.** Left: the root-mean-square distance between the Monte-Carlo estimate and the
# analytic gradient, for each angle θ, against the number of samples. If the formula is exact,
# every line runs parallel to the dashed 1/√N reference (the error is sampling noise only); a
# wrong term would make a line flatten out at large N. Right: the analytic gradient's two
# non-zero components as θ goes from 0° to 180°, at the tested norms (solid) and with the factor
# ‖w*‖/‖w‖ replaced by 1 (dotted): the gap between the two is what the check resolves. With
# w* = ‖w*‖ e₁ and w = ‖w‖(cos θ e₁ + sin θ e₂) the component along w* is
# ½(‖w‖ cos θ − ‖w*‖) + ‖w*‖(θ − sin θ cos θ)/2π and the one along e₂ is
# ½‖w‖ sin θ − ‖w*‖ sin²θ/2π (for unit norms ½(cos θ − 1) + (θ − sin θ cos θ)/2π and
# ½ sin θ − sin²θ/2π). The gating part of the component along w*, ‖w*‖(θ − sin θ cos θ)/2π, is
# never negative, so where the linear part pulls w back towards w* it weakens that pull, the
# more so the larger θ.

# %%
display(Markdown(ch.gradient_summary(grad.values, grad.arrays, cfg.grad_angles_deg)))

# %% [markdown]
# ## 1.2 A 2-D teacher and an over-realized student
#
# The talk's "Simple 2D experiments" make specialization visible. Each hidden node j of a
# two-layer ReLU network with bias, f(x) = Σ_j v_j σ(w̃_jᵀx + b_j), has a **boundary**, the
# line w̃_jᵀx + b_j = 0 where it switches on. Here the teacher has 4 nodes, and the student has
# more nodes than it needs (it is *over-realized*). We train the student on the teacher's
# outputs for x ~ N(0, I₂) and draw both networks' boundaries before and after training. A
# student node is drawn bold red when its fan-out weight ‖v_k‖ is large (at least 20% of the
# largest in the run) and thin orange otherwise.
#
# Specialization means: every teacher boundary gets at least one student boundary on top of
# it (ε-alignment in the talk: sin θ̃_jk ≤ ε and |b_j − b*_k| ≤ ε after scaling both nodes to
# ‖w̃‖ = 1, which moves no boundary), and student boundaries that match no teacher carry little
# weight. In 2-D the angle and the bias are there to read, so we measure that definition
# directly: per teacher node, the smallest ε for which some student node is ε-aligned with it.

# %%
toy = results.record(ch.CHAPTER, "two_d_toy", cfg, lambda: ch.two_d_toy(
    teacher_width=cfg.toy_teacher_width, student_width=cfg.toy_student_width,
    outputs=cfg.outputs, n_train=cfg.n_train, steps=cfg.steps, lr=cfg.lr,
    records=cfg.toy_records, seed=cfg.seed, device=device))
toy

# %%
LIM = 3.0  # half-width of the drawn square (inputs are standard Gaussian)
ch.plot_before_after(toy.arrays, lim=LIM,
                     after_title=f"after {int(toy.arrays['steps'][-1])} steps",
                     suptitle=f"2-D toy: {cfg.toy_teacher_width} teacher nodes, "
                              f"{cfg.toy_student_width} student nodes")
plt.show()

# %% [markdown]
# **Figure 1.2.** Teacher boundaries (black, dashed) and student boundaries (red: large fan-out,
# orange: small) before and after training, over a sample of the training inputs. If the
# student has copied the teacher's nodes, after training a bold red student line lies on every
# dashed teacher line, and faint orange lines are students that copied nothing, with fan-outs
# too small to matter much to the output; the ε-alignment printed below says how closely each
# teacher node was copied. Boldness compares a fan-out with the largest of the whole run,
# so before training, when all fan-outs are of one order, most lines can be bold. A bold line
# far out in a corner, if the run has one, belongs to a node that fires on almost no input: no
# gradient reaches it, so nothing shrinks its fan-out (see §1.3).

# %%
display(Markdown(ch.toy_alignment_summary(toy.values, toy.arrays)))

# %% [markdown]
# The slider below replays the training run: move it to see the student boundaries travel to
# the teacher's. It works in the static book as well as in Jupyter.

# %%
show_plotly(ch.training_slider_figure(toy.arrays, lim=LIM, title="2-D toy"))

# %% [markdown]
# **Figure 1.3.** The same run at every recorded step (slider). At step 0 the student
# boundaries sit where the initialisation put them. Move the slider and look for the steps at
# which bold lines rotate and shift onto the dashed teacher boundaries, and for lines that find
# no teacher turning faint (their fan-out shrinking).
#
# In Jupyter or on Colab, the widget below retrains the 2-D toy with another student width or
# seed (each change reruns `ch.two_d_toy`, a few seconds on a CPU). In the static book it shows
# the run it was saved with; moving its sliders needs a live kernel.

# %%
display(ch.toy_widget(cfg, lim=LIM))

# %% [markdown]
# **Figure 1.4.** The 2-D toy retrained with the widget's student width and seed (before and
# after training, same drawing as Figure 1.2). Try a student *narrower* than the teacher
# (width 2 or 3): it cannot copy every teacher node and its boundaries settle in compromise
# positions; with a wide student, several student nodes may copy the same teacher node and
# share its fan-out.

# %% [markdown]
# ## 1.3 The L-shaped curve at convergence (Corollary 1)
#
# Why do the unmatched student nodes switch off? In Tian's analysis (and Corollary 1 of source A
# for low-rank data), when the gradient at the hidden layer is small at *every* input, ‖g₁‖∞ ≤ ε,
# a student node k whose boundary is *observed* by other nodes (it crosses their active region)
# and which is not aligned with any teacher or student node must have a small fan-out weight:
# ‖v_k‖∞ ≤ ‖Q⁻¹‖₁ M K ε / c₀ (the form source A's appendix proves, with ‖Q⁻¹‖₁ the largest
# absolute column sum; chapter 2 explains why its main text's ‖v_k‖₂ needs an extra √C).
# Here Q = [v_k₁, …, v_k_C] collects the fan-out weights of C student
# nodes that observe node k (C is the number of outputs, so Q is square), c₀ is a lower bound on
# the sine of the angle between node k's weight and that of every other teacher or student node, K
# is the number of teacher plus student hidden nodes, and M = O(1/r) grows as the data near node
# k's boundary get thin (r: the radius of the largest ball of data there; Theorem 2 of source A).
# So at convergence, plotting for every student node its best correlation to a teacher node
# against its fan-out norm gives an **L**: nodes either sit at correlation ≈ 1 with sizeable
# fan-out (specialized) or at fan-out ≈ 0 with any correlation (unspecialized).
#
# Here the input is full-rank Gaussian in d dimensions. The corollary assumes the node's
# boundary lies in the data, so we mark nodes that are **dead** (active on < 1% of the inputs)
# or **always on** (active on > 99%, i.e. linear on the data) separately: for them the theorem
# says nothing. Correlations are measured on fresh inputs. Nodes are grouped as in source A's
# footnote 4: *specialized* when their best NC is larger than 0.9, *unspecialized* when it is
# smaller than 0.8; the few in between are counted separately and left out of the comparison.

# %%
ls = results.record(ch.CHAPTER, "l_shape", cfg, lambda: ch.l_shape_experiment(
    d=cfg.ls_dim, teacher_width=cfg.ls_teacher_width, student_width=cfg.ls_student_width,
    outputs=cfg.outputs, n_train=cfg.n_train, n_eval=cfg.n_eval, steps=cfg.steps, lr=cfg.lr,
    seed=cfg.seed, device=device))
# ls

# %%
ch.plot_l_shape(ls.arrays, d=cfg.ls_dim, teacher_width=cfg.ls_teacher_width,
                student_width=cfg.ls_student_width)
plt.show()

# %% [markdown]
# **Figure 1.5.** One dot per student node after training. The L to look for: nodes with
# substantial fan-out at the right edge (NC ≈ 1, copies of a teacher node), and the nodes left
# of the dashed line (unspecialized, NC < 0.8) with fan-out close to zero; nodes between the
# two lines are neither. Dead nodes (crosses) never fire on the data, so their fan-out is
# irrelevant to the output, whatever its size.

# %%
display(Markdown(ch.l_shape_summary(ls.values, ls.arrays)))

# %% [markdown]
# ## 1.4 Weak teacher nodes are slow to learn
#
# The talk's finite-sample result for two layers says a teacher node j is ε-aligned with a
# student node k once the hidden-layer gradient is small enough on the (augmented) data,
#
# $$
# \|g_1(x, \hat{\mathcal W})\|_\infty \le \frac{\alpha_{kj}}{5 K_1^{3/2}\sqrt{d}}\,\epsilon
# \quad \text{for } x \in D', \qquad \alpha_{kj} := v_k^\top v_j^*,
# $$
#
# and a sample complexity N = O(K₁^{5/2} d² ε⁻¹ κ⁻¹). Here g₁(x, Ŵ) is the gradient
# back-propagated to the hidden layer at input x when the student has weights Ŵ; D′ = Aug(D) is
# the training set D enlarged by the slide's teacher-agnostic augmentation to (2d + 1)|D| inputs;
# K₁ = m₁ + n₁ counts the hidden nodes of teacher and student; d is the input dimension; ε is the
# alignment reached (ε-alignment, §1.2); and κ is a constant the slide does not define. The bound
# scales with α_kj, the overlap of the fan-out weights: a teacher node with a small fan-out ‖v*_j‖
# ("weak") needs a much smaller gradient, i.e. much more training, before a student copies it
# ("Lesson 1: stronger teacher node learns faster"; robust to noise, but weak nodes are hard to
# learn). We give the teacher fan-out weights of norm ‖v*_j‖ = 1/j^p and follow, for each teacher
# node, the best NC over student nodes during training. Note that the bound is stated for a
# student trained on the augmented set Aug(D), while these runs (like §1.2–1.3) train on D
# itself: they test the lesson's direction, not the bound. §1.5 trains on Aug(D) and evaluates
# the condition.

# %%
weak = results.record(ch.CHAPTER, "weak_teacher", cfg, lambda: ch.weak_teacher_experiment(
    d=cfg.weak_dim, teacher_width=cfg.weak_teacher_width,
    student_width=cfg.weak_student_width, outputs=cfg.outputs, decay=cfg.weak_decay,
    n_train=cfg.n_train, n_eval=cfg.n_eval, steps=cfg.steps, lr=cfg.lr,
    records=cfg.weak_records, seed=cfg.seed, device=device))
weak

# %%
ch.plot_weak_teacher(weak.arrays, decay=cfg.weak_decay)
plt.show()

# %% [markdown]
# **Figure 1.6.** Left: for each teacher node (dark = strong, light = weak), how far its best
# student correlation is from 1 during training (log scale; dotted line: NC = 0.99). Right: the
# first recorded step at which each teacher node is copied (NC ≥ 0.99) against its strength
# (nodes never copied are not drawn). If weak nodes are slow to learn, the dark curves on the
# left cross the dotted line first and the points on the right rise from right to left; the
# rank correlation below measures how consistently they do.

# %%
v, a = weak.values, weak.arrays
display(Markdown(
    f"{v['n_learned']} of {len(a['teacher_fan_out'])} teacher nodes reached NC ≥ "
    f"{ch.ALIGNED_NC} within {int(a['steps'][-1])} steps; steps to get there, strongest "
    f"first: {v['steps_to_align']} (−1: not reached). Spearman rank correlation between "
    f"strength and time to specialize (nodes never copied count as the slowest): "
    f"**{results.fmt(v['spearman_strength_vs_steps'], '.2f')}** (−1 would mean a perfectly "
    f"monotone \"weaker is slower\"; {results.MISSING}: undefined, when every node was copied "
    f"at the same recorded step or none was). The bound is on the worst case, so a weak node that "
    f"happens to start close to a student node can be copied early: the ordering is a "
    f"tendency, not a law."))

# %% [markdown]
# ## 1.5 Teacher-agnostic vs teacher-aware augmentation ("Lesson 2")
#
# The talk's finite-sample result (§1.4) is for the **teacher-agnostic** augmented set
# D′ = Aug(D) of (2d + 1)|D| inputs. Its "Lesson 2: Data augmentation matters" contrasts it with
# **teacher-aware** augmentation, for which the gradient condition loses its √d,
# ‖g₁‖∞ ≤ α_kj ε / (5 K₁^{3/2}), and the sample complexity becomes linear in d,
# O(K₁^{5/2} d ε⁻¹ κ⁻¹) instead of O(K₁^{5/2} d² ε⁻¹ κ⁻¹). The slide's pictures of the two
# augmentations did not survive, so the constructions are ours, chosen to match what survived:
# teacher-agnostic, every x with x ± δ e_i along each coordinate axis (exactly the slide's
# (2d + 1)|D| inputs); teacher-aware, every x with x ± δ ŵ*_j along the normal of each teacher
# boundary ((2K* + 1)|D| inputs: it needs the teacher's weights, and here it adds fewer inputs
# than the agnostic set). For several sizes |D| and seeds we train the same student (same
# teacher, initialisation and D) on D, on each Aug(D), and measure the ε-alignment error of every
# teacher node. We also solve the talk's condition for the ε it guarantees given each run's own
# ‖g₁‖∞ over its training set and the α of the teacher node's best observer (as in chapter 2).

# %%
augment = results.record(ch.CHAPTER, "augmentation", cfg, lambda: ch.augmentation_experiment(
    d=cfg.aug_dim, teacher_width=cfg.aug_teacher_width, student_width=cfg.aug_student_width,
    outputs=cfg.outputs, sizes=cfg.aug_sizes, repeats=cfg.aug_repeats, delta=cfg.aug_delta,
    steps=cfg.aug_steps, lr=cfg.lr, n_eval=cfg.n_eval, seed=cfg.seed, device=device))
augment

# %%
ch.plot_augmentation_experiment(augment.arrays, d=cfg.aug_dim)
plt.show()

# %% [markdown]
# **Figure 1.7.** Left (log-log): the mean ε-alignment error of the teacher nodes against the
# size of the original data set, mean ± standard deviation over seeds, for training on D alone
# (circles), on the teacher-agnostic Aug(D) (squares) and on the teacher-aware Aug(D)
# (diamonds). If teacher-aware augmentation needs fewer samples, the diamonds lie below the
# squares at every |D|, though they add fewer inputs. Right: every teacher node's measured error
# against the ε that the talk's gradient condition guarantees for its run; a guarantee holds
# below the diagonal and says something only left of the dotted line at 1.

# %%
display(Markdown(ch.augmentation_summary(augment.values, augment.arrays)))

# %% [markdown]
# ## 1.6 What the toys show
#
# The claims of the talk, checked in this run (the verdict is computed from the numbers above,
# and each row's last column says when it holds and with what noise; the talk has no numbers for
# these toys, so "paper" states its claim). All six rows are tests that could have failed on
# this run; a row that cannot be decided by it (no unspecialized node for the L, a guarantee too
# loose to constrain anything) is *inconclusive* and does not count as holding.

# %%
rows = ch.claim_rows(grad.values, toy.values, ls.values, weak.values, augment,
                     n_weak_teacher=cfg.weak_teacher_width)
results.compare(rows)  # the provenance of each number is printed under its result above

# %%
display(Markdown(results.claim_summary(rows)))

# %% [markdown]
# Two caveats apply whatever the verdicts: Corollary 1 speaks only of nodes whose boundary lies
# in the data, so dead nodes may keep whatever fan-out they had when they died; and twins of
# unspecialized students can keep cancelling fan-outs, the case source A leaves open. The
# gradient condition, with its constants, guarantees nothing at the sizes we can train: it
# explains the direction (strong and teacher-aware learn faster), not the size of the effect.
# The next chapter asks what changes when the input is **low-rank**, as natural images are: the
# theory then predicts specialization only *inside* the data subspace, and places adversarial
# examples across it.
