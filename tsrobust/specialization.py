"""Student specialization metrics (source A, §4.1 "activation-check" and §5.2).

A student node k *specializes* to a teacher node j when their activations over a data set are
strongly correlated. The normalized correlation (NC) of §5.2 is the Pearson correlation of the two
activation vectors; for conv layers every (image, position) pair is one sample.
"""

from __future__ import annotations

import math

import numpy as np
import torch

VARIANCE_FLOOR = 1e-7
"""Floor on an activation's variance, so that a dead node (constant output) gets NC = 0."""


def _as_samples(acts) -> torch.Tensor:
    """[N, K] or conv maps [B, K, H, W] → [samples, K] float64."""
    acts = torch.as_tensor(np.asarray(acts) if not torch.is_tensor(acts) else acts)
    acts = acts.detach().to(torch.float64)
    if acts.ndim == 4:
        acts = acts.permute(0, 2, 3, 1).reshape(-1, acts.shape[1])
    elif acts.ndim != 2:
        raise ValueError(
            f"activations must be [N, K] or conv maps [B, K, H, W]; got shape {tuple(acts.shape)}"
        )
    return acts


def normalized_correlation(student_acts, teacher_acts) -> torch.Tensor:
    """Normalized correlation matrix NC[k, j] between student node k and teacher node j (§5.2).

    Both inputs are activations over the same samples: [N, K] or conv maps [B, K, H, W] (batch ×
    positions are the samples). Returns the Pearson correlation, [K_student, K_teacher], with each
    node's variance floored at ``VARIANCE_FLOOR``.
    """
    s, t = _as_samples(student_acts), _as_samples(teacher_acts)
    if s.shape[0] != t.shape[0]:
        raise ValueError(
            f"student and teacher activations must cover the same samples: "
            f"{s.shape[0]} vs {t.shape[0]}"
        )
    n = s.shape[0]
    s = s - s.mean(0)
    t = t - t.mean(0)
    cov = s.T @ t / n
    std_s = (s.pow(2).mean(0)).clamp_min(VARIANCE_FLOOR).sqrt()
    std_t = (t.pow(2).mean(0)).clamp_min(VARIANCE_FLOOR).sqrt()
    return (cov / std_s[:, None] / std_t[None, :]).to(torch.float32)


def best_nc(nc: torch.Tensor) -> torch.Tensor:
    """Best normalized correlation (BNC) of each teacher node: max over student nodes, [K_teacher]."""
    return torch.as_tensor(nc).max(dim=0).values


def mbnc(nc: torch.Tensor) -> float:
    """Mean best normalized correlation (MBNC): the mean of ``best_nc`` over teacher nodes (§5.2)."""
    return float(best_nc(nc).mean())


# -- per-layer NC, sorted BNC and specialization ratio (§5.2, footnote 4) ----------------------

SPECIALIZED_NC = 0.9
"""Footnote 4: a node is *specialized* if its NC is larger than 0.9 …"""
UNSPECIALIZED_NC = 0.8
"""… and *unspecialized* if its NC is smaller than 0.8."""
NC_BATCH = 250
"""Images per forward pass when accumulating the moments of :func:`layer_nc`."""


class _Moments:
    """Running first and second moments of two activation sets (float64), for Pearson's r."""

    def __init__(self):
        self.n = 0
        self.s1 = self.t1 = self.s2 = self.t2 = self.st = None

    def add(self, s: torch.Tensor, t: torch.Tensor):
        s, t = _as_samples(s), _as_samples(t)
        if s.shape[0] != t.shape[0]:
            raise ValueError(
                f"student and teacher maps must have the same batch and spatial size: "
                f"{s.shape[0]} vs {t.shape[0]} samples"
            )
        sums = (s.sum(0), t.sum(0), s.pow(2).sum(0), t.pow(2).sum(0), s.T @ t)
        if self.s1 is None:
            self.s1, self.t1, self.s2, self.t2, self.st = sums
        else:
            for name, v in zip(("s1", "t1", "s2", "t2", "st"), sums):
                setattr(self, name, getattr(self, name) + v)
        self.n += s.shape[0]

    def correlation(self) -> torch.Tensor:
        n = self.n
        ms, mt = self.s1 / n, self.t1 / n
        cov = self.st / n - ms[:, None] * mt[None, :]
        std_s = (self.s2 / n - ms.pow(2)).clamp_min(VARIANCE_FLOOR).sqrt()
        std_t = (self.t2 / n - mt.pow(2)).clamp_min(VARIANCE_FLOOR).sqrt()
        return (cov / std_s[:, None] / std_t[None, :]).to(torch.float32)


