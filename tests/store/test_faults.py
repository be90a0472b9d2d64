"""Faults: a failed job stays alone, a sweep run again resumes, a killed sweep
recovers, parallel jobs lose nothing, and a seed gives the same numbers twice."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
from mlflow.tracking import MlflowClient

from helpers import ARTIFACTS, all_runs, children, parents, run_cli, smoke_cfg, sweep_args
from mlp_sweep import names
from mlp_sweep.core import data, runtime
from mlp_sweep.core import run as train_module
from mlp_sweep.core.run import train
from mlp_sweep.errors import DivergedError
from mlp_sweep.store import identity, resume, tracking

TIMING = {"epoch_time_s", "train_time_s", "predict_ms_per_1k"}  # wall times: the only metrics that may differ


def histories(run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Every metric's full history (step, value), timing metrics left out."""
    client = MlflowClient()
    keys = set(client.get_run(run_id).data.metrics) - TIMING
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in sorted(keys)}


# --- failure isolation ------------------------------------------------------------


def test_diverged_loss_stops_the_run_at_once_and_fails_it(tiny_mnist, store):
    cfg = smoke_cfg(
        tiny_mnist,
        store,
        "model=mlp2",
        "optimizer=sgd",
        "optimizer.lr=1e6",
        "trainer.epochs=3",
        "tracking.log_model=false",
    )
    with pytest.raises(DivergedError, match=r"loss became nan at epoch 1, batch \d+"):
        train(cfg, progress="none")
    (run,) = all_runs(store)
    assert run.info.status == "FAILED"
    assert run.data.tags[names.TAG_FAILURE].startswith("DivergedError: loss became nan at epoch 1, batch ")
    assert not set(names.EPOCH_METRICS) & set(run.data.metrics)  # stopped inside the first epoch


