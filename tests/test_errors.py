"""Bad input: one test per kind (config, data, store). Each is refused with a short
message that names the problem and the fix, before any data is read or any
training starts, and leaves no MLflow run behind that could pass for a result."""

import gzip
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    all_runs,
    blobs,
    free_port,
    make_cfg,
    run_cli,
    smoke_cfg,
    sweep_args,
    write_dataset,
    write_mnist_like,
)
from mlp_sweep.core import data
from mlp_sweep.errors import ConfigError, DataError, TrackingError
from mlp_sweep.validation import validate


def train_refuses(cfg, error: type, match: str, store: str) -> None:
    """``train`` raises ``error`` saying ``match``, and the store holds no run."""
    from mlp_sweep.core.run import train

    with pytest.raises(error, match=match):
        train(cfg, progress="none")
    assert all_runs(store) == []


# --- config: Hydra's own words, from the command line, before TensorFlow loads ---


@pytest.mark.slow
def test_unknown_group_option_lists_the_options(tmp_path):
    result = run_cli("model=mlp4", cwd=tmp_path)
    assert result.returncode == 1
    assert "Could not find 'model/mlp4'" in result.stderr
    assert "Available options in 'model'" in result.stderr and "mlp5" in result.stderr


@pytest.mark.slow
def test_unknown_key_is_named(tmp_path):
    result = run_cli("trainer.epoch=3", cwd=tmp_path)
    assert result.returncode == 1
    assert "Key 'epoch' not in 'TrainerConf'" in result.stderr and "full_key: trainer.epoch" in result.stderr


@pytest.mark.slow
def test_wrong_type_is_named(tmp_path):
    result = run_cli("trainer.epochs=abc", cwd=tmp_path)
    assert result.returncode == 1
    assert "Value 'abc' of type 'str' could not be converted to Integer" in result.stderr
    assert "full_key: trainer.epochs" in result.stderr


# --- config: ranges a type cannot express (mlp_sweep.validation) ---------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.widths=[128,0]", "model.widths=[128, 0] has a width <= 0: every width must be positive"),
        ("model.widths=[]", "model.widths is empty: give at least one hidden layer, e.g. model.widths=[128]"),
        ("reg.dropout=1.0", "reg.dropout=1.0 is outside [0, 1): use e.g. reg.dropout=0.5"),
        ("reg.dropout=-0.1", "reg.dropout=-0.1 is outside [0, 1): use e.g. reg.dropout=0.5"),
        ("trainer.epochs=0", "trainer.epochs=0 must be > 0, e.g. trainer.epochs=20"),
        ("trainer.batch_size=0", "trainer.batch_size=0 must be > 0, e.g. trainer.batch_size=128"),
        ("optimizer.lr=-0.1", "optimizer.lr=-0.1 must be > 0, e.g. optimizer.lr=0.001"),
        ("optimizer.name=adagrad", "optimizer.name='adagrad' is unknown: choose one of adam, sgd, rmsprop, adamw"),
        (
            "model.initializers=[{name:he_normal},{name:he_normal}]",  # mlp3 has three hidden layers
            "model.initializers has 2 entries for 3 hidden layers: give one, or one per layer",
        ),
        (
            "dataset.val_size=60000",
            "dataset.val_size=60000 + dataset.train_size=(the rest, at least 1) exceeds the 60000 training images of "
            "dataset.source=mnist; lower dataset.val_size or dataset.train_size",
        ),
    ],
    ids=[
        "width<=0",
        "empty-model",
        "dropout>=1",
        "dropout<0",
        "epochs<=0",
        "batch<=0",
        "lr<=0",
        "optimizer",
        "initializers",
        "val>train",
    ],
)
def test_out_of_range_value_is_refused(override, message):
    with pytest.raises(ConfigError) as caught:
        validate(make_cfg(override))
    assert str(caught.value) == f"invalid config: {message}"


