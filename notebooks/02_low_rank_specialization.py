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
# # 2. Specialization with low-rank input
#
# Chapter 1 trained students on full-rank Gaussian input, where the theory has every student node
# that matters become a copy of a teacher node. Natural images are not like that: image patches
# concentrate near a low-dimensional subspace (Yang et al., source A: the PCA eigenvalues of
# CIFAR-10's 27-dimensional 3×3×3 patches decay fast, its Fig. 2, and §5.3 keeps the 17 leading
# directions as the basis of the data subspace). Section 3 of source A asks what specialization
# means then, and Section 4 turns the answer into an explanation of adversarial examples:
#
# * **Theorem 1** (infinite data exactly in a subspace 𝒳, zero gradient). For each observed
#   teacher node j some student node k matches it *inside* 𝒳:
#   Proj_𝒳[w_k] = λ Proj_𝒳[w*_j] with λ > 0. Outside 𝒳 nothing is said: w_k = λ Proj_𝒳[w*_j] +
#   w_k^e with w_k^e ⊥ 𝒳 left wherever initialisation put it, because it never affects the
#   output on the data.
# * **Theorem 2** (small gradient, data *near* a subspace). For a subspace 𝒰, the projected
#   angle between teacher node j and its student satisfies
#   sin θ^𝒰_jk ≤ M_j(𝒰) K ε / α_jk when the gradient back-propagated to the hidden layer is at
#   most ε at every input, ‖g₁‖∞ ≤ ε. K is the number of teacher plus student hidden nodes,
#   α_jk = v*_jᵀ v_k the inner product of the teacher's and the student's fan-out weights, and
#   M_j(𝒰) = O(1 / r(𝒰 ∩ R ∩ ∂E_j)), where r is the radius of the largest ball of the data
#   region R inside 𝒰 on the teacher's boundary ∂E_j. Along the data
#   (𝒰 = 𝒳, r large) the angle must be small; across it (𝒰 ⊥ 𝒳, r tiny) the bound is loose and
#   the angle can stay large.
# * **Corollary 1.** Student nodes that align with nothing inside the data have small fan-out.
# * **Eq. 2**, an empirical model of a learned student node:
#   w_k = w*_j + ε_in u_k^in + ε_out u_k^out (normalized weights, u^in ∈ 𝒳, u^out ⊥ 𝒳).
#   ε_out should grow as the data get more rank-deficient.
# * **Eq. 3**, oracle-adversarial examples x′ = argmax_{x′ ∈ B(x, ε)} L[f(x′), f*(x′)]: inputs
#   near the data on which student and teacher disagree most. A large ε_out predicts that they
#   leave 𝒳.
# * **§4.3.** Adversarial training, data augmentation and noise all add inputs along the weak
#   directions of the data, so they should shrink ε_out.
#
# This chapter tests each claim on two-layer ReLU networks where 𝒳 is known exactly. All
# training and measuring is done by the package: the networks and measurements by
# `tsrobust.theory`, this chapter's experiments, figures and verdicts by
# `tsrobust.chapters.ch02_low_rank_specialization`.

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
n_train: Optional[int] = None  # training inputs; None → profile value
steps: Optional[int] = None  # full-batch gradient steps of the main runs; None → profile value
d: Optional[int] = None  # input dimension d; None → profile value
d_sub: Optional[int] = None  # dimension d′ < d of the data subspace; None → profile value
student_width: Optional[int] = None  # student hidden nodes; None → profile value
noise_std: Optional[float] = None  # std of the noise augmentations of §4.3; None → profile value
attack_eps: Optional[float] = None  # ℓ2 radius of Eq. 3's attacks; None → profile value
sweep_d_subs: Optional[list] = None  # d′ values of the sweep, each < d; None → profile value

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from tsrobust import results
from tsrobust.chapters import ch02_low_rank_specialization as ch
from tsrobust.params import resolve
from tsrobust.runtime import choose_device

cfg = resolve(ch.SETTINGS, profile=profile, seed=seed, n_train=n_train, steps=steps, d=d,
              d_sub=d_sub, student_width=student_width, noise_std=noise_std,
              attack_eps=attack_eps, sweep_d_subs=sweep_d_subs)
ch.check_settings(cfg)
device = choose_device()
common = dict(d=cfg.d, teacher_width=cfg.teacher_width, student_width=cfg.student_width,
              outputs=cfg.outputs, n_train=cfg.n_train, n_eval=cfg.n_eval, lr=cfg.lr,
              seed=cfg.seed, device=device)
cfg

