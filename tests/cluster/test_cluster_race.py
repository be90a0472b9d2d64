"""The smoke race on the clusters: run on Slurm, then the same race on Ray replays it from the store.

A race's runs are grid points, so the launcher does not matter to what it decides: the
second command, on another launcher, reaches the same verdicts without training anything."""

import mlflow
import pytest

from cluster_helpers import on_slurm, smoke_args
from helpers import children, parents, requires, run_cli
from mlp_sweep import names

pytestmark = [
    pytest.mark.cluster,
    requires("hydra_plugins.hydra_submitit_launcher", "submitit", extra="slurm"),
    requires("hydra_plugins.hydra_ray_launcher", "ray", extra="ray"),
]


def record(parent) -> dict:
    return mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/{names.RACE_RECORD}")


def test_a_race_runs_on_slurm_and_the_same_race_on_ray_trains_nothing(cluster, tiny_mnist, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    race = [
        "model=mlp2",
        "optimizer.lr=0.001,0.000001",  # a learning rate too small to learn in an epoch: a clear loser
        "hydra/sweeper=race",
        "race.min_seeds=2",
        "race.max_seeds=3",
        "race.margin=1",
        "tracking.log_model=false",
        f"tracking.uri={store}",
    ]
    slurm = run_cli(*smoke_args(tiny_mnist, tmp_path / "slurm", *race, *on_slurm(cluster)), cwd=tmp_path)
    assert slurm.returncode == 0, slurm.stdout[-3000:] + slurm.stderr[-5000:]
    (first,) = parents(store)
    trained = len(children(store))
    assert trained == sum(record(first)["seeds"].values()) >= 4

    ray = run_cli(
        *smoke_args(
            tiny_mnist, tmp_path / "ray", *race, "hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=2"
        ),
        cwd=tmp_path,
    )
    assert ray.returncode == 0, ray.stdout[-3000:] + ray.stderr[-5000:]
    second = parents(store)[-1]
    assert len(children(store)) == trained, "the same race on another launcher trained nothing"
    assert record(second)["verdicts"] == record(first)["verdicts"]
    assert record(second)["seeds"] == record(first)["seeds"]