@pytest.mark.slow
def test_out_of_range_value_stops_the_command_without_a_run(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("reg.dropout=1.5", f"tracking.uri={store}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: invalid config: reg.dropout=1.5 is outside [0, 1): use e.g. reg.dropout=0.5"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_out_of_range_value_refuses_the_whole_sweep(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(
        "-m",
        "model=mlp2,mlp3",
        "trainer.epochs=0",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "error: invalid config: trainer.epochs=0 must be > 0" in result.stderr
    assert "[1/2]" not in result.stdout  # no job started
    assert not (tmp_path / "mlflow.db").exists()


def test_validation_larger_than_own_training_set_is_refused_before_training(tiny_mnist, store):
    cfg = smoke_cfg(tiny_mnist, store, "dataset.val_size=2500", "dataset.train_size=1000")  # the data holds 3000
    train_refuses(
        cfg,
        DataError,
        r"dataset.val_size=2500 \+ dataset.train_size=1000 exceeds the 3000 training samples; "
        r"lower dataset.val_size or dataset.train_size",
        store,
    )


# --- data ---------------------------------------------------------------------------


def test_missing_data_folder(tmp_path, store):
    cfg = smoke_cfg(tmp_path / "nowhere", store)
    train_refuses(
        cfg,
        DataError,
        f"data folder {tmp_path / 'nowhere'} does not exist: point dataset.data_dir or "
        r"\$MLP_SWEEP_DATA_DIR at a folder with the four IDX files or an npz archive \(docs/data.md\)",
        store,
    )


def rewrite(folder: Path, name: str, change) -> None:
    """Apply ``change`` to the uncompressed bytes of one gzipped IDX file."""
    path = folder / f"{name}.gz"
    path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes()))))


def test_truncated_idx_file(tmp_path, store):
    folder = write_mnist_like(tmp_path / "mnist")
    rewrite(folder, "train-images-idx3-ubyte", lambda raw: raw[:-100])
    train_refuses(
        smoke_cfg(folder, store),
        DataError,
        r"train-images-idx3-ubyte.gz: 2351916 bytes but its header \(3000, 28, 28\) needs 2352016; "
        "the file is truncated or damaged, fetch it again",
        store,
    )


def test_truncated_gzip_stream(tmp_path, store):
    folder = write_mnist_like(tmp_path / "mnist")
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    train_refuses(
        smoke_cfg(folder, store), DataError, "t10k-images-idx3-ubyte.gz: cannot be read .*fetch it again", store
    )


def test_wrong_magic_number(tmp_path, store):
    folder = write_mnist_like(tmp_path / "mnist")
    rewrite(folder, "train-labels-idx1-ubyte", lambda raw: b"\x00\x00\x07\x01" + raw[4:])  # 07: no IDX type
    train_refuses(
        smoke_cfg(folder, store),
        DataError,
        "train-labels-idx1-ubyte.gz: wrong magic number 00000701; not an IDX file "
        r"\(expected 0000TTNN with element type TT one of 08, 09, 0b, 0c, 0d, 0e and NN dimensions\)",
        store,
    )


def test_image_and_label_counts_disagree(tmp_path, store):
    folder = write_mnist_like(tmp_path / "mnist")
    short = write_mnist_like(tmp_path / "short", n_train=2999)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes((short / "train-labels-idx1-ubyte.gz").read_bytes())
    train_refuses(
        smoke_cfg(folder, store),
        DataError,
        "train: 3000 images but 2999 labels; the image and label files do not belong together",
        store,
    )


def test_checksum_mismatch(tiny_mnist, store):
    cfg = smoke_cfg(tiny_mnist, store)
    cfg.dataset.verify_checksum = True
    train_refuses(
        cfg,
        DataError,
        r"train-images-idx3-ubyte: SHA-256 \w+… is not MNIST's ba891046e650…; the file is corrupt or another "
        r"dataset. Fetch MNIST again, or set dataset.verify_checksum=false to train on data of your own.",
        store,
    )


# --- tracking -----------------------------------------------------------------------


def test_unreachable_tracking_server_fails_fast_before_the_data(tmp_path, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("data loaded before the store was checked"))
    cfg = smoke_cfg(tmp_path / "nowhere", uri)
    started = time.perf_counter()
    from mlp_sweep.core.run import train

    with pytest.raises(TrackingError) as caught:
        train(cfg, progress="none")
    assert time.perf_counter() - started < 10
    assert str(caught.value).startswith(f"tracking server {uri} cannot be reached (")
    assert str(caught.value).endswith(
        "): start it (mlflow server --port ...), or point tracking.uri or $MLFLOW_TRACKING_URI at a reachable server "
        "or a local store (sqlite:///mlflow.db)"
    )


