"""Data of any shape and class count: the model is built for what the data holds, bad data is
refused before a run opens, validation may be held out by class, and early stopping keeps
the best epoch's weights for the test set."""

import gzip
import hashlib
import subprocess
import sys
import urllib.request
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest

from helpers import ROOT, all_runs, blobs, make_cfg, run_cli, smoke_cfg, write_dataset
from mlp_sweep import names
from mlp_sweep.core import data
from mlp_sweep.core.run import train
from mlp_sweep.errors import DataError
from mlp_sweep.store import identity

FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
OWN_DATA = ("dataset.source=null", "dataset.train_size=null", "dataset.test_size=null", "dataset.val_size=100")


def own_cfg(folder: Path, store: str, *overrides: str):
    """The smoke preset on data of one's own: every sample of the folder, 100 held out for validation."""
    return smoke_cfg(folder, store, *OWN_DATA, "tracking.log_model=true", *overrides)


@pytest.mark.parametrize("fmt,shape,n_classes", [("idx", (8, 8), 5), ("npz", (12,), 3)])
def test_data_of_another_shape_trains_and_reloads(tmp_path, store, fmt, shape, n_classes):
    folder = write_dataset(tmp_path / "d", blobs(shape, n_classes, n_train=600, n_test=90), fmt=fmt)
    metrics = train(own_cfg(folder, store, "model=mlp2", "trainer.epochs=3"), progress="none")

    (run,) = all_runs(store)
    width = int(np.prod(shape))
    assert run.data.params["input_dim"] == str(width) and run.data.params["n_classes"] == str(n_classes)
    assert metrics["val_accuracy"] > 0.9  # the classes are learnable: the model saw the right inputs and labels
    model = mlflow.pyfunc.load_model(run.data.tags[names.TAG_MODEL_URI])
    probs = np.asarray(model.predict(np.zeros((4, width), dtype=np.float32)))
    assert probs.shape == (4, n_classes)


def bad(arrays: dict, **changes) -> dict:
    return {**arrays, **changes}


