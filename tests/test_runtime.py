import os

import pytest
import torch

from tsrobust import runtime
from tsrobust.runtime import choose_device, torch_threads


def test_choose_device_names():
    assert choose_device("cpu") == torch.device("cpu")
    assert choose_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device("auto").type == expected
    assert choose_device(None).type == expected


def test_choose_device_rejects_unknown_and_missing_cuda():
    with pytest.raises(ValueError, match="device must be one of"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            choose_device("cuda")


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# -- precision ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [lambda p: runtime.check_precision(p),
                                  lambda p: runtime.resolve_precision(p, "cpu"),
                                  lambda p: runtime.autocast("cpu", p)])
def test_unknown_precision_names_the_allowed_values(call):
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\)"):
        call("fp16")


@pytest.mark.parametrize("flags, want", [
    (frozenset(), "fp32"),                               # nothing known: fp32
    (frozenset({"avx2", "fma", "avx512f"}), "fp32"),     # AVX-512 without bf16 dot products
    (frozenset({"avx512f", "avx512_bf16"}), "bf16"),
    (frozenset({"amx_tile", "amx_bf16"}), "bf16"),
])
def test_auto_on_a_cpu_is_bf16_only_with_native_bf16(monkeypatch, flags, want):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    assert runtime.resolve_precision("auto", "cpu") == want
    # explicit choices are honoured whatever the hardware
    assert runtime.resolve_precision("bf16", "cpu") == "bf16"
    assert runtime.resolve_precision("fp32", "cpu") == "fp32"


@pytest.mark.parametrize("capability, want", [((7, 5), "fp32"), ((8, 0), "bf16"),
                                               ((9, 0), "bf16"), (RuntimeError, "fp32")])
def test_auto_on_cuda_needs_compute_capability_8(monkeypatch, capability, want):
    def fake(device=None):
        if capability is RuntimeError:
            raise RuntimeError("no driver")
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", fake)
    # a T4 (7.5) says is_bf16_supported() but emulates it: auto stays fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.resolve_precision("auto", torch.device("cuda")) == want


def test_cpu_flags_come_from_cpuinfo_and_torch(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t: x\n")
    assert runtime.read_cpu_flags(info, lambda: {}) == {"fpu", "avx2", "fma"}
    assert runtime.read_cpu_flags(tmp_path / "missing", lambda: {"avx512_bf16": True,
                                                                 "amx_bf16": False,
                                                                 "num_physical_cores": 2}) \
        == {"avx512_bf16"}

    def broken():
        raise RuntimeError

    assert runtime.read_cpu_flags(tmp_path / "missing", broken) == frozenset()
    assert isinstance(runtime.cpu_flags(), frozenset)


def test_autocast_follows_the_resolved_precision(monkeypatch):
    x, w = torch.rand(2, 3), torch.rand(4, 3)
    with runtime.autocast("cpu", "bf16"):
        assert torch.nn.functional.linear(x, w).dtype == torch.bfloat16
    with runtime.autocast("cpu", "fp32"):
        assert torch.nn.functional.linear(x, w).dtype == torch.float32
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset())
    with runtime.autocast("cpu", "auto"):
        assert torch.nn.functional.linear(x, w).dtype == torch.float32
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    with runtime.autocast("cpu", "auto"):
        assert torch.nn.functional.linear(x, w).dtype == torch.bfloat16


# -- CUDA modes and the conv layout ------------------------------------------------------------

def test_configure_cuda_is_a_no_op_on_the_cpu_and_checks_its_mode(monkeypatch):
    from tsrobust.runtime import configure_cuda

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.get_float32_matmul_precision())
    assert configure_cuda("deterministic", "cpu") == {}
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
            torch.get_float32_matmul_precision()) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with pytest.raises(ValueError, match="cuda_mode must be one of"):
        configure_cuda("fastest", "cpu")  # checked on every device, before any compute


@pytest.fixture
def restore_cuda_switches():
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    yield
    torch.use_deterministic_algorithms(saved[0])
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
     torch.backends.cudnn.allow_tf32) = saved[1:4]
    torch.set_float32_matmul_precision(saved[4])


def test_configure_cuda_sets_the_switches_of_each_mode(monkeypatch, restore_cuda_switches):
    # torch's switches can be set without a GPU: a CUDA device object is enough to see them
    from tsrobust.runtime import CUBLAS_WORKSPACE, configure_cuda

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cuda = torch.device("cuda")
    det = configure_cuda("deterministic", cuda)
    assert det["deterministic"] and torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert not det["tf32_conv"] and not det["tf32_matmul"]
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    fast = configure_cuda("fast", cuda)
    assert fast["cudnn_benchmark"] and fast["tf32_conv"] and fast["tf32_matmul"]
    assert not torch.are_deterministic_algorithms_enabled()
    default = configure_cuda("default", cuda)  # torch's own defaults
    assert default == {**default, "deterministic": False, "cudnn_benchmark": False,
                       "tf32_conv": True, "tf32_matmul": False}


def test_channels_last_on_the_cpu_always_on_a_gpu_only_with_bf16():
    from tsrobust.runtime import channels_last

    assert channels_last("cpu", "fp32") and channels_last("cpu", "bf16")
    cuda = torch.device("cuda")  # explicit precisions: no GPU is queried
    assert channels_last(cuda, "bf16") and not channels_last(cuda, "fp32")
