"""Reading many runs back in few calls: metric histories in bulk (a SQL store, a real
tracking server, and the run-by-run fallback), and figures that stay readable for a
sweep of many configs."""

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from helpers import mlflow_server
from mlp_sweep import names
from mlp_sweep.store import history


def log_values(client: MlflowClient, run_id: str, key: str, values: list[tuple[int, float]]) -> None:
    """Log (step, value) pairs in this order, one batch each, so that later ones carry later timestamps."""
    for i, (step, value) in enumerate(values):
        client.log_batch(run_id, metrics=[Metric(key, value, 1_000_000 + i, step)])


@pytest.fixture
def three_runs(store):
    """Three runs with known curves: a value logged twice at one step (the later wins), a run without a metric."""
    client = MlflowClient(store)  # this test's store, whatever tracking URI an earlier test set in this process
    experiment_id = client.create_experiment("history")
    a, b, c = (client.create_run(experiment_id).info.run_id for _ in range(3))
    log_values(client, a, "val_loss", [(1, 0.5), (2, 0.4), (3, 0.3), (2, 0.35)])
    log_values(client, a, "epoch_time_s", [(1, 2.0), (2, 1.0)])
    log_values(client, b, "val_loss", [(1, 0.9)])
    log_values(client, c, "epoch_time_s", [(1, 3.0)])
    expected = {
        a: {"val_loss": {1: 0.5, 2: 0.35, 3: 0.3}, "epoch_time_s": {1: 2.0, 2: 1.0}},
        b: {"val_loss": {1: 0.9}, "epoch_time_s": {}},
        c: {"val_loss": {}, "epoch_time_s": {1: 3.0}},
    }
    return client, [a, b, c], expected


def test_bulk_histories_of_a_sql_store_match_what_was_logged(three_runs):
    client, ids, expected = three_runs
    assert history.metric_histories(client, ids, ("val_loss", "epoch_time_s")) == expected
    assert history.metric_histories(client, ids, ("val_loss", "epoch_time_s"), bulk=False) == expected


def test_chunks_and_a_filled_answer_fall_back_to_run_by_run(three_runs, monkeypatch):
    client, ids, expected = three_runs
    monkeypatch.setattr(history, "BULK_RUNS", 2)  # two calls per metric: runs a, b then c
    assert history.metric_histories(client, ids, ("val_loss", "epoch_time_s")) == expected
    monkeypatch.setattr(history, "BULK_POINTS", 2)  # a's four val_loss values fill the answer: asked run by run
    assert history.metric_histories(client, ids, ("val_loss", "epoch_time_s")) == expected


@pytest.fixture
def server(tmp_path):
    with mlflow_server(tmp_path) as url:
        yield url


def server_sweep(uri: str, n_runs: int, epochs: int) -> str:
    """A sweep's child runs with per-epoch curves, as jobs log them; returns the experiment's id."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("history")
    parent = client.create_run(experiment_id, tags={names.TAG_SWEEP: "parent"}).info.run_id
    for r in range(n_runs):
        run_id = client.create_run(experiment_id, tags={names.TAG_PARENT: parent}).info.run_id
        metrics = [
            Metric(key, value, 1_000_000 + epoch, epoch)
            for epoch in range(1, epochs + 1)
            for key, value in {"val_loss": 1 / (epoch + r), "epoch_time_s": 1.0 + r / 10}.items()
        ]
        client.log_batch(run_id, metrics=metrics)
    return experiment_id


@pytest.mark.slow
def test_bulk_histories_from_a_tracking_server_match_run_by_run(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    experiment_id = server_sweep(server, n_runs=6, epochs=4)
    client = MlflowClient(server)
    ids = [r.info.run_id for r in client.search_runs([experiment_id], "tags.`mlflow.parentRunId` != ''")]
    keys = ("val_loss", "epoch_time_s")
    one_by_one = {i: {k: {m.step: m.value for m in client.get_metric_history(i, k)} for k in keys} for i in ids}
    assert len(ids) == 6 and all(len(one_by_one[i]["val_loss"]) == 4 for i in ids)
    assert history.metric_histories(client, ids, keys) == one_by_one
