"""A search over several objectives (a Pareto front of trials), Hyperband's pruning, and their refusals."""

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState
from test_search import SMOKE, STUDY, load_study, search_args, seed_runs

from helpers import all_runs, make_cfg, run_cli
from mlp_sweep import names, policy
from mlp_sweep.errors import ConfigError
from mlp_sweep.sweep import search

TWO = "search.objectives=[val_accuracy,n_params]"


def returned(metrics: dict) -> JobReturn:
    job = JobReturn()
    job.status, job.return_value = JobStatus.COMPLETED, metrics
    return job


def test_each_objective_is_the_mean_over_the_seeds():
    seeds = [returned({"val_accuracy": 0.90, "n_params": 100.0}), returned({"val_accuracy": 0.96, "n_params": 100.0})]
    assert search.outcome(seeds, ["val_accuracy", "n_params"]) == (TrialState.COMPLETE, [pytest.approx(0.93), 100.0])
    pruned = [returned({"val_accuracy": 0.5, "n_params": 1.0, names.PRUNED_AT: 2}), *seeds]
    assert search.outcome(pruned, ["val_accuracy", "n_params"]) == (TrialState.PRUNED, None)
    assert search.outcome(seeds, ["val_accuracy", "predict_ms_per_1k"]) == (TrialState.FAIL, None)  # not returned


def test_directions_follow_the_metrics_unless_given():
    assert policy.directions(make_cfg(TWO).search) == ["maximize", "minimize"]
    given = make_cfg("search.objectives=[val_loss,epoch_time_s]", "search.directions=[minimize,maximize]")
    assert policy.directions(given.search) == ["minimize", "maximize"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ((TWO, "search.pruner=median"), "search.pruner=median with 2 objectives: Optuna cannot prune a multi-"),
        ((TWO, "search.pruning=true"), "search.pruner=median with 2 objectives"),  # the deprecated key, too
        (("search.objectives=[test_accuracy]",), "the test set only reports: it never chooses"),
        ((TWO, "search.directions=[maximize]"), "give one of maximize or minimize per objective (2)"),
        (("search.pruner=hyperband", "trainer.epochs=3"), "search.pruner=hyperband needs search.grace_epochs=3"),
        (("search.pruner=asha",), "search.pruner='asha' is unknown: choose one of median, hyperband, none"),
    ],
)
def test_a_search_that_cannot_run_is_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as refused:
        policy.validate(make_cfg(*overrides))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_deprecated_pruning_key_warns_and_names_search_pruner():
    with pytest.warns(FutureWarning, match="search.pruning is deprecated .* write search.pruner=median"):
        policy.validate(make_cfg("search.pruning=true"))


def test_a_changed_objective_list_under_the_same_study_name_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    space = search.parse_space({"optimizer.lr": "interval(0.001, 0.1)"}, [])[0]
    search.open_study("s", storage, 0, space, ["val_accuracy", "n_params"], ["maximize", "minimize"])
    with pytest.raises(ConfigError) as refused:
        search.open_study("s", storage, 0, space, ["val_accuracy"], ["maximize"])
    assert str(refused.value) == (
        f"study 's' in {storage} was searched for other objectives (val_accuracy:maximize, n_params:minimize, "
        "not val_accuracy:maximize): name a new study, e.g. search.study_name=s-2"
    )
    assert search.open_study("s", storage, 0, space, ["val_accuracy", "n_params"], ["maximize", "minimize"])


@pytest.mark.slow
def test_a_two_objective_smoke_search_reports_its_front_resumes_and_refuses_a_change(tiny_mnist, tmp_path):
    done = run_cli(*search_args(tmp_path, tiny_mnist, *SMOKE, TWO), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    study = load_study(tmp_path)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert len(study.trials) == 4 and all(len(t.values) == 2 for t in study.trials)
    # The front of the trials, by hand: a trial is on it when no other is at least as good on both and better on one.
    values = [t.values for t in study.trials]
    front = [
        t.number
        for t, (a, p) in zip(study.trials, values, strict=True)
        if not any(a2 >= a and p2 <= p and (a2, p2) != (a, p) for a2, p2 in values)
    ]
    assert sorted(t.number for t in study.best_trials) == sorted(front)
    assert "The search's Pareto front (val_accuracy against n_params" in done.stdout
    report = tmp_path / "multirun" / "report"
    assert {"search_pareto.png", "search_front.csv"} <= {p.name for p in report.iterdir()}
    trials_csv = (report / "search_front.csv").read_text().splitlines()
    assert trials_csv[0].startswith("trial,val_accuracy,n_params") and len(trials_csv) == 1 + len(front)

    more = run_cli(*search_args(tmp_path, tiny_mnist, *SMOKE, TWO, "hydra.sweeper.n_trials=5"), cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-3000:]
    assert len(load_study(tmp_path).trials) == 5 and len(seed_runs(tmp_path)) == 10  # one trial more, two seeds

    changed = run_cli(*search_args(tmp_path, tiny_mnist, *SMOKE, "hydra.sweeper.n_trials=6"), cwd=tmp_path)
    assert changed.returncode == 1
    assert changed.stderr.strip().splitlines()[-1] == (
        f"error: study '{STUDY}' in sqlite:///{tmp_path / 'optuna.db'} was searched for other objectives "
        f"(val_accuracy:maximize, n_params:minimize, not val_accuracy:maximize): name a new study, "
        f"e.g. search.study_name={STUDY}-2"
    )
    assert len(seed_runs(tmp_path)) == 10  # nothing trained


@pytest.mark.slow
def test_a_hyperband_smoke_search_prunes_runs_and_reports_them(tiny_mnist, tmp_path):
    args = [
        "hparams_search=mlp_optuna",
        "hydra.sweeper.n_trials=6",
        "search.replicates=1",
        "search.pruner=hyperband",
        "search.grace_epochs=1",
        "trainer.epochs=3",
        "search.study_name=hb",
    ]
    done = run_cli(*search_args(tmp_path, tiny_mnist, *args), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]  # pruned runs are not failures
    runs = seed_runs(tmp_path)
    pruned = [r for r in runs if names.TAG_PRUNED in r.data.tags]
    assert pruned and all(r.info.status == "KILLED" for r in pruned)
    assert all(r.info.status == "FINISHED" for r in runs if r not in pruned)
    states = [t.state for t in load_study(tmp_path, "hb").trials]
    assert states.count(TrialState.PRUNED) == len(pruned) and states.count(TrialState.COMPLETE) == 6 - len(pruned)
    runs_study = optuna.load_study(study_name="hb:runs", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(runs_study.trials) == 6  # one per seed run: what Hyperband weighs
    for run in pruned:
        assert f"{run.info.run_name}: pruned after epoch {run.data.tags[names.TAG_PRUNED]}" in done.stdout
        assert f"Left out {run.info.run_name} (KILLED: pruned after epoch" in done.stdout
    assert len(all_runs(f"sqlite:///{tmp_path / 'mlflow.db'}")) == 7  # and the parent
