"""Ray (``hydra/launcher=ray_local``, ``ray_cluster``): hydra-ray-launcher's launcher,
which counts a job that Ray lost (its worker or its node died) as a failed job.

hydra-ray-launcher 1.2 collects its jobs with ``[ray.get(job) for job in jobs]``:
a job whose node was lost raises out of the launcher, a traceback that ends the
command before the sweep callback has counted anything, the other jobs' results
unread and the parent run left open. And Ray runs such a task again elsewhere by
default (``max_retries=3``), where a cluster has room, while the first attempt's
run stays open; with no room left it waits for a node forever.

Here every job is waited for, and one that Ray lost returns nothing, as a job
whose training failed does: its run, if it opened one, is closed KILLED by the
sweep callback (where its process is gone from this machine), which reports it
in its one line per failed job, and the same command run again trains that
point. Ray retries no job (``max_retries: 0`` unless ``hydra.launcher.ray.remote``
says otherwise): the sweep's resume is the one retry, seen and counted.

Checked against hydra-ray-launcher 1.2.2 and Ray 2.60: the launcher's
``ray_cfg`` and its helpers ``start_ray`` and ``launch_job_on_ray`` (through :mod:`mlp_sweep.compat`), whose steps
:meth:`RayLauncher.launch` follows (``tests/sweep/test_launchers.py`` checks them).
"""

import logging
from collections.abc import Sequence
from pathlib import Path

import ray
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import OmegaConf, open_dict

from hydra_plugins.hydra_ray_launcher import ray_launcher
from mlp_sweep import compat

log = logging.getLogger(__name__)

# hydra-ray-launcher's object store for a machine of CI's size (ray-project/ray#11966), where the config sets none.
OBJECT_STORE_BYTES = 78643200


def job_return(job, idx: int) -> JobReturn | None:
    """What the job returned; None for one that Ray lost (a dead worker or node) or that raised outside the
    training, after one line saying why: the first sentence of Ray's error, or of the job's own."""
    try:
        return ray.get(job)
    except ray.exceptions.RayError as e:
        why = str(getattr(e, "cause", None) or e).strip() or type(e).__name__
        log.warning("Ray lost job #%d: %s", idx, why.splitlines()[0].split(". ")[0])
        return None


class RayLauncher(ray_launcher.RayLauncher):
    """``hydra/launcher=ray_local`` and ``ray_cluster``'s: hydra-ray-launcher's config, one Ray task per job."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Ray Launcher is launching %d jobs, sweep output dir: %s", len(job_overrides), sweep_dir)
        self.ray_cfg.init.setdefault("object_store_memory", OBJECT_STORE_BYTES)
        compat.ray_start(self.ray_cfg.init)
        remote = OmegaConf.create({"max_retries": 0, **OmegaConf.to_container(self.ray_cfg.remote, resolve=True)})
        jobs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):  # the job's id comes from a scheduler where there is one; here, its number
                sweep_config.hydra.job.id, sweep_config.hydra.job.num = f"job_id_for_{idx}", idx
            state = Singleton.get_state()
            jobs.append(compat.ray_launch_job(self.hydra_context, remote, sweep_config, self.task_function, state))
        returns = [job_return(job, idx) for idx, job in enumerate(jobs, start=initial_job_idx)]
        return [
            r or JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None)
            for r, overrides in zip(returns, job_overrides, strict=True)
        ]
