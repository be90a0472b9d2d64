"""The per-epoch metrics of many runs in a few calls, for reports and the search.

``MlflowClient.get_metric_history`` answers one run and one metric a call: a
report of 1,000 runs with three curves each made 3,000 calls to the tracking
server. MLflow's stores answer many runs at once, though not through the
client: a SQL store has ``get_metric_history_bulk`` (one query), and a tracking
server the bulk endpoint its UI draws charts from (up to 100 runs a call,
with the same permission checks as any read). Any other store, or a server
without that endpoint, is asked run by run.
"""

from mlflow.exceptions import MlflowException
from mlflow.store.tracking.rest_store import RestStore
from mlflow.tracking import MlflowClient
from mlflow.utils.rest_utils import http_request_safe

BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
BULK_RUNS = 100  # the server's limit of runs a call
BULK_POINTS = 25_000  # and of values a call: a chunk that fills it is asked again run by run

History = dict[str, dict[str, dict[int, float]]]  # run id -> metric -> step -> value


def metric_histories(client: MlflowClient, run_ids: list[str], keys: tuple[str, ...], bulk: bool = True) -> History:
    """Every value each run logged of each metric, by step (the last value logged at a step wins).

    ``bulk=False`` asks run by run, as the client alone would (the benchmark's comparison).
    """
    store = client._tracking_client.store  # the client's own store: its URI and credentials
    histories: History = {run_id: {key: {} for key in keys} for run_id in run_ids}
    for key in keys:
        for start in range(0, len(run_ids), BULK_RUNS):
            chunk = run_ids[start:start + BULK_RUNS]
            for run_id, step, value in (_values(store, chunk, key) if bulk else _one_by_one(store, chunk, key)):
                histories[run_id][key][step] = value
    return histories


def _values(store, run_ids: list[str], key: str) -> list[tuple[str, int, float]]:
    """(run id, step, value) of one metric for up to 100 runs, each run's in the order logged."""
    bulk = None
    if isinstance(store, RestStore):
        try:
            response = http_request_safe(store.get_host_creds(), BULK_ENDPOINT, "GET", params=[
                *(("run_id", run_id) for run_id in run_ids), ("metric_key", key), ("max_results", BULK_POINTS)])
            bulk = [(m["run_id"], int(m.get("step", 0)), float(m["value"])) for m in response.json().get("metrics", [])]
        except MlflowException:  # a server without the endpoint (or behind a proxy that hides it)
            pass
    elif hasattr(store, "get_metric_history_bulk"):
        bulk = [(m.run_id, m.step, m.value) for m in store.get_metric_history_bulk(run_ids, key, BULK_POINTS)]
    if bulk is not None and len(bulk) < BULK_POINTS:
        return bulk
    return _one_by_one(store, run_ids, key)


def _one_by_one(store, run_ids: list[str], key: str) -> list[tuple[str, int, float]]:
    return [(run_id, m.step, m.value) for run_id in run_ids for m in store.get_metric_history(run_id, key)]
