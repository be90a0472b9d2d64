"""Every use of a private or undocumented API of the libraries mlp_sweep builds on, in one place.

Each is the one way to get something the public API does not offer (named in
its docstring), checked against the versions in :data:`CHECKED`, which
``pyproject.toml``'s pins follow. ``tests/test_compat.py`` exercises each one
against the installed libraries, so that an upgrade that changes one fails
there, naming it, rather than somewhere deep in a sweep. Importing this module
imports neither Optuna nor TensorFlow: the training core loads it.
"""

from collections.abc import Iterable, Mapping, Sequence

# The releases each use below was checked against (pyproject.toml pins these ranges).
CHECKED = {
    "mlflow": "3.7 – 3.17",
    "optuna": "4.0 – 5.0",
    "hydra-core": "1.3.2",
    # the launchers of mlp_sweep/sweep/submitit_launcher.py and ray_launcher.py (tests/sweep/test_launchers.py)
    "hydra-submitit-launcher": "1.2.0",
    "submitit": "1.5.4",
    "hydra-ray-launcher": "1.2.2",
    "ray": "2.60",
}

# The tracking server's bulk endpoint that its UI draws charts from; not in MLflow's REST API reference.
BULK_HISTORY_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"


def run_context_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """``tags`` plus what ``mlflow.start_run`` adds by itself (user, source file, git commit of the script).

    ``MlflowClient.create_run`` adds none of them; MLflow's context registry
    (``mlflow.tracking.context.registry.resolve_tags``) is how the fluent API finds them.
    """
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags(dict(tags))


def tracking_store(client):
    """The store behind a client (its URI and credentials): ``MlflowClient._tracking_client.store``.

    The bulk history reads below need it; the client offers no bulk read of its own.
    """
    return client._tracking_client.store


def sql_metric_history_bulk(
    store, run_ids: Sequence[str], key: str, max_results: int
) -> list[tuple[str, int, float]] | None:
    """(run id, step, value) of one metric for many runs in one query, where the store is SQL; else None.

    ``SqlAlchemyStore.get_metric_history_bulk`` is public on the store, not on the client.
    """
    if not hasattr(store, "get_metric_history_bulk"):
        return None
    return [(m.run_id, m.step, m.value) for m in store.get_metric_history_bulk(list(run_ids), key, max_results)]


def server_metric_history_bulk(
    store, run_ids: Sequence[str], key: str, max_results: int
) -> list[tuple[str, int, float]] | None:
    """The same from a tracking server's UI endpoint (up to 100 runs a call); None where the store is no server.

    Raises MlflowException where the server lacks the endpoint (or a proxy hides it).
    """
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.utils.rest_utils import http_request_safe

    if not isinstance(store, RestStore):
        return None
    response = http_request_safe(
        store.get_host_creds(),
        BULK_HISTORY_ENDPOINT,
        "GET",
        params=[*(("run_id", run_id) for run_id in run_ids), ("metric_key", key), ("max_results", max_results)],
    )
    return [(m["run_id"], int(m.get("step", 0)), float(m["value"])) for m in response.json().get("metrics", [])]


def dataset_input(dataset, context: str):
    """An MLflow dataset as the input entity ``MlflowClient.log_inputs`` takes, with its context tag.

    The fluent ``mlflow.log_input`` builds this from ``Dataset._to_mlflow_entity()``; the client, which a run
    here logs through, has no public way from a ``Dataset`` to its entity.
    """
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    return DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])


def optuna_trial_id(frozen_trial) -> int:
    """The storage id of an Optuna trial (``FrozenTrial._trial_id``), to reopen a RUNNING trial as a ``Trial``.

    Optuna's ask() only makes new trials; a trial a killed command left RUNNING
    is continued under its own number through ``optuna.trial.Trial(study, id)``.
    """
    return frozen_trial._trial_id


def basic_sweeper_grid(overrides: Iterable) -> list[list[str]]:
    """The jobs Hydra's basic sweeper makes of parsed overrides, each a list of overrides
    (``BasicSweeper.split_arguments``, in ``hydra._internal``): a race's configs."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return [list(job) for batch in BasicSweeper.split_arguments(list(overrides), None) for job in batch]


def basic_sweeper_jobs(overrides: Iterable) -> int:
    """How many jobs Hydra's basic sweeper makes of parsed overrides: the sweep's job count, for its ``[k/N]``
    lines."""
    return len(basic_sweeper_grid(overrides))


def sweep_callbacks(sweeper) -> list:
    """The Hydra callbacks of a sweep, as its sweeper holds them (``hydra_context.callbacks.callbacks``:
    Hydra's ``Callbacks`` keeps its list in an undocumented attribute); [] where there is none."""
    return list(getattr(getattr(getattr(sweeper, "hydra_context", None), "callbacks", None), "callbacks", []))


def ray_start(init_cfg) -> None:
    """hydra-ray-launcher's ``start_ray`` (in its private ``_launcher_util``): ``ray.init`` as the launcher calls it."""
    from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray

    start_ray(init_cfg)


def ray_launch_job(hydra_context, remote, sweep_config, task_function, singleton_state):
    """hydra-ray-launcher's ``launch_job_on_ray`` (in its private ``_launcher_util``): one job as a Ray task."""
    from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray

    return launch_job_on_ray(hydra_context, remote, sweep_config, task_function, singleton_state)
