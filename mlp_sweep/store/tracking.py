"""The MLflow store: where runs go, the experiment they go in, the UI's pages on them.

The login that reaches a server is :mod:`mlp_sweep.store.login`'s, and the URIs without
it :mod:`mlp_sweep.store.redaction`'s. The names of tags and variables are in
:mod:`mlp_sweep.names`. Nothing here imports TensorFlow.
"""

import contextlib
import fcntl
import logging
import os
import random
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

# MLflow takes a second to import: it is imported where it is used, so that the
# command line's --help and config errors (which read the names below) answer at once.
from mlp_sweep import names
from mlp_sweep.errors import TrackingError, first_line
from mlp_sweep.store.login import check_reachable, login_name
from mlp_sweep.store.redaction import redacted, split_userinfo

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


def resolve_uri(uri: str | None) -> str:
    """Config first, then $MLFLOW_TRACKING_URI, then MLflow's default store.

    A bare relative path or ``sqlite:///relative.db`` is made absolute against
    the launch directory, so that every job (in any process) writes one store.
    A URI that still holds a login is refused: the command line moves it into
    MLflow's variables (:func:`argv_without_userinfo`), where no param, tag or
    message can show it.
    """
    import mlflow

    given = uri or os.environ.get(names.ENV_TRACKING_URI) or mlflow.get_tracking_uri()
    uri, login = split_userinfo(given)
    if login:
        raise TrackingError(
            f"the tracking URI {redacted(given)} holds a login: give the bare URI and set "
            f"{names.ENV_USERNAME} and {names.ENV_PASSWORD} (the command line does this itself)"
        )
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    if "://" not in uri:
        return Path(uri).resolve().as_uri()
    return uri


def open_experiment(uri: str | None, experiment: str) -> tuple["MlflowClient", str]:
    """A client of the store, and the experiment's id: either is created if need be.

    The one client a sweep or a run opens, handed down to everything that reads or
    writes the store; MLflow's process-wide tracking URI is left alone.

    Safe when several commands start at once on a fresh store: processes on this
    machine take turns at a SQLite store's creation and migration (MLflow's own
    migration races, and its loser finds the winner's half-made tables), and
    whoever still loses a race, or the one to create the experiment, tries again.
    A new store is announced by one line of ours (logged at INFO), in place of
    the migration's dozen from MLflow and alembic.
    """
    import mlflow

    resolved = resolve_uri(uri)
    check_reachable(resolved)
    created = False
    for attempt in range(STORE_ATTEMPTS):
        try:
            with store_creation_turn(resolved), quiet_migration():
                created = created or new_sqlite_store(resolved)
                client = mlflow.MlflowClient(resolved)
                found = client.get_experiment_by_name(experiment)
                experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
            break
        except Exception as e:
            if "file is not a database" in str(e):
                raise TrackingError(
                    f"{redacted(resolved)} is not an MLflow store (file is not a database): point "
                    "tracking.uri at an MLflow store, or at a new file name to create one"
                ) from e
            if attempt == STORE_ATTEMPTS - 1 or not resolved.startswith("sqlite:"):
                raise TrackingError(
                    f"the MLflow store {redacted(resolved)} cannot be opened ({first_line(e)}): check "
                    "tracking.uri (or $MLFLOW_TRACKING_URI) and that its server is running"
                ) from e
            time.sleep(random.uniform(0.2, 1.0) * (attempt + 1))  # another command creating the store or experiment
    if created:
        log.info("created MLflow store %s", resolved)
    check_writable(client, resolved, experiment, experiment_id)
    return client, experiment_id


def check_writable(client: "MlflowClient", uri: str, experiment: str, experiment_id: str) -> None:
    """Raise TrackingError before any training when this login may not write to the experiment.

    A server's permissions are checked only on a write, so this writes a tag
    (the permission it takes, EDIT, is the one creating runs takes).
    """
    from mlflow.exceptions import MlflowException

    if not uri.startswith(("http://", "https://")):
        return
    try:
        client.set_experiment_tag(experiment_id, names.TAG_WRITABLE, "true")
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


def new_sqlite_store(uri: str) -> bool:
    """Whether opening ``uri`` makes a new SQLite store: its file is missing or empty."""
    if not uri.startswith("sqlite:///"):
        return False
    path = Path(uri.removeprefix("sqlite:///"))
    return not path.exists() or path.stat().st_size == 0


# What MLflow and alembic say at INFO as they make or migrate a store's tables ("Creating initial
# MLflow database tables...", "Context impl SQLiteImpl."): open_experiment's one line says it instead.
MIGRATION_LOGGERS = ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration")


@contextlib.contextmanager
def quiet_migration():
    """Hold the schema-migration loggers at WARNING or above: their INFO lines go, their warnings stay."""
    loggers = [logging.getLogger(name) for name in MIGRATION_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class UiLinks(NamedTuple):
    """Where MLflow's UI shows a sweep, and the command that serves it where no server does."""

    command: str | None  # ``mlflow ui --backend-store-uri ...`` for a store no server serves
    runs: str  # the experiment's training runs
    run: str  # one run's own page


LOCAL_UI = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves by default


def ui_links(uri: str, experiment_id: str, run_id: str) -> UiLinks:
    """The UI's pages for an experiment's runs and one run of it, in a store at ``uri``; no login in any of it.

    MLflow 3's UI opens an experiment on its GenAI pages; ``workflowType=machine_learning``
    opens it on *Model training* > *Training runs* instead, and keeps a run's page
    there (without it, the page files a parent run under *Evaluations*). A server's pages are on
    the server, without its URI's login; a store of files or a database is served by
    ``mlflow ui`` on this machine, started from any folder as the URI is absolute
    (:func:`resolve_uri`), and a database's password stays masked.
    """
    if uri.startswith(("http://", "https://")):
        base, command = split_userinfo(uri)[0].rstrip("/"), None
    else:
        base, command = LOCAL_UI, f"mlflow ui --backend-store-uri {redacted(uri)}"
    runs, training = f"{base}/#/experiments/{experiment_id}/runs", "?workflowType=machine_learning"
    return UiLinks(command, runs + training, f"{runs}/{run_id}{training}")


def git_commit() -> str:
    """The source checkout's commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
