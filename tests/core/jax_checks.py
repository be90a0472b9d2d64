"""Run by tests/core/test_jax_epoch.py in a process of its own, since Keras' backend is chosen once per
process: trains on JAX and prints what the tests check, as JSON.

    KERAS_BACKEND=jax python tests/core/jax_checks.py <data folder> <store uri>        # the fast checks
    KERAS_BACKEND=jax python tests/core/jax_checks.py <data folder> <store uri> seeds  # both paths, 3 seeds
"""

import json
import sys
from pathlib import Path

import jax
import keras
import mlflow
import numpy as np
from omegaconf import open_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import smoke_cfg  # noqa: E402
from mlp_sweep import names  # noqa: E402
from mlp_sweep.core import data, jax_epoch, step  # noqa: E402
from mlp_sweep.core.run import compiled_model, train  # noqa: E402
from mlp_sweep.errors import DivergedError  # noqa: E402

N_TRAIN, BATCH = 300, 128  # 2 full batches and one of 44: the last is filled up with 84 samples
EPOCHS = 3  # the seed checks': past the first epoch's noise, well short of convergence


class StopAfterSecondEpoch(keras.callbacks.Callback):
    """As a stop rule does (EpochTracker): stop_training set at an epoch's end."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = epoch == 1


def config(folder: str, store: str, *overrides: str):
    cfg = smoke_cfg(Path(folder), store, "trainer.backend=jax", "trainer.compile_cache=null", *overrides)
    with open_dict(cfg):
        cfg.dataset.train_size = N_TRAIN
    return cfg


def history_of(cfg, s, epochs: int, callbacks=(), early_stopping=None):
    model = compiled_model(cfg, s)
    stop = early_stopping or {}
    fitting = step.Schedule(epochs, BATCH, cfg.trainer.seed, stop.get("patience"), stop.get("monitor", "val_loss"))
    return model, step.fit(model, s, fitting, callbacks=list(callbacks))


def per_sample_loss(model, x, y) -> np.ndarray:
    probs = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    return -np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1))


def fast_checks(folder: str, store: str) -> dict:
    found = {}
    cfg = config(folder, store, "model=mlp2", "reg=bn_dropout")
    s = data.from_config(cfg.dataset)
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **kw: (
            compiles.append(kw.get("fun_name", "")) if event.endswith("backend_compile_duration") else None
        )
    )
    # Twice the same seed, each fit asked for 5 epochs and stopped after the second by a callback, as a
    # stop rule stops it; the second fit's compiles are counted (two epochs, each with a partial last batch).
    found["same_seed"] = [history_of(cfg, s, 5, [StopAfterSecondEpoch()])[1]]
    compiles.clear()
    found["same_seed"].append(history_of(cfg, s, 5, [StopAfterSecondEpoch()])[1])
    found["epoch_compiles"] = sum("train_epoch" in name for name in compiles)
    found["stopped_history"] = found["same_seed"][1]

    # A learning rate of 0 leaves the model as it is: the epoch's loss and accuracy are then
    # those of the samples its batches held, which the test recomputes from the shuffling rule.
    frozen = config(folder, store, "model=mlp2", "reg=none", "optimizer=sgd", "optimizer.lr=0")
    model, history = history_of(frozen, s, 1)
    found["frozen"] = {
        "history": history,
        "per_sample_loss": per_sample_loss(model, s.x_train, s.y_train).tolist(),
        "correct": (model.predict(s.x_train, verbose=0).argmax(axis=1) == s.y_train).tolist(),
        "val_loss": float(per_sample_loss(model, s.x_val, s.y_val).mean()),
    }
    found["batch_rows"] = np.asarray(jax_epoch.batch_rows(np.arange(N_TRAIN), BATCH)).tolist()

    # Random labels: validation loss rises once the model memorises them, so the best epoch is early.
    overfit = config(folder, store, "model=mlp2", "reg=none", "optimizer.lr=0.01")
    model, history = history_of(overfit, s, 6, early_stopping={"patience": 10, "monitor": "val_loss"})
    found["early_stopping"] = {
        "history": history,
        "val_loss_after": float(per_sample_loss(model, s.x_val, s.y_val).mean()),
    }

    run_cfg = config(folder, store, "model=mlp2", "reg=bn", "trainer.epochs=2")
    metrics = train(run_cfg, progress="none")
    (run,) = mlflow.MlflowClient(store).search_runs(
        [mlflow.get_experiment_by_name(run_cfg.tracking.experiment).experiment_id]
    )
    client = mlflow.MlflowClient(store)
    found["logged"] = {k: [m.step for m in client.get_metric_history(run.info.run_id, k)] for k in names.EPOCH_METRICS}
    reloaded = mlflow.keras.load_model(run.data.tags[names.TAG_MODEL_URI])
    found["reloaded_test_accuracy"] = float(np.mean(reloaded.predict(s.x_test, verbose=0).argmax(axis=1) == s.y_test))
    found["test_accuracy"] = metrics["test_accuracy"]
    found["reloaded_class"] = type(reloaded).__name__

    try:
        train(
            config(folder, store, "model=mlp2", "optimizer=sgd", "optimizer.lr=1e30", "tracking.rerun=true"),
            progress="none",
        )
    except DivergedError as e:
        found["diverged"] = str(e)
    return found


def seed_checks(folder: str, store: str) -> dict:
    """Test accuracy of 3 seeds on the real smoke subset, 3 epochs of mlp2-bn_dropout, through
    Keras ``fit`` and through the epoch program."""
    found = {"keras_fit": [], "epoch_program": []}
    for seed in range(3):
        cfg = smoke_cfg(
            Path(folder),
            store,
            "trainer.backend=jax",
            "trainer.compile_cache=null",
            "model=mlp2",
            "reg=bn_dropout",
            f"trainer.seed={seed}",
        )
        s = data.from_config(cfg.dataset)
        model = compiled_model(cfg, s)
        model.fit(s.x_train, s.y_train, validation_data=(s.x_val, s.y_val), epochs=EPOCHS, batch_size=BATCH, verbose=0)
        found["keras_fit"].append(step.evaluate(model, s)[0]["test_accuracy"])
        model = compiled_model(cfg, s)
        step.fit(model, s, step.Schedule(epochs=EPOCHS, batch_size=BATCH, seed=seed))
        found["epoch_program"].append(step.evaluate(model, s)[0]["test_accuracy"])
    return found


if __name__ == "__main__":
    assert keras.backend.backend() == "jax"
    checks = seed_checks if sys.argv[3:] == ["seeds"] else fast_checks
    print(json.dumps(checks(sys.argv[1], sys.argv[2])))
