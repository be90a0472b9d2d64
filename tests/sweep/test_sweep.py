"""The notebook's 3x3 grid as one real Hydra multirun into a real MLflow store."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from helpers import ARTIFACTS, run_cli
from mlp_sweep import names

GRID = ["model=mlp2,mlp3,mlp5", "reg=none,bn,bn_dropout"]


@pytest.mark.slow
def test_smoke_grid_is_nine_child_runs_under_one_parent(tiny_mnist, tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(
        "-m",
        "experiment=smoke",
        *GRID,
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        # no models: nine of them checked nothing more than one; a sweep's logged models are reloaded by
        # test_faults (parallel workers), test_backend (JAX) and the cluster tier
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Progress: which job of how many, and one line per epoch.
    assert "[4/9] mlp3-none-s0" in result.stdout and "[9/9] mlp5-bn_dropout-s0" in result.stdout
    assert "mlp5-bn_dropout-s0 epoch 1/1" in result.stdout

    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["mlp_sweep_smoke"], output_format="list")
    (parent,) = [r for r in runs if r.data.tags.get(names.TAG_SWEEP) == "parent"]
    children = [r for r in runs if r.data.tags.get(names.TAG_PARENT) == parent.info.run_id]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model"] == "mlp2,mlp3,mlp5" and parent.data.params["reg"] == "none,bn,bn_dropout"
    assert sorted(r.info.run_name for r in children) == sorted(
        f"{m}-{r}-s0" for m in ("mlp2", "mlp3", "mlp5") for r in ("none", "bn", "bn_dropout")
    )
    client = MlflowClient()
    for run in children:
        assert run.info.status == "FINISHED"
        assert set(names.FINAL_METRICS) | {"val_accuracy", "epoch_time_s"} <= set(run.data.metrics)
        assert run.data.tags[names.TAG_CONFIG_HASH] and run.data.tags[names.TAG_DATASET_SHA]
        assert ARTIFACTS <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert len({r.data.tags[names.TAG_CONFIG_HASH] for r in children}) == 9
