"""What a sweep is, read from its config before anything runs: a grid, a search or a race,
how many jobs it runs and the keys it varies (they name its runs), whether its launcher runs
the jobs in the sweep's process, and its data checked once. The sweep callback
(:mod:`mlp_sweep.sweep.callback`) reads these when the multirun starts.
"""

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from mlp_sweep import compat
from mlp_sweep.store import identity


def sweep_overrides(config: DictConfig) -> list[str]:
    """The sweep's overrides: those in ``hydra.sweeper.params`` then the command line's."""
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)


def is_search(config: DictConfig) -> bool:
    """Whether the sweep is a search (hydra/sweeper=mlp_search) rather than a grid."""
    return "mlp_sweep_search" in str(config.hydra.sweeper.get("_target_", ""))


def sweep_shape(config: DictConfig, overrides: list[str]) -> tuple[int | None, list[str]]:
    """How many jobs the sweep will run, and the keys it varies (they name its runs).

    A grid counts as Hydra's basic sweeper expands it; a search asks its study
    (:func:`mlp_sweep.sweep.search.open_search`); a race checks its settings and leaves the count
    unknown; any other sweeper has its own syntax: unknown.
    """
    if is_search(config):
        from mlp_sweep.sweep import search  # Optuna: only for a search

        searched = search.open_search(config, list(config.hydra.overrides.task))
        return searched.jobs, searched.varying
    from mlp_sweep.sweep import race_launch  # hydra's sweeper machinery: only for a race

    if race_launch.is_race(config):  # its job count depends on what its seeds show
        race_launch.race_grid(config, list(config.hydra.overrides.task))
        return None, identity.varying_keys(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        return compat.basic_sweeper_jobs(parsed), identity.varying_keys(overrides)
    except Exception:  # a sweeper other than the basic one: its own syntax
        return None, []


def runs_jobs_here(config: DictConfig) -> bool:
    """Whether the launcher runs the jobs in the sweep's process, calling the job callbacks there:
    Hydra's basic launcher does; joblib, Ray and submitit call them where each job runs."""
    return str(config.hydra.launcher.get("_target_", "")).endswith("basic_launcher.BasicLauncher")


def check_data(dataset: DictConfig) -> None:
    """Read and check the sweep's one dataset, as its jobs will, so that bad data fails the command once,
    before any run opens. Only a folder is read here: a download would load Keras (and with it a backend)
    into the sweep's process, so data Keras downloads is checked by each job."""
    from mlp_sweep.core import data  # numpy alone: no Keras

    if data.resolve_data_dir(dataset.data_dir) is not None:
        data.from_config(dataset)
