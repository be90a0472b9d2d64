"""The loader reads every local format, splits the same way for every seed, and
refuses data that is not what it claims to be."""

import gzip
import hashlib

import numpy as np
import pytest

from helpers import write_mnist_like
from mlp_sweep import names
from mlp_sweep.core import data
from mlp_sweep.errors import DataError

NAMES = list(data.FILES)


def read_raw(folder, name):
    return data.parse_idx(gzip.decompress((folder / f"{name}.gz").read_bytes()), name)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files_gzipped_or_raw(tmp_path, gz):
    folder = write_mnist_like(tmp_path / "d", n_train=700, n_test=50, gz=gz)
    arrays = data.read_folder(folder)
    assert arrays["train-images-idx3-ubyte"].shape == (700, 28, 28)
    assert arrays["t10k-labels-idx1-ubyte"].shape == (50,)


def test_reads_keras_npz_with_the_same_checksum_as_idx(tmp_path):
    idx = write_mnist_like(tmp_path / "idx", n_train=700, n_test=50)
    arrays = data.read_folder(idx)
    npz = tmp_path / "npz"
    npz.mkdir()
    np.savez(npz / "mnist.npz", **{data.NPZ_KEYS[n]: arrays[n] for n in NAMES})
    from_npz = data.read_folder(npz)
    for name in NAMES:
        np.testing.assert_array_equal(from_npz[name], arrays[name])
    assert data.checksum(from_npz) == data.checksum(arrays)


def test_idx_round_trip_keeps_the_original_bytes(tmp_path):
    folder = write_mnist_like(tmp_path / "d", n_train=10, n_test=5)
    raw = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    assert data.to_idx(data.parse_idx(raw, "x")) == raw


def test_split_is_fixed_whatever_the_run_seed_and_disjoint(tmp_path):
    folder = write_mnist_like(tmp_path / "d", n_train=700, n_test=50)
    a = data.load(str(folder), val_size=100, verify_checksum=False)
    b = data.load(str(folder), val_size=100, verify_checksum=False)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (600, 100, 50)
    train_rows = {row.tobytes() for row in a.x_train}
    assert not any(row.tobytes() in train_rows for row in a.x_val)
    assert a.x_train.dtype == np.float32 and 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0


def test_subsets_and_env_var(tmp_path, monkeypatch):
    folder = write_mnist_like(tmp_path / "d", n_train=700, n_test=50)
    monkeypatch.setenv(names.ENV_DATA_DIR, str(folder))
    s = data.load(None, val_size=100, train_size=200, test_size=20, verify_checksum=False)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (200, 100, 20)


def test_checksum_verification_refuses_data_that_is_not_mnist(tmp_path):
    folder = write_mnist_like(tmp_path / "d", n_train=700, n_test=50)
    with pytest.raises(DataError, match="is not MNIST's .*verify_checksum=false"):
        data.load(str(folder), val_size=100)


@pytest.mark.slow
def test_the_checksums_in_the_code_are_those_of_the_real_files(real_mnist):
    for name, expected in data.PUBLISHED_SHA256["mnist"].items():
        assert hashlib.sha256(gzip.decompress((real_mnist / f"{name}.gz").read_bytes())).hexdigest() == expected


def test_dataset_checksum_identifies_content(tmp_path):
    one = data.read_folder(write_mnist_like(tmp_path / "a", n_train=50, n_test=5, seed=1))
    two = data.read_folder(write_mnist_like(tmp_path / "b", n_train=50, n_test=5, seed=2))
    assert data.checksum(one) != data.checksum(two)
    assert len(data.checksum(one)) == len(hashlib.sha256().hexdigest())


@pytest.mark.slow
def test_real_mnist_loads_and_verifies(real_mnist):
    s = data.load(str(real_mnist))
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (50_000, 10_000, 10_000)
    counts = np.bincount(np.concatenate([s.y_train, s.y_val]), minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
