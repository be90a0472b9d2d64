"""The smoke grid on a Ray cluster as a team runs it, into the team server on PostgreSQL with
a user's login, and a Ray worker node lost mid-sweep: two nodes of one cluster (a head and a
worker, each its own raylet) started on this one machine with Ray's own ``ray start``. The
search on Ray is in test_cluster_search.py."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster_helpers import ADMIN_PASSWORD, ALICE_PASSWORD, files_holding, login, smoke_args, sweeps
from helpers import free_port, requires, run_cli, stop, wait_for_port
from mlp_sweep import names

pytestmark = [
    pytest.mark.cluster,
    requires("hydra_plugins.hydra_ray_launcher", "ray", extra="ray"),
    requires("flask_wtf", extra="auth"),
    requires("psycopg", extra="postgres"),
]
RAY = Path(sys.executable).parent / "ray"
EXPERIMENT = "cluster_ray"


def ray_node(*args: str, env: dict, temp_dir: Path) -> subprocess.Popen:
    """``ray start ... --block``: one node of a Ray cluster, in a session of its own, with its raylet and workers;
    its logs and spilled objects in ``temp_dir`` (short: Ray's socket paths must fit in 107 characters)."""
    return subprocess.Popen(
        [str(RAY), "start", *args, f"--temp-dir={temp_dir}", "--disable-usage-stats", "--block"],
        cwd=temp_dir.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def training(client: MlflowClient) -> list:
    """The experiment's runs that are training now (not a sweep's parent)."""
    found = client.get_experiment_by_name(EXPERIMENT)
    running = client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'") if found else []
    return [r for r in running if r.data.tags.get(names.TAG_SWEEP) != "parent"]


def test_a_ray_cluster_loses_a_worker_node_and_the_same_command_completes_the_grid(
    cluster, team_server, tiny_mnist, tmp_path, monkeypatch
):
    """The head node has no CPU for jobs: they all land on the worker node, which is stopped while they
    train. The nodes know nothing of the team server: the jobs learn it, and the login, from the sweep."""
    port = free_port()
    ray_auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    nodes_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLP_SWEEP_"))} | ray_auth
    user_env = team_server.user_env(cluster) | ray_auth
    ray_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    args = smoke_args(tiny_mnist, tmp_path / "grid", "model=mlp2,mlp3", "reg=none", "trainer.epochs=3")
    args += ["tracking=server", f"tracking.experiment={EXPERIMENT}", "tracking.log_model=false"]
    args += ["hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address=127.0.0.1:{port}"]
    login(monkeypatch, user_env)
    client = MlflowClient(team_server.url)
    log = open(tmp_path / "sweep.log", "w")  # a pipe left unread would stall the sweep once full
    head = ray_node(
        "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false", env=nodes_env, temp_dir=ray_dir / "h"
    )
    worker = sweep = None
    try:
        wait_for_port(port, head)
        worker = ray_node(f"--address=127.0.0.1:{port}", "--num-cpus=2", env=nodes_env, temp_dir=ray_dir / "w1")
        sweep = subprocess.Popen(
            [sys.executable, "-m", "mlp_sweep", *args],
            cwd=tmp_path,
            env={**os.environ, **user_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while not training(client):
            assert sweep.poll() is None and time.monotonic() < deadline, "no job started training"
            time.sleep(0.2)  # a poll for the event, not a wait before acting
        os.killpg(worker.pid, signal.SIGKILL)  # the node dies at once, its jobs inside their training
        worker.wait(timeout=60)
        sweep.wait(timeout=180)
        out = (tmp_path / "sweep.log").read_text()
        assert sweep.returncode == 1, out[-5000:]
        assert "Traceback" not in out
        lost = [line for line in out.splitlines() if "Ray lost job #" in line]
        assert lost and all("the node it was running on is dead" in line for line in lost), out[-5000:]
        assert "error: the sweep failed" in out, "the lost jobs are among the sweep's problems"

        worker = ray_node(f"--address=127.0.0.1:{port}", "--num-cpus=2", env=nodes_env, temp_dir=ray_dir / "w2")
        again = run_cli(*args, cwd=tmp_path, env=user_env)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    finally:
        for proc in (sweep, worker, head):
            if proc is not None:
                stop(proc)
        log.close()

    (_, lost_runs), (parent, runs) = sweeps(client, EXPERIMENT)
    assert parent.info.status == "FINISHED"
    finished = sorted(r.info.run_name for r in lost_runs + runs if r.info.status == "FINISHED")
    assert finished == ["mlp2-none-s0", "mlp3-none-s0"], "every point trained once to the end"
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)

    secrets_ = [ALICE_PASSWORD, ADMIN_PASSWORD, *cluster.database_passwords()]
    assert not [s for s in secrets_ if s in out + again.stdout + again.stderr]
    # Ray carries the login to the jobs inside the pickled sweep callback, in memory: none of it on a node's disk.
    assert files_holding([tmp_path / "grid", ray_dir, team_server.artifacts], secrets_) == []
    assert not [s for s in secrets_ if s in cluster.run("pg_dump", cluster.mlflow_db)]
    shutil.rmtree(ray_dir, ignore_errors=True)
