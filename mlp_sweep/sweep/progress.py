"""How far a sweep has got: the elapsed time and an estimate of the time left, on each ``[k/N] name`` line.

The lines are printed by the sweep's own process, fed in one of two ways.
Hydra's basic launcher runs every job in that process and calls the job
callbacks there, so the sweep callback times each job itself. Every other
launcher (joblib, Ray, submitit) runs a job elsewhere and calls its callbacks
there, where neither the other jobs' progress nor the user's terminal is at
hand; for those a thread of the sweep's process watches the store instead
(:class:`StoreWatch`): a job's run opens when it starts and closes when it
ends, on whichever machine it runs. The arithmetic (:func:`time_left_s`) is pure.
"""

import heapq
import logging
import threading
import time
from collections.abc import Sequence

from mlflow.tracking import MlflowClient

from mlp_sweep.store import resume

log = logging.getLogger(__name__)


def time_left_s(
    waiting: int, durations: Sequence[float], running: Sequence[float] = (), workers: int = 1
) -> float | None:
    """Seconds until the sweep's last job ends; None until a job has ended, as nothing says how long one takes.

    Each job still ``waiting`` is taken to last as long as the mean of those that
    ended (``durations``), and each ``running`` one that long less what it has run
    so far; ``workers`` jobs run at a time, and a waiting job goes to the worker
    that frees first. With jobs of equal length this is exact at the tail too,
    where fewer jobs than workers are left: 7 jobs of 20 s on 2 workers take 80 s, not 70.
    """
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    free_at = [max(mean - ran, 0.0) for ran in running]
    free_at += [0.0] * (workers - len(free_at))  # idle workers
    heapq.heapify(free_at)
    for _ in range(waiting):
        heapq.heapreplace(free_at, free_at[0] + mean)
    return max(free_at)


def clock(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``: a duration as a clock shows it."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def job_line(number: int, total: int | None, name: str, elapsed_s: float, left_s: float | None) -> str:
    """``[4/9] mlp3-none-s0  elapsed 1:02  ETA 2:30``: the ETA is the time left, ``?`` before a job has ended."""
    eta = "?" if left_s is None else clock(left_s)
    return f"[{number}/{total or '?'}] {name}  elapsed {clock(elapsed_s)}  ETA {eta}"


POLL_S = 1.0  # a job's line is printed at most this long after its run opens


class StoreWatch:
    """A thread of the sweep's process that prints a job's line as the job's run opens in the store.

    The number of workers is the most runs seen open at once: no launcher has
    to say how many it runs (joblib's n_jobs, Ray's CPUs, a Slurm array's limit).
    Runs an earlier command reused for this sweep (a continued search) are
    already on the parent run when the watch starts, and are no job of this one.
    """

    def __init__(self, tracking_uri: str, parent_run_id: str, total: int | None, started: float) -> None:
        self.client = MlflowClient(tracking_uri)  # its own: the sweep's thread uses the other
        self.parent_run_id, self.total, self.started = parent_run_id, total, started
        self.reused_before = len(resume.reused_run_ids(self.client.get_run(parent_run_id)))
        self.shown: set[str] = set()
        self.workers = 1
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="mlp_sweep progress", daemon=True)
        self.thread.start()

    def watch(self) -> None:
        while not self.stopping.wait(POLL_S):
            self.poll_quietly()

    def stop(self) -> None:
        """Stop watching, after a last look: a job that began and ended since the last one still gets its line."""
        self.stopping.set()
        self.thread.join()
        self.poll_quietly()

    def poll_quietly(self) -> None:
        try:
            self.poll()
        except Exception:  # a busy or unreachable store: the progress lines wait for the next look
            log.debug("could not read the sweep's progress from the store", exc_info=True)

    def poll(self) -> None:
        parent = self.client.get_run(self.parent_run_id)
        runs = sorted(resume.child_runs(self.client, parent), key=lambda r: r.info.start_time)
        now_ms = time.time() * 1000
        running = [max(now_ms - r.info.start_time, 0) / 1000 for r in runs if r.info.status == "RUNNING"]
        durations = [(r.info.end_time - r.info.start_time) / 1000 for r in runs if r.info.end_time]
        reused = len(resume.reused_run_ids(parent)) - self.reused_before
        self.workers = max(self.workers, len(running))
        if self.total is None:
            left = None
        else:
            waiting = max(self.total - reused - len(durations) - len(running), 0)
            left = time_left_s(waiting, durations, running, self.workers)
        for run in runs:
            if run.info.run_id not in self.shown:
                self.shown.add(run.info.run_id)
                number = len(self.shown) + reused
                print(
                    job_line(number, self.total, run.info.run_name, time.monotonic() - self.started, left), flush=True
                )
