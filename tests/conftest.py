"""Fixtures: the tests' own MNIST-format data, a private MLflow store per test, the real MNIST where present.
The helpers they share live in helpers.py."""

from pathlib import Path

import pytest

from helpers import REAL_MNIST, write_mnist_like
from mlp_sweep.names import ENV_DATA_DIR


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
