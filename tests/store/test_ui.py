"""The links a sweep ends with (no login in any of them), and a new store's one quiet line."""

import logging

import pytest

from mlp_sweep.store import tracking

TRAINING = "?workflowType=machine_learning"  # MLflow's UI opens on Model training > Training runs


def test_a_local_store_gets_the_command_that_serves_it_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = tracking.resolve_uri("sqlite:///mlflow.db")  # as the sweep opens it: absolute
    links = tracking.ui_links(uri, "3", "abc")
    assert links.command == f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}"
    assert links.command.startswith("mlflow ui --backend-store-uri sqlite:////")
    assert links.runs == "http://127.0.0.1:5000/#/experiments/3/runs" + TRAINING
    assert links.run == "http://127.0.0.1:5000/#/experiments/3/runs/abc" + TRAINING


@pytest.mark.parametrize("uri", ["https://alice:s3cr3t@mlflow.example.org/", "https://alice@mlflow.example.org"])
def test_a_server_gets_its_own_pages_without_the_login(uri):
    links = tracking.ui_links(uri, "3", "abc")
    assert links.command is None  # the server serves its UI
    assert links.runs == "https://mlflow.example.org/#/experiments/3/runs" + TRAINING
    assert links.run == "https://mlflow.example.org/#/experiments/3/runs/abc" + TRAINING
    assert "s3cr3t" not in repr(links) and "alice" not in repr(links)


def test_a_database_store_keeps_its_password_masked():
    links = tracking.ui_links("postgresql://bob:hunter2@db:5432/mlflow", "1", "r")
    assert links.command == "mlflow ui --backend-store-uri postgresql://***@db:5432/mlflow"
    assert "hunter2" not in repr(links)


def test_a_new_store_is_one_line_of_ours_not_mlflows_migration(tmp_path, capfd, caplog):
    caplog.set_level(logging.INFO)
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    tracking.open_experiment(uri, "e")
    tracking.open_experiment(uri, "e")  # the store exists now: nothing to say
    out = capfd.readouterr()
    assert "mlflow.store.db" not in out.err + out.out and "alembic" not in out.err + out.out
    assert "Creating initial MLflow database tables" not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name == "mlp_sweep.store.tracking"]
    assert ours == [f"created MLflow store {uri}"]


def test_quiet_migration_keeps_warnings_and_gives_the_levels_back(capfd):
    migration = logging.getLogger("mlflow.store.db.utils")
    before = [logging.getLogger(name).level for name in tracking.MIGRATION_LOGGERS]
    with tracking.quiet_migration():
        migration.info("hidden info")
        migration.warning("a warning shown")
    assert [logging.getLogger(name).level for name in tracking.MIGRATION_LOGGERS] == before
    err = capfd.readouterr().err
    assert "a warning shown" in err and "hidden info" not in err
