"""Shared fixtures: small MNIST-shaped data the tests write, a private MLflow
store per test, and Hydra configs composed the way the command line does."""

import gzip
from importlib.resources import files
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from omegaconf import DictConfig, open_dict

from mlp_sweep import schema, tracking
from mlp_sweep.data import ENV_DATA_DIR, to_idx

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = files(schema.CONF_MODULE)  # the configs as the app finds them, installed or not
REAL_MNIST = Path(os.environ.get(ENV_DATA_DIR, ROOT.parent / "shared" / "data" / "mnist"))

ARTIFACTS = set(tracking.RUN_ARTIFACTS)
make_cfg = schema.compose  # conf/ with overrides, as ``python -m mlp_sweep`` composes it


def write_mnist_like(folder: Path, n_train: int = 3000, n_test: int = 500, gz: bool = True, seed: int = 0) -> Path:
    """Write random 28x28 images with labels as the four MNIST IDX files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        raw = to_idx(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A folder of MNIST-format files, large enough for the smoke subset."""
    return write_mnist_like(tmp_path_factory.mktemp("tiny_mnist"))


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """A private SQLite MLflow store; nothing leaks into the working directory."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def real_mnist() -> Path:
    if not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {REAL_MNIST}: set {ENV_DATA_DIR} to a folder with the MNIST IDX files")
    return REAL_MNIST


def all_runs(store: str) -> list:
    """Every run of every experiment in the store, oldest first (none when it was never created)."""
    mlflow.set_tracking_uri(store)
    return mlflow.search_runs(search_all_experiments=True, output_format="list", order_by=["attributes.start_time ASC"])


def smoke_cfg(data_dir: Path, store_uri: str, *overrides: str) -> DictConfig:
    """The smoke experiment on the tests' own data, into the tests' own store."""
    cfg = make_cfg("experiment=smoke", *overrides)
    with open_dict(cfg):
        cfg.dataset.data_dir = str(data_dir)
        cfg.dataset.verify_checksum = False
        cfg.tracking.uri = store_uri
    return cfg


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mlp_sweep`` as a user would, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mlp_sweep", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )
