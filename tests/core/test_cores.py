"""Parallel workers on cores of their own (runtime.own_cores): a process claims free cores, pins itself
to them and holds them until it ends; where a thread cap leaves no room, or none is free, it stays put."""

import json
import os
import subprocess
import sys

import pytest

# Claims cores in the given lock folder, says which (and its affinity), and holds them until stdin closes.
CLAIM = (
    "import json, os, sys; from pathlib import Path; from mlp_sweep.core import runtime; "
    "cores = runtime.own_cores(int(sys.argv[2]) or None, Path(sys.argv[1])); "
    "print(json.dumps([list(cores), sorted(os.sched_getaffinity(0))]), flush=True); sys.stdin.read()"
)
ALL = sorted(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(len(ALL) < 2, reason="needs a process allowed on two cores or more")


def claim(locks, threads: int, env: dict | None = None) -> tuple[subprocess.Popen, list, list]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(locks), str(threads)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    cores, affinity = json.loads(proc.stdout.readline())
    return proc, cores, affinity


@needs_two
def test_workers_with_a_thread_cap_each_run_on_cores_no_other_holds(tmp_path):
    first, second = claim(tmp_path, 1), claim(tmp_path, 0, env={"OMP_NUM_THREADS": "1"})  # as joblib sets it
    try:
        for _, cores, affinity in (first, second):
            assert len(cores) == 1 and affinity == cores
        assert first[1] != second[1]
        if len(ALL) == 2:  # both cores held: a third worker finds none free and stays on all of them
            third = claim(tmp_path, 1)
            third[0].communicate("")
            assert third[1:] == ([], ALL)
    finally:
        for proc, _, _ in (first, second):
            proc.communicate("")
    again = claim(tmp_path, 1)  # the ended workers' cores are free again
    again[0].communicate("")
    assert again[1] == [ALL[0]]


def test_a_process_without_a_cap_or_with_every_core_stays_on_all_of_them(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for threads in (0, len(ALL)):
        proc, cores, affinity = claim(tmp_path, threads)
        proc.communicate("")
        assert (cores, affinity) == ([], ALL)


@needs_two
def test_a_lock_folder_that_cannot_be_made_leaves_the_process_as_it_was(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    proc, cores, affinity = claim(blocked / "locks", 1)
    proc.communicate("")
    assert (cores, affinity) == ([], ALL)
