"""The ranges a config's types cannot express, checked before anything loads: every problem at once, each
with its fix. A search's and a race's own settings are checked by :mod:`mlp_sweep.policy`."""

import math
import posixpath
import re
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from mlp_sweep import choices, dotted
from mlp_sweep.errors import ConfigError
from mlp_sweep.schema import GROUPS


def validate(cfg: DictConfig, more: Iterable[str] = ()) -> None:
    """Raise ConfigError naming every problem of ``cfg`` (and the ``more`` a caller found), each with its fix."""
    problems = config_problems(cfg) + list(more)
    if problems:
        raise ConfigError(  # one problem: one line
            f"invalid config: {problems[0]}"
            if len(problems) == 1
            else "invalid config:\n  - " + "\n  - ".join(problems)
        )


def config_problems(cfg: DictConfig) -> list[str]:
    """What is wrong with a run's config, outside its search settings: one sentence per problem."""
    return [
        *_finite_problems(cfg),
        *_model_problems(cfg.model),
        *_trainer_problems(cfg.trainer),
        *_dataset_problems(cfg.dataset),
        *_checked(
            (
                cfg.tracking.experiment.strip() != "",
                "tracking.experiment is empty: name the MLflow experiment, e.g. tracking.experiment=mlp_sweep",
            ),
            (
                0.0 <= cfg.reg.dropout < 1.0,
                f"reg.dropout={cfg.reg.dropout} is outside [0, 1): use e.g. reg.dropout=0.5",
            ),
            (
                cfg.optimizer.name in choices.OPTIMIZERS,
                f"optimizer.name={cfg.optimizer.name!r} is unknown: choose one of {', '.join(choices.OPTIMIZERS)}",
            ),
            (cfg.optimizer.lr > 0, f"optimizer.lr={cfg.optimizer.lr} must be > 0, e.g. optimizer.lr=0.001"),
            (
                set(cfg.report.costs) <= set(choices.COSTS)
                and (len(cfg.report.costs) > 0 or cfg.report.choose == "cheapest"),  # that one says it below
                f"report.costs={list(cfg.report.costs)}: give one or more of {', '.join(choices.COSTS)}",
            ),
            (
                cfg.report.at in choices.REPORT_AT,
                f"report.at={cfg.report.at!r} is unknown: choose one of {', '.join(choices.REPORT_AT)}",
            ),
            (
                cfg.report.margin is None or is_margin(cfg.report.margin),
                f"report.margin={cfg.report.margin} must be a finite number of points > 0, e.g. report.margin=0.3, "
                "or null for no equivalence test",
            ),
        ),
        *_register_problems(cfg),
    ]


# What MLflow refuses in a registered model's name (/ and :), and what would break models:/<name>@<alias> (@, quotes).
MODEL_NAME_REFUSED = re.compile(r"[/:@'\"\\]")
ALIAS = re.compile(r"[\w\-]{1,255}")  # MLflow's aliases: letters, digits, _ and -


def model_name_problem(name: str) -> str | None:
    """Why MLflow's Model Registry (or a models:/ URI) would refuse ``name``, or None."""
    if not name.strip():
        return "is empty"
    if MODEL_NAME_REFUSED.search(name):
        return "holds one of / : @ ' \" \\"
    if name != name.strip() or posixpath.normpath(name) != name or name.startswith("."):
        return "is not a plain name (MLflow treats names as paths)"
    return None


def alias_problem(alias: str) -> str | None:
    """Why MLflow would refuse ``alias`` for a registered model's version, or None."""
    if not ALIAS.fullmatch(alias):
        return "may hold only letters, digits, _ and - (1 to 255)"
    if alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        return "is reserved by MLflow (latest, v<number>)"
    return None


def _register_problems(cfg: DictConfig) -> list[str]:
    report = cfg.report
    name_problem = None if report.register is None else model_name_problem(report.register)
    alias = alias_problem(report.alias)
    return _checked(
        (
            report.choose in choices.REPORT_CHOOSE,
            f"report.choose={report.choose!r} is unknown: choose one of {', '.join(choices.REPORT_CHOOSE)}",
        ),
        (
            report.choose != "cheapest" or len(report.costs) > 0,
            "report.choose=cheapest needs a cost: give one in report.costs, e.g. report.costs=[n_params]",
        ),
        (
            name_problem is None,
            f"report.register={report.register!r} {name_problem}: give a registered model name such as "
            "report.register=mnist_mlp",
        ),
        (alias is None, f"report.alias={report.alias!r} {alias}: e.g. report.alias=champion"),
        (
            report.register is None or cfg.tracking.log_model,
            f"report.register={report.register} needs the runs' models: set tracking.log_model=true",
        ),
    )