@pytest.mark.slow
def test_unreachable_tracking_server_refuses_the_sweep(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        "-m",
        "model=mlp2,mlp3",
        f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"error: tracking server {uri} cannot be reached" in result.stderr
    assert "[1/2]" not in result.stdout


# --- refused before TensorFlow is needed: names, finite numbers, the store, npz ---------


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.activation=bogus", "model.activation='bogus' is unknown: choose one of Keras' activations (celu, elu"),
        (
            "model.initializers=[{name:bogus}]",
            "model.initializers[0].name='bogus' is unknown: choose one of Keras' initializers (zeros, ones",
        ),
        (
            "model.initializers=[{name:he_normal,args:{stddev:1}}]",
            "model.initializers[0] (he_normal) takes no argument stddev: it takes seed",
        ),
        (
            "tracking.experiment=''",
            "tracking.experiment is empty: name the MLflow experiment, e.g. tracking.experiment=mlp_sweep",
        ),
        ("optimizer.lr=inf", "optimizer.lr=inf is not a finite number: give a finite value"),
        ("reg.dropout=nan", "reg.dropout=nan is not a finite number: give a finite value"),
    ],
    ids=["activation", "initializer", "initializer-args", "experiment", "lr=inf", "dropout=nan"],
)
def test_bad_name_or_number_is_refused_by_the_schema(override, message, tmp_path):
    with pytest.raises(ConfigError) as caught:
        validate(make_cfg(override))
    assert message in str(caught.value)


def test_every_activation_and_initializer_the_schema_allows_is_one_keras_builds():
    import keras

    from mlp_sweep.choices import ACTIVATIONS, INITIALIZERS
    from mlp_sweep.validation import snake_case

    for name in ACTIVATIONS:
        assert callable(keras.activations.get(name)), name
    for name, args in INITIALIZERS.items():
        keras.initializers.get({"class_name": name, "config": {a: 1.0 for a in args if a != "seed"}})
    assert snake_case("RandomNormal") == "random_normal" and snake_case("HeNormal") == "he_normal"


@pytest.mark.slow
def test_non_finite_learning_rate_stops_the_command_before_training(tmp_path):
    result = run_cli("optimizer.lr=inf", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: invalid config: optimizer.lr=inf is not a finite number: give a finite value"
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "mlflow.db").exists()


def test_a_file_that_is_not_an_mlflow_store_is_refused(tiny_mnist, tmp_path):
    (tmp_path / "x.db").write_text("hello\n")
    cfg = smoke_cfg(tiny_mnist, f"sqlite:///{tmp_path / 'x.db'}")
    from mlp_sweep.core.run import train

    with pytest.raises(TrackingError) as caught:
        train(cfg, progress="none")
    assert str(caught.value) == (
        f"sqlite:///{tmp_path / 'x.db'} is not an MLflow store (file is not a database): "
        "point tracking.uri at an MLflow store, or at a new file name to create one"
    )
    assert (tmp_path / "x.db").read_text() == "hello\n"  # left as it was


def test_an_npz_that_is_not_an_npz_archive(tmp_path, store):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "mnist.npz").write_text("not an archive")
    train_refuses(
        smoke_cfg(tmp_path / "mnist", store),
        DataError,
        r"mnist.npz: not an npz archive of arrays \(.*\); write it with numpy.savez",
        store,
    )


@pytest.mark.slow
def test_bad_data_refuses_the_whole_sweep_in_one_line(tmp_path):
    arrays = blobs((4, 4), 3, n_train=60, n_test=9)
    arrays["y_train"] = arrays["y_train"].astype(np.float32)  # labels that are not integers
    folder = write_dataset(tmp_path / "data", arrays, fmt="npz")
    result = run_cli(
        *sweep_args(tmp_path, folder, "model=mlp2,mlp3", "dataset.source=null", "dataset.val_size=10"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: train: labels are float32, not integers: store them as integers 0..C-1"
    )
    assert "Traceback" not in result.stderr and "[1/2]" not in result.stdout
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was opened: no run left behind


def test_an_error_raised_while_unwinding_from_ctrl_c_is_still_the_stop():
    from mlp_sweep.errors import interruption

    def traced_step():  # as TensorFlow does, stopped while tracing: its cleanup fails on the half-built trace
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("The two structures don't have the same sequence of elements") from None

    try:
        traced_step()
    except ValueError as error:
        assert isinstance(interruption(error), KeyboardInterrupt) and interruption(error) is error.__context__
    looped = ValueError("a")
    looped.__context__ = TypeError("b")
    looped.__context__.__context__ = looped  # a cycle ends the walk
    assert interruption(looped) is None and interruption(ValueError("no stop")) is None
