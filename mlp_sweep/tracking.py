"""MLflow conventions: where runs go, what they are called, what identifies them.

The names other code reads (tags, metrics, environment variables) are
defined here once. Nothing here imports TensorFlow.
"""

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from mlp_sweep.errors import TrackingError

# Set by the sweep callback for its jobs (not MLFLOW_RUN_ID: that one would
# hijack the job's own run, mlflow#15713).
ENV_PARENT_RUN = "MLP_SWEEP_PARENT_RUN_ID"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"  # MLflow's own

TAG_CONFIG_HASH = "mlp_sweep.config_hash"
TAG_DATASET_SHA = "mlp_sweep.dataset_sha256"
TAG_GIT_COMMIT = "mlp_sweep.git_commit"
TAG_FAILURE = "mlp_sweep.failure"
TAG_SWEEP = "mlp_sweep.sweep"  # "parent" on a sweep's parent run
TAG_OVERRIDES = "mlp_sweep.overrides"
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "mlp_sweep.model_uri"  # models:/m-... of the run's logged Keras model
TAG_SEED = "mlp_sweep.seed"  # with the config hash, names a grid point (set when the run opens)
TAG_PROCESS = "mlp_sweep.process"  # host:pid:start of the process holding the run open
# On a sweep's parent run, one per job that found its grid point already
# FINISHED and reused that run instead of training: <prefix><run name> -> run id.
TAG_REUSED_PREFIX = "mlp_sweep.reused."

# What every run logs as artifacts (the model is a LoggedModel, named by TAG_MODEL_URI).
CURVES_PNG, CONFUSION_PNG, SUMMARY_TXT, CONFIG_YAML = "curves.png", "confusion_matrix.png", "model_summary.txt", "config.yaml"
RUN_ARTIFACTS = (CURVES_PNG, CONFUSION_PNG, SUMMARY_TXT, CONFIG_YAML)

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")
FINAL_METRICS = ("test_loss", "test_accuracy", "train_time_s")

# Keys that do not change what a run computes: left out of the config hash.
HASH_EXCLUDED = ("trainer.seed", "trainer.threads", "trainer.steps_per_execution", "tracking", "dataset.data_dir")


def resolve_uri(uri: str | None) -> str:
    """Config first, then $MLFLOW_TRACKING_URI, then MLflow's default store.

    A bare relative path or ``sqlite:///relative.db`` is made absolute against
    the launch directory, so that every job (in any process) writes one store.
    """
    uri = uri or os.environ.get(ENV_TRACKING_URI) or mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if "://" not in uri:
        return Path(uri).resolve().as_uri()
    return uri


def use_experiment(uri: str | None, experiment: str) -> str:
    """Point MLflow at the store and experiment; return the experiment id."""
    resolved = resolve_uri(uri)
    check_reachable(resolved)
    mlflow.set_tracking_uri(resolved)
    found = MlflowClient().get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    return mlflow.create_experiment(experiment)


# A probe, not a request MLflow retries: its client tries a dead server for
# minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT).
REACHABLE_TIMEOUT_S = 5.0


def check_reachable(uri: str, timeout_s: float = REACHABLE_TIMEOUT_S) -> None:
    """Raise TrackingError at once when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s).close()
    except urllib.error.HTTPError:  # it answered, if not on /health (a proxy, an auth layer): reachable
        return
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(
            f"tracking server {uri} cannot be reached ({reason}): start it (mlflow server --port ...), "
            "or point tracking.uri or $MLFLOW_TRACKING_URI at a reachable server or a local store (sqlite:///mlflow.db)"
        ) from e


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys: ``model.widths`` -> ``[356, 105, 51]``."""

    def walk(node, prefix: str):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1], json.dumps(node) if isinstance(node, list) else str(node)

    return dict(walk(OmegaConf.to_container(cfg, resolve=True), ""))


def is_hashed(key: str) -> bool:
    """Whether a dotted config key counts towards the config hash (see HASH_EXCLUDED)."""
    return not any(key == x or key.startswith(x + ".") for x in HASH_EXCLUDED)


def config_hash(cfg: DictConfig) -> str:
    """What a run computes, apart from its seed: runs with one hash are repeats."""
    kept = {k: v for k, v in flat_params(cfg).items() if is_hashed(k)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def git_commit() -> str:
    """The source checkout's commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