@torch.no_grad()
def layer_nc(student, teacher, x: torch.Tensor, *,
             batch_size: int = NC_BATCH) -> list[torch.Tensor]:
    """NC matrix ``[K_student, K_teacher]`` for every conv layer l (student layer l vs teacher
    layer l), over the images ``x`` (every image × position is a sample, §5.2).

    Uses ``model.activations(x)`` (post-ReLU maps per layer). The moments are accumulated batch by
    batch in float64, so the result equals :func:`normalized_correlation` on all maps at once
    without holding them in memory. Both models are evaluated in eval mode.
    """
    modes = (student.training, teacher.training)
    student.eval(), teacher.eval()
    try:
        moments = None
        for xb in x.split(batch_size):
            s_maps, t_maps = student.activations(xb), teacher.activations(xb)
            if len(s_maps) != len(t_maps):
                raise ValueError(
                    f"student has {len(s_maps)} conv layers and teacher {len(t_maps)}; NC pairs "
                    f"layer l with layer l, so compare nets of the same depth"
                )
            if moments is None:
                moments = [_Moments() for _ in s_maps]
            for m, s, t in zip(moments, s_maps, t_maps):
                m.add(s, t)
    finally:
        student.train(modes[0]), teacher.train(modes[1])
    if moments is None:
        raise ValueError("x holds no images")
    return [m.correlation() for m in moments]


@torch.no_grad()
def node_variances(model, x: torch.Tensor, *, batch_size: int = NC_BATCH) -> list[torch.Tensor]:
    """Variance of every conv node's post-ReLU activation over the images ``x`` (every image ×
    position is a sample), per layer, float64. A node whose variance is at most
    ``VARIANCE_FLOOR`` is *dead* on ``x`` (constant, in practice a ReLU that never fires): its
    normalized correlation is not defined, and :func:`normalized_correlation` gives it 0."""
    mode = model.training
    model.eval()
    try:
        n = s1 = s2 = None  # per layer: samples (images × positions), Σa, Σa²
        for xb in x.split(batch_size):
            maps = [_as_samples(a) for a in model.activations(xb)]
            counts = [m.shape[0] for m in maps]
            if s1 is None:
                n, s1, s2 = counts, [m.sum(0) for m in maps], [m.pow(2).sum(0) for m in maps]
            else:
                n = [a + c for a, c in zip(n, counts)]
                s1 = [a + m.sum(0) for a, m in zip(s1, maps)]
                s2 = [a + m.pow(2).sum(0) for a, m in zip(s2, maps)]
    finally:
        model.train(mode)
    if s1 is None:
        raise ValueError("x holds no images")
    return [(b / k - (a / k).pow(2)).clamp_min(0) for k, a, b in zip(n, s1, s2)]


def sorted_bnc(nc: torch.Tensor) -> torch.Tensor:
    """The sorted BNC curve of one layer (§5.2): teacher nodes' BNC, largest first."""
    return best_nc(nc).sort(descending=True).values


def specialization_ratio(nc: torch.Tensor, low: float = UNSPECIALIZED_NC,
                         high: float = SPECIALIZED_NC, *, over: str = "student") -> float:
    """Unspecialized/specialized ratio of one layer (footnote 4, Fig. 6 right).

    A node is unspecialized if its best NC is below ``low`` and specialized if above ``high``.
    ``over="student"`` (default) classifies student nodes by their best NC to any teacher node
    (the text: AT "forc[es] more student nodes to be specialized"); ``over="teacher"`` classifies
    teacher nodes by their BNC. Returns #unspecialized / #specialized (``inf`` if none is
    specialized, ``nan`` if neither).
    """
    if not low <= high:
        raise ValueError(f"need low ≤ high, got low={low}, high={high}")
    nc = torch.as_tensor(nc)
    if over == "student":
        best = nc.max(dim=1).values
    elif over == "teacher":
        best = best_nc(nc)
    else:
        raise ValueError(f"over must be 'student' or 'teacher', got {over!r}")
    unspec, spec = int((best < low).sum()), int((best > high).sum())
    if spec == 0:
        return float("nan") if unspec == 0 else float("inf")
    return unspec / spec


