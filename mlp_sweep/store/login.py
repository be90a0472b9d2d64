"""The login that reaches a tracking server: the probe that checks it before any training, the headers MLflow's
client sends, and the one-line refusals that name the fix."""

import base64
import os
import urllib.error
import urllib.request

from mlp_sweep import names
from mlp_sweep.errors import TrackingError
from mlp_sweep.store.redaction import redacted, split_userinfo

# A probe, not a request MLflow retries: its client tries a dead server for
# minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT).
REACHABLE_TIMEOUT_S = 5.0


def check_reachable(uri: str, timeout_s: float = REACHABLE_TIMEOUT_S) -> None:
    """Raise TrackingError at once when an HTTP tracking server does not answer, or refuses this login.

    The probe asks what every sweep asks first (a search of experiments), with
    the credentials MLflow's client would send (or the URI's own login): /health
    answers without a login, so it would pass a wrong password on to fail later, in every job.
    """
    uri, login = split_userinfo(uri)
    if not uri.startswith(("http://", "https://")):
        return
    probe = urllib.request.Request(
        uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1", headers=auth_headers(login)
    )
    try:
        urllib.request.urlopen(probe, timeout=timeout_s).close()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise TrackingError(refusal(uri, e.code, login)) from None
        return  # it answered, if not to this path (a proxy, an older server): reachable
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TrackingError(
            f"tracking server {redacted(uri)} cannot be reached ({reason}): start it (mlflow server --port ...), "
            "or point tracking.uri or $MLFLOW_TRACKING_URI at a reachable server or a local store (sqlite:///mlflow.db)"
        ) from e


def login_name(login: dict[str, str] | None = None) -> str:
    """Who this process logs in as, for messages: the username, or "(token)"."""
    from mlflow.utils.credentials import (
        read_mlflow_creds,
    )  # env first, then ~/.mlflow/credentials, as MLflow reads them

    return (login or {}).get(names.ENV_USERNAME) or read_mlflow_creds().username or "(token)"


def auth_headers(login: dict[str, str] | None = None) -> dict[str, str]:
    """The Authorization header MLflow's client sends (basic from username and password, else the bearer
    token), or that of ``login`` where given."""
    from mlflow.utils.credentials import read_mlflow_creds

    if login:
        username, password = login.get(names.ENV_USERNAME), login.get(names.ENV_PASSWORD, "")
    else:
        creds = read_mlflow_creds()
        username, password = creds.username, creds.password
    if username and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}
    if os.environ.get(names.ENV_TOKEN):
        return {"Authorization": f"Bearer {os.environ[names.ENV_TOKEN]}"}
    return {}


def refusal(uri: str, status: int, login: dict[str, str] | None = None) -> str:
    """One line for a server that refused this login (401) or its access (403), naming the fix."""
    if status == 403:
        return (
            f"tracking server {redacted(uri)} refused access to user {login_name(login)} (HTTP 403): "
            "ask the server's admin for permission (docs/team.md)"
        )
    if not auth_headers(login):
        return (
            f"tracking server {redacted(uri)} asks for a login (HTTP 401): "
            f"set {names.ENV_USERNAME} and {names.ENV_PASSWORD} (or {names.ENV_TOKEN}) to your account on it"
        )
    return (
        f"tracking server {redacted(uri)} refused the login of user {login_name(login)} (HTTP 401): "
        f"check {names.ENV_USERNAME} and {names.ENV_PASSWORD} (or {names.ENV_TOKEN}), "
        "or ask the server's admin to reset the password"
    )
