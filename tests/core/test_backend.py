"""Keras' backend (trainer.backend): one per process and per sweep, part of a run's
identity, and on JAX everything the TensorFlow path does: the smoke grid on
parallel workers, a reloadable model, the NaN stop, the same numbers twice."""

import importlib.metadata
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from helpers import all_runs, make_cfg, requires, run_cli
from mlp_sweep import names
from mlp_sweep.core import runtime
from mlp_sweep.errors import ConfigError
from mlp_sweep.store import identity

needs_jax = requires("jax", extra="jax")


def smoke_args(tmp_path, data, *overrides: str) -> list[str]:
    return [
        "experiment=smoke",
        "trainer.backend=jax",
        f"dataset.data_dir={data}",
        "dataset.verify_checksum=false",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        f"trainer.compile_cache={tmp_path / 'jax_cache'}",
        *overrides,
    ]


def test_the_backend_is_part_of_the_config_hash():
    assert identity.config_hash(make_cfg("trainer.backend=jax")) != identity.config_hash(make_cfg())


def test_a_process_running_one_backend_refuses_another():
    import keras

    running = keras.backend.backend()
    other = "jax" if running == "tensorflow" else "tensorflow"
    runtime.check_backend(running)  # the same one: nothing to do
    with pytest.raises(ConfigError, match=f"trainer.backend={other} but this process already runs Keras on {running}"):
        runtime.check_backend(other)


@pytest.mark.slow
def test_a_sweep_mixing_backends_is_refused_before_any_job(tmp_path):
    result = run_cli(
        "-m",
        "model=mlp2",
        "trainer.backend=tensorflow,jax",
        f"tracking.uri=sqlite:///{tmp_path / 'm.db'}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: a sweep runs one Keras backend (it is chosen once per process): run one sweep per trainer.backend"
    )
    assert "[1/2]" not in result.stdout


@pytest.mark.slow
@needs_jax
def test_jax_smoke_grid_on_parallel_workers_logs_reloadable_models(tiny_mnist, tmp_path):
    result = run_cli(
        "-m",
        *smoke_args(tmp_path, tiny_mnist, "model=mlp2,mlp5", "reg=none,bn_dropout", "hydra/launcher=parallel"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [r for r in all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}") if r.data.tags.get(names.TAG_SWEEP) != "parent"]
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert run.data.params["trainer.backend"] == "jax" and run.data.tags["keras_backend"] == "jax"
        assert run.data.tags["jax_version"] == importlib.metadata.version("jax")
    # The model, reloaded through MLflow in a fresh JAX process, predicts probabilities.
    uri = runs[0].data.tags[names.TAG_MODEL_URI]
    code = (
        "import mlflow, numpy as np; mlflow.set_tracking_uri(%r); m = mlflow.pyfunc.load_model(%r); "
        "p = np.asarray(m.predict(np.zeros((3, 784), np.float32))); print(p.shape, round(float(p.sum()), 3))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code % (f"sqlite:///{tmp_path / 'mlflow.db'}", uri)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"KERAS_BACKEND": "jax", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("(3, 10) 3.0")


@pytest.mark.slow
@needs_jax
def test_jax_same_seed_same_numbers_from_the_compile_cache_and_the_nan_stop(tiny_mnist, tmp_path):
    args = smoke_args(
        tmp_path,
        tiny_mnist,
        "model=mlp2",
        "reg=bn_dropout",
        "trainer.epochs=2",
        "tracking.log_model=false",
        "tracking.rerun=true",
    )
    for _ in range(2):  # the second run loads the programs the first compiled (the compile cache)
        assert run_cli(*args, cwd=tmp_path).returncode == 0
        assert any((tmp_path / "jax_cache").iterdir())
    a, b = all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for key in ("loss", "val_loss", "val_accuracy"):
        assert [m.value for m in client.get_metric_history(a.info.run_id, key)] == [
            m.value for m in client.get_metric_history(b.info.run_id, key)
        ]
    diverged = run_cli(*args, "optimizer=sgd", "optimizer.lr=1e30", cwd=tmp_path)  # 1e6 stays finite on JAX
    assert diverged.returncode == 1
    assert "error: loss became nan at epoch 1, batch " in diverged.stderr


@pytest.mark.slow
@needs_jax
def test_a_compile_cache_that_cannot_be_made_is_refused_before_any_run(tiny_mnist, tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    result = run_cli(
        *smoke_args(tmp_path, tiny_mnist, f"trainer.compile_cache={blocked / 'jax'}"), cwd=tmp_path, timeout=300
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: trainer.compile_cache={blocked / 'jax'} cannot be created")
    )
    assert all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}") == []
