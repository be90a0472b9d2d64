"""The layers as a process sees them: a grid job loads neither Optuna nor the sweeping layer.

``lint-imports`` (in .ci/run) checks the import graph itself; this checks what is
actually loaded, in a fresh interpreter, where lazy imports would hide from the graph.
"""

import json
import subprocess
import sys

import pytest

from helpers import ROOT

PROBE = """
import json, sys
from mlp_sweep.__main__ import job_of
from mlp_sweep.core import run
from mlp_sweep.schema import compose
job = job_of(compose("experiment=smoke"))
print(json.dumps({"optuna": "optuna" in sys.modules,
                  "sweeping": sorted(m for m in sys.modules if m.startswith("mlp_sweep.sweep")),
                  "stop_rule": job.stop_rule is not None}))
"""


@pytest.mark.slow
def test_a_grid_job_and_the_training_core_load_no_optuna_and_no_sweeping_layer():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"optuna": False, "sweeping": [], "stop_rule": False}
