"""Structured-config schemas: the single description of what a config may hold, and how it is composed.

Each YAML option inherits its group's schema (``defaults: [base_<group>]``),
so a misspelt key or a wrong type fails in Hydra's own words while the
config is composed, long before TensorFlow is imported. Ranges that a type
cannot express are checked by :mod:`mlp_sweep.validation`; the allowed names
are :mod:`mlp_sweep.choices`'; what enters the config hash is
:mod:`mlp_sweep.store.identity`'s to say.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from mlp_sweep import choices


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
    # minimum resource grace_epochs, its maximum trainer.epochs) or none. null: none. One objective only.
    pruner: Optional[str] = None
    # Deprecated, goes in 0.4.0: true asks for search.pruner=median (with a warning).
    pruning: bool = False
    grace_epochs: int = 3
    # Set by the sweeper for each job: the trial it belongs to (null outside a search).
    trial: Optional[int] = None


@dataclass
class ReportConf:
    """What a sweep's report compares; none of it enters the config hash."""

    # The costs the Pareto front weighs validation accuracy against (mlp_sweep.choices.COSTS): n_params,
    # epoch_time_s (mean over epochs), predict_ms_per_1k and train_time_s.
    costs: list[str] = field(default_factory=lambda: list(choices.DEFAULT_COSTS))
    # The epoch each run is compared at: final (its last), or best (its best validation epoch,
    # as trainer.early_stopping.monitor chooses it; with early stopping, the weights it was tested with).
    at: str = "final"
    # Equivalence within a margin, in points of validation accuracy: each config's verdict becomes best,
    # worse, equivalent ±margin (TOST) or undecided, with the seeds a decision needs. null: no margin
    # (the table says only whether a config is shown below the best).
    margin: Optional[float] = None
    # Register the chosen config's model in MLflow's Model Registry under this name, with report.alias pointing
    # at it (serve or load it as models:/<name>@<alias>). null: nothing is registered.
    register: Optional[str] = None
    # The alias the registered version gets (moved only when the choice changes).
    alias: str = "champion"
    # Which config is registered: best (on validation), or cheapest (the lowest first cost in report.costs
    # among the configs not shown worse than the best; with report.margin, those shown equivalent to it).
    choose: str = "best"


@dataclass
class RaceConf:
    """How a race (``hydra/sweeper=race``, mlp_sweep/sweep/race.py) spends seeds; none of it enters the config hash."""

    # Seeds every config gets in the first round, and the most any config gets.
    min_seeds: int = 3
    max_seeds: int = 10
    # The margin of equivalence, in points of validation accuracy (null: report.margin, else 0.3).
    margin: Optional[float] = None
    # The chance of any false verdict for one config over the whole race (worse when it is as good as the
    # best, or equivalent when it is 1.5 margins away); spent over the looks (docs/race.md).
    alpha: float = 0.05


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
    race: RaceConf = field(default_factory=RaceConf)


CONF_MODULE = "mlp_sweep.conf"  # conf/ of the repo, installed as a package (pyproject.toml)
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
