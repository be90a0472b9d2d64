"""On JAX an epoch is one compiled program (mlp_sweep/core/jax_epoch.py): the same numbers for
the same seed, every training sample seen, one compile for the run, and everything Keras' ``fit``
gave the run (per-epoch logging, the stop rule, early stopping, the NaN stop, a reloadable model).

Keras' backend is chosen once per process, so the checks train in a JAX process of their own
(tests/core/jax_checks.py) and these tests read what it found."""

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import requires
from mlp_sweep import names

CHECKS = Path(__file__).with_name("jax_checks.py")
N_TRAIN, BATCH = 300, 128

pytestmark = requires("jax", extra="jax")


def run_checks(*args: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, str(CHECKS), *args], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def found(tiny_mnist, empty_store, tmp_path_factory) -> dict:
    store = tmp_path_factory.mktemp("jax_store") / "mlflow.db"
    shutil.copy(empty_store, store)  # made beforehand: a fresh store's migration takes seconds
    return run_checks(str(tiny_mnist), f"sqlite:///{store}")


def test_the_same_seed_gives_the_same_numbers(found):
    first, second = found["same_seed"]
    assert first == second and set(first) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_every_training_sample_is_in_an_epoch_and_the_last_batch_is_filled_from_the_start(found):
    rows = np.array(found["batch_rows"])
    assert rows.shape == (3, BATCH)  # 300 samples: two full batches and a third filled up
    seen = np.bincount(rows.ravel(), minlength=N_TRAIN)
    assert seen.min() == 1 and seen.sum() == 3 * BATCH
    assert np.flatnonzero(seen == 2).tolist() == list(range(3 * BATCH - N_TRAIN))


def test_a_frozen_models_epoch_metrics_are_those_of_the_samples_it_trained_on(found):
    # With a learning rate of 0 every batch sees the same model: the epoch's loss and accuracy
    # are the mean over its batches' samples, the run's seed shuffling them (numpy's generator).
    frozen = found["frozen"]
    rows = np.resize(np.random.default_rng(0).permutation(N_TRAIN), 3 * BATCH)
    losses, correct = np.array(frozen["per_sample_loss"]), np.array(frozen["correct"])
    assert frozen["history"]["loss"][0] == pytest.approx(losses[rows].mean(), rel=1e-5)
    assert frozen["history"]["accuracy"][0] == pytest.approx(correct[rows].mean(), abs=1e-6)
    assert frozen["history"]["loss"][0] != pytest.approx(losses.mean(), rel=1e-5)  # the refill counts
    assert frozen["history"]["val_loss"][0] == pytest.approx(frozen["val_loss"], rel=1e-5)


def test_a_run_compiles_its_epoch_program_once(found):
    assert found["epoch_compiles"] == 1  # two epochs, each with a last batch that was partial


def test_a_callback_that_sets_stop_training_ends_the_fit(found):
    assert len(found["stopped_history"]["loss"]) == 2


def test_early_stopping_ends_with_the_best_epochs_weights(found):
    history = found["early_stopping"]["history"]["val_loss"]
    assert history.index(min(history)) < len(history) - 1  # the best epoch is not the last
    assert found["early_stopping"]["val_loss_after"] == pytest.approx(min(history), rel=1e-5)


def test_the_run_logs_each_epoch_and_a_model_that_reloads_and_predicts(found):
    assert found["logged"] == {k: [1, 2] for k in names.EPOCH_METRICS}
    assert found["reloaded_class"] == "Sequential"
    assert found["reloaded_test_accuracy"] == found["test_accuracy"]


def test_a_diverged_loss_names_the_first_batch_that_was_not_finite(found):
    assert found["diverged"].startswith("loss became nan at epoch 1, batch ")


@pytest.mark.slow
def test_test_accuracy_over_three_seeds_is_within_seed_noise_of_keras_fit(real_mnist, tmp_path):
    found = run_checks(str(real_mnist), f"sqlite:///{tmp_path / 'mlflow.db'}", "seeds")
    old, new = found["keras_fit"], found["epoch_program"]
    noise = statistics.stdev(old + new)
    assert abs(statistics.mean(new) - statistics.mean(old)) < max(2 * noise, 0.01), found
