"""Each private or undocumented API in mlp_sweep.compat, exercised against the installed libraries.

A failure here after an upgrade names the use that broke and the versions it was
checked against: fix ``mlp_sweep/compat.py`` (and its pins in pyproject.toml), nothing else.
"""

import importlib.metadata

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from mlp_sweep import compat


def broke(use: str, library: str) -> str:
    """The message of a failed check: what broke, on which version, against which it was checked."""
    installed = importlib.metadata.version(library)
    return (
        f"mlp_sweep.compat.{use} no longer works with {library} {installed} (checked against "
        f"{compat.CHECKED[library]}): update it in mlp_sweep/compat.py"
    )


def test_run_context_tags_adds_what_start_run_would(store):
    tags = compat.run_context_tags({"mine": "1"})
    assert tags["mine"] == "1" and "mlflow.user" in tags and "mlflow.source.name" in tags, broke(
        "run_context_tags", "mlflow"
    )


def test_bulk_history_of_a_sql_store_matches_the_client(store):
    client = MlflowClient(store)
    experiment_id = client.create_experiment("compat")
    runs = [client.create_run(experiment_id).info.run_id for _ in range(2)]
    for i, run_id in enumerate(runs):  # run i logs 10*i + step at steps 1 and 2
        client.log_batch(run_id, metrics=[Metric("val_loss", 10.0 * i + step, 0, step) for step in (1, 2)])
    try:
        store_ = compat.tracking_store(client)
        bulk = compat.sql_metric_history_bulk(store_, runs, "val_loss", 100)
    except (AttributeError, TypeError) as e:
        pytest.fail(f"{broke('tracking_store / sql_metric_history_bulk', 'mlflow')}: {e}")
    expected = [(runs[0], 1, 1.0), (runs[0], 2, 2.0), (runs[1], 1, 11.0), (runs[1], 2, 12.0)]
    assert sorted(bulk) == sorted(expected), broke("sql_metric_history_bulk", "mlflow")
    assert compat.server_metric_history_bulk(store_, runs, "val_loss", 100) is None  # not a server


def test_server_bulk_endpoint_is_where_the_ui_asks():
    from mlflow.server import app

    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert compat.BULK_HISTORY_ENDPOINT in routes, broke("BULK_HISTORY_ENDPOINT", "mlflow")


def test_a_running_optuna_trial_reopens_under_its_number():
    study = optuna.create_study(storage="sqlite:///:memory:")
    asked = study.ask()
    (frozen,) = study.get_trials(deepcopy=False)
    try:
        reopened = optuna.trial.Trial(study, compat.optuna_trial_id(frozen))
    except (AttributeError, TypeError) as e:
        pytest.fail(f"{broke('optuna_trial_id', 'optuna')}: {e}")
    assert reopened.number == asked.number == 0, broke("optuna_trial_id", "optuna")
    study.tell(reopened, 1.0)
    assert study.trials[0].value == 1.0


def test_basic_sweeper_counts_the_grid():
    parsed = OverridesParser.create().parse_overrides(["model=mlp2,mlp3,mlp5", "reg=none,bn", "trainer.epochs=3"])
    try:
        jobs = compat.basic_sweeper_jobs(parsed)
    except (ImportError, AttributeError, TypeError) as e:
        pytest.fail(f"{broke('basic_sweeper_jobs', 'hydra-core')}: {e}")
    assert jobs == 3 * 2, broke("basic_sweeper_jobs", "hydra-core")


def test_a_dataset_becomes_the_input_entity_the_client_logs(store):
    import mlflow.data
    import numpy as np

    dataset = mlflow.data.from_numpy(np.zeros((2, 3)), targets=np.zeros(2), name="d", digest="abc")
    try:
        entry = compat.dataset_input(dataset, "training")
    except (AttributeError, TypeError) as e:
        pytest.fail(f"{broke('dataset_input', 'mlflow')}: {e}")
    client = MlflowClient(store)
    run_id = client.create_run(client.create_experiment("inputs")).info.run_id
    client.log_inputs(run_id, datasets=[entry])
    (logged,) = client.get_run(run_id).inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("d", "abc"), broke("dataset_input", "mlflow")
    assert [(t.key, t.value) for t in logged.tags] == [("mlflow.data.context", "training")]


def test_sweep_callbacks_reads_hydras_callbacks_list():
    from hydra._internal.callbacks import Callbacks
    from hydra.types import HydraContext
    from omegaconf import OmegaConf

    config = OmegaConf.create({"hydra": {"callbacks": {}}})
    sweeper = type("Sweeper", (), {"hydra_context": HydraContext(config_loader=None, callbacks=Callbacks(config))})()
    assert compat.sweep_callbacks(sweeper) == [], broke("sweep_callbacks", "hydra-core")
    assert compat.sweep_callbacks(object()) == []


def test_the_ray_launchers_private_helpers_are_where_compat_finds_them():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[ray]'")
    from hydra_plugins.hydra_ray_launcher import _launcher_util

    assert callable(_launcher_util.start_ray) and callable(_launcher_util.launch_job_on_ray), broke(
        "ray_start and ray_launch_job", "hydra-ray-launcher"
    )
