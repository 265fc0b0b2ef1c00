"""The benchmark runs end to end at tiny sizes and compares equal work."""

from __future__ import annotations

import json

import pytest
import torch

from tsrobust import bench


def test_bench_runs_and_reports_ratios(tmp_path):
    out = bench.main(["--n", "12", "--batch-size", "6", "--pgd-steps", "2", "--repeats", "1",
                      "--pgd-chunk", "4", "--chunk-sweep", "2", "--device", "cpu",
                      "--json", str(tmp_path / "bench.json")])
    assert [r["measurement"].split(" ")[0] for r in out["rows"]] == ["standard-training",
                                                                     "adversarial-training", "PGD"]
    for r in out["rows"]:
        assert r["naive_per_s"] > 0 and r["package_per_s"] > 0
        # one repeat: the median ratio is the ratio of the two rates
        assert r["ratio"] == pytest.approx(r["package_per_s"] / r["naive_per_s"])
        assert r["ratio_min"] == r["ratio"] == r["ratio_max"]
    # the package's NCHW attack does exactly the naive attack's work: same adversarial examples
    assert out["pgd_package"]["NCHW, one pass"]["max_abs_diff_vs_naive_3_steps"] < 1e-6
    assert out["pgd_package"]["NCHW, one pass"]["frac_differing_vs_naive_3_steps"] == 0
    assert set(out["pgd_package"]) == {"NCHW, one pass", "channels_last, one pass",
                                       "channels_last, chunks of 4", "channels_last, chunks of 2"}
    # the reported PGD row is the package's own path (channels-last, the chunk size asked for)
    assert out["rows"][2]["measurement"].endswith("package: channels_last, chunks of 4)")
    assert out["rows"][2]["ratio"] == out["pgd_package"]["channels_last, chunks of 4"]["ratio"]
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


def test_ratios_are_per_repeat_medians():
    out = bench._ratios([4.0, 3.0, 9.0], [2.0, 1.0, 3.0])  # ratios 2, 3, 3
    assert (out["ratio"], out["ratio_min"], out["ratio_max"]) == (3.0, 2.0, 3.0)


@pytest.mark.parametrize("args", [["--n", "0"], ["--pgd-chunk", "0"], ["--chunk-sweep", "8", "-1"]])
def test_bench_rejects_bad_sizes(args):
    with pytest.raises(SystemExit):
        bench.main(args)
