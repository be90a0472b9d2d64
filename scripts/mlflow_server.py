#!/usr/bin/env python
"""Start an MLflow tracking server for a team: runs in a SQL database, artifacts
served by the server itself, so clients need only its URL (no shared disk).

    python scripts/mlflow_server.py                          # SQLite under ./mlflow-server, 127.0.0.1:5000, no login
    python scripts/mlflow_server.py --port 5001 --root /srv/mlflow
    python scripts/mlflow_server.py --backend-store-uri postgresql://mlflow@db-host/mlflow
    MLFLOW_AUTH_ADMIN_PASSWORD=... python scripts/mlflow_server.py \\
        --host 0.0.0.0 --allowed-hosts mlflow.example.org:5000

Beyond loopback the server asks for a login: it runs MLflow's ``basic-auth``
app (``pip install -e ".[auth]"``), with users and permissions in
ROOT/basic_auth.db. ``--auth`` asks for it on loopback too; serving beyond
loopback without it needs ``--insecure-no-auth``. On its first start the app
creates the admin user ($MLFLOW_AUTH_ADMIN_USERNAME, default "admin") with the
password in $MLFLOW_AUTH_ADMIN_PASSWORD or in the file --admin-password-file
names: never on the command line, which ``ps`` shows to every user. The server
speaks plain HTTP: put TLS in a reverse proxy in front of it (docs/team.md).

Users and their permissions, as the admin (MLflow's own client variables):
    export MLFLOW_TRACKING_URI=http://mlflow.example.org:5000
    export MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=...
    python scripts/mlflow_server.py add-user alice             # asks for alice's password (or reads it from stdin)
    python scripts/mlflow_server.py grant alice mlp_sweep EDIT  # READ | EDIT | MANAGE | NO_PERMISSIONS
A new user may read every experiment (--default-permission READ) and write to
the experiments it creates; another's experiment needs a grant.

Then point the sweeps at it, credentials in MLflow's own variables:
    export MLFLOW_TRACKING_USERNAME=alice MLFLOW_TRACKING_PASSWORD=...
    python -m mlp_sweep -m experiment=smoke tracking=server tracking.uri=http://mlflow.example.org:5000

PostgreSQL is used where you give its URI (``--backend-store-uri`` or
``$MLP_SWEEP_BACKEND_STORE_URI``); it needs a driver in this environment
(``pip install psycopg2-binary``). Otherwise the runs go to a SQLite file.
"""

import argparse
import getpass
import importlib.util
import ipaddress
import os
import secrets
import sys
from pathlib import Path

ENV_BACKEND = "MLP_SWEEP_BACKEND_STORE_URI"
# MLflow's own settings of its basic-auth app.
ENV_ADMIN_USERNAME, ENV_ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"
ENV_AUTH_CONFIG, ENV_SECRET_KEY = "MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_FLASK_SERVER_SECRET_KEY"
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
USER_COMMANDS = ("add-user", "grant")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    p.add_argument(
        "--root",
        default="mlflow-server",
        help="folder for the SQLite files (runs, users) and the artifacts (default: ./mlflow-server)",
    )
    p.add_argument(
        "--backend-store-uri",
        default=os.environ.get(ENV_BACKEND),
        help=(
            "SQLAlchemy URI of the runs' database, e.g. postgresql://user@host/db "
            f"(default: ${ENV_BACKEND}, else sqlite in --root)"
        ),
    )
    p.add_argument(
        "--artifacts-destination",
        default=None,
        help="where the server keeps artifacts: a folder or s3://... (default: ROOT/artifacts)",
    )
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default: 2)")
    p.add_argument(
        "--allowed-hosts",
        default=None,
        help="Host headers to accept when clients reach the server by a name (MLflow's --allowed-hosts)",
    )
    p.add_argument(
        "--auth", action="store_true", help="ask for a login on loopback too (beyond loopback it always does)"
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve beyond loopback WITHOUT any login: anyone who reaches the port reads, writes and deletes every run",
    )
    p.add_argument(
        "--admin-password-file",
        default=None,
        help=f"file holding the admin's password, for the first start (default: ${ENV_ADMIN_PASSWORD})",
    )
    p.add_argument(
        "--default-permission",
        choices=PERMISSIONS,
        default="READ",
        help="what every user may do on experiments nobody granted them (default: READ)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the mlflow command instead of running it")
    return p.parse_args(argv)


def parse_user_command(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="mlflow_server.py",
        description="Manage the users of a running server, as its admin "
        "($MLFLOW_TRACKING_USERNAME, $MLFLOW_TRACKING_PASSWORD).",
    )
    p.add_argument(
        "--url",
        default=os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        help="the server (default: $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser(
        "add-user", help="create a user; the password comes from the terminal or stdin, never the command line"
    )
    add.add_argument("username")
    grant = sub.add_parser("grant", help="give a user a permission on an experiment (created if need be)")
    grant.add_argument("username")
    grant.add_argument("experiment")
    grant.add_argument("permission", choices=PERMISSIONS)
    return p.parse_args(argv)


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach the address (a name other than localhost counts as beyond)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wants_auth(args: argparse.Namespace) -> bool:
    """Login beyond loopback unless --insecure-no-auth; on loopback only with --auth."""
    return args.auth or (not is_loopback(args.host) and not args.insecure_no_auth)


