"""The Hydra sweeper ``hydra/sweeper=mlp_search``: a thin shim over :func:`mlp_sweep.sweep.search.sweep`.

Hydra imports every module under ``hydra_plugins`` at start-up, so this one
imports Optuna and MLflow only once a sweep starts.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SearchSweeperConf:
    _target_: str = "hydra_plugins.mlp_sweep_search.sweeper.SearchSweeper"
    n_trials: int = 20  # the study's total: a search run again continues toward it
    n_jobs: int = 1  # trials asked for at once, launched as one batch (their seeds too)
    params: dict[str, str] = field(default_factory=dict)  # the space, in Hydra's sweeper grammar


ConfigStore.instance().store(group="hydra/sweeper", name="mlp_search", node=SearchSweeperConf, provider="mlp_sweep")


class LaunchingSweeper(Sweeper):
    """A sweeper that launches its jobs through the sweep's launcher: what the search and the race share."""

    def __init__(self) -> None:
        super().__init__()
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )


class SearchSweeper(LaunchingSweeper):
    def __init__(self, n_trials: int, n_jobs: int, params: dict[str, str] | None = None) -> None:
        super().__init__()
        self.n_trials, self.n_jobs, self.params = n_trials, n_jobs, dict(params or {})

    def sweep(self, arguments: list[str]) -> Any:
        from mlp_sweep.sweep.search import sweep

        return sweep(self, arguments)
