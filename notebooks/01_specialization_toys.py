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
#    are copied first.
#
# All the work (networks, training, measurements) is done by `tsrobust.theory`; each cell below
# calls one experiment and records its result with its provenance, so a rerun with the same
# parameters loads the recorded numbers instead of recomputing them.

# %% tags=["remove-cell"]
# On Colab, install this book's package first (elsewhere, install it as the README says).
import importlib.util
import subprocess
import sys

try:
    import google.colab  # noqa: F401  (present only on Colab)
    on_colab = True
except ImportError:
    on_colab = False
if on_colab and importlib.util.find_spec("tsrobust") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "tsrobust @ git+https://github.com/tsrobust/tsrobust"], check=True)

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

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust import theory as th
from tsrobust.params import resolve
from tsrobust.plotting import show_plotly

cfg = resolve(th.CH01_SETTINGS, profile=profile, seed=seed, n_train=n_train, steps=steps, lr=lr,
              toy_student_width=toy_student_width, ls_student_width=ls_student_width,
              weak_decay=weak_decay)
CHAPTER = "01_specialization_toys"
device = "cuda" if torch.cuda.is_available() else "cpu"
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
# (σ(wᵀx) − σ(w*ᵀx)) 1[wᵀx > 0] x over N Gaussian draws, for several angles θ (with
# ‖w‖ = ‖w*‖ = 1), several N and independent repeats. If the formula is right, the Monte-Carlo
# error is pure sampling noise and shrinks as 1/√N; a wrong term would show up as an error
# that stops shrinking.

# %%
grad = results.record(CHAPTER, "gradient_check", cfg, lambda: th.gradient_check(
    cfg.grad_dim, [math.radians(a) for a in cfg.grad_angles_deg], cfg.grad_sample_sizes,
    cfg.grad_repeats, th.make_generator(cfg.seed, th.STREAM_GRADIENT)))
grad

# %%
sizes = np.asarray(grad.values["sample_sizes"])
angles = np.asarray(cfg.grad_angles_deg)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
for a, err in zip(angles, grad.arrays["rms_error"]):
    ax1.loglog(sizes, err, "o-", label=f"θ = {a:.0f}°")
ref = grad.arrays["rms_error"].mean(0)[0] * np.sqrt(sizes[0] / sizes)
ax1.loglog(sizes, ref, "k--", label="∝ 1/√N")
ax1.set_xlabel("Monte-Carlo samples N")
ax1.set_ylabel("RMS error ‖ĝ_N − g‖ over repeats")
ax1.set_title("Monte Carlo converges to the formula")
ax1.legend(fontsize=8)

fine = np.linspace(1e-3, math.pi - 1e-3, 200)
curves = np.stack([th.relu_population_gradient(*th.vectors_at_angle(t, 2)).numpy() for t in fine])
ax2.plot(np.degrees(fine), curves[:, 0], label="analytic, along w*")
ax2.plot(np.degrees(fine), curves[:, 1], label="analytic, ⊥ w* (in span{w, w*})")
an = grad.arrays["analytic"]
ax2.plot(angles, an[:, 0], "ko", mfc="none", label="analytic at the tested θ")
ax2.plot(angles, an[:, 1], "ko", mfc="none")
ax2.set_xlabel("angle θ between w and w* (degrees)")
ax2.set_ylabel("component of E[∇_w J]")
ax2.set_title("The population gradient, ‖w‖ = ‖w*‖ = 1")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Figure 1.1.** Left: the root-mean-square distance between the Monte-Carlo estimate and the
# analytic gradient, for each angle θ, against the number of samples. If the formula is exact,
# every line runs parallel to the dashed 1/√N reference (the error is sampling noise only); a
# wrong term would make a line flatten out at large N. Right: the analytic gradient's two
# non-zero components as θ goes from 0° to 180°. With w* = e₁ and w = cos θ e₁ + sin θ e₂ the
# component along w* is ½(cos θ − 1) + (θ − sin θ cos θ)/2π and the one along e₂ is
# ½ sin θ − sin²θ/2π. Both vanish at θ = 0 (w = w*); at θ = 180° the one along w* reaches −½ and
# the other returns to 0. The gating part of the component along w*, (θ − sin θ cos θ)/2π,
# has the opposite sign to the linear part ½(cos θ − 1), so it weakens the pull of a gradient
# step towards w*, the more so the larger θ.

