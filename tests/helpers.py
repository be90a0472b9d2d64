"""Helpers the tests hand to the command line (importable with tests/ on PYTHONPATH)."""

import shutil

from hydra.experimental.callback import Callback


class WipeJobFolder(Callback):
    """Delete each job's output folder as the job ends: a launcher whose nodes share no disk."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        shutil.rmtree(config.hydra.runtime.output_dir, ignore_errors=True)
