#!/usr/bin/env python
"""Start an MLflow tracking server for a team: runs in a SQL database, artifacts
served by the server itself, so clients need only its URL (no shared disk).

    python scripts/mlflow_server.py                          # SQLite under ./mlflow-server, 127.0.0.1:5000
    python scripts/mlflow_server.py --port 5001 --root /srv/mlflow
    python scripts/mlflow_server.py --backend-store-uri postgresql://mlflow:PASSWORD@db-host/mlflow
    python scripts/mlflow_server.py --host 0.0.0.0 --allowed-hosts mlflow.example.org:5000

Then point the sweeps at it:
    python -m mlp_sweep -m tracking=server tracking.uri=http://127.0.0.1:5000 ...

PostgreSQL is used where you give its URI (``--backend-store-uri`` or
``$MLP_SWEEP_BACKEND_STORE_URI``); it needs a driver in this environment
(``pip install psycopg2-binary``). Otherwise the runs go to a SQLite file.
The server binds to 127.0.0.1 unless ``--host`` says otherwise.
"""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ENV_BACKEND = "MLP_SWEEP_BACKEND_STORE_URI"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    p.add_argument("--root", default="mlflow-server", help="folder for the SQLite file and the artifacts (default: ./mlflow-server)")
    p.add_argument("--backend-store-uri", default=os.environ.get(ENV_BACKEND),
                   help=f"SQLAlchemy URI of the runs' database, e.g. postgresql://user:pw@host/db (default: ${ENV_BACKEND}, else sqlite in --root)")
    p.add_argument("--artifacts-destination", default=None, help="where the server keeps artifacts: a folder or s3://... (default: ROOT/artifacts)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default: 2)")
    p.add_argument("--allowed-hosts", default=None, help="Host headers to accept when clients reach the server by a name (MLflow's --allowed-hosts)")
    p.add_argument("--dry-run", action="store_true", help="print the mlflow command instead of running it")
    return p.parse_args(argv)


def server_command(args: argparse.Namespace) -> list[str]:
    """The ``mlflow server`` command line these options stand for."""
    root = Path(args.root).resolve()
    backend = args.backend_store_uri or f"sqlite:///{root / 'mlflow.db'}"
    artifacts = args.artifacts_destination or str(root / "artifacts")
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--host", args.host, "--port", str(args.port), "--workers", str(args.workers),
        "--backend-store-uri", backend,
        # Clients upload and download artifacts through the server (mlflow-artifacts:/ URIs).
        "--serve-artifacts", "--artifacts-destination", artifacts,
    ]
    if args.allowed_hosts:
        cmd += ["--allowed-hosts", args.allowed_hosts]
    return cmd


def check_backend(uri: str | None) -> str | None:
    """Why this backend cannot work here, or None."""
    if uri and uri.startswith("postgresql") and not any(
        importlib.util.find_spec(m) for m in ("psycopg2", "psycopg")
    ):
        return f"{uri.split('://')[0]} needs a PostgreSQL driver here: pip install psycopg2-binary"
    return None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cmd = server_command(args)
    if args.dry_run:
        print(" ".join(cmd))
        return
    problem = check_backend(args.backend_store_uri)
    if problem:
        sys.exit(f"error: {problem}")
    if not args.artifacts_destination:
        (Path(args.root) / "artifacts").mkdir(parents=True, exist_ok=True)
    Path(args.root).mkdir(parents=True, exist_ok=True)
    print(f"MLflow server at http://{args.host}:{args.port}  (runs: {cmd[cmd.index('--backend-store-uri') + 1]})", flush=True)
    # MLflow's job runner (eight worker processes) serves its GenAI jobs, which sweeps never
    # start; MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true in the environment keeps it.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(sys.executable, cmd)  # the server takes this process: Ctrl-C or a signal stops it


if __name__ == "__main__":
    main()
