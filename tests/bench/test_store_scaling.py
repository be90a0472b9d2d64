"""The store bench (python -m mlp_sweep.bench.store_scaling): a synthetic sweep behind a server of its own."""

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_store_bench_reports_a_synthetic_sweep_behind_a_server(tmp_path):
    out = tmp_path / "store.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlp_sweep.bench.store_scaling",
            "--configs",
            "3",
            "--seeds",
            "2",
            "--epochs",
            "3",
            "--lookups",
            "2",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["runs"], result["report_rows"]) == (6, 3)
    assert min(result["report_s"], result["curves_bulk_s"], result["curves_per_run_s"]) > 0
    assert (
        0 < result["resume_lookup_median_s"] <= result["resume_lookup_max_s"] and len(result["resume_lookups_s"]) == 2
    )
    assert result["machine"]["cores"] > 0 and result["command"].startswith("python -m mlp_sweep.bench.store_scaling")
