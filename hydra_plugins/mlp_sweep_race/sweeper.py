"""The Hydra sweeper ``hydra/sweeper=race``: a thin shim over :func:`mlp_sweep.sweep.race_launch.sweep`.

Its settings are the config's ``race.*`` (mlp_sweep/schema.py's RaceConf), so that they are
checked, named and overridden like every other setting.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from hydra_plugins.mlp_sweep_search.sweeper import LaunchingSweeper


@dataclass
class RaceSweeperConf:
    _target_: str = "hydra_plugins.mlp_sweep_race.sweeper.RaceSweeper"
    # A search's settings (hparams_search=... sets them): held only so that a race combined with a search is
    # refused in one line of ours (mlp_sweep.sweep.race_launch), not in Hydra's words about a missing key.
    n_trials: Optional[int] = None
    n_jobs: Optional[int] = None
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="race", node=RaceSweeperConf, provider="mlp_sweep")


class RaceSweeper(LaunchingSweeper):
    def __init__(self, **search_settings: Any) -> None:  # a search's, refused once the race starts
        super().__init__()

    def sweep(self, arguments: list[str]) -> Any:
        from mlp_sweep.sweep.race_launch import sweep

        return sweep(self, arguments)
