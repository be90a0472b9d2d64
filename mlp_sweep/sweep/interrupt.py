"""A clean stop: Ctrl-C or SIGTERM (what schedulers and ``timeout`` send) ends the command within seconds.

The signal unwinds the sweep's process as a ``KeyboardInterrupt``
(:class:`Interrupted`, SIGTERM too), so a job training in that process closes its
own run KILLED on the way out. The entry point then calls :func:`stop`: it
ends every process the command started (joblib's workers, Ray's), closes the
runs they left open and the sweep's parent run KILLED with the reason in a
tag, and prints one line. Jobs already handed to Slurm are the cluster's:
they keep running, and the line says so. A second signal while this runs
forces the exit.
"""

import os
import signal
import sys

import psutil

STOP_WAIT_S = 3.0  # how long a worker may take to end on SIGTERM before it is killed
_sweep = None  # the SweepCallback of the sweep this process runs, once its parent run exists


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, raised where Python raises KeyboardInterrupt, with the signal that caused it."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum


def install() -> None:
    """Ctrl-C and SIGTERM (Python's default ends the process on the spot) raise :class:`Interrupted`; the
    first one also makes a second force the exit, whatever the stop is doing by then. A Ctrl-C the
    process was started to ignore (``nohup``, a shell's background job) stays ignored."""

    def first(signum, frame):
        force_on_second_signal(signum)
        raise Interrupted(signum)

    signal.signal(signal.SIGTERM, first)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, first)


def force_on_second_signal(signum: int) -> None:
    """From now on Ctrl-C or SIGTERM ends the process at once, with the first signal's exit code."""
    for forced in (signal.SIGINT, signal.SIGTERM):
        signal.signal(forced, lambda *_: os._exit(128 + signum))


def watch(sweep) -> None:
    """Remember the sweep whose runs a stop must close (the sweep callback, once its parent run exists)."""
    global _sweep
    _sweep = sweep


def stop(interrupt: KeyboardInterrupt) -> int:
    """End what the command started, close its runs, say so in one line; the exit code (130, or 143 for SIGTERM)."""
    signum = getattr(interrupt, "signum", signal.SIGINT)
    end_workers()
    how = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    summary = _sweep.close_interrupted(f"interrupted by {how}") if _sweep is not None else None
    print(f"interrupted: {summary or 'stopped'}; run the same command again to resume", file=sys.stderr)
    return 128 + signum


def end_workers() -> None:
    """Stop Ray if this process started it, then end every process this one started, however deep."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    workers = [p for p in psutil.Process().children(recursive=True) if not bookkeeper(p)]
    for worker in workers:
        try:
            worker.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(workers, timeout=STOP_WAIT_S)
    for worker in alive:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=STOP_WAIT_S)


def bookkeeper(process: psutil.Process) -> bool:
    """A resource tracker (joblib's loky, multiprocessing): it frees the workers' shared memory once this
    process exits, and then exits itself; ended before that, it is restarted and complains."""
    try:
        return any("resource_tracker" in part for part in process.cmdline())
    except psutil.Error:  # gone already
        return False
