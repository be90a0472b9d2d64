"""From a sweep to a model in use (slow): a smoke sweep registers its choice, MLflow serves it by alias,
the served model answers as the loaded one does and as often right as its run's test accuracy says, and
registering the same sweep again adds no version."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from helpers import free_port, parents, run_cli, smoke_cfg, stop, sweep_args, wait_for_port
from mlp_sweep.core import data

pytestmark = pytest.mark.slow
NAME = "tiny_mlp"
URI = f"models:/{NAME}@champion"


def serve(store: str, port: int, cwd: Path) -> subprocess.Popen:
    """``mlflow models serve`` of the alias, as docs/tracking.md shows it: the venv's bin on PATH (uvicorn)."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.Popen(
        [f"{bin_dir}/mlflow", "models", "serve", "-m", URI, "--env-manager", "local", "-p", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def invoke(port: int, x: np.ndarray) -> np.ndarray:
    body = json.dumps({"inputs": x.tolist()}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return np.asarray(json.load(response)["predictions"], dtype=np.float32)


def test_a_sweep_registers_its_choice_and_mlflow_serves_it_by_alias(tiny_mnist, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = sweep_args(tmp_path, tiny_mnist, "reg=none,bn", "trainer.seed=0,1")
    done = run_cli(*args, f"report.register={NAME}", "report.choose=cheapest", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.rstrip().endswith(URI), done.stdout[-2000:]

    client = MlflowClient(store)
    version = client.get_model_version_by_alias(NAME, "champion")
    run = client.get_run(version.run_id)
    assert version.tags["mlp_sweep.sweep_run"] == parents(store)[0].info.run_id
    assert version.tags["mlp_sweep.rule"] == "cheapest by n_params"
    assert {"mlp_sweep.config", "mlp_sweep.verdict"} <= set(version.tags)

    splits = data.from_config(smoke_cfg(tiny_mnist, store).dataset)
    x, y = splits.x_test, splits.y_test
    assert x.dtype == np.float32 and x.ndim == 2 and 0 <= x.min() and x.max() <= 1  # what the server expects

    mlflow.set_tracking_uri(store)
    loaded = np.asarray(mlflow.pyfunc.load_model(URI).predict(x))
    port = free_port()
    server = serve(store, port, tmp_path)
    try:
        wait_for_port(port, server, timeout=180)
        served = invoke(port, x)
    finally:
        stop(server)
    np.testing.assert_allclose(served, loaded, rtol=1e-5, atol=1e-6)
    assert (served.argmax(1) == loaded.argmax(1)).all()
    assert (served.argmax(1) == y).mean() == pytest.approx(run.data.metrics["test_accuracy"], abs=1 / len(y))

    again = run_cli("report", "--tracking-uri", store, "--register", NAME, "--choose", "cheapest", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already registered; alias unchanged" in again.stdout
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 1
