"""Any class count: the model, the confusion matrix and its figure are sized by the data's classes, a run on
12 or 3 classes ends FINISHED with a matrix that matches counts made by hand, and an epoch shorter than
trainer.steps_per_execution shows a true progress bar."""

import json

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from helpers import all_runs, blobs, run_cli, smoke_cfg, sweep_args, write_dataset
from mlp_sweep import names
from mlp_sweep.core import run_figures
from mlp_sweep.core.run import train
from mlp_sweep.errors import DataError

OWN_DATA = ("dataset.source=null", "dataset.train_size=null", "dataset.test_size=null", "dataset.val_size=100")


def float_blobs(n_classes: int, n_test: int) -> dict[str, np.ndarray]:
    """Learnable features in [0, 1] as float32, which the loader keeps as they are: the test can feed its own
    copy of x_test to the logged model."""
    arrays = blobs((6,), n_classes, n_train=600, n_test=n_test, seed=n_classes)
    return {k: (v.astype(np.float32) / 255 if k.startswith("x_") else v) for k, v in arrays.items()}


def hand_counts(y_true, y_pred, n_classes: int) -> list[list[int]]:
    counts = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(y_true, y_pred, strict=True):
        counts[int(t)][int(p)] += 1
    return counts


def test_confusion_counts_of_a_tiny_case_are_those_counted_by_hand():
    # true 0 0 1 2 2 2, predicted 0 1 1 2 2 0: row 0 holds one 0 and one 1, row 1 one 1, row 2 two 2s and one 0
    counts = run_figures.confusion_counts(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


@pytest.mark.parametrize("n_classes", [12, 40])
def test_the_confusion_figure_is_sized_by_the_class_count(n_classes):
    counts = np.eye(n_classes, dtype=int) * 3
    fig = run_figures.confusion_matrix(counts, "t")
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (n_classes, n_classes)
    assert fig.get_size_inches()[1] >= 0.5 * n_classes  # room for every row
    assert len(ax.texts) == (n_classes * n_classes if n_classes <= run_figures.MAX_ANNOTATED_CLASSES else 0)


@pytest.mark.parametrize("n_classes,n_test", [(12, 60), (3, 30)])
def test_a_run_on_any_class_count_finishes_with_its_matrix_counted_by_hand(tmp_path, store, n_classes, n_test):
    arrays = float_blobs(n_classes, n_test)
    folder = write_dataset(tmp_path / "d", arrays, fmt="npz")
    cfg = smoke_cfg(folder, store, *OWN_DATA, "model=mlp2", "trainer.epochs=2", f"tracking.log_model={n_classes == 12}")
    metrics = train(cfg, progress="none")

    (run,) = all_runs(store)
    assert run.info.status == "FINISHED" and run.data.params["n_classes"] == str(n_classes)
    logged = MlflowClient(store).download_artifacts(run.info.run_id, names.CONFUSION_JSON, str(tmp_path))
    counts = json.load(open(logged))["counts"]
    assert len(counts) == n_classes and all(len(row) == n_classes for row in counts)
    # Each row holds that class's test samples: blobs() deals the classes in turn, n_test / n_classes each.
    assert [sum(row) for row in counts] == [n_test // n_classes] * n_classes
    assert sum(counts[i][i] for i in range(n_classes)) / n_test == pytest.approx(metrics["test_accuracy"])
    if n_classes == 12:  # the whole matrix, from the logged model's own predictions counted one by one
        model = mlflow.pyfunc.load_model(run.data.tags[names.TAG_MODEL_URI])
        predicted = np.asarray(model.predict(arrays["x_test"])).argmax(axis=1)
        assert counts == hand_counts(arrays["y_test"], predicted, n_classes)


def test_labels_that_skip_a_class_are_refused_in_one_line(tmp_path, store):
    arrays = blobs((4,), 3, n_train=300, n_test=30)
    gaps = {0: 0, 1: 2, 2: 5}  # classes 0, 2 and 5: not 0..C-1
    arrays = {k: (np.vectorize(gaps.get)(v).astype(np.uint8) if k.startswith("y_") else v) for k, v in arrays.items()}
    folder = write_dataset(tmp_path / "d", arrays, fmt="npz")
    with pytest.raises(DataError, match=r"train: class 1 of 0..5 has no sample") as refused:
        train(smoke_cfg(folder, store, *OWN_DATA), progress="none")
    assert "\n" not in str(refused.value) and all_runs(store) == []


def test_an_epoch_shorter_than_steps_per_execution_shows_a_true_progress_bar(tmp_path, store, capsys):
    folder = write_dataset(tmp_path / "d", float_blobs(3, 30), fmt="npz")
    # 500 training samples in batches of 50: 10 batches an epoch, against 32 steps per execution
    cfg = smoke_cfg(folder, store, *OWN_DATA, "trainer.batch_size=50", "trainer.steps_per_execution=32")
    train(cfg, progress="bar")
    shown = capsys.readouterr().out
    assert "10/10" in shown and "32/10" not in shown


@pytest.mark.slow
def test_a_sweep_on_12_classes_finishes_with_12_by_12_matrices(tmp_path):
    folder = write_dataset(tmp_path / "d", float_blobs(12, 60), fmt="npz")
    args = sweep_args(tmp_path, folder, *OWN_DATA, "model=mlp2", "reg=none,bn", "tracking.log_model=false")
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = [r for r in all_runs(store) if r.data.tags.get(names.TAG_SWEEP) != "parent"]
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        logged = MlflowClient(store).download_artifacts(r.info.run_id, names.CONFUSION_JSON, str(tmp_path))
        counts = json.load(open(logged))["counts"]
        assert [len(row) for row in counts] == [12] * 12 and [sum(row) for row in counts] == [5] * 12
