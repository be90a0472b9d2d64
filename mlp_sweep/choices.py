"""Every list of allowed values a config may name, in one place: the validation checks against these lists,
and the report and the search read them.

Plain tuples, built from :mod:`mlp_sweep.names` where they name metrics: importing this module loads nothing.
"""

from mlp_sweep import names

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
PUBLISHED_DATASETS = ("mnist", "fashion_mnist")  # dataset.source: those whose checksums mlp_sweep.core.data knows
PUBLISHED_TRAIN_IMAGES = 60_000  # what a checksum-verified training set holds (MNIST and Fashion-MNIST alike)
MONITORS = ("val_loss", "val_accuracy")  # what early stopping may watch: validation only
BACKENDS = ("tensorflow", "jax")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
# The costs a report weighs validation accuracy against (report.costs), each with its figure's axis label.
COST_AXES = {
    names.N_PARAMS: "parameters (log scale)",
    names.EPOCH_TIME: "seconds per epoch (mean)",
    names.PREDICT_MS: "ms to predict 1,000 images (median)",
    names.TRAIN_TIME: "seconds to train (total)",
}
COSTS = tuple(COST_AXES)
# What a search may optimise: the metrics every run logs but the test set's, which only reports.
OBJECTIVES = tuple(dict.fromkeys((*names.EPOCH_METRICS, *COSTS)))
DEFAULT_COSTS = (names.N_PARAMS, names.EPOCH_TIME)
REPORT_AT = ("final", "best")  # the epoch a report compares: each run's last, or its best validation epoch
# Which config a report registers (report.choose): the best on validation, or the cheapest by the first of
# report.costs among those not shown worse than the best (shown equivalent, where a margin is set).
REPORT_CHOOSE = ("best", "cheapest")
# Keras' element-wise activations (keras.activations), checked here so that a typo is
# refused before TensorFlow loads. Not glu (it halves a layer) nor threshold (it needs arguments).
ACTIVATIONS = (
    "celu",
    "elu",
    "exponential",
    "gelu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "mish",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "squareplus",
    "swish",
    "tanh",
    "tanh_shrink",
)
# Keras' initializers (keras.initializers, snake_case or CamelCase) and the numeric arguments each takes.
INITIALIZERS = {
    "zeros": (),
    "ones": (),
    "constant": ("value",),
    "random_normal": ("mean", "stddev", "seed"),
    "truncated_normal": ("mean", "stddev", "seed"),
    "random_uniform": ("minval", "maxval", "seed"),
    **{
        name: ("seed",)
        for name in ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform")
    },
    "orthogonal": ("gain", "seed"),
    "identity": ("gain",),
    "variance_scaling": ("scale", "seed"),
}
