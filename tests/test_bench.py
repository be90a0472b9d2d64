"""The benchmark's smoke mode: it runs, and its JSON holds sane numbers (no timing assertions:
the machine running the tests is shared)."""

import json
import subprocess
import sys

from mlp_sweep.bench import QUICK_CONFIGS, dense_weights, flop_limit_s

from conftest import ROOT


def test_flop_limit_counts_dense_weights():
    # given the notebook's mlp2 (290,530 weights), when its epoch's FLOPs are counted at 1 GFLOP/s
    assert dense_weights([324, 108]) == 290_530
    # then: 6 per weight and training sample, 2 per weight and validation sample
    assert flop_limit_s(100, 10, 5, 1.0) == (6 * 100 * 10 + 2 * 100 * 5) / 1e9


def test_quick_bench_writes_sane_json(tiny_mnist, tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "mlp_sweep.bench", "--quick", "--data-dir", str(tiny_mnist), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| config |" in result.stdout

    bench = json.loads(out.read_text())
    assert bench["matmul"]["gflops"] > 0 and bench["help_s"] > 0 and bench["cfg_job_s"] > 0
    assert bench["machine"]["cores"] >= 1
    names = [c["name"] for c in bench["configs"]]
    assert names == [f"{m}-{r}" for m, r in QUICK_CONFIGS]
    for c in bench["configs"]:
        for path in ("project", "plain_keras"):
            assert c[path]["median_s"] > 0 and c[path]["ratio_to_limit"] > 0
        assert c["flop_limit_s"] > 0 and c["speedup_over_plain"] > 0 and c["overhead_s"] > 0
        assert c["train_samples"] == 2000 and c["val_samples"] == 500  # the smoke subset
        # the speed settings change how fast, not what is computed: same seed, same numbers
        assert c["project_val_accuracy"] == c["plain_val_accuracy"]
        for acc in c["project_val_accuracy"] + c["plain_val_accuracy"] + c["project_test_accuracy"]:
            assert 0.0 <= acc <= 1.0
    assert bench["totals"]["grid_project_s"] > 0
