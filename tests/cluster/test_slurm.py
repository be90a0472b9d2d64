"""The smoke grid as a team runs it on Slurm: jobs through the real slurmctld of
scripts/cluster.sh, runs to the team server on PostgreSQL with a user's login; and a
job cancelled mid-sweep. The search on Slurm is in test_cluster_search.py."""

import os
import subprocess
import sys
import time

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from cluster_helpers import (
    ADMIN_PASSWORD,
    ALICE_PASSWORD,
    files_holding,
    login,
    on_slurm,
    smoke_args,
    sweeps,
)
from helpers import (
    ARTIFACTS,
    children,
    parents,
    requires,
    run_cli,
    start_interruptible,
    stop,
    sweep_args,
)
from mlp_sweep import names

pytestmark = [
    pytest.mark.cluster,
    requires("hydra_plugins.hydra_submitit_launcher", "submitit", extra="slurm"),
    requires("flask_wtf", extra="auth"),
    requires("psycopg", extra="postgres"),
]


def test_the_grid_runs_on_slurm_into_the_team_server_and_leaves_no_secret(
    cluster, team_server, tiny_mnist, tmp_path, monkeypatch, capsys
):
    env = team_server.user_env(cluster)
    grid = ["model=mlp2,mlp3", "reg=none", "tracking=server", "tracking.experiment=cluster_slurm_grid"]
    started = time.monotonic()
    done = run_cli(*smoke_args(tiny_mnist, tmp_path / "slurm", *grid, *on_slurm(cluster)), cwd=tmp_path, env=env)
    slurm_s = time.monotonic() - started
    with capsys.disabled():
        print(f"\nthe smoke grid (2 jobs) on Slurm, into the team server: {slurm_s:.0f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    printed = done.stdout + done.stderr
    assert "sacct" not in printed, "no accounting here: the launcher asks squeue, and nothing warns at each poll"

    login(monkeypatch, env)
    client = MlflowClient(team_server.url)
    ((parent, runs),) = sweeps(client, "cluster_slurm_grid")
    assert parent.info.status == "FINISHED"
    assert sorted(r.info.run_name for r in runs) == ["mlp2-none-s0", "mlp3-none-s0"]
    assert all(r.info.status == "FINISHED" and set(names.FINAL_METRICS) <= set(r.data.metrics) for r in runs)
    run = runs[0]
    assert run.info.artifact_uri.startswith("mlflow-artifacts:"), "the jobs wrote no disk but the server's"
    assert ARTIFACTS <= {a.path for a in client.list_artifacts(run.info.run_id)}
    mlflow.set_tracking_uri(team_server.url)
    model = mlflow.pyfunc.load_model(run.data.tags[names.TAG_MODEL_URI])
    assert np.asarray(model.predict(np.zeros((3, 784), dtype=np.float32))).shape == (3, 10)
    report = client.download_artifacts(parent.info.run_id, f"{names.REPORT_DIR}/comparison.md", str(tmp_path))
    assert "mlp3-none" in open(report).read()
    assert list(team_server.artifacts.rglob(names.CURVES_PNG)), "the server keeps the artifacts"

    secrets = [ALICE_PASSWORD, ADMIN_PASSWORD, *cluster.database_passwords()]
    assert not [s for s in secrets if s in printed]
    # The sweep's folder holds submitit's pickles and the jobs' logs; the server's, its users (hashed) and key.
    assert files_holding([tmp_path / "slurm", team_server.root, team_server.artifacts], secrets) == []
    dump = cluster.run("pg_dump", cluster.mlflow_db)
    assert "cluster_slurm_grid" in dump and not [s for s in secrets if s in dump]


def test_a_cancelled_array_task_is_reported_once_and_the_same_command_trains_it_alone(
    cluster, tiny_mnist, tmp_path, store
):
    # 150 epochs, so that mlp3's job is still training when the cancel lands: Slurm waits KillWait (5 s) between
    # its SIGTERM and SIGKILL, and 15 epochs of the tiny data finished within it on a quiet machine.
    args = sweep_args(
        tmp_path, tiny_mnist, "model=mlp2,mlp3", "reg=none", "trainer.epochs=150", "tracking.log_model=false"
    )
    args += on_slurm(cluster)
    log = open(tmp_path / "sweep.log", "w")  # a pipe left unread would stall the sweep once full
    sweep = subprocess.Popen(
        [sys.executable, "-m", "mlp_sweep", *args],
        cwd=tmp_path,
        env={**os.environ, **cluster.env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not [r for r in children(store) if r.info.run_name == "mlp3-none-s0" and r.info.status == "RUNNING"]:
            assert sweep.poll() is None and time.monotonic() < deadline, "mlp3's job never started training"
            time.sleep(0.5)
        (task,) = (tmp_path / "multirun" / ".submitit").glob("*_1")  # array task 1: the sweep's job #1, mlp3
        cluster.run("scancel", task.name)
        sweep.wait(timeout=180)
        out = (tmp_path / "sweep.log").read_text()
    finally:
        stop(sweep)
        log.close()
    assert sweep.returncode == 1, out[-5000:]
    assert "Traceback" not in out
    assert f"Slurm ended job #1 ({task.name}) CANCELLED, before it returned a result" in out
    problems = out.split("error: the sweep failed", 1)[1].splitlines()[1:]
    (killed,) = problems
    assert killed.strip().startswith("mlp3-none-s0 (") and " KILLED: " in killed

    again = run_cli(*args, cwd=tmp_path, env=cluster.env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert sorted((r.info.run_name, r.info.status) for r in children(store)) == [
        ("mlp2-none-s0", "FINISHED"),  # trained once, in the first command
        ("mlp3-none-s0", "FINISHED"),
        ("mlp3-none-s0", "KILLED"),
    ]


def test_ctrl_c_on_slurm_stops_the_command_and_leaves_the_submitted_jobs_to_the_cluster(
    cluster, tiny_mnist, tmp_path, store
):
    # One epoch: the Ctrl-C comes once Slurm holds the job (its task folder exists), long before the job can
    # have started Python and TensorFlow, let alone ended; the test then waits for the job to finish its run.
    args = sweep_args(tmp_path, tiny_mnist, "model=mlp2", "reg=none", "tracking.log_model=false")
    proc = start_interruptible([*args, *on_slurm(cluster)], tmp_path)
    submitted = tmp_path / "multirun" / ".submitit"
    while not [p for p in submitted.glob("[0-9]*") if p.is_dir()]:  # the event: sbatch took it, submitit filed it
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.1)
    sent = time.monotonic()
    os.killpg(proc.pid, 2)  # SIGINT, as a terminal sends it
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - sent < 10, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "1 submitted job(s) left to Slurm (scancel them to stop them)" in last and "Traceback" not in err
    assert last.startswith("interrupted: 0 finished, 0 stopped, ") and last.endswith(
        "run the same command again to resume"
    )
    (parent,) = parents(store)
    assert parent.info.status == "KILLED"
    deadline = time.monotonic() + 300  # the job the cluster kept starts, trains, and finishes its run
    while not [r for r in children(store) if r.info.status == "FINISHED"]:
        assert time.monotonic() < deadline, [(r.info.run_name, r.info.status) for r in children(store)]
        time.sleep(0.2)  # a poll for the event, not a wait before acting
    assert [r.info.status for r in children(store)] == ["FINISHED"]