def server_command(args: argparse.Namespace) -> list[str]:
    """The ``mlflow server`` command line these options stand for: no secret ever goes into it."""
    root = Path(args.root).resolve()
    backend = args.backend_store_uri or f"sqlite:///{root / 'mlflow.db'}"
    artifacts = args.artifacts_destination or str(root / "artifacts")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
        "--backend-store-uri",
        backend,
        # Clients upload and download artifacts through the server (mlflow-artifacts:/ URIs).
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts,
    ]
    if args.allowed_hosts:
        cmd += ["--allowed-hosts", args.allowed_hosts]
    if wants_auth(args):
        cmd += ["--app-name", "basic-auth"]
    return cmd


def check_backend(uri: str | None) -> str | None:
    """Why this backend cannot work here, or None."""
    if uri and uri.startswith("postgresql") and not any(importlib.util.find_spec(m) for m in ("psycopg2", "psycopg")):
        return f"{uri.split('://')[0]} needs a PostgreSQL driver here: pip install psycopg2-binary"
    return None


def auth_environment(args: argparse.Namespace, root: Path) -> dict[str, str]:
    """The basic-auth app's settings, as environment variables of the server (where ``ps`` does not show them).

    The app's own default config keeps users in ./basic_auth.db of whatever folder
    the server starts in; ours keeps them in ROOT beside the runs. Its CSRF key must
    stay the same across workers and restarts, so it is made once and kept in ROOT.
    """
    env = {}
    if ENV_AUTH_CONFIG not in os.environ:
        ini = root / "basic_auth.ini"
        ini.write_text(
            f"[mlflow]\ndefault_permission = {args.default_permission}\n"
            f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
            f"admin_username = {os.environ.get(ENV_ADMIN_USERNAME) or 'admin'}\n"
        )
        env[ENV_AUTH_CONFIG] = str(ini)
    if args.admin_password_file:
        env[ENV_ADMIN_PASSWORD] = Path(args.admin_password_file).read_text().strip()
    if not os.environ.get(ENV_SECRET_KEY):
        key_file = root / "flask_secret_key"
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_hex(32))
        env[ENV_SECRET_KEY] = key_file.read_text().strip()
    return env


def check_auth(args: argparse.Namespace, root: Path) -> str | None:
    """Why the login cannot be set up, or None."""
    if importlib.util.find_spec("flask_wtf") is None:
        return 'the login needs MLflow\'s auth extra: pip install -e ".[auth]" (or pip install "mlflow[auth]")'
    first_start = ENV_AUTH_CONFIG not in os.environ and not (root / "basic_auth.db").exists()
    if first_start and not (args.admin_password_file or os.environ.get(ENV_ADMIN_PASSWORD)):
        return (
            f"the first start creates the admin user and needs its password: set ${ENV_ADMIN_PASSWORD} "
            "or pass --admin-password-file FILE (never the password itself on the command line)"
        )
    return None


def serve(argv: list[str] | None) -> None:
    args = parse_args(argv)
    cmd = server_command(args)
    if args.dry_run:
        print(" ".join(cmd))
        return
    root = Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    problem = check_backend(args.backend_store_uri) or (check_auth(args, root) if wants_auth(args) else None)
    if problem:
        sys.exit(f"error: {problem}")
    if not args.artifacts_destination:
        (root / "artifacts").mkdir(exist_ok=True)
    if wants_auth(args):
        os.environ.update(auth_environment(args, root))
    elif not is_loopback(args.host):
        print(
            f"WARNING: --insecure-no-auth: anyone who reaches {args.host}:{args.port} can read, change and delete "
            "every run; drop the flag to ask for a login",
            file=sys.stderr,
            flush=True,
        )
    login = "login required (users: --help)" if wants_auth(args) else "no login"
    print(
        f"MLflow server at http://{args.host}:{args.port}, {login}  "
        f"(runs: {cmd[cmd.index('--backend-store-uri') + 1]})",
        flush=True,
    )
    # MLflow's job runner (eight worker processes) serves its GenAI jobs, which sweeps never
    # start; MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true in the environment keeps it.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(sys.executable, cmd)  # the server takes this process: Ctrl-C or a signal stops it


def read_new_password(username: str) -> str:
    """From the terminal, asked twice, or the first line of stdin (for scripts): never from argv."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != password:
        sys.exit("error: the two passwords differ; run add-user again")
    return password


def manage_users(argv: list[str]) -> None:
    """add-user / grant through MLflow's own client of the basic-auth app, as the admin."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    args = parse_user_command(argv)
    auth = get_app_client("basic-auth", tracking_uri=args.url)
    try:
        if args.command == "add-user":
            auth.create_user(args.username, read_new_password(args.username))
            print(f"created user {args.username}")
        else:
            client = MlflowClient(args.url)
            found = client.get_experiment_by_name(args.experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(args.experiment)
            auth.grant_user_permission(args.username, "experiment", experiment_id, args.permission)
            print(f"{args.username} has {args.permission} on experiment {args.experiment} ({experiment_id})")
    except MlflowException as e:
        refused = e.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        sys.exit(
            f"error: {e.message.strip().splitlines()[0]}"
            + (
                ": run this as the admin (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD set to the admin's)"
                if refused
                else ""
            )
        )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in USER_COMMANDS for a in argv[:3]):
        manage_users(argv)
    else:
        serve(argv)


if __name__ == "__main__":
    main()