# -- patch PCA and ε_in / ε_out (§5.3) -------------------------------------------------------

PATCH_SIZE = 3
"""§5.3: the first layer's 3×3 kernels see 3×3×3 = 27-dimensional patches."""
SUBSPACE_RANK = 17
"""§5.3: the 17 leading eigenvectors form the basis U of the input distribution."""
PCA_BATCH = 500
"""Images per step when accumulating the patch covariance."""


def input_patches(x: torch.Tensor, size: int = PATCH_SIZE) -> torch.Tensor:
    """All ``size × size`` patches of images ``x`` [B, C, H, W] (no padding, stride 1), as rows
    ``[B · (H−size+1) · (W−size+1), C · size²]`` ordered (channel, row, column) like a flattened
    conv filter ``weight.flatten(1)`` — so ``patches @ w.flatten(1).T`` is the first conv layer
    without bias."""
    if x.ndim != 4:
        raise ValueError(f"x must be images [B, C, H, W], got shape {tuple(x.shape)}")
    cols = torch.nn.functional.unfold(x, size)  # [B, C·size², L]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


@torch.no_grad()
def patch_pca(x: torch.Tensor, size: int = PATCH_SIZE, *, center: bool = True,
              batch_size: int = PCA_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of the ``size × size`` patches of ``x`` (§5.3, Fig. 2 left).

    Returns ``(eigenvalues, eigenvectors)``: eigenvalues of the patch covariance in decreasing
    order ``[D]`` and the matching orthonormal eigenvectors as columns ``[D, D]`` (float64),
    ``D = C · size²``. ``center=False`` uses the uncentered second moment (the subspace through
    the origin). Accumulated batch by batch in float64.
    """
    total, s1, s2 = 0, None, None
    for xb in x.split(batch_size):
        p = input_patches(xb.to(torch.float64), size)
        s1 = p.sum(0) if s1 is None else s1 + p.sum(0)
        s2 = p.T @ p if s2 is None else s2 + p.T @ p
        total += p.shape[0]
    if total == 0:
        raise ValueError("x holds no images")
    cov = s2 / total
    if center:
        mean = s1 / total
        cov = cov - mean[:, None] * mean[None, :]
    vals, vecs = torch.linalg.eigh((cov + cov.T) / 2)
    order = vals.argsort(descending=True)
    return vals[order], vecs[:, order]


def patch_basis(x: torch.Tensor, rank: int = SUBSPACE_RANK) -> tuple[torch.Tensor, torch.Tensor]:
    """§5.3: the eigenvalues of the patch covariance of the images ``x`` (:func:`patch_pca`,
    ``[27]``) and the basis U of its top-``rank`` eigenvectors (``[27, rank]``), both float64 on
    the CPU.

    U stays in float64 because :func:`eps_in_out` projects in float64: a float32 copy would only
    round the basis before it is widened again."""
    if not 1 <= rank <= PATCH_SIZE ** 2 * x.shape[1]:
        raise ValueError(f"rank must be in 1..{PATCH_SIZE ** 2 * x.shape[1]}, got {rank}")
    vals, vecs = patch_pca(x.cpu())
    return vals, vecs[:, :rank]


def _filters(w, name: str) -> torch.Tensor:
    w = torch.as_tensor(np.asarray(w) if not torch.is_tensor(w) else w).detach()
    if w.ndim < 2:
        raise ValueError(f"{name} must be filters [K, D] or conv weights [K, C, h, w]")
    w = w.reshape(len(w), -1).to(torch.float64)
    norms = w.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"{name} has an all-zero filter, which cannot be normalized")
    return w / norms


def eps_in_out(w_student, w_teacher, basis) -> tuple[torch.Tensor, torch.Tensor]:
    """ε_in and ε_out of §5.3 between every student filter k and teacher filter j.

    ``Δw_jk = w_k/‖w_k‖ − w*_j/‖w*_j‖`` (filters flattened, e.g. 27-dim first-layer kernels);
    ``ε_in[k, j] = ‖U Uᵀ Δw_jk‖₂`` and ``ε_out[k, j] = ‖(I − U Uᵀ) Δw_jk‖₂`` for ``basis`` U
    ``[D, r]`` with orthonormal columns (e.g. the top-17 eigenvectors of :func:`patch_pca`).
    Returns two ``[K_s, K_t]`` float64 tensors on the student filters' device (the basis and
    the teacher filters may live on another device or have another dtype: U is built once on the
    CPU, the filters may be on a GPU); ``ε_in² + ε_out² = ‖Δw‖²``.
    """
    ws, wt = _filters(w_student, "w_student"), _filters(w_teacher, "w_teacher")
    wt = wt.to(ws.device)
    u = torch.as_tensor(basis).detach().to(device=ws.device, dtype=torch.float64)
    if u.ndim != 2 or u.shape[0] != ws.shape[1] or ws.shape[1] != wt.shape[1]:
        raise ValueError(
            f"basis must be [D, r] with D = filter size; got basis {tuple(u.shape)}, filters "
            f"{ws.shape[1]} and {wt.shape[1]} dims"
        )
    if not torch.allclose(u.T @ u, torch.eye(u.shape[1], dtype=u.dtype, device=u.device),
                          atol=1e-6):
        raise ValueError("basis columns must be orthonormal (e.g. eigenvectors from patch_pca)")
    dw = ws[:, None, :] - wt[None, :, :]  # [K_s, K_t, D]
    inside = dw @ u @ u.T
    return inside.norm(dim=-1), (dw - inside).norm(dim=-1)


def eps_curves(eps_in: torch.Tensor, eps_out: torch.Tensor,
               nc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ε_in and ε_out curves of §5.3 (Figs. 4, 9, 10): for every teacher node j take the
    student node k with the highest NC ``nc[k, j]`` and its ``ε_in[k, j]``, ``ε_out[k, j]``;
    each list sorted in increasing order (a lower curve means better specialization)."""
    nc = torch.as_tensor(nc)
    if not (eps_in.shape == eps_out.shape == nc.shape):
        raise ValueError(
            f"eps_in {tuple(eps_in.shape)}, eps_out {tuple(eps_out.shape)} and nc "
            f"{tuple(nc.shape)} must all be [K_student, K_teacher]"
        )
    best = nc.argmax(dim=0, keepdim=True)  # [1, K_t]
    e_in = eps_in.gather(0, best.to(eps_in.device)).squeeze(0)
    e_out = eps_out.gather(0, best.to(eps_out.device)).squeeze(0)
    return e_in.sort().values, e_out.sort().values


