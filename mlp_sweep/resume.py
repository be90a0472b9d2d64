"""Resume: find the run a job already finished, and close the runs a dead process left open.

A run is one grid point when its config hash and seed tags match. A process
killed with SIGKILL cannot end its run, which then says RUNNING forever; each
run therefore records which process holds it open (host, pid, start time),
so that a later command can tell a live run from an orphan and mark the
orphan KILLED, with the reason in a tag. Nothing here imports TensorFlow.
"""

import logging
import os
import socket
from pathlib import Path

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from mlp_sweep import tracking
from mlp_sweep.schema import run_name

log = logging.getLogger(__name__)


def _start_time(pid: int) -> str:
    """The process' start time in clock ticks since boot (Linux), or "" where unknown.

    With the pid it names one process: a pid alone may be reused after a kill.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in (...) may hold spaces


def process_tag() -> str:
    """``host:pid:start`` of this process, for the run it opens."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def process_gone(tag: str) -> bool:
    """True when the process a run's tag names has surely ended.

    A process on another host cannot be checked from here: it counts as alive,
    so a sweep never closes a run that may still be training elsewhere.
    """
    host, _, rest = tag.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return bool(started) and _start_time(pid) not in ("", started)


def grid_point_filter(config_hash: str, seed: int) -> str:
    """The MLflow search filter that matches the runs of one grid point."""
    return f"tags.`{tracking.TAG_CONFIG_HASH}` = '{config_hash}' and tags.`{tracking.TAG_SEED}` = '{seed}'"


def close_stale_runs(experiment_id: str, filter_string: str = "") -> list[str]:
    """Mark RUNNING runs whose process has died KILLED; return their ids."""
    client = MlflowClient()
    running = f"attributes.status = '{RunStatus.to_string(RunStatus.RUNNING)}'"
    query = f"{running} and {filter_string}" if filter_string else running
    closed = []
    for run in client.search_runs([experiment_id], query, max_results=1000):
        tag = run.data.tags.get(tracking.TAG_PROCESS)
        if not tag or not process_gone(tag):
            continue
        reason = f"interrupted: its process {tag} ended without closing the run (killed?); marked KILLED by a later command"
        client.set_tag(run.info.run_id, tracking.TAG_FAILURE, reason)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        log.warning("run %s (%s) was left RUNNING by a dead process: marked KILLED", run.info.run_name, run.info.run_id)
        closed.append(run.info.run_id)
    return closed


def finished_run(experiment_id: str, config_hash: str, seed: int) -> Run | None:
    """The newest FINISHED run of this grid point, or None."""
    finished = f"attributes.status = '{RunStatus.to_string(RunStatus.FINISHED)}'"
    runs = MlflowClient().search_runs(
        [experiment_id], f"{finished} and {grid_point_filter(config_hash, seed)}", max_results=1, order_by=["attributes.end_time DESC"]
    )
    return runs[0] if runs else None


def reuse_finished(experiment_id: str, cfg: DictConfig) -> dict[str, float] | None:
    """The metrics of this job's FINISHED run, when there is one and tracking.rerun is off; else None.

    Runs of the same grid point left RUNNING by a killed process are closed
    first, so a resumed sweep leaves no run that looks alive.
    """
    config_hash, seed = tracking.config_hash(cfg), cfg.trainer.seed
    close_stale_runs(experiment_id, grid_point_filter(config_hash, seed))
    if cfg.tracking.rerun:
        return None
    run = finished_run(experiment_id, config_hash, seed)
    if run is None:
        return None
    name = run_name(cfg)
    print(f"{name}: skipped, already FINISHED as MLflow run {run.info.run_id} (tracking.rerun=true trains it again)", flush=True)
    parent = os.environ.get(tracking.ENV_PARENT_RUN)
    if parent:  # the sweep's parent run lists the runs it reused, for its report
        MlflowClient().set_tag(parent, tracking.TAG_REUSED_PREFIX + name, run.info.run_id)
    return dict(run.data.metrics)
