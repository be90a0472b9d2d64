"""Fixtures: the tests' own MNIST-format data, a private MLflow store per test, the real MNIST where present.
The helpers they share live in helpers.py."""

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers import REAL_MNIST, write_mnist_like
from mlp_sweep.names import ENV_DATA_DIR


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A folder of MNIST-format files, large enough for the smoke subset."""
    return write_mnist_like(tmp_path_factory.mktemp("tiny_mnist"))


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with MLflow's tables made and nothing in them: creating them takes seconds."""
    path = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, empty_store) -> str:
    """A private SQLite MLflow store (a copy of the empty one); nothing leaks into the working directory."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def real_mnist() -> Path:
    if not (REAL_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found at {REAL_MNIST}: set {ENV_DATA_DIR} to a folder with the MNIST IDX files")
    return REAL_MNIST
