"""What the cluster tier's tests share: the cluster that scripts/cluster.sh started, the team
server on its PostgreSQL, the smoke sweep's command lines, and a search for secrets in files."""

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from helpers import ROOT
from mlp_sweep import names

CLUSTER_SCRIPT = ROOT / "scripts" / "cluster.sh"
SERVER_SCRIPT = ROOT / "scripts" / "mlflow_server.py"
ADMIN_PASSWORD, ALICE_PASSWORD = (f"{who}-{secrets.token_hex(12)}" for who in ("admin", "alice"))


@dataclass(frozen=True)
class Cluster:
    """What ``scripts/cluster.sh start`` printed: SLURM_CONF, PGPASSFILE and the two databases' URIs."""

    env: dict[str, str]

    @property
    def partition(self) -> str:
        return self.env["MLP_CLUSTER_PARTITION"]

    @property
    def mlflow_db(self) -> str:
        return self.env["MLP_CLUSTER_MLFLOW_DB"]

    @property
    def optuna_db(self) -> str:
        return self.env["MLP_CLUSTER_OPTUNA_DB"]

    def run(self, *command: str) -> str:
        """A Slurm or PostgreSQL client command against this cluster; its stdout."""
        done = subprocess.run(command, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr[-2000:]}"
        return done.stdout

    def database_passwords(self) -> list[str]:
        return [line.rsplit(":", 1)[1] for line in Path(self.env["PGPASSFILE"]).read_text().split()]


@dataclass(frozen=True)
class TeamServer:
    """scripts/mlflow_server.py on the cluster's PostgreSQL, with logins; alice is a user of it."""

    url: str
    root: Path  # the server's own folder (users, its key)
    artifacts: Path  # --artifacts-destination: where the server, and only it, writes artifacts

    def user_env(self, cluster: Cluster) -> dict[str, str]:
        """What a team member's shell holds to run a sweep on the cluster: the server, the login, the cluster."""
        return {
            **cluster.env,
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": "alice",
            "MLFLOW_TRACKING_PASSWORD": ALICE_PASSWORD,
        }


def files_holding(folders: list[Path], needles: list[str]) -> list[str]:
    """The files under these folders that hold any of the needles."""
    return [
        str(f)
        for folder in folders
        for f in folder.rglob("*")
        if f.is_file() and any(n.encode() in f.read_bytes() for n in needles)
    ]


def smoke_args(data: Path, out: Path, *overrides: str) -> list[str]:
    """The smoke sweep's command line on the tests' data, into the folder ``out``."""
    return [
        "-m",
        "experiment=smoke",
        f"dataset.data_dir={data}",
        "dataset.verify_checksum=false",
        f"hydra.sweep.dir={out}",
        *overrides,
    ]


def on_slurm(cluster: Cluster) -> list[str]:
    """The overrides that send a sweep's jobs to the cluster's partition, one CPU and 2 GB each."""
    return [
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={cluster.partition}",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=2",
    ]


def sweeps(client, experiment: str) -> list[tuple]:
    """Each sweep of the experiment, oldest first: its parent run and its children."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if r.data.tags.get(names.TAG_SWEEP) == "parent"]
    return [(p, [r for r in runs if r.data.tags.get(names.TAG_PARENT) == p.info.run_id]) for p in parents]


def login(monkeypatch, env: dict[str, str]) -> None:
    """This process as the user whose shell ``env`` is: MLflow's and PostgreSQL's clients read these variables."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
