"""Results you can trust: a run is reused, pooled or counted only when it truly is
the same run; two commands on one store train each grid point once; every
failure ends the command non-zero with the parent run closed."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import read_write

from helpers import ROOT, all_runs, children, parents, run_cli, smoke_cfg, sweep_args, write_mnist_like
from mlp_sweep import names, schema
from mlp_sweep.__main__ import job_of
from mlp_sweep.core.run import train
from mlp_sweep.reporting import report
from mlp_sweep.store import identity
from mlp_sweep.sweep.callback import SweepCallback

GRID = ["model=mlp2,mlp3", "reg=none,bn"]  # four grid points: enough for two commands to meet on them


# --- identity: data and code --------------------------------------------------------


@pytest.mark.slow
def test_the_same_config_on_other_data_is_trained_not_reused(tiny_mnist, tmp_path, store, capsys):
    other = write_mnist_like(tmp_path / "other", seed=1, gz=False)  # a second IDX dataset, uncompressed
    first = train(smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false"), progress="none")
    train(smoke_cfg(other, store, "model=mlp2", "tracking.log_model=false"), progress="none")

    runs = all_runs(store)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert runs[0].data.tags[names.TAG_CONFIG_HASH] == runs[1].data.tags[names.TAG_CONFIG_HASH]
    assert runs[0].data.tags[names.TAG_DATASET_SHA] != runs[1].data.tags[names.TAG_DATASET_SHA]
    assert f"mlp2-none-s0: trained again: the data changed since run {runs[0].info.run_id}" in capsys.readouterr().out
    assert runs[0].data.metrics["test_accuracy"] == first["test_accuracy"]
    # The UI's Dataset column: each run's input is the data it saw, its digest the checksum.
    for run in runs:
        (dataset,) = MlflowClient(store).get_run(run.info.run_id).inputs.dataset_inputs
        assert dataset.dataset.name == "smoke"
        assert run.data.tags[names.TAG_DATASET_SHA].startswith(dataset.dataset.digest)


def edited_package(folder, edit: str):
    """The computation's modules as they would be after ``edit`` was appended to model.py."""
    for name in identity.COMPUTATION_MODULES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(
            (identity.PACKAGE_DIR / name).read_text() + (edit if name.endswith("model.py") else "")
        )
    return folder


def test_a_changed_computation_is_trained_a_commented_one_reused(tiny_mnist, store, tmp_path, monkeypatch, capsys):
    cfg = smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false")
    train(cfg, progress="none")
    monkeypatch.setattr(identity, "PACKAGE_DIR", edited_package(tmp_path / "commented", "\n# a comment\n"))
    train(cfg, progress="none")
    assert len(all_runs(store)) == 1 and "skipped, already FINISHED" in capsys.readouterr().out

    monkeypatch.setattr(identity, "PACKAGE_DIR", edited_package(tmp_path / "changed", "\nEDITED = 1\n"))
    train(cfg, progress="none")

    old, new = all_runs(store)
    assert (old.info.status, new.info.status) == ("FINISHED", "FINISHED")
    assert old.data.tags[names.TAG_CODE] != new.data.tags[names.TAG_CODE]
    assert (
        f"mlp2-none-s0: trained again: the computation (its code or library versions) changed since run "
        f"{old.info.run_id}"
    ) in capsys.readouterr().out


# --- resume keeps every run of a sweep ------------------------------------------------


