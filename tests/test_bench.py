"""The benchmark runs end to end at tiny sizes and compares equal work."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from tsrobust import bench, runtime
from tsrobust.models import ConvNet

TINY = ["--n", "12", "--batch-size", "6", "--pgd-steps", "2", "--repeats", "1", "--device", "cpu"]


def test_bench_runs_and_reports_ratios(tmp_path, capsys):
    out = bench.main([*TINY, "--pgd-chunk", "4", "--chunk-sweep", "2",
                      "--json-file", str(tmp_path / "bench.json")])
    assert [r["key"] for r in out["rows"]] == ["st_epoch", "at_epoch", "pgd_step"]
    for r in out["rows"]:
        for path in ("naive", "fp32", "auto"):
            assert r[path]["per_s"] > 0 and r[path]["gflops"] > 0
        for path in ("fp32", "auto"):
            # one repeat: the median ratio is the ratio of the two rates
            assert r[path]["ratio"] == pytest.approx(r[path]["per_s"] / r["naive"]["per_s"])
            assert r[path]["ratio_min"] == r[path]["ratio"] == r[path]["ratio_max"]
        assert out[f"{r['key']}_ratio"] == r["auto"]["ratio"]
    # the package's NCHW attack does exactly the naive attack's work: same adversarial examples
    nchw = out["pgd_variants"]["NCHW fp32, one pass"]
    assert nchw["max_abs_diff_vs_naive"] < 1e-6 and nchw["frac_differing_vs_naive"] == 0
    assert set(out["pgd_variants"]) == {"package fp32", "package auto", "NCHW fp32, one pass",
                                        "package auto, chunks of 2"}
    # the reported PGD row is the package's own path, with the chunk size asked for
    pgd_row = out["rows"][2]
    for path in ("fp32", "auto"):
        v = out["pgd_variants"][f"package {path}"]
        assert v["chunk_size"] == 4 and v["channels_last"]
        assert pgd_row[path]["ratio"] == v["ratio"]
    assert out["precision"] == runtime.resolve_precision("auto", "cpu")
    assert json.loads((tmp_path / "bench.json").read_text())["n"] == 12
    assert not capsys.readouterr().out.splitlines()[-1].startswith("{")  # no --json: a table


def test_json_flag_makes_the_last_line_a_json_object(capsys):
    out = bench.main([*TINY, "--json"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("pgd_step_ratio", "at_epoch_ratio", "st_epoch_ratio", "precision"):
        assert key in last and last[key] == out[key]
    assert last["precision"] in ("fp32", "bf16")


def test_quick_runs(monkeypatch, capsys):
    monkeypatch.setattr(bench, "QUICK", {"n": 8, "batch_size": 4, "repeats": 1})  # tiny here
    out = bench.main(["--quick", "--pgd-steps", "1", "--device", "cpu", "--n", "6"])
    assert (out["n"], out["batch_size"], out["repeats"]) == (6, 4, 1)  # explicit options win
    assert "PGD step" in capsys.readouterr().out


def test_flop_count_of_a_tiny_net_by_hand():
    net = ConvNet((4, 3), generator=torch.Generator().manual_seed(0))
    # conv 3→4 (3×3) on 32×32 → 30×30; conv 4→3 → 28×28; linear 3·28·28 → 10
    macs = [30 * 30 * 4 * (3 * 9), 28 * 28 * 3 * (4 * 9), 3 * 28 * 28 * 10]
    assert bench.layer_macs(net) == macs == [97_200, 84_672, 23_520]
    total = sum(macs)
    assert bench.net_flops(macs) == 2 * total  # forward
    assert bench.net_flops(macs, input_grad=True) == 4 * total  # + backward to the image
    # training: forward + weight gradients + input gradients of all but the first layer
    assert bench.net_flops(macs, train=True) == 2 * total + 2 * total + 2 * (84_672 + 23_520)
    grouped = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.Flatten(), nn.Linear(6 * 30 * 30, 2))
    assert bench.layer_macs(grouped, (4, 32, 32)) == [30 * 30 * 6 * 2 * 9, 6 * 30 * 30 * 2]


def test_peak_is_cores_times_clock_times_flops_per_cycle(monkeypatch):
    monkeypatch.setattr(bench, "_cpuinfo", lambda: {"vendor_id": "AuthenticAMD",
                                                    "cpu family": "25"})
    monkeypatch.setattr(bench, "_cpu_clock_ghz", lambda: (2.5, "test clock"))
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"num_physical_cores": 4},
                        raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f",
                                                                 "avx512_bf16"}))
    fp32, how = bench.peak_flops("cpu", "fp32", threads=2)
    assert fp32 == pytest.approx(2 * 2.5e9 * 32) and "2 cores" in how and "Zen 4" in how
    bf16, how = bench.peak_flops("cpu", "bf16", threads=8)  # at most the physical cores
    assert bf16 == pytest.approx(4 * 2.5e9 * 64) and "AVX512-BF16" in how
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma", "amx_bf16",
                                                                 "avx512f"}))
    monkeypatch.setattr(bench, "_cpuinfo", lambda: {"vendor_id": "GenuineIntel"})
    assert bench.peak_flops("cpu", "bf16", threads=1)[0] == pytest.approx(2.5e9 * 1024)
    assert bench.peak_flops("cpu", "fp32", threads=1)[0] == pytest.approx(2.5e9 * 64)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"sse2"}))
    peak, how = bench.peak_flops("cpu", "fp32", threads=1)
    assert peak is None and "instruction set" in how
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(bench, "_cpu_clock_ghz", lambda: (None, "clock unknown"))
    assert bench.peak_flops("cpu", "fp32", threads=1) == (None, "AVX2: 2 FMA pipes × 8 fp32 "
                                                          "lanes × 2; clock unknown")


def test_naive_pgd_matches_package_pgd_with_random_start():
    from tsrobust import attacks

    student, teacher = bench._models("cpu")
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    naive = bench.naive_pgd(student, teacher, x, eps=bench.ADV_EPS, alpha=bench.ADV_ALPHA,
                            steps=2, generator=torch.Generator().manual_seed(3))
    with attacks.frozen(student, teacher):
        ours = attacks.pgd(attacks.oracle_objective(student, teacher), x, eps=bench.ADV_EPS,
                           alpha=bench.ADV_ALPHA, steps=2,
                           generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(naive, ours, atol=1e-6, rtol=0)


def test_ratios_are_per_repeat_medians():
    out = bench._ratios([4.0, 3.0, 9.0], [2.0, 1.0, 3.0])  # ratios 2, 3, 3
    assert (out["ratio"], out["ratio_min"], out["ratio_max"]) == (3.0, 2.0, 3.0)


@pytest.mark.parametrize("args", [["--n", "0"], ["--pgd-chunk", "0"], ["--chunk-sweep", "8", "-1"]])
def test_bench_rejects_bad_sizes(args):
    with pytest.raises(SystemExit):
        bench.main(args)


def test_run_flops_counts_by_hand():
    from tsrobust.bench import REFERENCE_PEAK_FLOPS, REFERENCE_UTILIZATION, attack_flops, \
        reference_minutes, run_flops, teacher_flops

    s, t = [10, 5], [4]  # MACs per layer
    # teacher forward 2·4; student step 2·15 forward + 2·15 weight grads + 2·(15 − 10) input grads
    per_image = 8 + 30 + 30 + 10
    attack = 4 * 15 + 4 * 4  # forward + input gradient of both nets
    assert run_flops(s, t, images=2, epochs=3) == 6 * per_image
    assert run_flops(s, t, images=2, epochs=3, pgd_steps=2) == 6 * (per_image + 2 * attack)
    assert attack_flops(s, t, images=5, steps=3) == 15 * attack
    assert teacher_flops(s, images=2, epochs=1) == 2 * 70
    assert reference_minutes(REFERENCE_PEAK_FLOPS * REFERENCE_UTILIZATION * 60) == 1.0