# %%
v, shift = grad.values, grad.arrays["gating_shift_z"]
display(Markdown(
    f"Fitted log-log slope of the mean RMS error against N: **{th.fmt(v['loglog_slope'])}** "
    f"(sampling noise alone gives −0.5). Largest deviation of any coordinate of any estimate "
    f"from the formula, in units of that estimate's own standard error: "
    f"**{th.fmt(v['z_max'], '.2f')}** over {len(angles)} angles × {len(sizes)} sample sizes × "
    f"{v['repeats']} repeats × d = {v['d']} coordinates ({v['n_z']} z-scores; for that many "
    f"independent Gaussian z-scores the largest is {v['z_median_max']:.2f} in a typical run "
    f"(median) and exceeds {v['z_chance_1pct']:.2f} once in a hundred runs). Largest z-score "
    f"at each N: {', '.join(f'{z:.2f}' for z in grad.arrays['z_max'].max(0))}; a wrong term "
    f"would make these grow with N, while sampling noise alone leaves them level (values "
    f"that are larger at small N than at large N point to the heavier-than-Gaussian tails of "
    f"a mean over few samples, not to the formula). A "
    f"{th.GATING_ERROR:.0%} error in the gating term would move some coordinate's z-score at "
    f"N = {sizes[-1]:,} by at least {shift.min():.1f} (θ = {angles[shift.argmin()]:.0f}°) to "
    f"{shift.max():.1f} (θ = {angles[shift.argmax()]:.0f}°) standard errors."))

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
# it (ε-alignment in the talk: sin θ̃_jk ≤ ε and |b_j − b*_k| ≤ ε after normalization), and
# student boundaries that match no teacher carry little weight.

# %%
toy = results.record(CHAPTER, "two_d_toy", cfg, lambda: th.two_d_toy(
    teacher_width=cfg.toy_teacher_width, student_width=cfg.toy_student_width,
    outputs=cfg.outputs, n_train=cfg.n_train, steps=cfg.steps, lr=cfg.lr,
    records=cfg.toy_records, seed=cfg.seed, device=device))
toy

# %%
LIM = 3.0  # half-width of the drawn square (inputs are standard Gaussian)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
th.plot_two_d_toy(axes[0], toy.arrays, 0, lim=LIM, title="before training")
th.plot_two_d_toy(axes[1], toy.arrays, -1, lim=LIM,
                  title=f"after {int(toy.arrays['steps'][-1])} steps")
