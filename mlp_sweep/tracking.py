"""MLflow conventions: where runs go, what they are called, what identifies them.

The names other code reads (tags, metrics, environment variables) are
defined here once. Nothing here imports TensorFlow.
"""

import base64
import contextlib
import fcntl
import os
import random
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

# MLflow takes a second to import: it is imported where it is used, so that the
# command line's --help and config errors (which read the names below) answer at once.

from mlp_sweep.errors import TrackingError

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Set by the sweep callback for its jobs (not MLFLOW_RUN_ID: that one would
# hijack the job's own run, mlflow#15713).
ENV_PARENT_RUN = "MLP_SWEEP_PARENT_RUN_ID"
ENV_VARYING = "MLP_SWEEP_VARYING"  # JSON list of the keys the sweep varies: they go into run names
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"  # MLflow's own
# MLflow's own credential variables: the one way credentials reach a job (never a config value).
ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"
CREDENTIAL_VARS = (ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN)

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
TAG_WRITABLE = "mlp_sweep.writable"  # on the experiment: set where a server's write permission is checked
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
    import mlflow

    uri = without_userinfo(uri or os.environ.get(ENV_TRACKING_URI) or mlflow.get_tracking_uri())
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if "://" not in uri:
        return Path(uri).resolve().as_uri()
    return uri


def without_userinfo(uri: str) -> str:
    """The URI without ``user:password@``, which goes into MLflow's own variables instead.

    MLflow's client would accept the userinfo, but every place that stores or
    shows the URI (params, config.yaml, tags, messages) would then hold the
    password; the bare URI and $MLFLOW_TRACKING_USERNAME/PASSWORD reach the same
    server with the same login, and the variables travel to every job.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri
    os.environ[ENV_USERNAME] = urllib.parse.unquote(parts.username or "")
    if parts.password is not None:
        os.environ[ENV_PASSWORD] = urllib.parse.unquote(parts.password)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def argv_without_userinfo(argv: list[str]) -> list[str]:
    """The command line with every ``key=URI``'s userinfo moved into MLflow's variables (see without_userinfo).

    For the entry point, before Hydra records the command line in the sweep's
    folder (.hydra/, multirun.yaml) and in its launch lines.
    """
    bare = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        bare.append(key + sep + without_userinfo(value) if sep else arg)
    return bare


def credentials() -> dict[str, str]:
    """MLflow's credential variables that are set here, to hand to jobs in other processes."""
    return {k: os.environ[k] for k in CREDENTIAL_VARS if os.environ.get(k)}


def use_experiment(uri: str | None, experiment: str) -> str:
    """Point MLflow at the store and experiment, creating either if need be; return the experiment id.

    Safe when several commands start at once on a fresh store: processes on this
    machine take turns at a SQLite store's creation and migration (MLflow's own
    migration races, and its loser finds the winner's half-made tables), and
    whoever still loses a race, or the one to create the experiment, tries again.
    """
    import mlflow

    resolved = resolve_uri(uri)
    check_reachable(resolved)
    mlflow.set_tracking_uri(resolved)
    for attempt in range(STORE_ATTEMPTS):
        try:
            with store_creation_turn(resolved):
                client = mlflow.MlflowClient()
                found = client.get_experiment_by_name(experiment)
                experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
            break
        except Exception as e:
            if "file is not a database" in str(e):
                raise TrackingError(f"{redacted(resolved)} is not an MLflow store (file is not a database): point "
                                    "tracking.uri at an MLflow store, or at a new file name to create one") from e
            if attempt == STORE_ATTEMPTS - 1 or not resolved.startswith("sqlite:"):
                raise TrackingError(f"the MLflow store {redacted(resolved)} cannot be opened ({first_line(e)}): check "
                                    "tracking.uri (or $MLFLOW_TRACKING_URI) and that its server is running") from e
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))  # another command creating the store or experiment
    check_writable(client, resolved, experiment, experiment_id)
    return experiment_id


