"""The store bench (python -m mlp_sweep.bench.store_scaling): a synthetic sweep behind a server of its own."""

import json
import os
import statistics
import subprocess
import sys
import time

import pytest


@pytest.mark.slow
def test_store_bench_reports_a_synthetic_sweep_behind_a_server(tmp_path):
    out = tmp_path / "store.json"
    started = time.monotonic()
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
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["runs"], result["report_rows"]) == (6, 3)
    # Times are not judged (the machine is shared): each lies within the command's own wall time,
    # and the summaries are those of the lookups recorded.
    for key in ("report_s", "curves_bulk_s", "curves_per_run_s"):
        assert 0 < result[key] < took, key
    lookups = result["resume_lookups_s"]
    assert len(lookups) == 2 and all(0 < t < took for t in lookups)
    assert result["resume_lookup_median_s"] == statistics.median(lookups)
    assert result["resume_lookup_max_s"] == max(lookups)
    assert result["machine"]["cores"] == os.cpu_count()
    assert result["command"].startswith("python -m mlp_sweep.bench.store_scaling")
