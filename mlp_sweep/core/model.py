"""The MLP builder: plain arguments in, a Keras model out (no Hydra here)."""

from collections.abc import Mapping, Sequence

import keras


def build_mlp(
    widths: Sequence[int],
    *,
    input_dim: int,
    n_classes: int,
    initializers: Sequence[str | Mapping] = ("glorot_uniform",),
    activation: str = "relu",
    batch_norm: bool = False,
    dropout: float = 0.0,
) -> keras.Model:
    """Dense -> [BatchNorm] -> [Dropout] per hidden layer, then a softmax output over ``n_classes``.

    ``input_dim`` and ``n_classes`` come from the data; the hidden widths from the config.

    ``initializers`` holds one Keras initializer (a name, or a
    ``{"name": ..., "args": {...}}`` mapping) per hidden layer, or one for all.
    """
    if len(initializers) == 1:
        initializers = list(initializers) * len(widths)
    layers = [keras.Input(shape=(input_dim,), name="pixels")]
    for i, (width, init) in enumerate(zip(widths, initializers, strict=True), start=1):
        layers.append(
            keras.layers.Dense(width, activation=activation, kernel_initializer=_initializer(init), name=f"dense_{i}")
        )
        if batch_norm:
            layers.append(keras.layers.BatchNormalization(name=f"bn_{i}"))
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(n_classes, activation="softmax", name="probabilities"))
    return keras.Sequential(layers, name="mlp_" + "_".join(map(str, widths)))


def _initializer(spec: str | Mapping) -> keras.initializers.Initializer:
    if isinstance(spec, str):
        return keras.initializers.get(spec)
    return keras.initializers.get({"class_name": spec["name"], "config": dict(spec.get("args") or {})})


def build_optimizer(name: str, lr: float, args: Mapping | None = None) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name, at Keras' defaults except what is given."""
    classes = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adamw": keras.optimizers.AdamW,
    }
    return classes[name](learning_rate=lr, **dict(args or {}))
