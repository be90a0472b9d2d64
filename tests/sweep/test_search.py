"""A search beyond the grid: Optuna's ask/tell as a Hydra sweeper, seeds as replicates,
pruning by the median rule, resume toward n_trials, refusals in one line."""

import signal
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from helpers import all_runs, run_cli, sweep_args
from mlp_sweep import names
from mlp_sweep.core.data import to_idx
from mlp_sweep.errors import ConfigError
from mlp_sweep.store import identity, resume
from mlp_sweep.sweep import search

SMOKE = ["hparams_search=mlp_optuna", "hydra.sweeper.n_trials=4", "search.replicates=2"]
STUDY = "mlp_sweep_smoke-mlp_optuna"  # the preset's ${tracking.experiment}-mlp_optuna


def search_args(tmp_path: Path, data_dir: Path, *overrides: str) -> list[str]:
    """A smoke search's command line (no models logged: seconds saved per run)."""
    return sweep_args(tmp_path, data_dir, "tracking.log_model=false", *overrides)


def seed_runs(tmp_path: Path) -> list:
    return [r for r in all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}") if r.data.tags.get(names.TAG_SWEEP) != "parent"]


def load_study(tmp_path: Path, name: str = STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


# --- the space and the sampler, without training ---------------------------------------


def test_the_sweeper_grammar_becomes_optuna_distributions():
    space, fixed = search.parse_space(
        {"optimizer.lr": "tag(log, interval(0.0001, 0.1))", "model": "choice(mlp2, mlp3)"},
        ["reg.dropout=interval(0.0, 0.5)", "trainer.batch_size=range(32, 129, 32)", "experiment=smoke"],
    )
    assert space == {
        "optimizer.lr": optuna.distributions.FloatDistribution(0.0001, 0.1, log=True),
        "model": optuna.distributions.CategoricalDistribution(["mlp2", "mlp3"]),
        "reg.dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
        "trainer.batch_size": optuna.distributions.IntDistribution(32, 128, step=32),
    }
    assert fixed == ["experiment=smoke"]


def test_seeds_are_replicates_not_a_hyperparameter():
    with pytest.raises(ConfigError, match="trainer.seed is set by the search"):
        search.parse_space({"optimizer.lr": "interval(0.001, 0.1)"}, ["trainer.seed=0,1"])
    jobs = search.trial_jobs(3, {"model": "mlp3", "optimizer.lr": 0.01}, ["experiment=smoke"], 2, "sqlite:///o.db")
    assert [job[-1] for job in jobs] == ["trainer.seed=0", "trainer.seed=1"]
    assert all("search.trial=3" in job and "optimizer.lr=0.01" in job for job in jobs)


def test_the_same_seed_proposes_the_same_trials_and_another_does_not():
    space, _ = search.parse_space(
        {"optimizer.lr": "tag(log, interval(0.0001, 0.1))", "model": "choice(mlp2, mlp3, mlp5)"}, []
    )

    def proposals(seed: int) -> list[dict]:
        study = search.open_study("s", "sqlite:///:memory:", seed, space)
        return [study.ask(dict(space)).params for _ in range(5)]

    assert proposals(0) == proposals(0)
    assert proposals(0) != proposals(1)


def test_a_changed_space_under_the_same_study_name_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    search.open_study("s", storage, 0, search.parse_space({"optimizer.lr": "interval(0.001, 0.1)"}, [])[0])
    changed = search.parse_space({"optimizer.lr": "interval(0.001, 0.2)"}, [])[0]
    with pytest.raises(ConfigError) as refused:
        search.open_study("s", storage, 0, changed)
    assert str(refused.value) == (
        f"study 's' in {storage} was searched over another space (optimizer.lr differ): "
        "name a new study, e.g. search.study_name=s-2"
    )
    search.open_study("s-2", storage, 0, changed)  # the way out works


def test_the_search_config_is_outside_the_config_hash():
    assert not identity.is_hashed("search.trial") and not identity.is_hashed("search.replicates")


# --- end to end ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_smoke_search_runs_end_to_end_and_again_trains_nothing(tiny_mnist, tmp_path):
    args = search_args(tmp_path, tiny_mnist, *SMOKE)
    first = run_cli(*args, cwd=tmp_path)

    assert first.returncode == 0, first.stderr[-3000:]
    runs = seed_runs(tmp_path)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    (parent,) = {r.data.tags[names.TAG_PARENT] for r in runs}
    assert sorted(r.data.tags[names.TAG_TRIAL] for r in runs) == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert {(r.data.tags[names.TAG_TRIAL], r.data.params["trainer.seed"]) for r in runs} == {
        (str(t), str(s)) for t in range(4) for s in range(2)
    }
    assert len({r.info.run_name for r in runs}) == 8
    study = load_study(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    for trial in study.trials:  # the objective: the mean validation accuracy of its seeds, never a test metric
        mine = [r for r in runs if r.data.tags[names.TAG_TRIAL] == str(trial.number)]
        assert trial.value == pytest.approx(statistics.fmean(r.data.metrics["val_accuracy"] for r in mine))
        assert trial.params["model"] == mine[0].data.params["model.name"]
    artifacts = {f.path for f in MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").list_artifacts(parent, "report")}
    assert {"report/search_history.png", "report/search_parallel.png", "report/comparison.md"} <= artifacts

    again = run_cli(*args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert len(seed_runs(tmp_path)) == 8  # nothing trained
    assert "0 to run" in again.stderr + again.stdout
    assert len(load_study(tmp_path).trials) == 4
    assert "from 8 runs" in again.stdout  # the resumed sweep's report still covers the whole study

    refused = run_cli(*args, "trainer.batch_size=choice(64, 128)", cwd=tmp_path)

    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: study '{STUDY}' in sqlite:///{tmp_path / 'optuna.db'} was searched over another space "
        f"(trainer.batch_size differ): name a new study, e.g. search.study_name={STUDY}-2"
    )


@pytest.mark.slow
def test_a_search_killed_midway_and_rerun_reaches_n_trials_training_no_trial_twice(tiny_mnist, tmp_path):
    args = search_args(tmp_path, tiny_mnist, *SMOKE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlp_sweep", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("[4/8]"):  # trial 1's first seed is done, its second has started
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert [t.state for t in load_study(tmp_path).trials] == [TrialState.COMPLETE, TrialState.RUNNING]

    again = run_cli(*args, cwd=tmp_path)

    assert again.returncode == 0, again.stderr[-3000:]
    assert [t.state for t in load_study(tmp_path).trials] == [TrialState.COMPLETE] * 4
    finished = [r for r in seed_runs(tmp_path) if r.info.status == "FINISHED"]
    assert sorted(r.data.tags[names.TAG_TRIAL] for r in finished) == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert len({r.data.tags[names.TAG_GRID_POINT] for r in finished}) == 8  # no seed trained twice
    assert again.stdout.count("skipped, already FINISHED") == 1  # trial 1's first seed, reused


# --- pruning ---------------------------------------------------------------------------------


def write_learnable_mnist(folder: Path) -> Path:
    """MNIST-format files whose label is written into the image (a bright row band), so a sane lr learns at once."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", 3000), ("t10k", 500)):
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label + 4 : 2 * label + 6] = 255
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(to_idx(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(to_idx(labels))
    return folder


PRUNE_SPACE = {"optimizer.lr": "choice(0.01, 0.0000001)"}  # the second cannot learn in 3 epochs


def seed_proposing_good_then_bad() -> int:
    """A sampler seed whose first two trials are the learning lr, then the one that cannot learn."""
    space, _ = search.parse_space(PRUNE_SPACE, [])
    for seed in range(50):
        study = search.open_study("probe", "sqlite:///:memory:", seed, space)
        if [study.ask(dict(space)).params["optimizer.lr"] for _ in range(2)] == ["0.01", "1e-07"]:
            return seed
    raise AssertionError("no seed proposes the good lr first")


@pytest.mark.slow
def test_a_trial_that_cannot_learn_is_pruned_at_the_grace_epoch(tmp_path):
    conf = tmp_path / "conf" / "hparams_search"
    conf.mkdir(parents=True)
    (conf / "prune_case.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /hydra/sweeper: mlp_search\n"
        f"hydra:\n  sweeper:\n    n_trials: 2\n    params:\n      optimizer.lr: {PRUNE_SPACE['optimizer.lr']}\n"
    )
    data = write_learnable_mnist(tmp_path / "data")
    result = run_cli(
        *search_args(
            tmp_path,
            data,
            "hparams_search=prune_case",
            f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
            "model=mlp2",
            "trainer.epochs=3",
            "search.pruning=true",
            "search.grace_epochs=1",
            "search.study_name=prune",
            f"search.sampler_seed={seed_proposing_good_then_bad()}",
        ),
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    good, bad = sorted(seed_runs(tmp_path), key=lambda r: r.data.tags[names.TAG_TRIAL])
    assert (good.info.status, bad.info.status) == ("FINISHED", "KILLED")
    assert bad.data.tags[names.TAG_PRUNED] == "1" and names.TAG_PRUNED not in good.data.tags
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    bad_curve = client.get_metric_history(bad.info.run_id, "val_accuracy")
    good_curve = {m.step: m.value for m in client.get_metric_history(good.info.run_id, "val_accuracy")}
    assert [m.step for m in bad_curve] == [1] and sorted(good_curve) == [1, 2, 3]
    assert bad_curve[0].value < good_curve[1]
    study = load_study(tmp_path, "prune")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert study.trials[0].intermediate_values == pytest.approx(good_curve)  # the medians' source: validation only
    assert "pruned after epoch 1" in result.stdout  # the job's line, and the report's note on the left-out run
    assert "Left out" in result.stdout and "KILLED: pruned after epoch 1" in result.stdout
    experiment_id = bad.info.experiment_id
    point = identity.GridPoint(
        bad.data.tags[names.TAG_CONFIG_HASH], 0, bad.data.tags[names.TAG_DATASET_SHA], bad.data.tags[names.TAG_CODE]
    )
    assert (
        resume.finished_run(client, experiment_id, point) is None
    )  # resume never reuses a pruned run (seed_runs set the store)
