"""The sweep's progress: the time-left arithmetic worked by hand, the line a job gets, and the closing note."""

import os
import time
from pathlib import Path

from omegaconf import open_dict

from helpers import make_cfg
from mlp_sweep.store import tracking
from mlp_sweep.sweep import progress
from mlp_sweep.sweep.callback import SweepCallback, closing_note
from mlp_sweep.sweep.outline import runs_jobs_here

# --- the arithmetic -----------------------------------------------------------------


def test_two_of_nine_done_in_20_s_on_two_workers_leave_80_s():
    # Jobs 1 and 2 ran side by side and both ended at 20 s; jobs 3 and 4 start now, 5 more wait.
    # 7 jobs of 20 s, two at a time: 3+4, 5+6, 7+8, then 9 alone: 4 rounds, 80 s (not 7 * 20 / 2 = 70 s).
    assert progress.time_left_s(waiting=5, durations=[20, 20], running=[0, 0], workers=2) == 80


def test_one_worker_runs_the_rest_one_after_another():
    # The mean job took (10 + 30) / 2 = 20 s; 3 jobs left, one at a time: 60 s.
    assert progress.time_left_s(waiting=3, durations=[10, 30]) == 60


def test_a_running_job_counts_what_it_has_run():
    # Mean 20 s. Jobs running for 15 s and 5 s free their workers in 5 s and 15 s; the one job
    # waiting goes to the first: 5 + 20 = 25 s. One that has overrun the mean is taken to end now.
    assert progress.time_left_s(waiting=1, durations=[20, 20], running=[15, 5], workers=2) == 25
    assert progress.time_left_s(waiting=0, durations=[20], running=[30]) == 0


def test_no_estimate_before_a_job_has_ended():
    assert progress.time_left_s(waiting=9, durations=[]) is None


def test_lines_read_as_a_clock():
    assert [progress.clock(s) for s in (0, 42.4, 725, 3723)] == ["0:00", "0:42", "12:05", "1:02:03"]
    assert progress.job_line(4, 9, "mlp3-none-s0", 62, 150) == "[4/9] mlp3-none-s0  elapsed 1:02  ETA 2:30"
    assert progress.job_line(1, None, "mlp2-none-s0", 3, None) == "[1/?] mlp2-none-s0  elapsed 0:03  ETA ?"


# --- who prints the line ---------------------------------------------------------------


def started_callback(total: int, elapsed_s: float, durations: list[float], pid: int) -> SweepCallback:
    """A SweepCallback as on_multirun_start leaves it, ``elapsed_s`` into a sweep of ``total`` jobs."""
    callback = SweepCallback()
    callback.parent_run_id, callback.tracking_uri, callback.total = "parent", "sqlite:////tmp/mlflow.db", total
    callback.sweep_pid, callback.started, callback.durations = pid, time.monotonic() - elapsed_s, durations
    return callback


def third_job():
    cfg = make_cfg()
    with open_dict(cfg):
        cfg.hydra = {"job": {"num": 2}}
    return cfg


def test_a_job_in_the_sweeps_process_prints_its_line_and_times_itself(capsys):
    job = third_job()  # composed first: that takes a while
    callback = started_callback(total=5, elapsed_s=20, durations=[10.0, 10.0], pid=os.getpid())
    callback.on_job_start(job)
    # Two jobs of 10 s ended; this one and two more are left, one at a time: 30 s.
    assert capsys.readouterr().out == "[3/5] mlp3-none-s0  elapsed 0:20  ETA 0:30\n"
    callback.on_job_end(job, None)
    assert len(callback.durations) == 3


def test_a_job_in_a_worker_prints_nothing(capsys):
    """Its line is the sweep's process' to print (progress.StoreWatch): only there are all jobs in sight."""
    job = third_job()
    callback = started_callback(total=5, elapsed_s=20, durations=[], pid=os.getpid() + 1)
    callback.on_job_start(job)
    callback.on_job_end(job, None)
    assert capsys.readouterr().out == "" and callback.durations == []


def test_only_the_basic_launcher_runs_jobs_in_the_sweeps_process():
    assert runs_jobs_here(make_cfg(return_hydra_config=True))
    assert not runs_jobs_here(make_cfg("hydra/launcher=parallel", return_hydra_config=True))


# --- the closing note ------------------------------------------------------------------


def test_closing_note_says_where_to_look_and_how_long_it_took():
    links = tracking.ui_links("sqlite:////home/u/mlflow.db", "3", "abc")
    note = closing_note(Path("multirun/2026-12-01/10-00-00/report"), links, 9, 192)
    assert note.splitlines() == [
        "Report: multirun/2026-12-01/10-00-00/report/",
        "MLflow UI: mlflow ui --backend-store-uri sqlite:////home/u/mlflow.db  (from any folder), then open",
        "  the sweep's runs  http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning",
        "  its parent run    http://127.0.0.1:5000/#/experiments/3/runs/abc?workflowType=machine_learning",
        "Wall time: 3:12 for 9 jobs.",
    ]


def test_closing_note_of_a_server_sweep_without_a_report():
    links = tracking.ui_links("https://mlflow.example.org", "3", "abc")
    assert closing_note(None, links, None, 5).splitlines() == [
        "MLflow UI:",
        "  the sweep's runs  https://mlflow.example.org/#/experiments/3/runs?workflowType=machine_learning",
        "  its parent run    https://mlflow.example.org/#/experiments/3/runs/abc?workflowType=machine_learning",
        "Wall time: 0:05 for ? jobs.",
    ]
