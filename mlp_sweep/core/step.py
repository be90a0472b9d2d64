"""The computation of one run: a seeded, compiled model, fitted on train against val, evaluated on test once.

With :mod:`~mlp_sweep.core.data`, :mod:`~mlp_sweep.core.model` and :mod:`~mlp_sweep.core.jax_epoch`
this is what decides a run's numbers, and so its identity: these modules are
fingerprinted by their normalised code (:data:`mlp_sweep.store.identity.COMPUTATION_MODULES`).
Everything else a run does (logging, timing, threads, the stop rule) lives elsewhere,
so that changing it never makes a stored grid point train again.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from mlp_sweep import names
from mlp_sweep.core.data import Splits
from mlp_sweep.core.model import build_mlp, build_optimizer


def seeded_model(
    model: Mapping,
    reg: Mapping,
    optimizer: Mapping,
    seed: int,
    compile_options: Mapping,
    *,
    input_dim: int,
    n_classes: int,
) -> keras.Model:
    """A fresh session, seeded, with the model and optimizer compiled, shaped for the data
    (``input_dim`` features in, ``n_classes`` probabilities out).

    ``compile_options`` are speed settings that leave the numbers as they are
    (steps_per_execution, jit_compile): the caller's, not the computation's.
    """
    keras.backend.clear_session(free_memory=True)  # jobs of one process must not pile up graphs (it runs gc.collect)
    keras.utils.set_random_seed(seed)
    built = build_mlp(
        widths=list(model["widths"]),
        input_dim=input_dim,
        n_classes=n_classes,
        initializers=list(model["initializers"]),
        activation=model["activation"],
        batch_norm=reg["batch_norm"],
        dropout=reg["dropout"],
    )
    built.compile(
        optimizer=build_optimizer(optimizer["name"], optimizer["lr"], optimizer["args"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_options,
    )
    return built


@dataclass(frozen=True)
class Schedule:
    """How long and in what batches a model is fitted, and when it stops early."""

    epochs: int
    batch_size: int
    seed: int = 0  # the shuffling of JAX's epoch program (TensorFlow's fit follows the session's seed)
    patience: int | None = None  # epochs without improvement of ``monitor`` before stopping; None: never early
    monitor: str = "val_loss"


def fit(
    model: keras.Model,
    splits: Splits,
    schedule: Schedule,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
) -> dict[str, list[float]]:
    """Fit on train, validating on val after each epoch; Keras' history (metric -> value per epoch).

    On JAX each epoch is one compiled program (:mod:`~mlp_sweep.core.jax_epoch`), its
    shuffling seeded by ``schedule.seed``; on TensorFlow it is Keras' own ``fit``.

    With ``schedule.patience`` set, training stops once the monitored validation
    metric has not improved for that many epochs, and ends with the weights of its
    best epoch, so the test set only ever sees the epoch chosen on validation.
    Keras restores them whether or not training stopped early.
    """
    if schedule.patience is not None:
        callbacks = [
            *callbacks,
            keras.callbacks.EarlyStopping(
                monitor=schedule.monitor, patience=schedule.patience, restore_best_weights=True
            ),
        ]
    if keras.backend.backend() == "jax":
        from mlp_sweep.core import jax_epoch  # imports JAX: only a JAX process may

        return jax_epoch.fit(
            model,
            splits,
            epochs=schedule.epochs,
            batch_size=schedule.batch_size,
            seed=schedule.seed,
            callbacks=callbacks,
            verbose=verbose,
        )
    return model.fit(
        splits.x_train,
        splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        epochs=schedule.epochs,
        batch_size=schedule.batch_size,
        callbacks=list(callbacks),
        verbose=verbose,
    ).history


def evaluate(model: keras.Model, splits: Splits) -> tuple[dict[str, float], np.ndarray]:
    """Touch the test set, once: its loss and accuracy, and the predicted classes."""
    probs = keras.ops.convert_to_numpy(model(splits.x_test, training=False))  # one eager pass: nothing to trace
    predicted = probs.argmax(axis=1)
    metrics = {
        names.TEST_LOSS: float(np.mean(keras.losses.sparse_categorical_crossentropy(splits.y_test, probs))),
        names.TEST_ACCURACY: float(np.mean(predicted == splits.y_test)),
    }
    return metrics, predicted
