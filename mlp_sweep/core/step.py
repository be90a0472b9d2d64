"""The computation of one run: a seeded, compiled model, fitted on train against val, evaluated on test once.

With :mod:`~mlp_sweep.core.data` and :mod:`~mlp_sweep.core.model` this is what
decides a run's numbers, and so its identity: these three modules are
fingerprinted by their normalised code (:func:`mlp_sweep.store.identity.code_fingerprint`).
Everything else a run does (logging, timing, threads, the stop rule) lives elsewhere,
so that changing it never makes a stored grid point train again.
"""

from collections.abc import Mapping, Sequence

import keras
import numpy as np

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


def fit(
    model: keras.Model,
    s: Splits,
    epochs: int,
    batch_size: int,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int,
    early_stopping: Mapping | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Fit on train, validating on val after each epoch; Keras' history (metric -> value per epoch).

    On JAX each epoch is one compiled program (:mod:`~mlp_sweep.core.jax_epoch`), its
    shuffling seeded by ``seed``; on TensorFlow it is Keras' own ``fit``.

    ``early_stopping`` (``patience``, ``monitor``): stop once the monitored
    validation metric has not improved for ``patience`` epochs, and end with the
    weights of its best epoch, so the test set only ever sees the epoch chosen
    on validation. Keras restores them whether or not training stopped early.
    """
    if early_stopping and early_stopping.get("patience") is not None:
        callbacks = [
            *callbacks,
            keras.callbacks.EarlyStopping(
                monitor=early_stopping["monitor"], patience=early_stopping["patience"], restore_best_weights=True
            ),
        ]
    if keras.backend.backend() == "jax":
        from mlp_sweep.core import jax_epoch  # imports JAX: only a JAX process may

        return jax_epoch.fit(model, s, epochs, batch_size, callbacks, verbose, seed)
    return model.fit(
        s.x_train,
        s.y_train,
        validation_data=(s.x_val, s.y_val),
        epochs=epochs,
        batch_size=batch_size,
        callbacks=list(callbacks),
        verbose=verbose,
    ).history


def evaluate(model: keras.Model, s: Splits) -> tuple[dict[str, float], np.ndarray]:
    """Touch the test set, once: its loss and accuracy, and the predicted classes."""
    probs = keras.ops.convert_to_numpy(model(s.x_test, training=False))  # one eager pass: nothing to trace
    predicted = probs.argmax(axis=1)
    metrics = {
        "test_loss": float(np.mean(keras.losses.sparse_categorical_crossentropy(s.y_test, probs))),
        "test_accuracy": float(np.mean(predicted == s.y_test)),
    }
    return metrics, predicted
