"""One run, end to end: real Keras training into a real MLflow store."""

import gzip
import hashlib
import json
import shutil

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from helpers import ARTIFACTS, all_runs, smoke_cfg
from mlp_sweep import names
from mlp_sweep.core import data
from mlp_sweep.core.data import FILES
from mlp_sweep.core.run import train


def only_run(store: str, experiment: str):
    mlflow.set_tracking_uri(store)
    (run,) = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    return run


@pytest.fixture(scope="module")
def logged(tiny_mnist, empty_store, tmp_path_factory):
    """One run with its model logged, that the tests below read: (config, train's metrics, the run)."""
    path = tmp_path_factory.mktemp("train_store") / "mlflow.db"
    shutil.copy(empty_store, path)
    cfg = smoke_cfg(tiny_mnist, f"sqlite:///{path}", "model=mlp2", "reg=bn_dropout", "trainer.epochs=2")
    metrics = train(cfg, progress="none")
    return cfg, metrics, only_run(cfg.tracking.uri, cfg.tracking.experiment)


def test_train_logs_what_design_lists(logged):
    cfg, metrics, run = logged
    assert run.info.status == "FINISHED" and run.info.run_name == "mlp2-bn_dropout-s0"
    assert set(names.FINAL_METRICS) <= set(run.data.metrics)
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    client = MlflowClient(cfg.tracking.uri)
    for key in names.EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2]
    params = run.data.params
    assert params["model.widths"] == "[324, 108]" and params["reg.dropout"] == "0.5"
    assert params["n_params"] == str(290_530 + 4 * (324 + 108)) and params["n_hidden_layers"] == "2"
    tags = run.data.tags
    for tag in (names.TAG_CONFIG_HASH, names.TAG_DATASET_SHA, names.TAG_GIT_COMMIT, "tensorflow_version"):
        assert tags[tag]
    assert ARTIFACTS <= {a.path for a in client.list_artifacts(run.info.run_id)}
    mlflow.set_tracking_uri(cfg.tracking.uri)
    summary = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model_summary.txt")
    assert "bn_1" in summary and "dropout_2" in summary


def test_logged_model_reloads_and_predicts_probabilities(logged):
    cfg, _, run = logged
    mlflow.set_tracking_uri(cfg.tracking.uri)
    model = mlflow.pyfunc.load_model(run.data.tags[names.TAG_MODEL_URI])
    # The signature: a batch of flattened 28x28 images in, a probability for each of the 10 classes out.
    signature = model.metadata.signature.to_dict()
    assert json.loads(signature["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 784]}}
    ]
    assert json.loads(signature["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 10]}}
    ]
    # named for its run, so that the UI's Models tab tells a sweep's models apart
    model_id = run.data.tags[names.TAG_MODEL_URI].removeprefix("models:/")
    assert mlflow.get_logged_model(model_id).name == "mlp2-bn_dropout-s0"
    probs = np.asarray(model.predict(np.random.default_rng(0).random((4, 784), dtype=np.float32)))
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # The reloaded model is the one that was tested: its accuracy on the test split is the logged one.
    splits = data.from_config(cfg.dataset)
    predicted = np.asarray(model.predict(splits.x_test)).argmax(axis=1)
    assert np.mean(predicted == splits.y_test) == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)


@pytest.mark.slow
def test_mlp_learns_real_mnist(real_mnist, store):
    # 10,000 of the 50,000 training images and two epochs: enough to show that the real images and labels
    # line up (chance is 10%); the checksum still covers the whole files, as the published sums do.
    cfg = smoke_cfg(real_mnist, store, "model=mlp3", "dataset=mnist", "dataset.train_size=10000", "trainer.epochs=2")
    cfg.dataset.verify_checksum = True
    cfg.tracking.log_model = False
    metrics = train(cfg, progress="none")
    assert metrics["val_accuracy"] > 0.9 and metrics["test_accuracy"] > 0.9

    digests = [hashlib.sha256(gzip.decompress((real_mnist / f"{name}.gz").read_bytes())).hexdigest() for name in FILES]
    assert digests == [data.PUBLISHED_SHA256["mnist"][name] for name in FILES]
    (run,) = all_runs(store)
    assert run.data.tags[names.TAG_DATASET_SHA] == hashlib.sha256("".join(digests).encode()).hexdigest()