def rho_eps_pearson(nc: torch.Tensor, eps_in: torch.Tensor) -> float:
    """Pearson correlation of (ρ_kj, ε_in[k, j]) over all student-teacher pairs (Fig. 2 right)."""
    a = torch.as_tensor(nc).detach().to(torch.float64).flatten()
    b = torch.as_tensor(eps_in).detach().to(torch.float64).flatten()
    if a.shape != b.shape or a.numel() < 2:
        raise ValueError("nc and eps_in must have the same shape with at least two pairs")
    a, b = a - a.mean(), b - b.mean()
    denom = a.norm() * b.norm()
    if float(denom) == 0:
        raise ValueError("ρ or ε_in is constant over all pairs: the Pearson score is undefined")
    return float(a @ b / denom)


# -- one student against its teacher (§5.2–5.3) -----------------------------------------------

def specialization_at(student, teacher, x_spec: torch.Tensor, basis: torch.Tensor) -> dict:
    """The §5.2–5.3 measurements of one student: per layer the NC matrix, MBNC, sorted BNC and
    unspecialized/specialized ratio; for the first layer ε_in/ε_out (matrices and the curves of
    each teacher node's best-NC student) and the Pearson score of (ρ, ε_in).

    Teacher nodes that are dead on ``x_spec`` (constant, in practice a ReLU that never fires;
    see :func:`node_variances`) have no activation for a student to copy: their columns are left
    out of every measurement (the NC and ε matrices included) and counted in ``dead_teacher``.
    Dead *student* nodes stay in, with NC 0 to every teacher node (they copy nothing), and are
    counted in ``dead_student``. ``basis``: U of :func:`patch_basis`."""

    def alive(model):
        return [(v > VARIANCE_FLOOR).cpu() for v in node_variances(model, x_spec)]

    ncs = layer_nc(student, teacher, x_spec)
    live = alive(teacher)
    ncs = [nc[:, a] for nc, a in zip(ncs, live)]
    e_in, e_out = eps_in_out(student.convs[0].weight, teacher.convs[0].weight, basis)
    e_in, e_out = e_in[:, live[0]], e_out[:, live[0]]
    c_in, c_out = eps_curves(e_in, e_out, ncs[0].to(e_in.dtype))
    return {
        "nc": [nc.cpu() for nc in ncs],
        "mbnc": [mbnc(nc) for nc in ncs],
        "ratio": [specialization_ratio(nc) if nc.shape[1] else float("nan") for nc in ncs],
        "sorted_bnc": [sorted_bnc(nc).cpu() for nc in ncs],
        "eps_in": e_in.cpu(), "eps_out": e_out.cpu(),
        "eps_in_curve": c_in.cpu(), "eps_out_curve": c_out.cpu(),
        "rho_eps_in_pearson": rho_eps_pearson(ncs[0], e_in),
        "dead_teacher": [int((~a).sum()) for a in live],
        "dead_student": [int((~a).sum()) for a in alive(student)],
    }