# %% [markdown]
# **Set-up.** The teacher is a two-layer ReLU network with bias, f*(x) = Σ_j v*_j σ(w̃*_jᵀx +
# b*_j), whose input weights are random unit vectors of R^d: it "sees" every direction, inside
# 𝒳 and out. The data subspace 𝒳 is a uniformly random d′-dimensional subspace with orthonormal
# basis U. Inputs are x = U z + (I − UUᵀ) n with z ~ N(0, I_d′) and n ~ N(0, s² I_d): **exactly
# in** 𝒳 for s = 0 (Theorem 1), **near** it for s > 0 (Theorem 2: the data have a thin but
# non-zero extent r ≈ s across 𝒳). The student is over-realized and trained with full-batch SGD
# (momentum 0.9) on ½‖f(x) − f*(x)‖². We use SGD and not Adam on purpose: Adam rescales each
# coordinate, which would move weights out of 𝒳 even when every gradient lies in it. The source
# gives no sizes for this toy; `smoke` uses d = 12, d′ = 4, 5 teacher and 20 student nodes and
# 1000 inputs, `gpu`/`paper` d = 20, d′ = 6, 10 and 50 nodes and 10 000 inputs.

# %% [markdown]
# ## 2.1 Projected angles inside and outside the data subspace (Theorems 1–2)
#
# We train one student on data exactly in 𝒳 and one on data near it (same teacher, subspace and
# initialisation), then pair every teacher node j with its best student k (highest normalized
# correlation of activations on held-out data) and measure the angle between their input
# weights w̃ projected onto 𝒳 and onto its complement 𝒳^⊥ (Theorem 2's θ^𝒰).

# %%
exact = results.record(ch.CHAPTER, "low_rank_exact", cfg, lambda: ch.low_rank_experiment(
    d_sub=cfg.d_sub, steps=cfg.steps, off_subspace_std=0.0, attack_eps=cfg.attack_eps,
    attack_steps=cfg.attack_steps, n_attack=cfg.n_attack, **common))
display(exact)
near = results.record(ch.CHAPTER, "low_rank_near", cfg, lambda: ch.low_rank_experiment(
    d_sub=cfg.d_sub, steps=cfg.steps, off_subspace_std=cfg.near_std, attack_eps=cfg.attack_eps,
    attack_steps=cfg.attack_steps, n_attack=cfg.n_attack, **common))
near

# %%
runs = dict(zip(ch.run_names(cfg.near_std), (exact, near)))
ch.plot_projected_angles(runs, d=cfg.d, d_sub=cfg.d_sub)
plt.show()

# %% [markdown]
# **Figure 2.1.** For every teacher node, the angle between its weight and its best student's
# weight, both projected onto the data subspace 𝒳 (blue) or onto its complement (orange). Left:
# data exactly in 𝒳; inside, the angles should be a fraction of a degree, outside as large as
# between random directions (around 90°). Right: data with a thin spread s across 𝒳; Theorem 2
# lets the outside angles shrink, but its bound is loose there, so look for them to stay well
# above the inside ones.

# %%
display(Markdown(ch.angle_summary(exact.values, near.values)))

# %% [markdown]
# ## 2.2 Unspecialized nodes have small fan-out (Corollary 1)
#
# On low-rank data, "aligned" can only mean aligned *inside* 𝒳 (the activations on the data only
# see Proj_𝒳 w). Corollary 1 says that a student node k whose projected weight is at an angle
# sin θ ≥ c₀ from every other node has fan-out ‖v_k‖ ≤ ‖Q⁻¹‖₁ M K ε / c₀, where
# Q = [v_k₁, …, v_k_C] holds the fan-out weights of C student nodes that observe node k (C
# outputs, so Q is square) and M = M_k(𝒰) is Theorem 2's factor for node k's own boundary. As in
# Figure 1.5 we plot each student node's best correlation with a teacher node against its
# fan-out norm, marking nodes that are dead or always on over the data, and group the nodes
# whose boundary lies in the data by footnote 4 of source A: specialized above NC = 0.9,
# unspecialized below 0.8, the rest in between.

# %%
ch.plot_fan_out(runs)
plt.show()

# %% [markdown]
# **Figure 2.2.** One dot per student node (dashed line: NC = 0.8, dotted: NC = 0.9). If
# Corollary 1 holds as on full-rank data, the nodes with the largest fan-out are those that copy
# a teacher node inside 𝒳 (NC ≈ 1), and nodes whose boundary lies in the data but copy nothing
# (blue dots left of the dashed line) have fan-out near zero. Dead nodes (crosses) keep whatever
# fan-out they had when they stopped firing; it never reaches the output. The theory predicts
# that low rank changes nothing inside the data, only outside it (next sections).

# %%
display(Markdown(
    f"Data exactly in 𝒳: {ch.fan_out_summary(exact.arrays)}; final training loss "
    f"{exact.values['final_loss']:.2g}. Data near 𝒳: {ch.fan_out_summary(near.arrays)}; final "
    f"training loss {near.values['final_loss']:.2g}. Corollary 1 bounds the fan-out by a multiple "
    f"of the gradient size ε, so it is a statement about the end of training: a run that stops at "
    f"a higher loss, or nodes that fire on few inputs (and so receive little gradient), can still "
    f"show unspecialized nodes with visible fan-out."))

