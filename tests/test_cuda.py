"""The CUDA path, on a machine with a GPU (skipped elsewhere): a GPU runner runs this module in a
few minutes (``scripts/gpu_check.sh`` runs it with the benchmark).

- chapters 4 and 5 end to end at toy size, on the CPU and on the GPU;
- a killed CUDA run resumes; a CUDA checkpoint asked to resume on the CPU stops with a message;
- CPU and CUDA logits of the same net agree with TF32 off (``configure_cuda("deterministic")``);
- ``python -m tsrobust.book build --profile smoke --chapters 03 04 05 --no-check`` on the GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tsrobust import training as T
from tsrobust.chapters import ch04_standard_training as ch04
from tsrobust.chapters import ch05_adversarial_training as ch05
from tsrobust.data import CIFAR10, NON_OFFICIAL
from tsrobust.models import PRUNED_WIDTHS, ConvNet
from tsrobust.params import resolve
from tsrobust.runtime import configure_cuda

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
ROOT = Path(__file__).resolve().parents[1]
DEVICES = ["cpu", "cuda"]


def _data(n_train=64, n_test=40):
    g = torch.Generator().manual_seed(0)
    return CIFAR10(torch.rand(n_train, 3, 32, 32, generator=g), torch.arange(n_train) % 10,
                   torch.rand(n_test, 3, 32, 32, generator=g), torch.arange(n_test) % 10,
                   NON_OFFICIAL)


def _teacher(seed=1):
    return ConvNet(PRUNED_WIDTHS, generator=torch.Generator().manual_seed(seed)).eval()


@pytest.mark.parametrize("device", DEVICES)
def test_chapter4_students_end_to_end(tmp_path, monkeypatch, device):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    cfg = resolve(ch04.SETTINGS, profile="smoke", seed=0, n_train=32, n_test=16, n_student=24,
                  epochs=2, checkpoints=(1, 2), n_eval=8, n_spec=4, n_pca=8, attack_steps=1,
                  attack_repeats=2)
    values, arrays = ch04.standard_training(cfg, _data(32, 16), _teacher(), variant="logit",
                                            device=device, progress=False)
    assert values["epochs"] == [1, 2] and all(0 <= m <= 1 for m in values["robust_mu"])
    assert arrays["eps_in"].shape[0] == 2


@pytest.mark.parametrize("device", DEVICES)
def test_chapter5_table1_end_to_end(tmp_path, monkeypatch, device):
    monkeypatch.setenv("TSROBUST_RESULTS", str(tmp_path / "results"))
    cfg = resolve(ch05.SETTINGS, profile="smoke", seed=0, n_train=64, n_test=40, n_student=32,
                  epochs=2, checkpoints=[1, 2], batch_size=16, at_steps=1, n_eval=8, repeats=2,
                  eval_steps=1, cw_steps=1, n_spec=4, n_pca=8, deep_n_train=32,
                  deep_teacher_epochs=1)
    teacher = _teacher().to(device)
    values, _ = ch05.run_table1(cfg, _data(), teacher, device=device, progress=False)
    assert values["columns"] == ["AT (1)", "AT (2)", "ST (2)"]
    for col in values["columns"]:
        for attack in ch05.ATTACKS:
            mu, var = values["table"][col][attack]
            assert 0 <= mu <= 1 and var >= 0


def _student_run(folder, device, epochs=4, on_checkpoint=None):
    teacher = _teacher(1)
    student = ConvNet((8, 8), generator=torch.Generator().manual_seed(2))
    x = torch.rand(24, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    T.train_student(student, teacher, x, target="logit", epochs=epochs, lr=1e-3, batch_size=8,
                    augment=True, noise_std=0.1, checkpoint_dir=folder, checkpoint_epochs=(2, 4),
                    on_checkpoint=on_checkpoint, device=device,
                    generator=torch.Generator(device=device).manual_seed(3), progress=False)
    return {k: v.detach().cpu().clone() for k, v in student.state_dict().items()}


class _Killed(Exception):
    pass


def test_cuda_run_resumes_and_refuses_to_resume_on_the_cpu(tmp_path):
    configure_cuda("deterministic", "cuda")
    try:
        straight = _student_run(None, "cuda")

        def die_at_2(epoch, student):
            if epoch == 2:
                raise _Killed

        with pytest.raises(_Killed):
            _student_run(tmp_path / "ck", "cuda", on_checkpoint=die_at_2)
        resumed = _student_run(tmp_path / "ck", "cuda")
        assert all(torch.equal(resumed[k], straight[k]) for k in straight)
        with pytest.raises(T.CheckpointError, match="'device': 'cuda'"):
            _student_run(tmp_path / "ck", "cpu")  # the CUDA checkpoint, asked on the CPU
    finally:
        configure_cuda("default", "cuda")


def test_cpu_and_cuda_logits_agree_with_tf32_off():
    configure_cuda("deterministic", "cuda")  # fp32 means fp32: no TF32 products
    try:
        net = _teacher(7)
        x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(8))
        with torch.no_grad():
            cpu = net(x)
            gpu = net.to("cuda")(x.to("cuda")).cpu()
        assert torch.allclose(cpu, gpu, rtol=1e-4, atol=1e-5), (cpu - gpu).abs().max()
    finally:
        configure_cuda("default", "cuda")


def test_book_smoke_build_of_the_cifar_chapters_on_cuda(tmp_path):
    env = {**os.environ, "TSROBUST_RESULTS": str(tmp_path / "results")}
    run = subprocess.run(
        [sys.executable, "-m", "tsrobust.book", "build", "--profile", "smoke",
         "--chapters", "03", "04", "05", "--no-check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
