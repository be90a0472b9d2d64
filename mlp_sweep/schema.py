"""Structured-config schemas: the single description of what a config may hold.

Each YAML option inherits its group's schema (``defaults: [base_<group>]``),
so a misspelt key or a wrong type fails in Hydra's own words while the
config is composed, long before TensorFlow is imported. Ranges that a type
cannot express are checked by :func:`validate`.
"""

import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from mlp_sweep.errors import ConfigError


@dataclass
class DatasetConf:
    name: str = MISSING
    # A published dataset (mnist | fashion_mnist): checked against its SHA-256 sums, and
    # downloaded by Keras when no folder is given. null: data of your own (docs/data.md).
    source: Optional[str] = None
    # Folder with the four IDX files (MNIST's names, gzipped or not) or one npz archive
    # (x_train, y_train, x_test, y_test). null: $MLP_SWEEP_DATA_DIR, else Keras' download.
    data_dir: Optional[str] = None
    # Held out of the training set; the split ignores trainer.seed.
    val_size: int = 10_000
    split_seed: int = 0
    # Hold validation out class by class, in the training set's proportions.
    stratify: bool = False
    # Subsets for quick runs (null: everything that is left).
    train_size: Optional[int] = None
    test_size: Optional[int] = None
    # Refuse files whose content is not the published dataset's (where dataset.source names one).
    verify_checksum: bool = True


@dataclass
class InitializerConf:
    # A Keras initializer name (he_normal, glorot_uniform, random_normal ...).
    name: str = "glorot_uniform"
    # Its keyword arguments, e.g. {mean: 0.0, stddev: 0.062}.
    args: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelConf:
    name: str = MISSING
    widths: list[int] = MISSING
    # One per hidden layer, or a single one used for every layer.
    initializers: list[InitializerConf] = field(default_factory=lambda: [InitializerConf()])
    activation: str = "relu"


@dataclass
class RegConf:
    name: str = MISSING
    batch_norm: bool = False
    dropout: float = 0.0


@dataclass
class OptimizerConf:
    name: str = MISSING  # adam | sgd | rmsprop | adamw
    lr: float = 0.001
    # Further keyword arguments of the Keras optimizer (momentum, weight_decay ...).
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class EarlyStoppingConf:
    # Stop once `monitor` has not improved for this many epochs, and keep the best epoch's
    # weights for the test set. null: off (every run trains trainer.epochs).
    patience: Optional[int] = None
    # val_loss (lowest is best) or val_accuracy (highest is best): chosen on validation, never test.
    monitor: str = "val_loss"


@dataclass
class TrainerConf:
    # The notebook's schedule.
    epochs: int = 20
    batch_size: int = 128
    seed: int = 0
    early_stopping: EarlyStoppingConf = field(default_factory=EarlyStoppingConf)
    # Batches run per call into the backend: same numbers, less Python overhead; the NaN
    # check on the loss then runs once per 32 batches (docs/performance.md; 1 is Keras' default).
    steps_per_execution: int = 32
    # Threads per job (TensorFlow's thread pools, or XLA's on JAX). null: $OMP_NUM_THREADS
    # where set (the joblib launcher sets it to cores // n_jobs in each worker), else every core.
    threads: Optional[int] = None
    # Keras' backend: tensorflow, or jax (pip install -e ".[jax]"). One per process, so one per sweep.
    backend: str = "tensorflow"
    # JAX only: a folder for XLA's compiled programs, shared by every job and sweep that uses it,
    # so that a config's other seeds, a resumed sweep and the other workers skip compiling (the
    # same programs: the same numbers). null: JAX's own setting ($JAX_COMPILATION_CACHE_DIR).
    compile_cache: Optional[str] = "~/.cache/mlp_sweep/jax"


@dataclass
class TrackingConf:
    # null: $MLFLOW_TRACKING_URI, else MLflow's default (./mlflow.db).
    uri: Optional[str] = None
    experiment: str = "mlp_sweep"
    # Log the trained model in MLflow's Keras flavor.
    log_model: bool = True
    # false: a job whose grid point (config hash, seed, data checksum, code fingerprint) already
    # has a FINISHED run in the experiment is skipped (a sweep run again resumes); true: train it again.
    rerun: bool = False