# %% [markdown]
# ## 2.3 The empirical model: ε_in and ε_out (Eq. 2)
#
# Eq. 2 writes a learned student node as w_k = w*_j + ε_in u_k^in + ε_out u_k^out. We measure it as
# §5.3 of source A does: with normalized weights, Δw_jk = w_k/‖w_k‖ − w*_j/‖w*_j‖,
#
# $$
# \epsilon_{\text{in}}[k, j] = \|U U^\top \Delta w_{jk}\|_2, \qquad
# \epsilon_{\text{out}}[k, j] = \|(I - U U^\top)\,\Delta w_{jk}\|_2,
# $$
#
# for every teacher node j and its best student k. Our weights include the bias,
# w = [w̃; b] (source A §3.2), and since the augmented input [x; 1] always has a 1 in its last
# coordinate, the bias direction belongs to the in-plane basis. Note that ε_in is not the inside
# angle: because both vectors are normalized by their *full* norms, a student with a large
# out-of-plane part has a shrunken in-plane part, and ε_in picks that up even when the inside
# angle is zero. Like the source's Fig. 4 we sort the values over teacher nodes.

# %%
ch.plot_eps(runs)
plt.show()

# %% [markdown]
# **Figure 2.3.** Sorted ε_in (circles) and ε_out (squares) of every teacher node and its best
# student. For data exactly in 𝒳, ε_out should be of order 1 (the normalized out-of-plane parts
# of teacher and student are unrelated) and ε_in much smaller; data near 𝒳 should lower ε_out
# but leave it the larger of the two.

# %%
ve, vn = exact.values, near.values
display(Markdown(
    f"Mean ε_in / ε_out: **{ve['mean_eps_in']:.3f} / {ve['mean_eps_out']:.3f}** (exactly in 𝒳), "
    f"**{vn['mean_eps_in']:.3f} / {vn['mean_eps_out']:.3f}** (near 𝒳)."))

# %% [markdown]
# ## 2.4 Oracle-adversarial examples leave the data subspace (Eq. 3)
#
# Eq. 3 defines an **oracle-adversarial** example as the point of the ball B(x, ε) where the
# student disagrees most with the teacher, x′ = argmax ‖f(x′) − f*(x′)‖², found by projected
# gradient ascent through both networks (40-step ℓ∞ PGD on CIFAR-10 in the source; here ℓ2,
# since our inputs have no pixel range). The empirical model predicts that a large ε_out makes
# the perturbation point out of 𝒳. We attack held-out inputs and measure, for each perturbation
# δ = x′ − x, its **off-subspace fraction** ‖(I − UUᵀ) δ‖ / ‖δ‖ (a random direction gives about
# √((d − d′)/d)), and compare the oracle loss after four perturbations of the same size: none,
# a random direction, PGD restricted to 𝒳 (an *in-plane* attack) and unrestricted PGD.
#
# Our in-plane attack is not the one of source A. In its §5.4 (Table 2) every adversarial
# example comes from unconstrained ℓ∞ PGD: it runs the attack twice from different
# initialisations and calls *in-plane* the one of the two that ends closer to the data subspace,
# *out-plane* the other. Here the in-plane attack is PGD projected onto 𝒳 at every step, so its
# perturbations are a subset of the unrestricted attack's and it can at best match it: it
# measures how much of the student's weakness lies inside 𝒳, not which of two attacks is more
# severe, and its numbers cannot be compared with Table 2.

# %%
ch.plot_probe(runs, exact.arrays, d=cfg.d, d_sub=cfg.d_sub, attack_eps=cfg.attack_eps)
plt.show()

# %% [markdown]
# **Figure 2.4.** Left: how much of each perturbation points out of 𝒳 (data exactly in 𝒳). If
# the student's weakness lies across the data, the oracle-adversarial histogram sits to the
# right of the random one, close to 1. Right (log scale): the student-teacher disagreement on
# clean inputs, after a random perturbation of the same size, after an attack kept inside 𝒳 and
# after the unrestricted attack. Look for the in-plane attack achieving little and the
# unrestricted one a lot: that is what a weakness across the data, where the student's weights
# were never corrected (large ε_out), looks like.

# %%
display(Markdown(ch.probe_summary(exact.values, near.values)))

