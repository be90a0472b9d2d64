"""The per-epoch metrics of many runs in a few calls, for reports and the search.

``MlflowClient.get_metric_history`` answers one run and one metric a call: a
report of 1,000 runs with three curves each made 3,000 calls to the tracking
server. MLflow's stores answer many runs at once, though not through the
client: a SQL store in one query, a tracking server through the bulk endpoint
its UI draws charts from (up to 100 runs a call, with the same permission
checks as any read); both are reached through :mod:`mlp_sweep.compat`. Any
other store, or a server without that endpoint, is asked run by run.
"""

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlp_sweep import compat

BULK_RUNS = 100  # the server's limit of runs a call
BULK_POINTS = 25_000  # and of values a call: a chunk that fills it is asked again run by run

History = dict[str, dict[str, dict[int, float]]]  # run id -> metric -> step -> value


def metric_histories(client: MlflowClient, run_ids: list[str], keys: tuple[str, ...], bulk: bool = True) -> History:
    """Every value each run logged of each metric, by step (the last value logged at a step wins).

    ``bulk=False`` asks run by run, as the client alone would (the benchmark's comparison).
    """
    store = compat.tracking_store(client)  # the client's own store: its URI and credentials
    histories: History = {run_id: {key: {} for key in keys} for run_id in run_ids}
    for key in keys:
        for start in range(0, len(run_ids), BULK_RUNS):
            chunk = run_ids[start : start + BULK_RUNS]
            for run_id, step, value in _values(store, chunk, key) if bulk else _one_by_one(store, chunk, key):
                histories[run_id][key][step] = value
    return histories


def _values(store, run_ids: list[str], key: str) -> list[tuple[str, int, float]]:
    """(run id, step, value) of one metric for up to 100 runs, each run's in the order logged."""
    try:
        bulk = compat.server_metric_history_bulk(store, run_ids, key, BULK_POINTS)
    except MlflowException:  # a server without the endpoint (or behind a proxy that hides it)
        bulk = None
    if bulk is None:
        bulk = compat.sql_metric_history_bulk(store, run_ids, key, BULK_POINTS)
    if bulk is not None and len(bulk) < BULK_POINTS:
        return bulk
    return _one_by_one(store, run_ids, key)


def _one_by_one(store, run_ids: list[str], key: str) -> list[tuple[str, int, float]]:
    return [(run_id, m.step, m.value) for run_id in run_ids for m in store.get_metric_history(run_id, key)]