@pytest.mark.slow
def test_sweep_runs_every_job_and_counts_the_failed_ones_from_the_store(tiny_mnist, tmp_path):
    # lr=1e6 diverges; activation "nope" is refused before its run opens; the one left must finish.
    result = run_cli(
        *sweep_args(
            tmp_path,
            tiny_mnist,
            "model=mlp2",
            "optimizer=sgd",
            "optimizer.lr=0.01,1e6",
            "model.activation=relu,nope",
            "tracking.log_model=false",
        ),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: the sweep failed (3 problem(s); the other jobs ran to the end):" in result.stderr
    assert "mlp2-none-lr=1e+06-activation=relu-s0 (" in result.stderr
    assert ") FAILED: DivergedError: loss became nan at epoch 1" in result.stderr
    assert result.stderr.count(") FAILED: ConfigError: invalid config: model.activation='nope' is unknown") == 2
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = {(r.data.params.get("optimizer.lr"), r.info.run_name, r.info.status): r for r in children(store)}
    assert set(runs) == {
        ("0.01", "mlp2-none-lr=0.01-activation=relu-s0", "FINISHED"),
        ("1000000.0", "mlp2-none-lr=1e+06-activation=relu-s0", "FAILED"),
        (None, "mlp2-none-lr=0.01-activation=nope-s0", "FAILED"),  # refused before its run opened:
        (None, "mlp2-none-lr=1e+06-activation=nope-s0", "FAILED"),
    }  # a FAILED run records it
    (parent,) = parents(store)
    assert parent.info.status == "FAILED"
    assert "3 problem" not in parent.data.tags[names.TAG_FAILURE]  # the reasons, not the count
    assert "DivergedError" in parent.data.tags[names.TAG_FAILURE]


# --- resume -------------------------------------------------------------------------


@pytest.mark.slow
def test_finished_grid_point_is_skipped_unless_rerun_is_asked(tiny_mnist, store, capsys):
    cfg = smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false")
    first = train(cfg, progress="none")
    (run,) = all_runs(store)

    again = train(cfg, progress="none")
    assert (
        f"mlp2-none-s0: skipped, already FINISHED as MLflow run {run.info.run_id} (tracking.rerun=true trains it again)"
        in capsys.readouterr().out
    )
    assert len(all_runs(store)) == 1
    assert {k: again[k] for k in first} == first

    train(smoke_cfg(tiny_mnist, store, "model=mlp2", "trainer.seed=1", "tracking.log_model=false"), progress="none")
    train(
        smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false", "tracking.rerun=true"), progress="none"
    )
    assert [(r.data.tags[names.TAG_SEED], r.info.status) for r in all_runs(store)] == [
        ("0", "FINISHED"),
        ("1", "FINISHED"),
        ("0", "FINISHED"),
    ]


def test_failed_grid_point_runs_again(tiny_mnist, store, monkeypatch):
    cfg = smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false")
    real = train_module.fit_and_evaluate
    monkeypatch.setattr(train_module, "fit_and_evaluate", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):
        train(cfg, progress="none")
    monkeypatch.setattr(train_module, "fit_and_evaluate", real)
    train(cfg, progress="none")
    assert [r.info.status for r in all_runs(store)] == ["FAILED", "FINISHED"]
    assert all_runs(store)[0].data.tags[names.TAG_FAILURE] == "RuntimeError: disk full"


def dead_process_tag() -> str:
    """The tag of a process that has ended: what a SIGKILLed job leaves on its run."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{resume.process_tag().split(':')[0]}:{child.pid}:"


def test_process_tag_tells_dead_from_alive():
    assert not resume.process_gone(resume.process_tag())
    assert resume.process_gone(dead_process_tag())
    assert not resume.process_gone(f"another-host:{os.getpid() + 10**6}:1")  # cannot check: assumed alive


def test_run_orphaned_by_a_dead_process_is_marked_killed_and_a_live_claim_is_respected(tiny_mnist, store, capsys):
    cfg = smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false")
    client, experiment_id = tracking.open_experiment(store, cfg.tracking.experiment)
    grid_point = identity.grid_point(cfg, data.from_config(cfg.dataset).sha256, runtime.library_versions()).tags()
    orphan = client.create_run(experiment_id, tags={**grid_point, names.TAG_PROCESS: dead_process_tag()}).info.run_id
    live = client.create_run(experiment_id, tags={**grid_point, names.TAG_PROCESS: resume.process_tag()}).info.run_id

    train(cfg, progress="none")

    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(orphan).data.tags[names.TAG_FAILURE].startswith("interrupted: its process ")
    assert client.get_run(live).info.status == "RUNNING"  # may still be training: left alone, and not trained again
    assert f"mlp2-none-s0: not trained here: MLflow run {live} holds this grid point" in capsys.readouterr().out
    assert sorted(r.info.status for r in all_runs(store)) == ["KILLED", "RUNNING"]  # the loser's claim is gone


@pytest.mark.slow
def test_sweep_killed_mid_job_resumes_to_one_finished_run_per_grid_point(tiny_mnist, tmp_path):
    args = sweep_args(tmp_path, tiny_mnist, "model=mlp2", "reg=none,bn", "trainer.epochs=4", "tracking.log_model=false")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlp_sweep", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    watchdog = threading.Timer(300, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    seen = []
    for line in proc.stdout:  # kill once the second job is inside its training
        seen.append(line)
        if "mlp2-bn-s0 epoch 1/4" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert sorted((r.info.run_name, r.info.status) for r in children(store)) == [
        ("mlp2-bn-s0", "RUNNING"),
        ("mlp2-none-s0", "FINISHED"),
    ]  # what SIGKILL leaves

    result = run_cli(*args, cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "mlp2-none-s0: skipped, already FINISHED" in result.stdout
    runs = children(store)
    for name in ("mlp2-none-s0", "mlp2-bn-s0"):
        assert [r.info.status for r in runs if r.info.run_name == name].count("FINISHED") == 1
    (killed,) = [r for r in runs if r.info.status != "FINISHED"]
    assert (killed.info.run_name, killed.info.status) == ("mlp2-bn-s0", "KILLED")
    assert killed.data.tags[names.TAG_FAILURE].startswith("interrupted: its process ")
    assert [p.info.status for p in parents(store)] == ["KILLED", "FINISHED"]
    reused = {k: v for k, v in parents(store)[1].data.tags.items() if k.startswith(names.TAG_REUSED_PREFIX)}
    (finished,) = [r for r in runs if r.info.run_name == "mlp2-none-s0"]
    assert reused == {names.TAG_REUSED_PREFIX + finished.info.run_id: finished.data.tags[names.TAG_GRID_POINT]}
    with sqlite3.connect(tmp_path / "mlflow.db") as db:  # the store survived the kill intact
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert all(histories(r.info.run_id) for r in runs if r.info.status == "FINISHED")


# --- parallel ---------------------------------------------------------------------


N_PARAMS = {"mlp2": 290_530, "mlp3": 322_871, "mlp5": 661_203}  # DESIGN.md's counts, without batch norm


@pytest.mark.slow
def test_parallel_jobs_lose_no_run_metric_or_artifact(tiny_mnist, tmp_path):
    result = run_cli(
        *sweep_args(
            tmp_path,
            tiny_mnist,
            "hydra/launcher=parallel",
            "hydra.launcher.n_jobs=3",
            "model=mlp2,mlp3,mlp5",
            "trainer.epochs=2",
        ),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (parent,) = parents(store)
    runs = children(store)
    assert sorted(r.info.run_name for r in runs) == ["mlp2-none-s0", "mlp3-none-s0", "mlp5-none-s0"]
    assert len({r.data.tags[names.TAG_PROCESS] for r in runs}) == 3  # three worker processes at once
    client = MlflowClient()
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags[names.TAG_PARENT] == parent.info.run_id  # the parent reached every worker
        for key in names.EPOCH_METRICS:
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2]
        assert set(names.FINAL_METRICS) <= set(run.data.metrics)
        assert ARTIFACTS <= {a.path for a in client.list_artifacts(run.info.run_id)}
        assert run.data.tags[names.TAG_MODEL_URI].startswith("models:/")
        # every param reached the store: the same keys in each job, the values its job was given
        assert set(run.data.params) == set(runs[0].data.params)
        model = run.info.run_name.split("-")[0]
        assert (run.data.params["model.name"], run.data.params["trainer.epochs"]) == (model, "2")
        assert run.data.params["n_params"] == str(N_PARAMS[model])


# --- determinism --------------------------------------------------------------------


@pytest.mark.slow  # two trainings; the default tier keeps its 90 s (test_trust runs the two-command version too)
def test_same_config_and_seed_give_bit_identical_metrics(tiny_mnist, store):
    overrides = ("model=mlp2", "reg=bn_dropout", "trainer.epochs=2", "tracking.log_model=false", "tracking.rerun=true")
    first = train(smoke_cfg(tiny_mnist, store, *overrides), progress="none")
    second = train(smoke_cfg(tiny_mnist, store, *overrides), progress="none")
    a, b = all_runs(store)
    assert histories(a.info.run_id) == histories(b.info.run_id)
    assert len(histories(a.info.run_id)["val_loss"]) == 2
    assert {k: v for k, v in first.items() if k not in TIMING} == {k: v for k, v in second.items() if k not in TIMING}


def test_interrupted_run_ends_killed_not_failed(tiny_mnist, store, monkeypatch):
    monkeypatch.setattr(train_module, "fit_and_evaluate", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train(smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false"), progress="none")
    (run,) = all_runs(store)
    assert run.info.status == "KILLED" and run.data.tags[names.TAG_FAILURE].startswith("KeyboardInterrupt")
