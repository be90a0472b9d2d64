"""The launchers of hydra/launcher=slurm, ray_local and ray_cluster, without a cluster: how
they tell that a job has ended, what they return for one that left no result, and the
upstream pieces they build on (checked here, so that an upgrade that moves one fails
here, naming it). The real Slurm and Ray runs are in tests/cluster (pytest -m cluster)."""

import inspect
import logging
import os
from pathlib import Path
from types import SimpleNamespace

from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus

from helpers import make_cfg, requires

needs_submitit = requires("hydra_plugins.hydra_submitit_launcher", "submitit", extra="slurm")
needs_ray = requires("hydra_plugins.hydra_ray_launcher", "ray", extra="ray")


def fake_command(folder: Path, name: str, script: str) -> None:
    """An executable ``name`` in ``folder`` that runs ``script`` (sh)."""
    (folder / name).write_text(f"#!/bin/sh\n{script}\n")
    (folder / name).chmod(0o755)


def fake_job(folder: Path, job_id: str, result: bool) -> SimpleNamespace:
    """What the launcher reads of a submitit job: its id, its result file and its log."""
    pickle = folder / f"{job_id}_result.pkl"
    if result:
        pickle.write_bytes(b"")
    paths = SimpleNamespace(result_pickle=pickle, stderr=folder / f"{job_id}.err")
    return SimpleNamespace(job_id=job_id, paths=paths, results=lambda: [JobReturn(status=JobStatus.COMPLETED)])


def test_the_launchers_are_hydra_plugins():
    known = Plugins.instance().class_name_to_class
    assert "hydra_plugins.mlp_sweep_launchers.submitit_launcher.SlurmLauncher" in known
    assert "hydra_plugins.mlp_sweep_launchers.ray_launcher.RayLauncher" in known


# --- Slurm -----------------------------------------------------------------------------------


@needs_submitit
def test_squeue_tells_the_jobs_states_and_no_answer_is_none(tmp_path, monkeypatch):
    from mlp_sweep.sweep import submitit_launcher as sl

    fake_command(tmp_path, "squeue", 'echo "$@" > args.txt; printf "12_0 COMPLETED\\n12_1 CANCELLED\\n13_0 PENDING\\n"')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    states = sl.slurm_states()
    assert states == {"12_0": "COMPLETED", "12_1": "CANCELLED", "13_0": "PENDING"}
    assert (tmp_path / "args.txt").read_text().split() == [
        "--me",
        "--states=all",
        "--array",
        "--noheader",
        "--format=%i",
        "%T",
    ]
    assert [sl.has_ended(j, states) for j in ("12_0", "12_1", "13_0", "14_0")] == [True, True, False, True]

    fake_command(tmp_path, "squeue", "exit 1")  # slurmctld down
    assert sl.slurm_states() is None


@needs_submitit
def test_a_job_slurm_ended_without_a_result_returns_nothing_and_says_so_in_one_line(tmp_path, monkeypatch, caplog):
    from mlp_sweep.sweep import submitit_launcher as sl

    done, cancelled = fake_job(tmp_path, "12_0", result=True), fake_job(tmp_path, "12_1", result=False)
    monkeypatch.setattr(sl, "slurm_states", lambda: {"12_0": "COMPLETED", "12_1": "CANCELLED"})
    states = sl.wait_for([done, cancelled])
    with caplog.at_level(logging.WARNING):
        assert sl.job_return(done, 0, states["12_0"]).status == JobStatus.COMPLETED
        assert sl.job_return(cancelled, 1, states["12_1"]) is None
    assert caplog.messages == ["Slurm ended job #1 (12_1) CANCELLED, before it returned a result"]


@needs_submitit
def test_the_slurm_preset_reaches_submitit_under_its_own_names(tmp_path, monkeypatch):
    """Every key of hydra/launcher=slurm is one submitit's Slurm executor takes (it refuses others)."""
    from omegaconf import OmegaConf

    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    from mlp_sweep.sweep.submitit_launcher import SlurmLauncher

    fake_command(tmp_path, "srun", "exit 0")  # submitit's Slurm executor looks for it
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    overrides = ("experiment=smoke", "hydra/launcher=slurm", "hydra.launcher.partition=debug")
    launcher_cfg = make_cfg(*overrides, return_hydra_config=True).hydra.launcher
    params = OmegaConf.to_container(launcher_cfg, resolve=False)
    assert params.pop("_target_") == "hydra_plugins.mlp_sweep_launchers.submitit_launcher.SlurmLauncher"
    params["submitit_folder"] = str(tmp_path / ".submitit" / "%j")
    executor = SlurmLauncher(**params).executor()
    assert executor._executor.parameters["partition"] == "debug"
    assert executor._executor.parameters["setup"] == ["export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK"]
    # The job tuples the launcher builds follow the job function's arguments.
    assert list(inspect.signature(BaseSubmititLauncher.__call__).parameters)[1:] == [
        "sweep_overrides",
        "job_dir_key",
        "job_num",
        "job_id",
        "singleton_state",
    ]


# --- Ray -------------------------------------------------------------------------------------


@needs_ray
def test_a_job_ray_lost_returns_nothing_with_the_first_sentence_of_why(monkeypatch, caplog):
    import ray

    from mlp_sweep.sweep import ray_launcher as rl

    def lost(_):
        raise ray.exceptions.RayError(
            "Task failed because the node it was running on is dead or unavailable. Node IP: 10.0.0.2, node ID: ab12"
        )

    monkeypatch.setattr(ray, "get", lost)
    with caplog.at_level(logging.WARNING):
        assert rl.job_return(object(), 3) is None
    assert caplog.messages == ["Ray lost job #3: Task failed because the node it was running on is dead or unavailable"]


@needs_ray
def test_the_ray_helpers_the_launcher_follows_take_what_it_passes():
    from hydra_plugins.hydra_ray_launcher import _launcher_util

    assert list(inspect.signature(_launcher_util.start_ray).parameters) == ["init_cfg"]
    assert list(inspect.signature(_launcher_util.launch_job_on_ray).parameters) == [
        "hydra_context",
        "ray_remote",
        "sweep_config",
        "task_function",
        "singleton_state",
    ]