@pytest.mark.slow
def test_a_resumed_sweep_reports_every_config_with_its_seeds(tiny_mnist, tmp_path):
    args = sweep_args(
        tmp_path, tiny_mnist, "model=mlp2", "optimizer.lr=0.001,0.002", "trainer.seed=0,1", "tracking.log_model=false"
    )
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    again = run_cli(*args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped, already FINISHED") == 4
    assert "[3/4] mlp2-none-lr=0.002-s0" in again.stdout
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert len(children(store)) == 4  # trained once
    assert sorted(r.info.run_name for r in children(store)) == [
        "mlp2-none-lr=0.001-s0",
        "mlp2-none-lr=0.001-s1",
        "mlp2-none-lr=0.002-s0",
        "mlp2-none-lr=0.002-s1",
    ]
    table = pd.read_csv(tmp_path / "multirun" / "report" / "comparison.csv")
    assert sorted(table["config"]) == ["mlp2-none · adam lr 1e-3", "mlp2-none · adam lr 2e-3"]
    assert list(table["n"]) == [2, 2]
    latest = parents(store)[-1]
    assert latest.info.status == "FINISHED"
    assert len([k for k in latest.data.tags if k.startswith(names.TAG_REUSED_PREFIX)]) == 4


# --- failures are counted from the store --------------------------------------------


@pytest.mark.slow
def test_a_job_failing_before_its_run_opens_is_counted_without_its_job_folder(tiny_mnist, tmp_path):
    """Under joblib, with the job folders deleted as each job ends (no shared disk)."""
    result = run_cli(
        *sweep_args(
            tmp_path,
            f"{tiny_mnist},{tmp_path / 'missing'}",
            "hydra/launcher=parallel",
            "model=mlp2",
            "+hydra.callbacks.wipe._target_=helpers.WipeJobFolder",
        ),
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "tests")},
    )

    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: the sweep failed (1 problem(s); the other jobs ran to the end):" in result.stderr
    assert f"FAILED: DataError: data folder {tmp_path / 'missing'} does not exist" in result.stderr
    assert not list((tmp_path / "multirun").glob("[0-9]*"))  # the job folders really are gone
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (parent,) = parents(store)
    assert parent.info.status == "FAILED"
    assert sorted(r.info.status for r in children(store)) == ["FAILED", "FINISHED"]
    assert all(r.data.tags[names.TAG_PARENT] == parent.info.run_id for r in children(store))


def multirun_config(tmp_path: Path, store: str, *overrides: str):
    """The sweep's config as the callback sees it at the start of a multirun."""
    from hydra.core.hydra_config import HydraConfig

    cfg = schema.compose(
        "experiment=smoke",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        *overrides,
        return_hydra_config=True,
    )
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_an_error_in_parent_run_creation_exits_with_one_line(tmp_path, store, monkeypatch):
    cfg = multirun_config(tmp_path, store, "model=mlp2")
    monkeypatch.setattr(
        MlflowClient, "create_run", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("store on fire"))
    )
    with pytest.raises(SystemExit) as stop:
        SweepCallback().on_multirun_start(cfg)
    assert stop.value.code == "error: RuntimeError: store on fire"


def test_an_error_closing_the_parent_run_exits_non_zero(tmp_path, store, monkeypatch):
    cfg = multirun_config(tmp_path, store, "model=mlp2")
    callback = SweepCallback()
    callback.on_multirun_start(cfg)
    callback.total = 0  # no job ran: only the end is under test
    monkeypatch.setattr(SweepCallback, "write_report", lambda *a: None)  # nothing to report
    monkeypatch.setattr(MlflowClient, "set_terminated", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("lost")))
    with pytest.raises(SystemExit) as stop:
        callback.on_multirun_end(cfg)
    assert stop.value.code == "error: the sweep's end failed: RuntimeError: lost"