def is_margin(value: float) -> bool:
    """Whether a margin of equivalence (points of accuracy) is usable: finite, above 0."""
    return math.isfinite(value) and value > 0


def _checked(*checks: tuple[bool, str]) -> list[str]:
    """The message of each check that fails."""
    return [message for holds, message in checks if not holds]


def _finite_problems(cfg: DictConfig) -> list[str]:
    container = {group: OmegaConf.to_container(cfg[group], resolve=True) for group in GROUPS}
    return [
        f"{key}={value} is not a finite number: give a finite value"
        for key, value in dotted.leaves(container, into_lists=True)
        if isinstance(value, float) and not math.isfinite(value)
    ]


def _model_problems(model: DictConfig) -> list[str]:
    problems = _checked(
        (
            model.activation in choices.ACTIVATIONS,
            f"model.activation={model.activation!r} is unknown: choose one of Keras' activations "
            f"({', '.join(choices.ACTIVATIONS)})",
        ),
    )
    for i, init in enumerate(model.initializers):
        known = choices.INITIALIZERS.get(snake_case(init.name))
        if known is None:
            problems.append(
                f"model.initializers[{i}].name={init.name!r} is unknown: choose one of Keras' "
                f"initializers ({', '.join(choices.INITIALIZERS)})"
            )
            continue
        wrong = sorted(set(init.args) - set(known))
        if wrong:
            problems.append(
                f"model.initializers[{i}] ({init.name}) takes no argument {', '.join(wrong)}: "
                f"it takes {', '.join(known) or 'none'}"
            )
    return problems + _checked(
        (len(model.widths) > 0, "model.widths is empty: give at least one hidden layer, e.g. model.widths=[128]"),
        (
            all(w > 0 for w in model.widths),
            f"model.widths={list(model.widths)} has a width <= 0: every width must be positive",
        ),
        (
            len(model.initializers) in (1, len(model.widths)),
            f"model.initializers has {len(model.initializers)} entries for {len(model.widths)} hidden layers: "
            "give one, or one per layer",
        ),
    )


def _trainer_problems(trainer: DictConfig) -> list[str]:
    stop = trainer.early_stopping
    return _checked(
        (trainer.epochs > 0, f"trainer.epochs={trainer.epochs} must be > 0, e.g. trainer.epochs=20"),
        (trainer.batch_size > 0, f"trainer.batch_size={trainer.batch_size} must be > 0, e.g. trainer.batch_size=128"),
        (
            trainer.steps_per_execution > 0,
            f"trainer.steps_per_execution={trainer.steps_per_execution} must be > 0",
        ),
        (
            trainer.threads is None or trainer.threads > 0,
            f"trainer.threads={trainer.threads} must be > 0, or null for the default",
        ),
        (
            trainer.backend in choices.BACKENDS,
            f"trainer.backend={trainer.backend!r} is unknown: choose one of {', '.join(choices.BACKENDS)}",
        ),
        (
            stop.patience is None or stop.patience >= 0,
            f"trainer.early_stopping.patience={stop.patience} must be >= 0 (epochs without improvement), "
            "or null for off",
        ),
        (
            stop.monitor in choices.MONITORS,
            f"trainer.early_stopping.monitor={stop.monitor!r} is unknown: choose one of {', '.join(choices.MONITORS)}",
        ),
    )


def _dataset_problems(dataset: DictConfig) -> list[str]:
    problems = _checked(
        (
            dataset.source is None or dataset.source in choices.PUBLISHED_DATASETS,
            f"dataset.source={dataset.source!r} is unknown: choose one of {', '.join(choices.PUBLISHED_DATASETS)}, "
            "or null for data of your own in dataset.data_dir",
        ),
        (dataset.val_size > 0, f"dataset.val_size={dataset.val_size} must be > 0"),
        *(
            (dataset[key] is None or dataset[key] > 0, f"dataset.{key}={dataset[key]} must be > 0, or null for all")
            for key in ("train_size", "test_size")
        ),
    )
    if dataset.source and dataset.verify_checksum:  # a verified published set has a known size
        wanted = dataset.val_size + (dataset.train_size or 1)
        problems += _checked(
            (
                wanted <= choices.PUBLISHED_TRAIN_IMAGES,
                f"dataset.val_size={dataset.val_size} + dataset.train_size="
                f"{dataset.train_size or '(the rest, at least 1)'} exceeds the {choices.PUBLISHED_TRAIN_IMAGES} "
                f"training images of dataset.source={dataset.source}; lower dataset.val_size or dataset.train_size",
            ),
        )
    return problems


def snake_case(name: str) -> str:
    """``RandomNormal`` -> ``random_normal``: Keras knows its initializers by either name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
