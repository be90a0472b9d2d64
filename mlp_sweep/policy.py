"""A search's and a race's settings (``search.*``, ``race.*``): what they may hold, the pruner and the
directions they ask for, the race's margin.

The command line checks them with the rest of the config, and the sweep reads them; the training core never
does. Apart from the sweeping layer, so that a grid job checks them without loading that layer. The lists
they are checked against are :mod:`mlp_sweep.choices`'.
"""

import warnings

from omegaconf import DictConfig

from mlp_sweep import choices, validation

# The race's margin where none is given, in points of validation accuracy (docs/race.md says why).
DEFAULT_MARGIN = 0.3


def validate(cfg: DictConfig) -> None:
    """Check a run's config and its search settings together: one ConfigError naming every problem."""
    validation.validate(cfg, search_problems(cfg) + race_problems(cfg.race))


def search_problems(cfg: DictConfig) -> list[str]:
    """What is wrong with a config's search settings (objectives, directions, pruner, replicates), each with its fix."""
    search = cfg.search
    objectives, problems = list(search.objectives), []
    if search.pruning:
        warnings.warn(
            "search.pruning is deprecated and goes in 0.4.0: write search.pruner=median", FutureWarning, stacklevel=2
        )
    unknown = [o for o in objectives if o not in choices.OBJECTIVES]
    if not objectives or unknown:
        tested = " (the test set only reports: it never chooses)" if any(o.startswith("test_") for o in unknown) else ""
        problems.append(f"search.objectives={objectives}: give one or more of {', '.join(choices.OBJECTIVES)}{tested}")
    if len(set(objectives)) != len(objectives):
        problems.append(f"search.objectives={objectives} names a metric twice: give each once")
    if search.directions is not None and (
        len(search.directions) != len(objectives) or not set(search.directions) <= set(choices.DIRECTIONS)
    ):
        problems.append(
            f"search.directions={list(search.directions)}: give one of {' or '.join(choices.DIRECTIONS)} per "
            f"objective ({len(objectives)}), or null to follow the metrics"
        )
    if search.pruner is not None and search.pruner not in choices.PRUNERS:
        problems.append(f"search.pruner={search.pruner!r} is unknown: choose one of {', '.join(choices.PRUNERS)}")
    elif search.pruning and search.pruner not in (None, "median"):
        problems.append(f"search.pruning=true asks for the median rule but search.pruner={search.pruner}: give one")
    elif len(objectives) > 1 and pruner(search) != "none":
        problems.append(
            f"search.pruner={pruner(search)} with {len(objectives)} objectives: Optuna cannot prune a "
            "multi-objective study; set search.pruner=none, or search one objective"
        )
    if pruner(search) == "hyperband" and search.grace_epochs >= cfg.trainer.epochs:
        problems.append(
            f"search.pruner=hyperband needs search.grace_epochs={search.grace_epochs} (its minimum resource) below "
            f"trainer.epochs={cfg.trainer.epochs} (its maximum): lower search.grace_epochs or raise trainer.epochs"
        )
    if search.replicates <= 0:
        problems.append(f"search.replicates={search.replicates} must be > 0, e.g. search.replicates=3")
    if search.grace_epochs <= 0:
        problems.append(f"search.grace_epochs={search.grace_epochs} must be > 0, e.g. search.grace_epochs=3")
    return problems


def race_problems(race: DictConfig) -> list[str]:
    """What is wrong with a race's settings (``race.*``), each with its fix."""
    problems = []
    if race.min_seeds < 2:
        problems.append(
            f"race.min_seeds={race.min_seeds} must be >= 2: a comparison needs two seeds a config (3 is usual)"
        )
    if race.max_seeds < race.min_seeds:
        problems.append(
            f"race.max_seeds={race.max_seeds} is below race.min_seeds={race.min_seeds}: raise race.max_seeds"
        )
    if race.margin is not None and not validation.is_margin(race.margin):
        problems.append(f"race.margin={race.margin} must be a finite number of points > 0, e.g. race.margin=0.3")
    if not 0 < race.alpha < 0.5:
        problems.append(f"race.alpha={race.alpha} must be in (0, 0.5), e.g. race.alpha=0.05")
    return problems


def race_margin(cfg: DictConfig) -> float:
    """The race's margin of equivalence in points: ``race.margin``, else ``report.margin``, else 0.3."""
    for margin in (cfg.race.margin, cfg.report.margin):
        if margin is not None:
            return float(margin)
    return DEFAULT_MARGIN


def pruner(search: DictConfig) -> str:
    """The search's pruner: ``search.pruner``, else median where the deprecated ``search.pruning=true`` asks for it."""
    return search.pruner or ("median" if search.pruning else "none")


def directions(search: DictConfig) -> list[str]:
    """One Optuna direction per objective: as given, else accuracies maximised and the rest minimised."""
    if search.directions is not None:
        return list(search.directions)
    return ["maximize" if "accuracy" in o else "minimize" for o in search.objectives]