# -- perturbations and the data subspace (§5.4, in-plane vs out-of-plane AT) ---------------

SUBSPACE_DISTANCES = ("mean", "share")
"""How far a perturbation δ lies from the data subspace span(U), from its 3×3×3 patches p
(:func:`off_subspace_distance`): ``"mean"``, the mean over patches of ‖(I − UUᵀ)p‖₂ (the
default: in the units of the image); ``"share"``, the off-subspace share of the patches' energy,
Σ‖(I − UUᵀ)p‖² / Σ‖p‖² (scale-free: a larger perturbation is not farther for being larger)."""


def off_subspace_distance(delta: torch.Tensor, basis, how: str = "mean") -> torch.Tensor:
    """Per perturbation ``delta[i]`` (images ``[B, C, H, W]``), its distance to the data subspace
    span(U) measured on its 3×3×3 patches (:data:`SUBSPACE_DISTANCES`), ``[B]`` float32.

    Source A (§5.4) splits the two PGD runs of an image into the one "with a smaller distance to
    the input subspace" and the other, without defining the distance. The subspace of §5.3 is
    that of the data's *centered* patches (:func:`patch_pca`), an affine subspace mean + span(U)
    of patch space; the difference of two points in it lies in span(U) itself, so the distance of
    a perturbation is measured to span(U) through the origin. ``basis``: U ``[C·9, r]`` with
    orthonormal columns."""
    if how not in SUBSPACE_DISTANCES:
        raise ValueError(f"how must be one of {SUBSPACE_DISTANCES}, got {how!r}")
    if delta.ndim != 4:
        raise ValueError(f"delta must be perturbations [B, C, H, W], got {tuple(delta.shape)}")
    u = torch.as_tensor(basis).detach().to(device=delta.device, dtype=torch.float32)
    p = torch.nn.functional.unfold(delta.detach().float(), PATCH_SIZE)  # [B, D, L]
    if u.ndim != 2 or u.shape[0] != p.shape[1]:
        raise ValueError(f"basis must be [{p.shape[1]}, r] for these patches, got "
                         f"{tuple(u.shape)}")
    off = p - u @ (u.T @ p)  # (I − UUᵀ) p for every patch
    if how == "mean":
        return off.norm(dim=1).mean(1)
    total = p.pow(2).sum((1, 2))
    return off.pow(2).sum((1, 2)) / total.clamp_min(torch.finfo(total.dtype).tiny)