GOOD = blobs((4, 4), 3, n_train=60, n_test=9)
REFUSED = {
    "float labels": (bad(GOOD, y_train=GOOD["y_train"].astype(np.float64)), "train: labels are float64, not integers"),
    "negative labels": (bad(GOOD, y_train=GOOD["y_train"].astype(np.int64) - 1), "labels must be the integers 0..C-1"),
    "test label outside train classes": (
        bad(GOOD, y_test=np.full(9, 3, dtype=np.uint8)),
        r"test: labels \[3\] are not among the training classes 0..2",
    ),
    "train and test widths differ": (
        bad(GOOD, x_test=np.zeros((9, 5, 4), dtype=np.uint8)),
        "train images are 4×4 but test images 5×4: train and test must have the same width",
    ),
    "empty class": (
        bad(GOOD, y_train=np.where(GOOD["y_train"] == 1, 2, GOOD["y_train"]).astype(np.uint8)),
        "train: class 1 of 0..2 has no sample",
    ),
    "too few samples for val_size": (
        bad(GOOD, x_train=GOOD["x_train"][:100], y_train=GOOD["y_train"][:100]),
        "dataset.val_size=100 leaves none of the 60 training samples to train on; lower dataset.val_size",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_data_is_refused_in_one_line_before_any_run(tmp_path, store, case):
    arrays, message = REFUSED[case]
    folder = write_dataset(tmp_path / "d", arrays, fmt="npz")
    with pytest.raises(DataError, match=message) as refused:
        train(own_cfg(folder, store), progress="none")
    assert "\n" not in str(refused.value)
    assert all_runs(store) == []  # refused before the run opened: nothing left behind


def test_float_features_are_kept_as_they_are_and_bytes_scaled(tmp_path):
    features = bad(GOOD, x_train=GOOD["x_train"].reshape(60, 16) / 7.0, x_test=GOOD["x_test"].reshape(9, 16) / 7.0)
    s = data.load(str(write_dataset(tmp_path / "f", features, fmt="npz")), source=None, val_size=10)
    assert s.x_test.dtype == np.float32 and s.input_dim == 16 and s.n_classes == 3
    np.testing.assert_allclose(s.x_test, GOOD["x_test"].reshape(9, 16) / 7.0, rtol=1e-6)
    images = data.load(str(write_dataset(tmp_path / "i", GOOD)), source=None, val_size=10)
    np.testing.assert_allclose(images.x_test, GOOD["x_test"].reshape(9, 16) / 255.0, rtol=1e-6)


def test_idx_and_npz_of_the_same_arrays_have_one_checksum(tmp_path):
    idx = data.load(str(write_dataset(tmp_path / "idx", GOOD)), source=None, val_size=10)
    npz = data.load(str(write_dataset(tmp_path / "npz", GOOD, fmt="npz")), source=None, val_size=10)
    assert idx.sha256 == npz.sha256


def test_the_unstratified_split_is_the_permutation_it_always_was(tmp_path):
    s = data.load(str(write_dataset(tmp_path / "d", GOOD)), source=None, val_size=10)
    order = np.random.default_rng(0).permutation(60)  # by hand: validation first, then train
    np.testing.assert_array_equal(s.y_val, GOOD["y_train"][order[:10]])
    np.testing.assert_array_equal(s.y_train, GOOD["y_train"][order[10:]])


def test_a_stratified_split_holds_out_each_class_in_proportion(tmp_path):
    skewed = blobs((4, 4), 3, n_train=90, n_test=9)
    skewed["y_train"] = np.repeat(np.array([0, 1, 2], dtype=np.uint8), [60, 20, 10])  # 2/3, 2/9, 1/9
    folder = write_dataset(tmp_path / "d", skewed)
    s = data.load(str(folder), source=None, val_size=18, stratify=True)
    assert np.bincount(s.y_val).tolist() == [12, 4, 2]  # 18 × (2/3, 2/9, 1/9)
    assert np.bincount(s.y_train).tolist() == [48, 16, 8]
    again = data.load(str(folder), source=None, val_size=18, stratify=True)
    np.testing.assert_array_equal(s.x_val, again.x_val)  # seeded by dataset.split_seed, not the run's seed


def test_fashion_mnist_download_fails_offline_in_one_line(monkeypatch, tmp_path):
    for proxy in ("https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # a closed port: offline, for real
    monkeypatch.setattr(urllib.request, "_opener", None)  # urllib keeps the opener it builds: this test's goes
    monkeypatch.delenv(names.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DataError, match=r"Keras could not download Fashion-MNIST \(.*\); set \$MLP_SWEEP_DATA_DIR"):
        data.load(None, source="fashion_mnist")


def test_own_data_without_a_folder_names_the_fix(monkeypatch):
    monkeypatch.delenv(names.ENV_DATA_DIR, raising=False)
    with pytest.raises(DataError, match="no data folder: set dataset.data_dir"):
        data.load(None, source=None)


@pytest.mark.slow
def test_fashion_mnist_checksums_are_those_of_debians_files():
    if not FASHION.exists():
        pytest.skip(f"{FASHION} not found: apt-get install dataset-fashion-mnist")
    for name, expected in data.PUBLISHED_SHA256["fashion_mnist"].items():
        assert hashlib.sha256(gzip.decompress((FASHION / f"{name}.gz").read_bytes())).hexdigest() == expected
    s = data.load(str(FASHION), source="fashion_mnist")
    assert (len(s.x_train), len(s.x_val), len(s.x_test), s.input_dim, s.n_classes) == (50_000, 10_000, 10_000, 784, 10)


# --- early stopping -------------------------------------------------------------------------


def test_early_stopping_is_part_of_the_identity(tiny_mnist, store):
    plain = smoke_cfg(tiny_mnist, store)
    stopping = smoke_cfg(tiny_mnist, store, "trainer.early_stopping.patience=3")
    assert identity.config_hash(plain) != identity.config_hash(stopping)


def test_early_stopping_stops_and_keeps_the_best_epochs_weights(tmp_path, store):
    noise = blobs((6, 6), 4, n_train=400, n_test=40)
    noise["y_train"] = np.random.default_rng(1).permutation(noise["y_train"])  # labels with no signal: it overfits
    folder = write_dataset(tmp_path / "d", noise)
    epochs = 30
    cfg = own_cfg(folder, store, "model=mlp2", f"trainer.epochs={epochs}", "trainer.early_stopping.patience=2")
    train(cfg, progress="none")

    (run,) = all_runs(store)
    m = run.data.metrics
    assert m[names.STOPPED_EPOCH] < epochs and m[names.BEST_EPOCH] == m[names.STOPPED_EPOCH] - 2
    history = [
        h.value
        for h in sorted(mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_loss"), key=lambda h: h.step)
    ]
    assert len(history) == m[names.STOPPED_EPOCH]
    assert m["best_val_loss"] == pytest.approx(min(history)) and history.index(min(history)) + 1 == m[names.BEST_EPOCH]
    s = data.load(str(folder), source=None, val_size=100, train_size=None, test_size=None, verify_checksum=False)
    restored = mlflow.keras.load_model(run.data.tags[names.TAG_MODEL_URI])
    probs = keras.ops.convert_to_numpy(restored(s.x_val, training=False))
    val_loss = float(np.mean(-np.log(np.clip(probs[np.arange(len(s.y_val)), s.y_val], 1e-7, 1.0))))
    assert val_loss == pytest.approx(m["best_val_loss"], rel=1e-4)  # the test set saw the best epoch's weights


# --- the worked example of docs/data.md -------------------------------------------------------


def make_digits5(cwd: Path) -> None:
    """``python scripts/make_digits5.py``, as docs/data.md runs it, in ``cwd``."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_digits5.py")], cwd=cwd, check=True)


@pytest.mark.slow  # a script in a subprocess and a training; the fast tier's 8x8, 5-class data is the test above's
def test_the_documented_dataset_of_8x8_digits_in_5_classes_trains(tmp_path, store, monkeypatch):
    make_digits5(tmp_path)
    monkeypatch.chdir(tmp_path)  # conf/dataset/digits5.yaml names data/digits5, relative to the launch folder
    cfg = make_cfg("dataset=digits5", "model=mlp2", "trainer.epochs=5", "tracking.log_model=false")
    metrics = train(cfg, progress="none")
    (run,) = all_runs(store)
    assert (run.data.params["input_dim"], run.data.params["n_classes"]) == ("64", "5")
    assert metrics["val_accuracy"] > 0.9


@pytest.mark.slow
def test_the_documented_dataset_sweeps_from_the_command_line_with_its_report(tmp_path):
    make_digits5(tmp_path)
    result = run_cli(
        "-m",
        "dataset=digits5",
        "model=mlp2,mlp3",
        "reg=none,bn",
        "trainer.epochs=3",
        "tracking.log_model=false",
        cwd=tmp_path,
        env={names.ENV_DATA_DIR: ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "4 configs from 4 runs on digits5 (64 inputs, 5 classes)" in result.stdout
    stopped = run_cli(
        "-m",
        "dataset=digits5",
        "model=mlp2",
        "trainer.epochs=30",
        "trainer.early_stopping.patience=2",
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    report = subprocess.run(
        [sys.executable, "-m", "mlp_sweep", "report", "--at", "best"], cwd=tmp_path, capture_output=True, text=True
    )
    assert report.returncode == 0 and "Compared at each run's best validation epoch" in report.stdout
