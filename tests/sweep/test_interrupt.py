"""A clean stop: Ctrl-C or SIGTERM, sent to the command's process group as a terminal or a
scheduler sends it, ends the sweep within seconds with one line and no traceback, leaves no
worker running and no run RUNNING, and the same command again finishes the grid."""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from helpers import ROOT, all_runs, parents, requires, start_interruptible, stop, sweep_args, wait_for_line
from mlp_sweep import names
from mlp_sweep.sweep import interrupt

LINE = re.compile(r"interrupted: (\d+) finished, (\d+) stopped; run the same command again to resume")
GRID = ("model=mlp2,mlp3", "reg=none,bn", "trainer.epochs=8", "tracking.log_model=false")
LAUNCHERS = {
    "basic": (),
    "parallel": ("hydra/launcher=parallel",),
    "ray": ("hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=2"),
}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher, signum",
    [
        ("basic", signal.SIGINT),
        ("basic", signal.SIGTERM),
        ("parallel", signal.SIGINT),
        ("parallel", signal.SIGTERM),
        pytest.param("ray", signal.SIGINT, marks=requires("hydra_plugins.hydra_ray_launcher", "ray", extra="ray")),
    ],
)
def test_a_signal_stops_the_sweep_cleanly_and_the_same_command_resumes(tiny_mnist, tmp_path, store, launcher, signum):
    # ``store``: tmp_path/mlflow.db made beforehand, so that this test's polling never races the command's migration
    args = sweep_args(tmp_path, tiny_mnist, *GRID, *LAUNCHERS[launcher])
    proc = start_interruptible(args, tmp_path)
    seen = wait_for_line(proc, " epoch 1/8")  # a job is inside its training: not opening its run, not tracing
    sent = time.monotonic()
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    took, err = time.monotonic() - sent, seen.err + err

    assert proc.returncode == 128 + signum and took < 10, (proc.returncode, took, err[-3000:])
    assert LINE.fullmatch(err.strip().splitlines()[-1]), err[-3000:]
    assert "Traceback" not in err
    deadline = time.monotonic() + 10  # a resource tracker frees shared memory after its parent, then ends
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(proc.pid), "a process of the command outlived it"
    runs = all_runs(store)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    (parent,) = parents(store)
    finished, stopped = map(int, LINE.fullmatch(err.strip().splitlines()[-1]).groups())
    assert parent.info.status == "KILLED" and parent.data.tags[names.TAG_FAILURE].startswith("interrupted by ")
    children = [r for r in runs if r.data.tags.get(names.TAG_PARENT) == parent.info.run_id]
    assert Counter(r.info.status for r in children) == +Counter({"FINISHED": finished, "KILLED": stopped})
    assert all(r.data.tags[names.TAG_FAILURE] for r in children if r.info.status == "KILLED")

    again = subprocess.run([sys.executable, "-m", "mlp_sweep", *args], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    trained = Counter(
        r.data.tags[names.TAG_GRID_POINT]
        for r in all_runs(store)
        if r.info.status == "FINISHED" and names.TAG_SWEEP not in r.data.tags
    )
    assert len(trained) == 4 and set(trained.values()) == {1}  # every point trained, none twice


@pytest.mark.slow
def test_a_second_ctrl_c_forces_the_exit(tiny_mnist, tmp_path, store):
    # The job starts a process that outlives its stop's SIGTERM and says, in a file, that it got it: the stop
    # is then under way and waits for that process, and the second Ctrl-C lands in that wait, every time.
    flag = tmp_path / "told_to_end"
    hold = ["+hydra.callbacks.hold._target_=helpers.HoldTheStop", f"+hydra.callbacks.hold.flag={flag}"]
    args = sweep_args(tmp_path, tiny_mnist, *GRID, *hold)
    proc = start_interruptible(
        args, tmp_path, env={"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    )
    try:
        wait_for_line(proc, " epoch 1/8")
        os.killpg(proc.pid, signal.SIGINT)
        while not flag.exists():  # the event: the stop is ending the command's processes
            assert proc.poll() is None, "the command ended before its stop told its processes to end"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        stop(proc)  # and the process that ignored the stop
    assert proc.returncode == 130 and took < interrupt.STOP_WAIT_S, (proc.returncode, took, err[-3000:])
    assert "interrupted:" not in err  # forced: the stop never got to its line
