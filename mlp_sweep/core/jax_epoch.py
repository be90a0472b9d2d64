"""Training on JAX, an epoch at a time: each epoch is one compiled XLA program.

Keras' own ``fit`` on JAX calls its compiled step once per batch from Python,
copying each batch in (``steps_per_execution`` only batches the calls). Here
the training data is placed on the device once per run, and one program per
epoch gathers the shuffled batches, runs every training step in a
``jax.lax.scan`` and evaluates the validation set. The step is Keras' own
stateless API (``stateless_call``, the optimizer's ``stateless_apply``) on the
Keras model's variables, so the model stays a Keras model: after each epoch its
variables hold the program's results, for the callbacks, the MLflow flavor and
``predict``.

Every batch of the program is full, so that one step compiles, once: where the
batch size does not divide the training set, the epoch's last batch is filled up
with the first samples of the epoch's order (:func:`batch_rows`). No sample is
dropped; a few train twice an epoch (48 of MNIST's 50,000 in batches of 128).
Keras' ``fit`` instead runs a smaller last batch, a second program to compile
(and on JAX a first epoch seconds longer). What else differs from it
(docs/performance.md): the shuffling (a NumPy generator seeded by the run's
seed, not Keras' own), the validation metrics (one pass over the whole
validation set rather than the mean of batches: the same numbers but for float
rounding), and the check for a diverged loss (after the epoch, naming the first
batch whose loss was not finite).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import keras
import numpy as np

from mlp_sweep.core.data import Splits


def fit(
    model: keras.Model,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int,
) -> dict[str, list[float]]:
    """``model.fit`` on train, validating on val after each epoch, as one program per epoch; Keras' history.

    The callbacks see what Keras' ``fit`` shows them: each epoch's begin and end with
    its logs, the model's variables as trained so far, ``model.stop_training``, and one
    ``on_train_batch_end`` per epoch: the last batch's, or the first whose loss was
    not finite.
    """
    epoch_program = compile_epoch(model, len(splits.x_train), batch_size)
    placed = [jax.device_put(a) for a in (splits.x_train, splits.y_train, splits.x_val, splits.y_val)]  # once per run
    shuffling = np.random.default_rng(seed)
    steps = -(-len(splits.x_train) // batch_size)
    callbacks = keras.callbacks.CallbackList(
        list(callbacks), add_history=True, add_progbar=verbose != 0, verbose=verbose, epochs=epochs, steps=steps
    )
    callbacks.set_model(model)
    model.stop_training = False
    logs: dict[str, float] = {}
    callbacks.on_train_begin()
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        order = shuffling.permutation(len(splits.x_train)).astype(np.int32)
        state, results = epoch_program(model_state(model), order, *placed)
        set_model_state(model, state)
        batch_losses, logs = np.asarray(results.pop("batch_losses")), {k: float(v) for k, v in results.items()}
        diverged = np.flatnonzero(~np.isfinite(batch_losses))
        batch = int(diverged[0]) if len(diverged) else steps - 1
        callbacks.on_train_batch_end(batch, {"loss": float(batch_losses[batch])})
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_variables)
    callbacks.on_train_end(logs)
    return model.history.history


State = tuple[list[jax.Array], list[jax.Array], list[jax.Array]]  # trainable, non-trainable, optimizer


def model_state(model: keras.Model) -> State:
    """The model's variables as the program takes them (the optimizer's built on first use, as ``fit`` does)."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],  # BatchNormalization's moving moments, dropout's seeds
        [v.value for v in model.optimizer.variables],
    )


def set_model_state(model: keras.Model, state: State) -> None:
    """Put a program's results back into the model's variables: from here on it is the trained Keras model."""
    variables = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)
    for group, values in zip(variables, state, strict=True):
        for variable, value in zip(group, values, strict=True):
            variable.assign(value)


def batch_rows(order: jax.Array, batch_size: int) -> jax.Array:
    """The epoch's batches as rows of sample indices, ``order`` cut into full batches,
    the last one filled up with the first samples of ``order``."""
    steps = -(-len(order) // batch_size)
    return jnp.resize(order, steps * batch_size).reshape(steps, batch_size)  # resize repeats from the start


def compile_epoch(model: keras.Model, n_train: int, batch_size: int):
    """The epoch program of ``model`` for ``n_train`` samples in batches of ``batch_size``, jitted:
    ``(state, order, x_train, y_train, x_val, y_val) -> (state, results)``.

    ``order`` is the epoch's shuffled sample indices. The results are the epoch's
    ``loss`` and ``accuracy`` (over the samples its batches held, as Keras' running
    means give them), ``val_loss`` and ``val_accuracy``, and each batch's loss.
    """
    steps = -(-n_train // batch_size)

    def train_step(state: State, x: jax.Array, y: jax.Array):
        trainable, non_trainable, optimizer = state

        def loss_of(trainable, non_trainable):
            probs, non_trainable, extra = model.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True
            )
            loss = jnp.mean(keras.losses.sparse_categorical_crossentropy(y, probs)) + sum(extra)
            return loss, (probs, non_trainable)

        (loss, (probs, non_trainable)), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable, non_trainable)
        trainable, optimizer = model.optimizer.stateless_apply(optimizer, grads, trainable)
        correct = jnp.sum(jnp.argmax(probs, axis=1) == y)
        return (trainable, non_trainable, optimizer), (loss, correct)

    def train_epoch(state, order, x_train, y_train, x_val, y_val):
        batches = batch_rows(order, batch_size)

        def scanned(state, rows):
            return train_step(state, x_train[rows], y_train[rows])

        state, (losses, correct) = jax.lax.scan(scanned, state, batches)
        probs, _ = model.stateless_call(state[0], state[1], x_val, training=False)
        return state, {
            "loss": jnp.mean(losses),  # every batch is full: the mean over the samples seen
            "accuracy": jnp.sum(correct) / (steps * batch_size),
            "val_loss": jnp.mean(keras.losses.sparse_categorical_crossentropy(y_val, probs)),
            "val_accuracy": jnp.mean(jnp.argmax(probs, axis=1) == y_val),
            "batch_losses": losses,
        }

    return jax.jit(train_epoch)
