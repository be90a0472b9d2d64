"""Resume and claims: find the run that already holds a grid point, claim a
point before training it, and close the runs a dead process left open.

A run is one grid point when its identity (:mod:`mlp_sweep.store.identity`: config
hash, seed, data checksum, code fingerprint) matches. Every function takes the
client its caller opened: the store is the caller's, never a global. A process
killed with SIGKILL cannot end its run, which then says RUNNING forever; each
run therefore records which process holds it open (host, pid, start time),
so that a later command can tell a live run from an orphan and mark the
orphan KILLED, with the reason in a tag. Nothing here imports TensorFlow.
"""

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from mlp_sweep import compat, names
from mlp_sweep.store.identity import GridPoint

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


def grid_point_filter(point: GridPoint) -> str:
    """The MLflow search filter that matches the runs of one grid point."""
    return f"tags.`{names.TAG_GRID_POINT}` = '{point.key}'"


def _status(status: RunStatus) -> str:
    return f"attributes.status = '{RunStatus.to_string(status)}'"


def close_stale_runs(
    client: MlflowClient,
    experiment_id: str,
    filter_string: str = "",
    why: str = "marked KILLED by a later command",
    this_process: bool = False,
) -> list[str]:
    """Mark RUNNING runs whose process has died KILLED, saying ``why`` in their failure tag; return their ids.

    ``this_process``: this process' own runs too (it is stopping: none of them will be closed otherwise).
    """
    running = _status(RunStatus.RUNNING)
    query = f"{running} and {filter_string}" if filter_string else running
    closed = []
    for run in client.search_runs([experiment_id], query, max_results=1000):
        tag = run.data.tags.get(names.TAG_PROCESS)
        if not tag or not (process_gone(tag) or (this_process and tag == process_tag())):
            continue
        reason = f"interrupted: its process {tag} ended without closing the run (killed?); {why}"
        client.set_tag(run.info.run_id, names.TAG_FAILURE, reason)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        log.warning("run %s (%s) was left RUNNING by a dead process: marked KILLED", run.info.run_name, run.info.run_id)
        closed.append(run.info.run_id)
    return closed


def finished_run(client: MlflowClient, experiment_id: str, point: GridPoint) -> Run | None:
    """The newest FINISHED run of this grid point, or None."""
    runs = client.search_runs(
        [experiment_id],
        f"{_status(RunStatus.FINISHED)} and {grid_point_filter(point)}",
        max_results=1,
        order_by=["attributes.end_time DESC"],
    )
    return runs[0] if runs else None


