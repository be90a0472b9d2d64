"""Beyond one machine: a real MLflow tracking server, and the smoke grid on
Ray (a private instance, and a running cluster) and on submitit.

The server tests need only the base install; the launcher tests need the
extras (``pip install -e ".[ray,slurm]"``) and are skipped without them.
"""

import importlib.util
import os
import secrets
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from helpers import ARTIFACTS, ROOT, SERVER_SCRIPT, free_port, mlflow_server, requires, run_cli, stop, wait_for_port
from mlp_sweep import names

GRID = ["model=mlp2,mlp3", "reg=none"]
EXPERIMENT = "mlp_sweep_smoke"
needs_ray = requires("hydra_plugins.hydra_ray_launcher", "ray", extra="ray")
needs_submitit = requires("hydra_plugins.hydra_submitit_launcher", "submitit", extra="slurm")


def smoke_sweep(tiny_mnist: Path, tmp_path: Path, *overrides: str, env: dict | None = None):
    """The smoke grid (two jobs) as a user runs it; fails the test if the command fails."""
    result = run_cli(
        "-m",
        "experiment=smoke",
        *GRID,
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        *overrides,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def sweep_runs(client: MlflowClient):
    """The one parent run and its children in the smoke experiment."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(names.TAG_SWEEP) == "parent"]
    children = [r for r in runs if r.data.tags.get(names.TAG_PARENT) == parent.info.run_id]
    assert len(runs) == 1 + len(children), "every run of the sweep is a child of its parent"
    return parent, children


def assert_grid_finished(client: MlflowClient) -> list:
    parent, children = sweep_runs(client)
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in children) == ["mlp2-none-s0", "mlp3-none-s0"]
    assert all(r.info.status == "FINISHED" for r in children)
    assert all(set(names.FINAL_METRICS) <= set(r.data.metrics) for r in children)
    return children


# --- the tracking server ----------------------------------------------------------


@pytest.mark.slow
def test_server_script_defaults_to_loopback_and_sqlite(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "--dry-run", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[out.index("--host") + 1] == "127.0.0.1"
    assert out[out.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "--serve-artifacts" in out and out[out.index("--artifacts-destination") + 1] == str(tmp_path / "artifacts")


@pytest.mark.slow
def test_server_script_takes_a_postgresql_uri(tmp_path):
    uri = "postgresql://mlflow:secret@db.example.org:5432/mlflow"
    cmd = [sys.executable, str(SERVER_SCRIPT), "--backend-store-uri", uri, "--host", "0.0.0.0", "--root", str(tmp_path)]
    out = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, check=True).stdout.split()
    assert out[out.index("--backend-store-uri") + 1] == uri and out[out.index("--host") + 1] == "0.0.0.0"
    if not any(importlib.util.find_spec(m) for m in ("psycopg2", "psycopg")):
        refused = subprocess.run(cmd, capture_output=True, text=True)
        assert refused.returncode != 0 and "pip install psycopg2-binary" in refused.stderr


@pytest.mark.slow
def test_sweep_against_a_tracking_server_reads_back_through_it(tiny_mnist, tmp_path, monkeypatch):
    with mlflow_server(tmp_path) as url:
        # tracking=server's URI comes from $MLFLOW_TRACKING_URI here, as a team member's shell would set it.
        smoke_sweep(tiny_mnist, tmp_path, "tracking=server", env={"MLFLOW_TRACKING_URI": url})

        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        client = MlflowClient(tracking_uri=url)
        children = assert_grid_finished(client)
        run = children[0]
        # Artifacts went through the server, not onto a disk the client shares.
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        assert ARTIFACTS <= {a.path for a in client.list_artifacts(run.info.run_id)}
        config_yaml = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
        assert f"uri: {url}" in config_yaml.read_text()
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [1]

        mlflow.set_tracking_uri(url)
        model = mlflow.pyfunc.load_model(run.data.tags[names.TAG_MODEL_URI])
        probs = np.asarray(model.predict(np.random.default_rng(0).random((3, 784), dtype=np.float32)))
        assert probs.shape == (3, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert list((tmp_path / "server" / "artifacts").rglob("curves.png")), "the server keeps the artifacts"


# --- Ray --------------------------------------------------------------------------


@pytest.mark.slow
@needs_ray
def test_ray_local_runs_the_grid_in_parallel(tiny_mnist, tmp_path, store):
    smoke_sweep(tiny_mnist, tmp_path, "hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=2")
    children = assert_grid_finished(MlflowClient(tracking_uri=store))
    first, second = sorted(children, key=lambda r: r.info.start_time)
    assert second.info.start_time < first.info.end_time, "the two jobs ran at the same time"
    assert first.data.tags[names.TAG_PROCESS] != second.data.tags[names.TAG_PROCESS]


@pytest.mark.slow
@needs_ray
def test_ray_cluster_jobs_find_parent_and_store_without_the_environment(tiny_mnist, tmp_path, store):
    """Workers of a running cluster did not inherit the sweep's environment."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLP_SWEEP_"))}
    # Ray 2.60's `ray start` demands a token; the cluster and its client share this one.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env |= auth
    ray_bin = Path(sys.executable).parent / "ray"
    head_dir = tmp_path / "ray_head"  # the workers' working directory
    head_dir.mkdir()
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--block",
        ],
        cwd=head_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, head)
        smoke_sweep(
            tiny_mnist,
            tmp_path,
            "hydra/launcher=ray_cluster",
            f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
            env=auth,
        )
    finally:
        stop(head)
    assert_grid_finished(MlflowClient(tracking_uri=store))
    assert not list(head_dir.glob("*.db")), "no job fell back to a store in the workers' directory"


# --- Slurm (submitit) ---------------------------------------------------------------


@pytest.mark.slow
@needs_submitit
def test_slurm_preset_composes():
    result = run_cli(
        "experiment=smoke",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=cpu",
        "--cfg",
        "hydra",
        "-p",
        "hydra.launcher",
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "SlurmLauncher" in result.stdout and "partition: cpu" in result.stdout
    assert "export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK" in result.stdout


@pytest.mark.slow
@needs_submitit
def test_submitit_local_executor_runs_the_grid(tiny_mnist, tmp_path, store):
    smoke_sweep(tiny_mnist, tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert_grid_finished(MlflowClient(tracking_uri=store))
