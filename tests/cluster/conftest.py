"""The cluster tier (``pytest -m cluster``): a one-node Slurm cluster and PostgreSQL,
started by ``scripts/cluster.sh`` (which ``.ci/run`` calls first), and the team
server of docs/team.md on that PostgreSQL, with logins and an artifact store of its
own. Where Slurm or PostgreSQL is not installed the tier is skipped, naming the script.
"""

import os
import shutil
import subprocess
import sys

import pytest

from cluster_helpers import ADMIN_PASSWORD, ALICE_PASSWORD, CLUSTER_SCRIPT, SERVER_SCRIPT, Cluster, TeamServer
from helpers import free_port, stop, wait_for_health

DAEMONS = ("munged", "slurmctld", "slurmd", "pg_ctlcluster")


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """Slurm and PostgreSQL up (``scripts/cluster.sh start`` changes nothing where they are), databases emptied."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    missing = [d for d in DAEMONS if shutil.which(d, path=path) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: `sudo scripts/cluster.sh start` installs and starts "
            "a one-node Slurm cluster and PostgreSQL (slurm-wlm, munge, postgresql)"
        )
    done = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"scripts/cluster.sh start failed:\n{done.stderr[-3000:]}")
    # .ci/run evals stdout: a tool's stray line there (pg_ctlcluster's "Removed stale pid file.") is a failure.
    stray = [line for line in done.stdout.splitlines() if not line.startswith("export ")]
    assert not stray, f"scripts/cluster.sh start printed more than exports on stdout: {stray}"
    exports = [line.removeprefix("export ") for line in done.stdout.splitlines()]
    found = Cluster(dict(line.split("=", 1) for line in exports))
    for uri in (found.mlflow_db, found.optuna_db):  # each session starts from empty databases
        found.run("psql", "-X", "-q", uri, "-c", "DROP OWNED BY CURRENT_USER")
    return found


@pytest.fixture(scope="session")
def team_server(cluster, tmp_path_factory):
    """The server as docs/team.md starts it, its runs in PostgreSQL (password in PGPASSFILE, not the URI),
    its artifacts in a folder of its own; alice added by the admin."""
    root = tmp_path_factory.mktemp("team_server")
    port, log = free_port(), root / "server.log"
    command = [
        sys.executable,
        str(SERVER_SCRIPT),
        "--auth",
        "--port",
        str(port),
        "--root",
        str(root / "server"),
        "--backend-store-uri",
        cluster.mlflow_db,
        "--artifacts-destination",
        str(root / "artifact_store"),
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **cluster.env, "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )
    server = TeamServer(f"http://127.0.0.1:{port}", root / "server", root / "artifact_store")
    try:
        wait_for_health(server.url, proc, log)
        admin = {"MLFLOW_TRACKING_URI": server.url, "MLFLOW_TRACKING_USERNAME": "admin"}
        added = subprocess.run(
            [sys.executable, str(SERVER_SCRIPT), "add-user", "alice"],
            input=ALICE_PASSWORD,
            capture_output=True,
            text=True,
            env={**os.environ, **admin, "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD},
            timeout=60,
        )
        assert added.returncode == 0, added.stderr[-2000:]
        yield server
    finally:
        stop(proc)