def check_writable(client: "MlflowClient", uri: str, experiment: str, experiment_id: str) -> None:
    """Raise TrackingError before any training when this login may not write to the experiment.

    A server's permissions are checked only on a write, so this writes a tag
    (the permission it takes, EDIT, is the one creating runs takes).
    """
    from mlflow.exceptions import MlflowException

    if not uri.startswith(("http://", "https://")):
        return
    try:
        client.set_experiment_tag(experiment_id, TAG_WRITABLE, "true")
    except MlflowException as e:
        if e.error_code != "PERMISSION_DENIED":
            raise
        raise TrackingError(
            f"user {login_name()} may not write to experiment {experiment} on {redacted(uri)}: "
            f"ask the server's admin for EDIT on it (scripts/mlflow_server.py grant {login_name()} {experiment} EDIT), "
            "or set tracking.experiment to a new name of your own"
        ) from e


STORE_ATTEMPTS = 8  # for a SQLite store, the one that races; a server answers for itself


@contextlib.contextmanager
def store_creation_turn(uri: str):
    """For a SQLite store: hold an exclusive lock on its folder (flock, released when the process ends)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    folder = Path(uri.removeprefix("sqlite:///")).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def first_line(error: BaseException) -> str:
    """An exception's message, first line only: SQLAlchemy appends the SQL and a link."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:300]


def redact_text(text: str) -> str:
    """Any text with the userinfo of every URI in it masked (Hydra overrides, YAML, messages)."""
    return USERINFO.sub(r"\1***@", text)


USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


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
    """Raise TrackingError at once when an HTTP tracking server does not answer, or refuses this login.

    The probe asks what every sweep asks first (a search of experiments), with
    the credentials MLflow's client would send: /health answers without a
    login, so it would pass a wrong password on to fail later, in every job.
    """
    uri = without_userinfo(uri)
    if not uri.startswith(("http://", "https://")):
        return
    probe = urllib.request.Request(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1",
                                   headers=auth_headers())
    try:
        urllib.request.urlopen(probe, timeout=timeout_s).close()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise TrackingError(refusal(uri, e.code)) from None
        return  # it answered, if not to this path (a proxy, an older server): reachable
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(
            f"tracking server {redacted(uri)} cannot be reached ({reason}): start it (mlflow server --port ...), "
            "or point tracking.uri or $MLFLOW_TRACKING_URI at a reachable server or a local store (sqlite:///mlflow.db)"
        ) from e


def login_name() -> str:
    """Who this process logs in as, for messages: the username, or "(token)"."""
    from mlflow.utils.credentials import read_mlflow_creds  # env first, then ~/.mlflow/credentials, as MLflow reads them

    return read_mlflow_creds().username or "(token)"


def auth_headers() -> dict[str, str]:
    """The Authorization header MLflow's client sends: basic from username and password, else the bearer token."""
    from mlflow.utils.credentials import read_mlflow_creds

    creds = read_mlflow_creds()
    if creds.username and creds.password:
        return {"Authorization": "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    if os.environ.get(ENV_TOKEN):
        return {"Authorization": f"Bearer {os.environ[ENV_TOKEN]}"}
    return {}


def refusal(uri: str, status: int) -> str:
    """One line for a server that refused this login (401) or its access (403), naming the fix."""
    if status == 403:
        return (f"tracking server {redacted(uri)} refused access to user {login_name()} (HTTP 403): "
                "ask the server's admin for permission (docs/team.md)")
    if not auth_headers():
        return (f"tracking server {redacted(uri)} asks for a login (HTTP 401): set {ENV_USERNAME} and {ENV_PASSWORD} "
                f"(or {ENV_TOKEN}) to your account on it")
    return (f"tracking server {redacted(uri)} refused the login of user {login_name()} (HTTP 401): "
            f"check {ENV_USERNAME} and {ENV_PASSWORD} (or {ENV_TOKEN}), or ask the server's admin to reset the password")


def git_commit() -> str:
    """The source checkout's commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