def test_a_failed_report_exits_non_zero_and_keeps_the_runs(tiny_mnist, tmp_path, store, monkeypatch):
    cfg = multirun_config(tmp_path, store, "model=mlp2")
    callback = SweepCallback()
    callback.on_multirun_start(cfg)
    with read_write(cfg.hydra.job):
        cfg.hydra.job.num = 0  # what the launcher sets for the first job
    callback.on_job_start(cfg)
    try:
        job = smoke_cfg(tiny_mnist, store, "model=mlp2", "tracking.log_model=false")
        train(job, progress="none", job=job_of(job))  # as the entry point hands the callback's environment on
    finally:
        callback.on_job_end(cfg, None)
    callback.total = 1
    monkeypatch.setattr(report, "make_report", lambda *a, **k: (_ for _ in ()).throw(KeyError("figure")))

    with pytest.raises(SystemExit) as stop:
        callback.on_multirun_end(cfg)

    assert stop.value.code.startswith(
        "error: the sweep failed (1 problem(s); the other jobs ran to the end):\n"
        "  the sweep's report failed (KeyError: 'figure'); every run is in the store"
    )
    (child,) = children(store)
    assert child.info.status == "FINISHED"
    (parent,) = parents(store)
    assert parent.info.status == "FAILED" and "report failed" in parent.data.tags[names.TAG_FAILURE]


@pytest.mark.slow
def test_a_bad_tracking_store_refuses_the_sweep_in_one_line(tmp_path):
    (tmp_path / "x.db").write_text("not a database\n")
    result = run_cli(
        "-m",
        "model=mlp2,mlp3",
        "tracking.uri=sqlite:///x.db",
        f"hydra.sweep.dir={tmp_path / 'm'}",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: sqlite:///{tmp_path / 'x.db'} is not an MLflow store (file is not a database): point tracking.uri "
        "at an MLflow store, or at a new file name to create one"
    )
    assert "Traceback" not in result.stderr and "[1/2]" not in result.stdout


# --- two commands at once ------------------------------------------------------------


def run_together(tmp_path: Path, data: Path, n: int = 2) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlp_sweep",
                *sweep_args(tmp_path, data, *GRID, "tracking.log_model=false", folder=f"m{i}"),
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]  # read as they run: a full pipe would stall a command
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("store_exists", [False, True], ids=["fresh-store", "existing-store"])
def test_two_sweeps_at_once_train_each_grid_point_once(tiny_mnist, tmp_path, store_exists):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if store_exists:
        train(
            smoke_cfg(
                tiny_mnist, store, "model=mlp2", "reg=bn_dropout", "trainer.epochs=2", "tracking.log_model=false"
            ),
            progress="none",
        )  # another config: the store and experiment exist

    results = run_together(tmp_path, tiny_mnist)

    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    grid = [r for r in children(store) if r.data.params.get("trainer.epochs") == "1"]
    assert len(grid) == 4 and all(r.info.status == "FINISHED" for r in grid)
    assert len({r.data.tags[names.TAG_GRID_POINT] for r in grid}) == 4  # none trained twice
    sweeps = {p.info.run_id for p in parents(store)}
    assert len(sweeps) == 2 and all(r.data.tags.get(names.TAG_PARENT) in sweeps for r in grid)
    # 8 jobs: 4 trained, 4 found their point FINISHED or claimed by the other command.
    assert sum(r.stdout.count("skipped, already FINISHED") + r.stdout.count("not trained here") for r in results) == 4
    for i, result in enumerate(results):  # each report counts all four, or lists those still training
        table = pd.read_csv(tmp_path / f"m{i}" / "report" / "comparison.csv")
        assert len(table) + result.stdout.count("(RUNNING") == 4


# --- same config, same numbers -----------------------------------------------------------


@pytest.mark.slow
def test_two_commands_give_bit_identical_metric_histories(tiny_mnist, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        "experiment=smoke",
        "model=mlp2",
        "reg=bn_dropout",
        "trainer.epochs=2",
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        "tracking.log_model=false",
        "tracking.rerun=true",
        f"tracking.uri={store}",
    ]
    for _ in range(2):
        assert run_cli(*args, cwd=tmp_path).returncode == 0
    a, b = all_runs(store)
    client = MlflowClient(store)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        first = [(m.step, m.value) for m in client.get_metric_history(a.info.run_id, key)]
        assert first == [(m.step, m.value) for m in client.get_metric_history(b.info.run_id, key)]
        assert len(first) == 2
    assert a.data.metrics["test_accuracy"] == b.data.metrics["test_accuracy"]
