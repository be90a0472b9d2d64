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

from helpers import all_runs, parents, requires, start_interruptible, sweep_args, wait_for_a_running_job
from mlp_sweep import names

LINE = re.compile(r"interrupted: (\d+) finished, (\d+) stopped; run the same command again to resume")
GRID = ("model=mlp2,mlp3,mlp5", "reg=none,bn", "trainer.epochs=8", "tracking.log_model=false")
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
    wait_for_a_running_job(store, proc)
    sent = time.monotonic()
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent

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
    assert len(trained) == 6 and set(trained.values()) == {1}  # every point trained, none twice


@pytest.mark.slow
def test_a_second_ctrl_c_forces_the_exit(tiny_mnist, tmp_path, store):
    proc = start_interruptible(sweep_args(tmp_path, tiny_mnist, *GRID, *LAUNCHERS["parallel"]), tmp_path)
    wait_for_a_running_job(store, proc)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    proc.communicate(timeout=30)
    # Our exit code, or death by the signal itself: a second Ctrl-C that comes once the stop is done meets the
    # interpreter's teardown, which puts every handler Python set back to the default before the process ends.
    # Either way the shell shows 130, and the command did not wait for its stop to finish.
    assert proc.returncode in (130, -signal.SIGINT) and time.monotonic() - sent < 10
