"""A team's tracking server with a login: MLflow's basic-auth app started by
scripts/mlflow_server.py, credentials only in MLflow's own variables, and
clear refusals before any training.

The fast tests check the script's command line and the probe against a stub
server; the slow ones run the real app on 127.0.0.1 (``pip install -e ".[auth]"``).
"""

import http.server
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from mlflow.tracking import MlflowClient

from helpers import ROOT, free_port, requires, run_cli, stop
from mlp_sweep import names
from mlp_sweep.errors import TrackingError
from mlp_sweep.store import login, redaction, tracking

SERVER_SCRIPT = ROOT / "scripts" / "mlflow_server.py"
EXPERIMENT = "mlp_sweep_smoke"  # experiment=smoke's
ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD = (f"{who}-{secrets.token_hex(12)}" for who in ("admin", "alice", "bob"))
needs_auth = requires("flask_wtf", extra="auth")  # MLflow's basic-auth app


@pytest.fixture
def no_credentials(monkeypatch):
    """This process without MLflow's credential variables, and with them restored afterwards."""
    for name in (*names.CREDENTIAL_VARS, names.ENV_TRACKING_URI):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def script(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


# --- the script's command line (fast) ---------------------------------------------------


def dry_run(*args: str, env: dict | None = None) -> list[str]:
    result = script("--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_login_beyond_loopback_unless_insecure_flag(tmp_path):
    beyond = dry_run("--host", "0.0.0.0", "--root", str(tmp_path), env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert beyond[beyond.index("--app-name") + 1] == "basic-auth"
    assert ADMIN_PASSWORD not in " ".join(beyond), "no secret on the command line: ps shows it"
    assert "--app-name" not in dry_run("--root", str(tmp_path)), "loopback: no login unless --auth"
    assert "--app-name" in dry_run("--auth", "--root", str(tmp_path))
    assert "--app-name" not in dry_run("--host", "0.0.0.0", "--insecure-no-auth", "--root", str(tmp_path))


@needs_auth
def test_first_start_without_admin_password_is_refused(tmp_path, no_credentials, monkeypatch):
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    refused = script("--host", "0.0.0.0", "--root", str(tmp_path))
    assert refused.returncode != 0
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" in refused.stderr and "--admin-password-file" in refused.stderr


# --- the probe, against a stub server (fast) ------------------------------------------------


@contextmanager
def stub_server(status: int):
    """An HTTP server that answers every GET with ``status`` and keeps the Authorization headers it got."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_probe_sends_the_userinfo_as_mlflow_would_and_nothing_writes_the_environment(no_credentials):
    before = dict(os.environ)
    with stub_server(200) as (url, seen):
        uri = url.replace("http://", "http://alice:s3cr%40t@")
        assert redaction.split_userinfo(uri) == (url, {names.ENV_USERNAME: "alice", names.ENV_PASSWORD: "s3cr@t"})
        login.check_reachable(uri)
        with pytest.raises(TrackingError, match="holds a login: give the bare URI and set MLFLOW_TRACKING_USERNAME"):
            tracking.resolve_uri(uri)
    assert seen[-1] == "Basic YWxpY2U6czNjckB0"  # base64 of alice:s3cr@t
    assert dict(os.environ) == before


@pytest.mark.parametrize("status, fix", [(401, "MLFLOW_TRACKING_PASSWORD"), (403, "permission")])
def test_probe_refuses_401_and_403_in_one_line_without_the_secret(no_credentials, status, fix):
    with stub_server(status) as (url, _):
        with pytest.raises(TrackingError) as refused:
            login.check_reachable(url.replace("http://", "http://alice:s3cret@"))
    message = str(refused.value)
    assert fix in message and "s3cret" not in message and "\n" not in message


def test_unreachable_server_message_is_redacted(no_credentials):
    with stub_server(200) as (url, _):
        pass  # shut down: the port is closed now
    with pytest.raises(TrackingError, match="cannot be reached") as refused:
        login.check_reachable(url.replace("http://", "http://alice:s3cret@"))
    assert "s3cret" not in str(refused.value)


def test_redaction_of_text_and_command_lines(no_credentials):
    assert (
        redaction.redact_text("uri: https://u:tok@mlflow.example.org/x and http://h/")
        == "uri: https://***@mlflow.example.org/x and http://h/"
    )
    assert redaction.argv_without_userinfo(["-m", "tracking.uri=https://u:tok@h:5000", "model=mlp2"]) == (
        ["-m", "tracking.uri=https://h:5000", "model=mlp2"],
        {names.ENV_USERNAME: "u", names.ENV_PASSWORD: "tok"},
    )
    assert redaction.argv_without_userinfo(["report", "--tracking-uri", "http://u:tok@h"]) == (
        ["report", "--tracking-uri", "http://h"],
        {names.ENV_USERNAME: "u", names.ENV_PASSWORD: "tok"},
    )


# --- the real basic-auth app (slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """scripts/mlflow_server.py --auth on a free loopback port, with alice (EDIT on the smoke
    experiment) and bob (the default: READ) made the way docs/team.md says; yields (url, root)."""
    root = tmp_path_factory.mktemp("auth_server")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SERVER_SCRIPT),
            "--auth",
            "--port",
            str(port),
            "--root",
            str(root / "server"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not answers(f"{url}/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        admin = {
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD,
            "MLFLOW_TRACKING_URI": url,
        }
        for command, stdin in (
            (["add-user", "alice"], ALICE_PASSWORD),
            (["add-user", "bob"], BOB_PASSWORD),
            (["grant", "alice", EXPERIMENT, "EDIT"], None),
        ):
            done = script(*command, env=admin, stdin=stdin)
            assert done.returncode == 0, done.stderr[-2000:]
        yield url, root
    finally:
        stop(proc)
        log.close()


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
        return True
    except OSError:
        return False


def experiment_runs(url: str) -> list:
    """Every run of the smoke experiment, read as the admin (whose login the sweeps do not inherit)."""
    with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}):
        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        return client.search_runs([experiment.experiment_id]) if experiment else []


def sweep(tiny_mnist: Path, out: Path, env: dict, *overrides: str):
    """The smoke grid (two jobs, in two joblib workers) against the server, as a team member runs it."""
    return run_cli(
        "-m",
        "experiment=smoke",
        "model=mlp2,mlp3",
        "reg=none",
        "tracking=server",
        "tracking.log_model=false",
        "hydra/launcher=parallel",
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        f"hydra.sweep.dir={out}",
        *overrides,
        cwd=out.parent,
        env=env,
    )


@pytest.mark.slow
@needs_auth
def test_unauthenticated_requests_are_refused(auth_server):
    url, _ = auth_server
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert refused.value.code == 401


@pytest.mark.slow
@needs_auth
def test_sweep_with_credentials_logs_its_runs_and_no_secret_anywhere(auth_server, tiny_mnist, tmp_path, no_credentials):
    url, root = auth_server
    token = secrets.token_hex(16)  # set, as a user's shell might; basic auth wins, and the token must stay out too
    env = {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": "alice",
        "MLFLOW_TRACKING_PASSWORD": ALICE_PASSWORD,
        "MLFLOW_TRACKING_TOKEN": token,
    }
    done = sweep(tiny_mnist, tmp_path / "multirun", env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    # A URI with userinfo works like any other, and its password goes nowhere either.
    with_userinfo = url.replace("http://", f"http://alice:{ALICE_PASSWORD}@")
    done_userinfo = sweep(
        tiny_mnist, tmp_path / "multirun_userinfo", {}, f"tracking.uri={with_userinfo}", "tracking.rerun=true"
    )
    assert done_userinfo.returncode == 0, done_userinfo.stdout[-3000:] + done_userinfo.stderr[-5000:]

    children = [r for r in experiment_runs(url) if r.data.tags.get(names.TAG_PARENT)]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    # The command line's userinfo went to MLflow's variables before Hydra recorded anything: the bare URI everywhere.
    assert [r.data.params["tracking.uri"] for r in children] == [url] * 4

    secrets_ = (ALICE_PASSWORD, ADMIN_PASSWORD, token)
    printed = done.stdout + done.stderr + done_userinfo.stdout + done_userinfo.stderr
    assert not [s for s in secrets_ if s in printed], "a sweep printed a secret"
    leaks = [
        str(f)
        for folder in (root / "server", tmp_path / "multirun", tmp_path / "multirun_userinfo")
        for f in folder.rglob("*")
        if f.is_file() and any(s.encode() in f.read_bytes() for s in secrets_)
    ]
    assert leaks == [], "a secret in the store (database, artifacts) or the sweep's folder"


@pytest.mark.slow
@needs_auth
@pytest.mark.parametrize(
    "user, password, fix",
    [
        ("alice", "wrong-password", "MLFLOW_TRACKING_PASSWORD"),
        (None, None, "MLFLOW_TRACKING_USERNAME"),
        ("bob", BOB_PASSWORD, "EDIT"),
    ],
    ids=["wrong-password", "no-login", "read-only-user"],
)
def test_refused_logins_fail_fast_in_one_line_and_create_no_run(
    auth_server, tiny_mnist, tmp_path, no_credentials, user, password, fix
):
    """A wrong or missing password, and a user who may only read the experiment."""
    url, _ = auth_server
    before = len(experiment_runs(url))
    env = {
        "MLFLOW_TRACKING_URI": url,
        **({"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password} if user else {}),
    }
    started = time.monotonic()
    refused = sweep(tiny_mnist, tmp_path / "multirun", env)
    seconds = time.monotonic() - started
    assert refused.returncode != 0 and seconds < 30, seconds
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert fix in line and (password is None or password not in refused.stdout + refused.stderr)
    assert "Traceback" not in refused.stderr
    assert len(experiment_runs(url)) == before, "no run was created"