def closer_to_subspace(delta_a: torch.Tensor, delta_b: torch.Tensor, basis,
                       how: str = "mean") -> torch.Tensor:
    """Per image, whether perturbation ``delta_a`` is at most as far from span(U) as ``delta_b``
    (:func:`off_subspace_distance`): bool ``[B]``, True where ``a`` is the in-plane one of the
    pair (§5.4; a tie goes to ``a``)."""
    if delta_a.shape != delta_b.shape:
        raise ValueError(f"the two perturbations differ in shape: {tuple(delta_a.shape)} vs "
                         f"{tuple(delta_b.shape)}")
    return (off_subspace_distance(delta_a, basis, how)
            <= off_subspace_distance(delta_b, basis, how))


SPLIT_THRESHOLD = 0.5
"""Default of :class:`PatchSubspaceSplit`: an image direction is *out-of-plane* when more than
half of its patches' energy lies off span(U)."""
SUBSPACE_SIDES = ("in", "out")


class PatchSubspaceSplit:
    """Image space split into perturbations whose 3×3×3 patches lie in span(U) and the rest.

    Patches overlap (every pixel is in up to 9 of them), so "project the patches of δ onto
    span(U)" has no image that does it exactly: hardly any image has *all* its patches in
    span(U). The split used here makes it exact in another way. With A the patch extraction
    (``unfold``), the off-subspace share of δ's patch energy is the Rayleigh quotient

        s(δ) = ‖(I − UUᵀ) A δ‖² / ‖A δ‖² = δᵀ Aᵀ(I − UUᵀ)A δ / δᵀ AᵀA δ,

    (AᵀA = diag(counts), the number of patches each pixel is in). The generalized eigenvectors
    of that pair of matrices are orthogonal in the patch-energy inner product ⟨a, b⟩ = ⟨Aa, Ab⟩
    and span image space; their eigenvalues λ ∈ [0, 1] are their shares. The *in-plane*
    subspace is spanned by those with λ ≤ ``threshold``, the *out-of-plane* one by the rest:
    two complementary subspaces, and :meth:`project` is the orthogonal projection (in that inner
    product) onto either. Every δ in the in-plane subspace has s(δ) ≤ threshold, every δ in the
    out-of-plane one s(δ) > threshold. For CIFAR-10's U the eigenvalues pile up near 0 and 1,
    so the two subspaces are nearly "patches in span(U)" and "patches off it".

    (The one-step alternative, δ ← fold(P unfold δ) / counts with P = UUᵀ or I − UUᵀ, is the
    operator I − T or T, T = (AᵀA)⁻¹Aᵀ(I − UUᵀ)A, whose eigenvectors are the same; it is not a
    projection — applying it twice changes δ again — and only tends to one, that onto λ = 0 or
    λ = 1 exactly, when repeated.)

    ``basis``: U ``[C·9, r]``; ``shape``: one image ``(C, H, W)``. Built once with a dense
    symmetric eigensolver on ``C·H·W`` dimensions (3 072 for CIFAR-10: tens of seconds on two
    CPU cores), on the CPU.
    """

    def __init__(self, basis, shape=(3, 32, 32), threshold: float = SPLIT_THRESHOLD):
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        c, h, w = shape
        u = torch.as_tensor(basis).detach().to("cpu", torch.float64)
        if u.ndim != 2 or u.shape[0] != c * PATCH_SIZE ** 2:
            raise ValueError(f"basis must be [{c * PATCH_SIZE ** 2}, r] for {c}-channel images, "
                             f"got {tuple(u.shape)}")
        n = c * h * w
        off = torch.eye(u.shape[0], dtype=torch.float64) - u @ u.T
        fold = lambda p: torch.nn.functional.fold(p, (h, w), PATCH_SIZE)  # noqa: E731
        unfold = lambda z: torch.nn.functional.unfold(z, PATCH_SIZE)  # noqa: E731
        counts = fold(unfold(torch.ones(1, c, h, w, dtype=torch.float64))).reshape(-1)
        m = torch.empty(n, n, dtype=torch.float64)  # Aᵀ(I − UUᵀ)A, column block by block
        eye = torch.eye(n, dtype=torch.float64)
        for i in range(0, n, 256):
            e = eye[i:i + 256].reshape(-1, c, h, w)
            m[i:i + 256] = fold(off @ unfold(e)).reshape(len(e), n)
        root = counts.sqrt()
        sym = m / root[:, None] / root[None, :]
        vals, vecs = torch.linalg.eigh(((sym + sym.T) / 2).float())
        self.shape, self.threshold = tuple(shape), float(threshold)
        self.eigenvalues = vals.double().clamp(0, 1)
        """The shares λ of the eigen-directions, ascending."""
        self.n_in = int((self.eigenvalues <= threshold).sum())
        """Dimension of the in-plane subspace."""
        self._root = root.float()
        self._out = vecs[:, self.n_in:].contiguous()  # orthonormal in the scaled coordinates

    def project(self, delta: torch.Tensor, side: str) -> torch.Tensor:
        """The part of ``delta`` ``[B, C, H, W]`` in the ``side`` subspace ("in" or "out"); the
        two parts sum to ``delta``. In ``delta``'s dtype and device."""
        if side not in SUBSPACE_SIDES:
            raise ValueError(f"side must be one of {SUBSPACE_SIDES}, got {side!r}")
        if tuple(delta.shape[1:]) != self.shape:
            raise ValueError(f"delta must be [B, {', '.join(map(str, self.shape))}], got "
                             f"{tuple(delta.shape)}")
        root = self._root.to(delta.device)
        out_vecs = self._out.to(delta.device)
        z = delta.reshape(len(delta), -1).float() * root
        outside = ((z @ out_vecs) @ out_vecs.T) / root
        part = outside if side == "out" else delta.reshape(len(delta), -1).float() - outside
        return part.reshape(delta.shape).to(delta.dtype)


