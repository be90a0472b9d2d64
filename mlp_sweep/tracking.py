"""MLflow conventions: where runs go, what they are called, what identifies them.

The names other code reads (tags, metrics, environment variables) are
defined here once. Nothing here imports TensorFlow.
"""

import os
import random
import subprocess
import time
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
ENV_VARYING = "MLP_SWEEP_VARYING"  # JSON list of the keys the sweep varies: they go into run names
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"  # MLflow's own

# A run's identity (mlp_sweep.identity): the four parts, and one key for all of them.
TAG_CONFIG_HASH = "mlp_sweep.config_hash"
TAG_SEED = "mlp_sweep.seed"
TAG_DATASET_SHA = "mlp_sweep.dataset_sha256"  # of the data actually read
TAG_CODE = "mlp_sweep.code_fingerprint"  # of the modules that build, train and evaluate
TAG_GRID_POINT = "mlp_sweep.grid_point"
TAG_GIT_COMMIT = "mlp_sweep.git_commit"  # for the record only: not part of the identity
TAG_FAILURE = "mlp_sweep.failure"
TAG_SWEEP = "mlp_sweep.sweep"  # "parent" on a sweep's parent run
TAG_OVERRIDES = "mlp_sweep.overrides"
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "mlp_sweep.model_uri"  # models:/m-... of the run's logged Keras model
TAG_PROCESS = "mlp_sweep.process"  # host:pid:start of the process holding the run open
# On a sweep's parent run, one per run a job did not train because the run
# already held its grid point (FINISHED, or claimed by another command):
# <prefix><run id> -> grid point key. Keyed by run id, so no two can collide.
TAG_REUSED_PREFIX = "mlp_sweep.reused."

# What every run logs as artifacts (the model is a LoggedModel, named by TAG_MODEL_URI).
CURVES_PNG, CONFUSION_PNG, SUMMARY_TXT, CONFIG_YAML = "curves.png", "confusion_matrix.png", "model_summary.txt", "config.yaml"
RUN_ARTIFACTS = (CURVES_PNG, CONFUSION_PNG, SUMMARY_TXT, CONFIG_YAML)

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")
FINAL_METRICS = ("test_loss", "test_accuracy", "train_time_s")


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
    """Point MLflow at the store and experiment, creating either if need be; return the experiment id.

    Safe when several commands start at once on a fresh store: the loser of
    MLflow's schema-migration race, or of creating the experiment, tries again.
    """
    resolved = resolve_uri(uri)
    check_reachable(resolved)
    mlflow.set_tracking_uri(resolved)
    for attempt in range(STORE_ATTEMPTS):
        try:
            client = MlflowClient()
            found = client.get_experiment_by_name(experiment)
            return found.experiment_id if found is not None else client.create_experiment(experiment)
        except Exception as e:
            if "file is not a database" in str(e):
                raise TrackingError(f"{redacted(resolved)} is not an MLflow store (file is not a database): point "
                                    "tracking.uri at an MLflow store, or at a new file name to create one") from e
            if attempt == STORE_ATTEMPTS - 1 or not resolved.startswith("sqlite:"):
                raise TrackingError(f"the MLflow store {redacted(resolved)} cannot be opened ({first_line(e)}): check "
                                    "tracking.uri (or $MLFLOW_TRACKING_URI) and that its server is running") from e
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))  # another command creating the store or experiment
    raise AssertionError("unreachable")


STORE_ATTEMPTS = 8  # for a SQLite store, the one that races; a server answers for itself


def first_line(error: BaseException) -> str:
    """An exception's message, first line only: SQLAlchemy appends the SQL and a link."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:300]


def redacted(uri: str) -> str:
    """The URI without any password or token it carries: ``https://***@host/...``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"


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


def git_commit() -> str:
    """The source checkout's commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
