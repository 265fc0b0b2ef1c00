"""The benchmark runs end to end at tiny sizes and compares equal work."""

from __future__ import annotations

import json

import pytest
import torch

from tsrobust import bench



def test_bench_runs_and_reports_ratios(tmp_path):
    out = bench.main(["--n", "12", "--batch-size", "6", "--pgd-steps", "2", "--repeats", "1",
                      "--device", "cpu", "--json", str(tmp_path / "bench.json")])
    assert [r["measurement"].split(" ")[0] for r in out["rows"]] == ["standard-training",
                                                                     "adversarial-training", "PGD"]
    for r in out["rows"]:
        assert r["naive_per_s"] > 0 and r["package_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["package_per_s"] / r["naive_per_s"])
    # the package's NCHW attack does exactly the naive attack's work: same adversarial examples
    assert out["pgd_package"]["NCHW"]["max_abs_diff_vs_naive_3_steps"] < 1e-6
    assert json.loads((tmp_path / "bench.json").read_text())["n"] == 12


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


def test_bench_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        bench.main(["--n", "0"])
