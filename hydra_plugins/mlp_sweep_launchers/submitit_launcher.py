"""``hydra/launcher=slurm``'s launcher: a thin shim over :class:`mlp_sweep.sweep.submitit_launcher.SlurmLauncher`.

Hydra instantiates a launcher only from the ``hydra_plugins`` package, and imports
every module there at start-up: this one imports submitit's launcher only once a
sweep starts, so that a command without the slurm extra starts as fast, and warns of nothing.
"""

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher


class SlurmLauncher(Launcher):
    def __init__(self, **params) -> None:
        from mlp_sweep.sweep.submitit_launcher import SlurmLauncher as Impl

        self.impl = Impl(**params)

    def setup(self, **kwargs) -> None:
        self.impl.setup(**kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.impl.launch(job_overrides, initial_job_idx)
