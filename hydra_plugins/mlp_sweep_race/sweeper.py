"""The Hydra sweeper ``hydra/sweeper=race``: a thin shim over :func:`mlp_sweep.sweep.race_launch.sweep`.

Its settings are the config's ``race.*`` (mlp_sweep/schema.py's RaceConf), so that they are
checked, named and overridden like every other setting.
"""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class RaceSweeperConf:
    _target_: str = "hydra_plugins.mlp_sweep_race.sweeper.RaceSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="race", node=RaceSweeperConf, provider="mlp_sweep")


class RaceSweeper(Sweeper):
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

    def sweep(self, arguments: list[str]) -> Any:
        from mlp_sweep.sweep.race_launch import sweep

        return sweep(self, arguments)
