"""``hydra/launcher=ray_local`` and ``ray_cluster``'s launcher: a thin shim over
:class:`mlp_sweep.sweep.ray_launcher.RayLauncher`.

Hydra instantiates a launcher only from the ``hydra_plugins`` package, and imports
every module there at start-up: this one imports Ray only once a sweep starts, so
that a command without the ray extra starts as fast, and warns of nothing.
"""

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig


class RayLauncher(Launcher):
    def __init__(self, ray: DictConfig) -> None:
        from mlp_sweep.sweep.ray_launcher import RayLauncher as Impl

        self.impl = Impl(ray)

    def setup(self, **kwargs) -> None:
        self.impl.setup(**kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.impl.launch(job_overrides, initial_job_idx)