@dataclass
class SearchConf:
    """How a search (``hparams_search=...``, mlp_sweep/sweep/search.py) runs; none of it enters the config hash."""

    # Seeds per proposed config: each trial is trained with trainer.seed=0..replicates-1.
    replicates: int = 1
    # The sampler's seed: the same command proposes the same trials.
    sampler_seed: int = 0
    # The Optuna study; running the same command again continues it toward hydra.sweeper.n_trials.
    study_name: str = "mlp_search"
    # Optuna's RDB storage URL. null: optuna.db beside a sqlite tracking store, else ./optuna.db.
    storage: Optional[str] = None
    # What the search optimises: any metric a run logs, never a test metric; seeds are
    # replicates and each objective is their mean. Two or more: a multi-objective study
    # whose report shows the trials' Pareto front.
    objectives: list[str] = field(default_factory=lambda: ["val_accuracy"])
    # maximize | minimize, one per objective. null: accuracies are maximised, the rest
    # (losses, parameters, times) minimised.
    directions: Optional[list[str]] = None
    # Stopping seed runs early: median (from epoch grace_epochs on, stop a seed run below the
    # completed trials' median), hyperband (Optuna's HyperbandPruner over the seed runs, its
    # minimum resource grace_epochs, its maximum trainer.epochs) or none. null: median where
    # the older key pruning=true asks for it, else none. One objective only.
    pruner: Optional[str] = None
    pruning: bool = False
    grace_epochs: int = 3
    # Set by the sweeper for each job: the trial it belongs to (null outside a search).
    trial: Optional[int] = None


@dataclass
class ReportConf:
    """What a sweep's report compares; none of it enters the config hash."""

    # The costs the Pareto front weighs validation accuracy against: n_params,
    # epoch_time_s (mean over epochs) and predict_ms_per_1k.
    costs: list[str] = field(default_factory=lambda: ["n_params", "epoch_time_s"])
    # The epoch each run is compared at: final (its last), or best (its best validation epoch,
    # as trainer.early_stopping.monitor chooses it; with early stopping, the weights it was tested with).
    at: str = "final"


@dataclass
class Config:
    dataset: DatasetConf = MISSING
    model: ModelConf = MISSING
    reg: RegConf = MISSING
    optimizer: OptimizerConf = MISSING
    trainer: TrainerConf = MISSING
    tracking: TrackingConf = MISSING
    search: SearchConf = field(default_factory=SearchConf)
    report: ReportConf = field(default_factory=ReportConf)


OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
PUBLISHED_DATASETS = ("mnist", "fashion_mnist")  # dataset.source: those whose checksums mlp_sweep.core.data knows
MONITORS = ("val_loss", "val_accuracy")  # what early stopping may watch: validation only
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
# What a search may optimise and a report weigh accuracy against: the metrics every run logs
# but the test set's, which only reports.
OBJECTIVES = (
    "val_accuracy",
    "val_loss",
    "accuracy",
    "loss",
    "n_params",
    "epoch_time_s",
    "predict_ms_per_1k",
    "train_time_s",
)
COSTS = ("n_params", "epoch_time_s", "predict_ms_per_1k", "train_time_s")
REPORT_AT = ("final", "best")
BACKENDS = ("tensorflow", "jax")
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
CONF_MODULE = "mlp_sweep.conf"  # conf/ of the repo, installed as a package (pyproject.toml)
PUBLISHED_TRAIN_IMAGES = 60_000  # what a checksum-verified training set holds (MNIST and Fashion-MNIST alike)


# Keys that do not change what a run computes: left out of the config hash.
# The data is covered by its checksum, so where it lies (data_dir), which published set
# it claims to be (source) and whether that was checked (verify_checksum) do not count, nor how a
# search proposed the config (search: its trial, study, replicates).
HASH_EXCLUDED = (
    "trainer.seed",
    "trainer.threads",
    "trainer.steps_per_execution",
    "trainer.compile_cache",
    "tracking",
    "dataset.data_dir",
    "dataset.source",
    "dataset.verify_checksum",
    "search",
    "report",
)


def is_hashed(key: str) -> bool:
    """Whether a dotted config key counts towards the config hash (see HASH_EXCLUDED)."""
    return not any(key == x or key.startswith(x + ".") for x in HASH_EXCLUDED)


GROUPS = ("dataset", "model", "reg", "optimizer", "trainer", "tracking")  # a run's config, without Hydra's own