# %% [markdown]
# ## 2.5 Augmenting along the weak directions lowers ε_out (§4.3)
#
# §4.3 argues that adversarial training works because the adversarial inputs x′, labelled by the
# teacher, fill in the data region R along its *weak* directions, which by Theorem 2 tightens
# the specialization there; noise and data augmentation should do the same. We retrain the same
# student (same teacher, subspace, data and initialisation, data exactly in 𝒳) four ways, each
# extra input labelled by the teacher (*teacher-target*, §4.2):
#
# * **none**: the data alone;
# * **gaussian**: plus x + n, n ~ N(0, σ² I_d), noise in every direction (teacher-agnostic);
# * **off_subspace**: plus x + (I − UUᵀ) n, noise along the weak directions only;
# * **oracle_adversarial**: plus oracle-adversarial examples of the current student (Eq. 3, ℓ2
#   radius ε), refreshed every few steps: adversarial training with the oracle's labels.

# %%
aug = results.record(ch.CHAPTER, "augmentation", cfg, lambda: ch.augmentation_comparison(
    d_sub=cfg.d_sub, steps=cfg.steps, off_subspace_std=0.0, noise_std=cfg.noise_std,
    attack_eps=cfg.attack_eps, attack_steps=cfg.train_attack_steps,
    adversarial_every=cfg.adversarial_every, n_attack=cfg.n_attack, **common))
aug

# %%
ch.plot_augmentation(aug.values, aug.arrays, attack_eps=cfg.attack_eps)
plt.show()

# %% [markdown]
# **Figure 2.5.** Left (log scale): sorted ε_out of every teacher node for the four training
# variants: the three augmented runs should lie well below the plain one. Right (log scale): the
# disagreement an oracle-adversarial attack can provoke, which should drop with ε_out. The table
# below has the numbers.

# %%
display(Markdown(ch.augmentation_table(aug.values)))

# %%
va = aug.values
display(Markdown(
    f"Noise only along the weak directions (⊥ 𝒳) gives mean ε_out "
    f"{va['off_subspace']['mean_eps_out']:.3f}, isotropic noise "
    f"{va['gaussian']['mean_eps_out']:.3f}, oracle-adversarial training "
    f"{va['oracle_adversarial']['mean_eps_out']:.3f}, against {va['none']['mean_eps_out']:.3f} "
    f"without augmentation. If isotropic noise and noise along the weak directions give about "
    f"the same ε_out, the part of the isotropic noise that matters is the part off 𝒳 (the "
    f"in-plane components are already learned from the data); adversarial training can reach "
    f"the same directions by a different route, putting its extra inputs where the current "
    f"student is most wrong."))

# %% [markdown]
# ## 2.6 More rank-deficient data, larger ε_out
#
# §4.1 predicts that ε_out grows as the data become more rank-deficient: the smaller d′, the
# more of the teacher's weight lies outside the data and the less the data constrain it. We
# sweep d′ for fixed d, with independent teachers, subspaces and initialisations per repeat,
# data exactly in 𝒳, and report ε_in and ε_out averaged over teacher nodes.

# %%
sweep = results.record(ch.CHAPTER, "d_sub_sweep", cfg, lambda: ch.subspace_sweep(
    d_subs=cfg.sweep_d_subs, repeats=cfg.sweep_repeats, steps=cfg.sweep_steps,
    off_subspace_std=0.0, **common))
sweep

# %%
ch.plot_sweep(sweep.arrays, d=cfg.d, repeats=cfg.sweep_repeats)
plt.show()

# %% [markdown]
# **Figure 2.6.** ε_out (squares) and ε_in (circles) against the dimension of the data subspace,
# mean ± standard deviation over repeats (grey dots: single runs). As d′ shrinks the data become
# more rank-deficient, and §4.1 predicts a growing ε_out: look for the squares to rise from
# right to left. ε_in only feels the out-of-plane part through the normalization of Eq. 2's
# weights, so it can rise too but should stay below ε_out.

# %%
display(Markdown(ch.sweep_summary(sweep.values)))

# %% [markdown]
# ## 2.7 Summary
#
# The claims of source A §3–4 against this run (the source has no numbers for a toy like this
# one, so its column states the claim; the verdict is computed from the numbers above, and the
# last column says when it holds; a difference inside its margin is a tie, not a direction):

# %%
rows = ch.claim_rows(exact.values, exact.arrays, aug.values, sweep.values,
                     noise_std=cfg.noise_std)
results.compare(rows)  # the provenance of each number is printed under its result above

# %%
display(Markdown(results.verdict_summary(rows)))

# %% [markdown]
# Where every claim holds, the theory's picture is confirmed in a setting where the data subspace is
# known exactly: students specialize inside the data, keep arbitrary weights across it,
# adversarial examples exploit those directions, and augmentation that puts data there repairs
# them; a row that differs names the step of that argument that fails in this run. The toy
# does not test source A's finding that *in-plane* adversarial examples matter too (its
# Table 2): as §2.4 explains, its in-plane examples are unconstrained attacks that happen to
# end closer to the data subspace, while ours are confined to it. The CIFAR-10 chapters measure
# both ε_in and ε_out on real images with a teacher that is itself trained.