axes[1].legend(loc="lower left", fontsize=8)
fig.suptitle(f"2-D toy: {cfg.toy_teacher_width} teacher nodes, "
             f"{cfg.toy_student_width} student nodes")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Figure 1.2.** Teacher boundaries (black, dashed) and student boundaries (red: large fan-out,
# orange: small) before and after training, over a sample of the training inputs. If the
# student has copied the teacher's nodes, after training a bold red student line lies on every
# dashed teacher line, and faint orange lines are students that copied nothing, with fan-outs
# too small to matter much to the output; the best correlations printed below say how closely
# each teacher node was copied. Boldness compares a fan-out with the largest of the whole run,
# so before training, when all fan-outs are of one order, most lines can be bold. A bold line
# far out in a corner, if the run has one, belongs to a node that fires on almost no input: no
# gradient reaches it, so nothing shrinks its fan-out (see §1.3).

# %%
v = toy.values
display(Markdown(
    f"Training loss went from {v['initial_loss']:.3g} to **{v['final_loss']:.2g}**. Per teacher "
    f"node, the best normalized correlation (NC) with a student node on the training inputs: "
    f"{', '.join(f'{c:.4f}' for c in toy.arrays['best_nc'])} (1 = a student node's activation "
    f"is an exact positive multiple of the teacher node's, up to a constant)."))

# %% [markdown]
# The slider below replays the training run: move it to see the student boundaries travel to
# the teacher's. It works in the static book as well as in Jupyter.

# %%
show_plotly(th.training_slider_figure(toy.arrays, lim=LIM, title="2-D toy"))

# %% [markdown]
# **Figure 1.3.** The same run at every recorded step (slider). At step 0 the student
# boundaries sit where the initialisation put them. Move the slider and look for the steps at
# which bold lines rotate and shift onto the dashed teacher boundaries, and for lines that find
# no teacher turning faint (their fan-out shrinking).
#
# In Jupyter or on Colab, the widget below retrains the 2-D toy with another student width or
# seed (each change reruns `th.two_d_toy`, a few seconds on a CPU). In the static book it shows
# the run it was saved with; moving its sliders needs a live kernel.

# %%
import ipywidgets as widgets


def rerun_toy(student_width, toy_seed):
    _, arrays = th.two_d_toy(
        teacher_width=cfg.toy_teacher_width, student_width=student_width, outputs=cfg.outputs,
        n_train=cfg.n_train, steps=cfg.widget_steps, lr=cfg.lr, records=1, seed=toy_seed,
        progress=False)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
    th.plot_two_d_toy(axes[0], arrays, 0, lim=LIM, title="before training")
    th.plot_two_d_toy(axes[1], arrays, -1, lim=LIM, title=f"after {cfg.widget_steps} steps")
    fig.suptitle(f"student width {student_width}, seed {toy_seed}: final loss "
                 f"{arrays['loss'][-1]:.2g}")
    fig.tight_layout()
    plt.show()


toy_widget = widgets.interactive(
    rerun_toy,
    student_width=widgets.IntSlider(value=cfg.toy_student_width, min=1, max=40,
                                    continuous_update=False, description="student width"),
    toy_seed=widgets.IntSlider(value=cfg.seed, min=0, max=50, continuous_update=False,
                               description="seed"),
)
display(toy_widget)

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
# ‖v_k‖ ≤ ‖Q⁻¹‖₁ M K ε / c₀. Here Q = [v_k₁, …, v_k_C] collects the fan-out weights of C student
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
ls = results.record(CHAPTER, "l_shape", cfg, lambda: th.l_shape_experiment(
    d=cfg.ls_dim, teacher_width=cfg.ls_teacher_width, student_width=cfg.ls_student_width,
    outputs=cfg.outputs, n_train=cfg.n_train, n_eval=cfg.n_eval, steps=cfg.steps, lr=cfg.lr,
    seed=cfg.seed, device=device))
# ls

# %%
a = ls.arrays
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for cls, (name, marker, color) in enumerate(zip(th.NODE_CLASSES, "oxs",
                                                ("tab:blue", "tab:gray", "tab:green"))):
    keep = a["node_class"] == cls
    if keep.any():
        ax.scatter(a["best_corr"][keep], a["fan_out_norm"][keep], marker=marker, color=color,
                   label=f"{name} ({keep.sum()})")
for nc, style in ((th.UNSPECIALIZED_NC, "--"), (th.SPECIALIZED_NC, ":")):
    ax.axvline(nc, color="k", ls=style, lw=1, label=f"NC = {nc}")
ax.set_xlabel("best NC of the student node with any teacher node")
ax.set_ylabel("fan-out norm ‖v_k‖")
ax.set_title(f"L-shape at convergence: d = {cfg.ls_dim}, {cfg.ls_teacher_width} teacher / "
             f"{cfg.ls_student_width} student nodes")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Figure 1.5.** One dot per student node after training. The L to look for: nodes with
# substantial fan-out at the right edge (NC ≈ 1, copies of a teacher node), and the nodes left
# of the dashed line (unspecialized, NC < 0.8) with fan-out close to zero; nodes between the
# two lines are neither. Dead nodes (crosses) never fire on the data, so their fan-out is
# irrelevant to the output, whatever its size.

# %%
v = ls.values
off_l = (a["node_class"] == 0) & (a["best_corr"] <= th.SPECIALIZED_NC) & (
    a["fan_out_norm"] > 0.1 * a["fan_out_norm"].max())
paired = off_l & (a["partner_corr"] > 0.99)
display(Markdown(
    f"Final training loss {v['final_loss']:.2g}; mean best NC of the teacher nodes (MBNC) "
    f"**{v['mbnc']:.4f}**. Of the student nodes whose boundary lies in the data, "
    f"{th.fan_out_sentence(v)}; {v['n_dead']} nodes are dead and {v['n_always_on']} always "
    f"on. Nodes that are not specialized (NC ≤ {th.SPECIALIZED_NC}) with a fan-out above 10% "
    f"of the largest: {int(off_l.sum())}"
    + (f", of which {int(paired.sum())} have a twin student node (NC > 0.99 between the two)"
       if off_l.any() else "")
    + ". Twins are the case source A's footnote 2 leaves open: two unspecialized students that "
      "copy each other can keep large fan-outs that cancel in the output."))

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
# node, the best NC over student nodes during training.

# %%
weak = results.record(CHAPTER, "weak_teacher", cfg, lambda: th.weak_teacher_experiment(
    d=cfg.weak_dim, teacher_width=cfg.weak_teacher_width,
    student_width=cfg.weak_student_width, outputs=cfg.outputs, decay=cfg.weak_decay,
    n_train=cfg.n_train, n_eval=cfg.n_eval, steps=cfg.steps, lr=cfg.lr,
    records=cfg.weak_records, seed=cfg.seed, device=device))
weak

# %%
a = weak.arrays
colors = plt.cm.viridis(np.linspace(0, 0.9, len(a["teacher_fan_out"])))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
for j, (curve, strength) in enumerate(zip(a["best_nc"].T, a["teacher_fan_out"])):
    ax1.semilogy(a["steps"], np.clip(1 - curve, 1e-6, None), color=colors[j],
                 label=f"j = {j + 1}, ‖v*‖ = {strength:.2f}")
ax1.axhline(1 - th.ALIGNED_NC, color="k", ls=":", lw=1)
ax1.set_xlabel("training step")
ax1.set_ylabel("1 − best NC of teacher node j")
ax1.set_title(f"Weak teacher nodes (‖v*_j‖ = 1/j^{cfg.weak_decay:g}) are copied later")
ax1.legend(fontsize=7, ncol=2)
learned = a["steps_to_align"] >= 0
ax2.scatter(a["teacher_fan_out"][learned], a["steps_to_align"][learned], c=colors[learned])
ax2.set_xscale("log")
ax2.set_xticks(a["teacher_fan_out"], [f"{s:.2f}" for s in a["teacher_fan_out"]], fontsize=7)
ax2.minorticks_off()
ax2.set_xlabel("teacher fan-out norm ‖v*_j‖")
ax2.set_ylabel(f"first recorded step with best NC ≥ {th.ALIGNED_NC}")
ax2.set_title("Time to specialize vs teacher strength")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Figure 1.6.** Left: for each teacher node (dark = strong, light = weak), how far its best
# student correlation is from 1 during training (log scale; dotted line: NC = 0.99). Right: the
# first recorded step at which each teacher node is copied (NC ≥ 0.99) against its strength
# (nodes never copied are not drawn). If weak nodes are slow to learn, the dark curves on the
# left cross the dotted line first and the points on the right rise from right to left; the
# rank correlation below measures how consistently they do.

# %%
v = weak.values
display(Markdown(
    f"{v['n_learned']} of {len(a['teacher_fan_out'])} teacher nodes reached NC ≥ "
    f"{th.ALIGNED_NC} within {int(a['steps'][-1])} steps; steps to get there, strongest "
    f"first: {v['steps_to_align']} (−1: not reached). Spearman rank correlation between "
    f"strength and time to specialize (nodes never copied count as the slowest): "
    f"**{th.fmt(v['spearman_strength_vs_steps'], '.2f')}** (−1 would mean a perfectly "
    f"monotone \"weaker is slower\"; {th.MISSING}: undefined, when every node was copied at the "
    f"same recorded step or none was). The bound is on the worst case, so a weak node that "
    f"happens to start close to a student node can be copied early: the ordering is a "
    f"tendency, not a law."))

# %% [markdown]
# ## 1.5 What the toys show
#
# The four claims of the talk, checked in this run (the verdict is computed from the numbers
# above, and each row's last column says when it holds; the talk has no numbers for these
# toys, so "paper" states its claim):

# %%
rows = [
    th.gradient_claim(grad.values),
    results.Row("2-D toy: lowest best NC over teacher nodes", ours=toy.values["min_best_nc"],
                paper="students align", source="D, \"Simple 2D experiments\"",
                verdict="direction holds" if results.exceeds(toy.values["min_best_nc"],
                                                             th.ALIGNED_NC) else "differs",
                note=f"holds if every teacher node has a student copy: lowest best NC above "
                     f"{th.ALIGNED_NC}"),
    th.l_shape_claim(ls.values),
    th.weak_teacher_claim(weak.values, cfg.weak_teacher_width),
]
results.compare(rows)  # the provenance of each number is printed under its result above

# %%
display(Markdown(th.verdict_summary(rows)))

# %% [markdown]
# Two caveats apply whatever the verdicts: Corollary 1 speaks only of nodes whose boundary lies
# in the data, so dead nodes may keep whatever fan-out they had when they died; and twins of
# unspecialized students can keep cancelling fan-outs, the case source A leaves open. The next
# chapter asks what changes when the input is **low-rank**, as natural images are: the theory
# then predicts specialization only *inside* the data subspace, and places adversarial examples
# across it.