def register() -> None:
    """Store the schemas under the names the YAML defaults lists refer to."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, node in [
        ("dataset", DatasetConf),
        ("model", ModelConf),
        ("reg", RegConf),
        ("optimizer", OptimizerConf),
        ("trainer", TrainerConf),
        ("tracking", TrackingConf),
    ]:
        cs.store(group=group, name=f"base_{group}", node=node)


def compose(*overrides: str, return_hydra_config: bool = False) -> DictConfig:
    """The config ``python -m mlp_sweep <overrides>`` runs, for code that calls ``train`` itself."""
    register()
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=return_hydra_config)


def validate(cfg: DictConfig) -> None:
    """Check the ranges a type cannot express; raise ConfigError naming the fix."""
    problems = []

    def need(ok: bool, msg: str) -> None:
        if not ok:
            problems.append(msg)

    m, r, o, t, d = cfg.model, cfg.reg, cfg.optimizer, cfg.trainer, cfg.dataset
    for key, value in _numbers({g: OmegaConf.to_container(cfg[g], resolve=True) for g in GROUPS}):
        need(math.isfinite(value), f"{key}={value} is not a finite number: give a finite value")
    need(
        m.activation in ACTIVATIONS,
        f"model.activation={m.activation!r} is unknown: choose one of Keras' activations ({', '.join(ACTIVATIONS)})",
    )
    for i, init in enumerate(m.initializers):
        known = INITIALIZERS.get(snake_case(init.name))
        if known is None:
            problems.append(
                f"model.initializers[{i}].name={init.name!r} is unknown: choose one of Keras' "
                f"initializers ({', '.join(INITIALIZERS)})"
            )
            continue
        wrong = sorted(set(init.args) - set(known))
        need(
            not wrong,
            f"model.initializers[{i}] ({init.name}) takes no argument {', '.join(wrong)}: "
            f"it takes {', '.join(known) or 'none'}",
        )
    need(
        cfg.tracking.experiment.strip() != "",
        "tracking.experiment is empty: name the MLflow experiment, e.g. tracking.experiment=mlp_sweep",
    )
    need(len(m.widths) > 0, "model.widths is empty: give at least one hidden layer, e.g. model.widths=[128]")
    need(all(w > 0 for w in m.widths), f"model.widths={list(m.widths)} has a width <= 0: every width must be positive")
    need(
        len(m.initializers) in (1, len(m.widths)),
        f"model.initializers has {len(m.initializers)} entries for {len(m.widths)} hidden layers: "
        "give one, or one per layer",
    )
    need(0.0 <= r.dropout < 1.0, f"reg.dropout={r.dropout} is outside [0, 1): use e.g. reg.dropout=0.5")
    need(o.name in OPTIMIZERS, f"optimizer.name={o.name!r} is unknown: choose one of {', '.join(OPTIMIZERS)}")
    need(o.lr > 0, f"optimizer.lr={o.lr} must be > 0, e.g. optimizer.lr=0.001")
    need(t.epochs > 0, f"trainer.epochs={t.epochs} must be > 0, e.g. trainer.epochs=20")
    need(t.batch_size > 0, f"trainer.batch_size={t.batch_size} must be > 0, e.g. trainer.batch_size=128")
    need(t.steps_per_execution > 0, f"trainer.steps_per_execution={t.steps_per_execution} must be > 0")
    need(t.threads is None or t.threads > 0, f"trainer.threads={t.threads} must be > 0, or null for the default")
    need(t.backend in BACKENDS, f"trainer.backend={t.backend!r} is unknown: choose one of {', '.join(BACKENDS)}")
    stop = t.early_stopping
    need(
        stop.patience is None or stop.patience >= 0,
        f"trainer.early_stopping.patience={stop.patience} must be >= 0 (epochs without improvement), or null for off",
    )
    need(
        stop.monitor in MONITORS,
        f"trainer.early_stopping.monitor={stop.monitor!r} is unknown: choose one of {', '.join(MONITORS)}",
    )
    need(
        len(cfg.report.costs) > 0 and set(cfg.report.costs) <= set(COSTS),
        f"report.costs={list(cfg.report.costs)}: give one or more of {', '.join(COSTS)}",
    )
    need(
        cfg.report.at in REPORT_AT,
        f"report.at={cfg.report.at!r} is unknown: choose one of {', '.join(REPORT_AT)}",
    )
    problems += search_problems(cfg.search)
    need(
        pruner(cfg.search) != "hyperband" or cfg.search.grace_epochs < t.epochs,
        f"search.pruner=hyperband needs search.grace_epochs={cfg.search.grace_epochs} (its minimum resource) below "
        f"trainer.epochs={t.epochs} (its maximum): lower search.grace_epochs or raise trainer.epochs",
    )
    need(cfg.search.replicates > 0, f"search.replicates={cfg.search.replicates} must be > 0, e.g. search.replicates=3")
    need(
        cfg.search.grace_epochs > 0,
        f"search.grace_epochs={cfg.search.grace_epochs} must be > 0, e.g. search.grace_epochs=3",
    )
    need(
        d.source is None or d.source in PUBLISHED_DATASETS,
        f"dataset.source={d.source!r} is unknown: choose one of {', '.join(PUBLISHED_DATASETS)}, "
        "or null for data of your own in dataset.data_dir",
    )
    need(d.val_size > 0, f"dataset.val_size={d.val_size} must be > 0")
    for key in ("train_size", "test_size"):
        size = d[key]
        need(size is None or size > 0, f"dataset.{key}={size} must be > 0, or null for all")
    if d.source and d.verify_checksum:  # a verified published set has a known size: refuse a split that cannot fit
        wanted = d.val_size + (d.train_size or 1)
        need(
            wanted <= PUBLISHED_TRAIN_IMAGES,
            f"dataset.val_size={d.val_size} + dataset.train_size={d.train_size or '(the rest, at least 1)'} "
            f"exceeds the {PUBLISHED_TRAIN_IMAGES} training images of dataset.source={d.source}; lower "
            "dataset.val_size or dataset.train_size",
        )
    if problems:
        raise ConfigError(  # one problem: one line
            f"invalid config: {problems[0]}"
            if len(problems) == 1
            else "invalid config:\n  - " + "\n  - ".join(problems)
        )


def search_problems(search: DictConfig) -> list[str]:
    """What is wrong with a search's objectives, directions and pruner, each with its fix."""
    objectives, problems = list(search.objectives), []
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if not objectives or unknown:
        tested = " (the test set only reports: it never chooses)" if any(o.startswith("test_") for o in unknown) else ""
        problems.append(f"search.objectives={objectives}: give one or more of {', '.join(OBJECTIVES)}{tested}")
    if len(set(objectives)) != len(objectives):
        problems.append(f"search.objectives={objectives} names a metric twice: give each once")
    if search.directions is not None and (
        len(search.directions) != len(objectives) or not set(search.directions) <= set(DIRECTIONS)
    ):
        problems.append(
            f"search.directions={list(search.directions)}: give one of {' or '.join(DIRECTIONS)} per objective "
            f"({len(objectives)}), or null to follow the metrics"
        )
    if search.pruner is not None and search.pruner not in PRUNERS:
        problems.append(f"search.pruner={search.pruner!r} is unknown: choose one of {', '.join(PRUNERS)}")
    elif search.pruning and search.pruner not in (None, "median"):
        problems.append(f"search.pruning=true asks for the median rule but search.pruner={search.pruner}: give one")
    elif len(objectives) > 1 and pruner(search) != "none":
        problems.append(
            f"search.pruner={pruner(search)} with {len(objectives)} objectives: Optuna cannot prune a "
            "multi-objective study; set search.pruner=none, or search one objective"
        )
    return problems


def pruner(search: DictConfig) -> str:
    """The search's pruner: search.pruner, else median where the older key search.pruning=true asks for it."""
    return search.pruner or ("median" if search.pruning else "none")


def directions(search: DictConfig) -> list[str]:
    """One Optuna direction per objective: as given, else accuracies maximised and the rest minimised."""
    if search.directions is not None:
        return list(search.directions)
    return ["maximize" if "accuracy" in o else "minimize" for o in search.objectives]


def snake_case(name: str) -> str:
    """``RandomNormal`` -> ``random_normal``: Keras knows its initializers by either name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _numbers(node, prefix: str = ""):
    """Every float in a config container, with its dotted key: ``("optimizer.lr", inf)``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{prefix}{key}.")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{prefix[:-1]}[{i}].")
    elif isinstance(node, float):
        yield prefix[:-1], node
