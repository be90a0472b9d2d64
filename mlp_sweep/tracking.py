"""MLflow conventions: where runs go, what they are called, what identifies them.

The names other code reads (tags, metrics, environment variables) are
defined here once. Nothing here imports TensorFlow.
"""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

# Set by the sweep callback for its jobs (not MLFLOW_RUN_ID: that one would
# hijack the job's own run, mlflow#15713).
ENV_PARENT_RUN = "MLP_SWEEP_PARENT_RUN_ID"
ENV_N_JOBS = "MLP_SWEEP_N_JOBS"

TAG_CONFIG_HASH = "mlp_sweep.config_hash"
TAG_DATASET_SHA = "mlp_sweep.dataset_sha256"
TAG_GIT_COMMIT = "mlp_sweep.git_commit"
TAG_FAILURE = "mlp_sweep.failure"
TAG_SWEEP = "mlp_sweep.sweep"  # "parent" on a sweep's parent run
TAG_OVERRIDES = "mlp_sweep.overrides"
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "mlp_sweep.model_uri"  # models:/m-... of the run's logged Keras model

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")
FINAL_METRICS = ("test_loss", "test_accuracy", "train_time_s")

# Keys that do not change what a run computes: left out of the config hash.
HASH_EXCLUDED = ("trainer.seed", "tracking", "dataset.data_dir")


def resolve_uri(uri: str | None) -> str:
    """Config first, then $MLFLOW_TRACKING_URI, then MLflow's default store.

    A bare relative path or ``sqlite:///relative.db`` is made absolute against
    the launch directory, so that every job (in any process) writes one store.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if "://" not in uri:
        return Path(uri).resolve().as_uri()
    return uri


def use_experiment(uri: str | None, experiment: str) -> str:
    """Point MLflow at the store and experiment; return the experiment id."""
    mlflow.set_tracking_uri(resolve_uri(uri))
    found = MlflowClient().get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(experiment)


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys: ``model.widths`` -> ``[356, 105, 51]``."""

    def walk(node, prefix: str):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1], json.dumps(node) if isinstance(node, list) else str(node)

    return dict(walk(OmegaConf.to_container(cfg, resolve=True), ""))


def config_hash(cfg: DictConfig) -> str:
    """What a run computes, apart from its seed: runs with one hash are repeats."""
    kept = {k: v for k, v in flat_params(cfg).items() if not any(k == x or k.startswith(x + ".") for x in HASH_EXCLUDED)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def git_commit() -> str:
    """The source checkout's commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
