"""Slurm through submitit (``hydra/launcher=slurm``): hydra-submitit-launcher's
launcher, which follows its jobs with ``squeue`` and counts a job that Slurm
ended without a result as a failed job.

hydra-submitit-launcher 1.2 waits for each job with submitit's ``job.results()``,
which asks ``sacct`` for the job's state. On a cluster without accounting (most
small ones) every poll then warns ``Bypassing sacct error ... status may be
inaccurate``, and a job that Slurm ended without a result (``scancel``, a time
limit, a lost node) is never seen to end: the sweep waits forever. Where
``sacct`` answers, the first such job raises a page of traceback out of the
launcher, before the sweep callback has counted anything, and the parent run
stays open.

Here ``squeue --states=all``, which needs no accounting and lists a job for
``MinJobAge`` (300 s by default) after it ends, tells when each job has ended,
so ``sacct`` is never called and its warning never shown. A job that ended
without a result returns nothing, as a job whose training failed does: its run,
if it opened one, is closed KILLED by the sweep callback, which reports it in
its one line per failed job, and the same command run again trains that point.

Checked against hydra-submitit-launcher 1.2.0 and submitit 1.5.4: the
launcher's ``params`` (its config, resolved), the ``BaseQueueConf`` keys that
submitit takes unprefixed, and ``job.paths.result_pickle``, where a job leaves
its result (``tests/sweep/test_launchers.py`` checks them).
"""

import logging
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

log = logging.getLogger(__name__)

# Slurm's states for a job that will not run again (squeue's long names). Not PREEMPTED: submitit
# requeues a preempted job; one that stays preempted ends when squeue stops listing it.
ENDED = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT"}
)
POLL_S = 1.0  # how often the jobs' result files are looked for
SQUEUE_EVERY_S = 5.0  # how often slurmctld is asked: a busy controller is asked no more than it must be
RESULT_LAG_S = 15.0  # how long a COMPLETED job's result may take to show on a shared disk (submitit's own wait)


def slurm_states() -> dict[str, str] | None:
    """This user's jobs as ``squeue`` lists them (array tasks one by one, ``12_0``), with those
    ended in the last ``MinJobAge``; None when slurmctld did not answer."""
    try:
        out = subprocess.run(
            ["squeue", "--me", "--states=all", "--array", "--noheader", "--format=%i %T"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("squeue did not answer: %s", e)
        return None
    return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)


def has_ended(job_id: str, states: dict[str, str]) -> bool:
    """Whether Slurm has ended the job: in an ended state, or no longer listed at all."""
    return job_id not in states or states[job_id] in ENDED


def wait_for(jobs: Sequence) -> dict[str, str]:
    """Until every job has left its result or Slurm has ended it; the last states squeue gave."""
    waiting, states, asked = list(jobs), None, 0.0
    while waiting:
        if time.monotonic() - asked >= SQUEUE_EVERY_S:
            answer, asked = slurm_states(), time.monotonic()
            states = states if answer is None else answer  # no answer: wait on what was last known
        waiting = [
            j
            for j in waiting
            if not j.paths.result_pickle.exists() and not (states is not None and has_ended(j.job_id, states))
        ]
        if waiting:
            time.sleep(POLL_S)
    return states or {}


def result_file(job, state: str | None) -> Path | None:
    """The job's result file, waiting a little for that of a COMPLETED job (a shared disk may show it late)."""
    deadline = time.monotonic() + (RESULT_LAG_S if state == "COMPLETED" else 0.0)
    while not job.paths.result_pickle.exists() and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return job.paths.result_pickle if job.paths.result_pickle.exists() else None


def job_return(job, idx: int, state: str | None) -> JobReturn | None:
    """What the job returned; None for one that Slurm ended without a result, or that raised outside the
    training (submitit's error is then a page of trace, which the job's log holds already)."""
    if result_file(job, state) is None:
        log.warning("Slurm ended job #%d (%s) %s, before it returned a result", idx, job.job_id, state or "UNKNOWN")
        return None
    try:
        return job.results()[0]
    except Exception:  # submitit's FailedJobError
        log.error("job #%d (Slurm job %s) failed outside the training: see %s", idx, job.job_id, job.paths.stderr)
        return None


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    """``hydra/launcher=slurm``'s ``_target_``: every parameter as hydra-submitit-launcher's, a job array per batch."""

    def executor(self):
        """submitit's Slurm executor with this launcher's parameters, named as hydra-submitit-launcher names them."""
        import submitit

        params = dict(self.params)
        folder, max_num_timeout = params.pop("submitit_folder"), params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster="slurm", folder=folder, slurm_max_num_timeout=max_num_timeout)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())  # every executor's: no "slurm_" prefix
        executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        jobs = self.executor().map_array(self, *zip(*job_params, strict=True))
        states = wait_for(jobs)
        returns = [job_return(job, idx, states.get(job.job_id)) for idx, job in enumerate(jobs, start=initial_job_idx)]
        return [
            r or JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None)
            for r, overrides in zip(returns, job_overrides, strict=True)
        ]