def why_trained_again(client: MlflowClient, experiment_id: str, point: GridPoint) -> str | None:
    """When a FINISHED run has this config and seed but other data or code: the line that says so."""
    same_config = (
        f"{_status(RunStatus.FINISHED)} and tags.`{names.TAG_CONFIG_HASH}` = '{point.config_hash}' "
        f"and tags.`{names.TAG_SEED}` = '{point.seed}'"
    )
    runs = client.search_runs([experiment_id], same_config, max_results=1, order_by=["attributes.end_time DESC"])
    if not runs:
        return None
    return f"trained again: {point.change_since(runs[0].data.tags)} changed since run {runs[0].info.run_id}"


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a grid point: a run to train in, or the run that already holds the point."""

    run_id: str | None = None  # ours, open (RUNNING): train in it
    holder: Run | None = None  # FINISHED (reuse it) or RUNNING in another live process (count it once it ends)


def claim(
    client: MlflowClient, experiment_id: str, point: GridPoint, name: str, tags: dict[str, str], rerun: bool
) -> Claim:
    """Claim a grid point before training it, so that two commands never train it twice.

    The claim is the run itself: open it, then look at the point's other runs.
    A FINISHED one wins (unless ``rerun``), and among live RUNNING ones the
    earliest (start time, then run id) wins; every command that looks after
    both runs exist reaches the same verdict. The loser deletes its own run,
    which never trained. Runs whose process died are closed before ours opens,
    so a dead claim is released the way orphaned runs are. A point a FINISHED
    run holds (most points of a resumed sweep) costs one search.
    """
    if not rerun:  # first, as a resumed sweep's jobs mostly find their run: one search, then done
        done = finished_run(client, experiment_id, point)
        if done is not None:
            return Claim(holder=done)
    close_stale_runs(client, experiment_id, grid_point_filter(point))
    if not rerun:
        why = why_trained_again(client, experiment_id, point)
        if why:
            print(f"{name}: {why}", flush=True)
    ours = client.create_run(
        experiment_id,
        run_name=name,
        tags=compat.run_context_tags({**tags, **point.tags(), names.TAG_PROCESS: process_tag()}),
    ).info
    rivals = [
        r
        for r in client.search_runs([experiment_id], grid_point_filter(point), max_results=1000)
        if r.info.run_id != ours.run_id
    ]
    finished = [] if rerun else [r for r in rivals if r.info.status == "FINISHED"]
    earlier = sorted(
        (
            r
            for r in rivals
            if r.info.status == "RUNNING" and (r.info.start_time, r.info.run_id) < (ours.start_time, ours.run_id)
        ),
        key=lambda r: (r.info.start_time, r.info.run_id),
    )
    holder = (finished or earlier or [None])[0]
    if holder is None:
        return Claim(run_id=ours.run_id)
    client.delete_run(ours.run_id)
    return Claim(holder=holder)


def record_reuse(client: MlflowClient, parent_run_id: str | None, runs: list[Run]) -> None:
    """List runs the sweep did not train on its parent run, for its report and its count of jobs.

    One tag per run, keyed by run id (so no two collide), valued by its grid point; in batches
    of MLflow's limit of 100 tags a call.
    """
    if not parent_run_id:
        return
    tags = [RunTag(names.TAG_REUSED_PREFIX + r.info.run_id, r.data.tags.get(names.TAG_GRID_POINT, "")) for r in runs]
    for start in range(0, len(tags), 100):
        client.log_batch(parent_run_id, tags=tags[start : start + 100])


def child_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """Every run opened under a sweep's parent run, all pages of them."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [parent.info.experiment_id],
            f"tags.`{names.TAG_PARENT}` = '{parent.info.run_id}'",
            max_results=1000,
            page_token=token,
        )
        runs += page
        token = page.token
        if not token:
            return runs


def runs_by_id(client: MlflowClient, experiment_id: str, run_ids: list[str]) -> list[Run]:
    """These runs of an experiment, 100 to a search rather than one call each."""
    runs = []
    for start in range(0, len(run_ids), 100):
        listed = ", ".join(f"'{run_id}'" for run_id in run_ids[start : start + 100])
        runs += client.search_runs([experiment_id], f"attributes.run_id IN ({listed})", max_results=100)
    return runs


def reused_run_ids(parent: Run) -> list[str]:
    """The runs a sweep's jobs reused, from its parent run's tags."""
    return sorted(
        k.removeprefix(names.TAG_REUSED_PREFIX) for k in parent.data.tags if k.startswith(names.TAG_REUSED_PREFIX)
    )


def record_failed_job(
    client: MlflowClient, experiment_id: str, parent_run_id: str, name: str, error: BaseException, since_ms: int
) -> None:
    """Leave a FAILED child run for a sweep job that failed before its own run opened.

    A job whose run opened has ended it FAILED already: that is any run of the
    sweep opened by this process since the job began (one job at a time a process).
    """
    own = (
        f"tags.`{names.TAG_PARENT}` = '{parent_run_id}' and tags.`{names.TAG_PROCESS}` = '{process_tag()}' "
        f"and attributes.start_time >= {since_ms}"
    )
    if client.search_runs([experiment_id], own, max_results=1):
        return
    run = client.create_run(
        experiment_id,
        run_name=name,
        tags=compat.run_context_tags(
            {
                names.TAG_PARENT: parent_run_id,
                names.TAG_PROCESS: process_tag(),
                names.TAG_FAILURE: f"{type(error).__name__}: {error}"[:5000],
            }
        ),
    )
    client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