# -- how student nodes spread over teacher nodes (appendix A.10, Fig. 14) ---------------------

def specialized_counts(nc: torch.Tensor, threshold: float = SPECIALIZED_NC) -> torch.Tensor:
    """For each teacher node j of one layer, how many student nodes specialize to it:
    ``#{k : NC[k, j] > threshold}`` (A.10, Fig. 14: NC above 0.9). ``nc``: ``[K_s, K_t]``;
    returns ``[K_t]`` int64. A student node correlated above the threshold with two teacher
    nodes counts for both."""
    return (torch.as_tensor(nc) > threshold).sum(0)


def chi2_sf(x: float, df: int) -> float:
    """P(χ²_df ≥ x), by the Wilson–Hilferty cube-root normal approximation (within about 0.01
    of the exact tail for df ≥ 3, which is all :func:`uniformity_test` needs)."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an int ≥ 1, got {df!r}")
    if x <= 0:
        return 1.0
    v = 2 / (9 * df)
    z = ((x / df) ** (1 / 3) - (1 - v)) / math.sqrt(v)
    return 0.5 * math.erfc(z / math.sqrt(2))


def uniformity_test(counts) -> tuple[float, int, float]:
    """Are the ``counts`` (one per teacher node, e.g. summed over seeds) what student nodes
    choosing teacher nodes uniformly at random would give? Pearson's χ² against equal
    expected counts: ``X² = Σ_j (c_j − c̄)² / c̄`` with ``J − 1`` degrees of freedom. Returns
    ``(X², df, p)``; ``p`` small means some teacher nodes are specialized to more often than
    chance allows. Needs at least two nodes and a positive total."""
    c = np.asarray([float(v) for v in counts], dtype=float)
    if c.size < 2 or c.sum() <= 0:
        raise ValueError("need at least two teacher nodes and at least one specialized node")
    mean = c.mean()
    stat = float(((c - mean) ** 2).sum() / mean)
    df = int(c.size - 1)
    return stat, df, chi2_sf(stat, df)
