"""Where and how the computations run: the device, the CPU thread count, the precision, the
CUDA switches (reproducible or fast) and the memory layout of conv nets."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import torch

DEVICES = ("auto", "cpu", "cuda")


def choose_device(name="auto") -> torch.device:
    """The torch device for ``name``: ``"cpu"``, ``"cuda"`` (``"cuda:1"`` …), ``"auto"`` (the GPU
    where CUDA is available, else the CPU), or a :class:`torch.device`, returned as it is.

    The one place where the package chooses a device; asking for CUDA on a machine without it
    fails here with a message that says what to do, not later inside a kernel.
    """
    if isinstance(name, torch.device):
        return name
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or name.split(":")[0] not in DEVICES[1:]:
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available; "
                         "use 'cpu' or 'auto'")
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` intra-op CPU threads inside the block (0: leave torch's setting), then
    restore the previous count.

    The small networks of the toy chapters gain nothing from splitting their matrix products over
    threads, and on a CPU shared with other processes one thread is often many times faster than
    threads that wait for each other.
    """
    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# -- numerical precision ---------------------------------------------------------------------

PRECISIONS = ("auto", "fp32", "bf16")
"""``precision`` values: ``"fp32"`` everywhere; ``"bf16"``: convolutions and matrix products under
bfloat16 autocast (weights, optimizer state and attack perturbations stay fp32); ``"auto"``: bf16
where the device has native bf16 matrix units (:func:`native_bf16`), fp32 elsewhere."""
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU features with native bf16 dot products (AMX tiles; AVX512-BF16 ``vdpbf16ps``). Without
them, bf16 kernels convert to fp32 and back, and run slower than fp32 ones."""
NATIVE_BF16_CUDA_CAPABILITY = (8, 0)
"""First CUDA compute capability with bf16 tensor cores (Ampere). Older GPUs (a T4 is 7.5) accept
bf16 (``torch.cuda.is_bf16_supported()`` may say yes) but emulate it."""


def check_precision(precision) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` naming them."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


CPUINFO = Path("/proc/cpuinfo")


def read_cpu_flags(cpuinfo: Path = CPUINFO, capabilities=None) -> frozenset[str]:
    """The features named true by ``capabilities()`` (default: ``torch.cpu.get_capabilities``,
    torch ≥ 2.9) and in the ``flags`` line of ``cpuinfo`` (Linux); a source that is missing or
    fails adds nothing."""
    if capabilities is None:
        capabilities = getattr(torch.cpu, "get_capabilities", None)
    flags = set()
    if capabilities is not None:
        with contextlib.suppress(Exception):
            flags |= {k for k, v in capabilities().items() if v is True}
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags |= set(line.split(":", 1)[1].split())
                break
    return frozenset(flags)


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """Instruction-set features of this CPU (``"avx2"``, ``"avx512_bf16"``, ``"amx_bf16"``, …), read
    once (:func:`read_cpu_flags`): torch's CPU probe and, on Linux, ``/proc/cpuinfo``. Empty where
    neither answers; then nothing counts as native, and ``"auto"`` means fp32."""
    return read_cpu_flags()


def native_bf16(device) -> bool:
    """Does ``device`` multiply bf16 matrices natively (faster than fp32)? CUDA: compute capability
    ≥ :data:`NATIVE_BF16_CUDA_CAPABILITY`; CPU: one of :data:`NATIVE_BF16_CPU_FLAGS`; any other
    device, or a device that cannot be queried: no."""
    device = choose_device(device)
    if device.type == "cuda":
        try:
            return tuple(torch.cuda.get_device_capability(device)) >= NATIVE_BF16_CUDA_CAPABILITY
        except (RuntimeError, AssertionError, ValueError):
            return False
    if device.type == "cpu":
        return any(f in cpu_flags() for f in NATIVE_BF16_CPU_FLAGS)
    return False


def resolve_precision(precision="auto", device="cpu") -> str:
    """The precision that ``precision`` means on ``device``: ``"bf16"`` or ``"fp32"`` (``"auto"``
    resolved with :func:`native_bf16`; an explicit ``"bf16"`` is honoured even where emulated).
    What a record should store as the precision actually used."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device, precision="auto"):
    """A context in which ``device``'s convolutions and matrix products run in the resolved
    ``precision``: bfloat16 autocast for ``"bf16"``, disabled for ``"fp32"``. Tensors created
    outside it (weights, perturbations, optimizer state) keep their fp32 dtype."""
    device = choose_device(device)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=resolve_precision(precision, device) == "bf16")


# -- CUDA: reproducible or fast ----------------------------------------------------------------

CUDA_MODES = ("default", "deterministic", "fast")
"""``cuda_mode`` values of :func:`configure_cuda`."""
CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` that makes cuBLAS deterministic (CUDA ≥ 10.2; NVIDIA's cuBLAS notes,
"Results reproducibility")."""


def check_cuda_mode(mode) -> str:
    """``mode`` if it is one of :data:`CUDA_MODES`, else a ``ValueError`` naming them."""
    if not isinstance(mode, str) or mode not in CUDA_MODES:
        raise ValueError(f"cuda_mode must be one of {CUDA_MODES}, got {mode!r}")
    return mode


def configure_cuda(mode="default", device="auto") -> dict:
    """Set torch's CUDA switches for ``mode`` when ``device`` is a CUDA GPU; return them (empty
    on any other device, where nothing is changed: CPU kernels are already deterministic at a
    fixed thread count).

    - ``"default"``: torch's defaults: cuDNN picks kernels by heuristics (no benchmarking),
      fp32 matrix products in full fp32, fp32 convolutions may use TF32 tensor cores on
      compute capability ≥ 8 (10 mantissa bits: logits move by about 1e-3).
    - ``"deterministic"``: the same numbers on every rerun on the same GPU and software:
      ``torch.use_deterministic_algorithms`` (an op without a deterministic kernel raises),
      ``cudnn.deterministic``, :data:`CUBLAS_WORKSPACE` (set before the first cuBLAS call: call
      this before any CUDA work), no cuDNN benchmarking, and TF32 off for products and
      convolutions, so fp32 means fp32. Costs speed (deterministic kernels, no TF32; no
      benchmarking).
    - ``"fast"``: ``cudnn.benchmark`` (times the convolution kernels once per input shape: the
      conv nets' odd channel counts and fixed batch shapes are where heuristics miss) and TF32
      for fp32 products and convolutions. Reruns may differ in the last digits.
    """
    check_cuda_mode(mode)
    device = choose_device(device)
    if device.type != "cuda":
        return {}
    deterministic = mode == "deterministic"
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = mode == "fast"
    torch.backends.cudnn.allow_tf32 = not deterministic  # torch's default is True
    torch.set_float32_matmul_precision("high" if mode == "fast" else "highest")
    return {"cuda_mode": mode, "deterministic": deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_conv": torch.backends.cudnn.allow_tf32,
            "tf32_matmul": torch.get_float32_matmul_precision() != "highest",
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def channels_last(device, precision="auto") -> bool:
    """Whether conv nets and their batches use the channels-last (NHWC) layout on ``device``.

    On a CPU yes (``python -m tsrobust.bench`` measured it faster there, in fp32 and bf16). On a
    GPU only with bf16: NHWC is the layout of the tensor-core convolution kernels in half
    precision, while for fp32 it was never measured on a GPU, so fp32 keeps NCHW there.
    """
    device = choose_device(device)
    if device.type == "cpu":
        return True
    return resolve_precision(precision, device) == "bf16"
