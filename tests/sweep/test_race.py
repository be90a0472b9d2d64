"""The race: its bookkeeping on accuracies given by hand, its refusals, and a real race on the command line."""

import json
import os
import signal
from collections import Counter

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from helpers import all_runs, make_cfg, parents, run_cli, start_interruptible, sweep_args, wait_for_a_running_job
from mlp_sweep import names, policy
from mlp_sweep.reporting.verdicts import BEST, EQUIVALENT, UNDECIDED, WORSE, SequentialRule
from mlp_sweep.sweep.race import Race
from mlp_sweep.sweep.race_launch import longest_first


def play(race: Race, values: dict[str, list[float]]) -> list[dict]:
    """Run the race on fixed accuracies (config → its seeds in order); the rounds' records."""
    while not race.done:
        for config, index in race.next_seeds():
            race.add(config, index, values[config][index])
        race.look()
    return race.rounds


def test_a_race_drops_the_loser_then_decides_the_tie_and_stops_the_undecided_at_max_seeds():
    rule = SequentialRule(0.05, 0.003, min_seeds=3, max_seeds=5, configs=4)
    values = {
        "best": [0.9800, 0.9802, 0.9798, 0.9801, 0.9799],
        "loser": [0.90, 0.91, 0.905],  # 7.5 points behind, with 0.5 points of noise
        "tie": [0.9801, 0.9799, 0.9800, 0.9800, 0.9801],  # within 0.01 points of the best
        "noisy": [0.975, 0.985, 0.970, 0.988, 0.979],  # 0.06 points behind on average, 0.7 points of noise
    }
    race = Race(rule, list(values))
    rounds = play(race, values)

    assert race.verdicts() == {"best": BEST, "loser": WORSE, "tie": EQUIVALENT, "noisy": UNDECIDED}
    # Round 1: 3 seeds each; the loser leaves at once. Each later round adds one seed to those still in.
    assert rounds[0]["seeds"] == {"best": 3, "loser": 3, "tie": 3, "noisy": 3}
    assert [(x["config"], x["verdict"], x["n"]) for x in rounds[0]["left"]][0] == ("loser", WORSE, 3)
    assert {c: len(v) for c, v in race.values.items()} == {
        "best": 5,
        "loser": 3,
        "tie": race.as_record()["seeds"]["tie"],
        "noisy": 5,
    }
    left = {x["config"]: (len(rounds[:i]) + 1, x["verdict"]) for i, r in enumerate(rounds) for x in r["left"]}
    assert left["noisy"] == (3, UNDECIDED)  # at max_seeds = 5: round 3
    record = race.as_record()
    assert (
        record["rule"].startswith("Bonferroni over the race's 3 planned looks (n = 3…5 seeds) and the 3 other")
        and record["seeds"]["noisy"] == 5
    )


def test_the_level_of_each_look_spends_alpha_over_looks_and_rivals():
    rule = SequentialRule(0.05, 0.003, min_seeds=3, max_seeds=10, configs=9)
    assert rule.looks == 8 and rule.level == pytest.approx(0.05 / (8 * 8))
    assert SequentialRule(0.05, 0.003, 3, 10, configs=9, naive=True).level == 0.05


@pytest.mark.parametrize(
    "override, message",
    [
        ("race.min_seeds=1", "race.min_seeds=1 must be >= 2"),
        ("race.max_seeds=2", "race.max_seeds=2 is below race.min_seeds=3"),
        ("race.margin=0", "race.margin=0.0 must be a finite number of points > 0"),
        ("race.margin=inf", "race.margin=inf must be a finite number of points > 0"),
        ("race.alpha=0.5", "race.alpha=0.5 must be in (0, 0.5)"),
        ("report.margin=-1", "report.margin=-1.0 must be a finite number of points > 0"),
    ],
)
def test_bad_race_settings_are_refused_with_the_fix(override, message):
    with pytest.raises(Exception, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        policy.validate(make_cfg(override))


def test_the_race_margin_falls_back_to_the_reports_then_to_the_default():
    assert policy.race_margin(make_cfg()) == policy.DEFAULT_MARGIN
    assert policy.race_margin(make_cfg("report.margin=0.5")) == 0.5
    assert policy.race_margin(make_cfg("report.margin=0.5", "race.margin=0.2")) == 0.2


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, message",
    [
        (["trainer.seed=0,1"], "error: trainer.seed is swept by the race"),
        (["hparams_search=mlp_optuna"], "error: a race runs a grid: it cannot be combined with a search"),
        (["race.min_seeds=1"], "error: invalid config: race.min_seeds=1 must be >= 2"),
    ],
)
def test_a_race_it_cannot_run_is_refused_in_one_line_before_anything_trains(tiny_mnist, tmp_path, extra, message):
    result = run_cli(*sweep_args(tmp_path, tiny_mnist, "model=mlp2,mlp3", "hydra/sweeper=race", *extra), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert all(r.info.status == "FAILED" for r in parents(f"sqlite:///{tmp_path / 'mlflow.db'}"))


@pytest.mark.slow
def test_a_smoke_race_gives_configs_different_seed_counts_each_with_a_verdict_and_trains_nothing_again(
    tiny_mnist, tmp_path
):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = sweep_args(
        tmp_path,
        tiny_mnist,
        "model=mlp2",
        "optimizer.lr=0.001,0.002,0.000001",  # two near ties and a learning rate too small to learn in an epoch
        "hydra/sweeper=race",
        "race.margin=1",
        "race.max_seeds=4",
        "tracking.log_model=false",
    )
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (parent,) = parents(store)
    client = MlflowClient(store)
    record = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/{names.RACE_RECORD}")
    seeds = record["seeds"]
    assert set(record["verdicts"].values()) <= {BEST, WORSE, EQUIVALENT, UNDECIDED}
    assert list(record["verdicts"].values()).count(BEST) == 1
    assert sorted(seeds.values())[0] == 3 and all(3 <= n <= 4 for n in seeds.values()), seeds  # the loser left at 3
    (loser,) = [k for k in record["verdicts"] if k.endswith(("lr=1e-06", "lr=0.000001"))]
    assert record["verdicts"][loser] == WORSE and seeds[loser] == 3, record["verdicts"]
    trained = [r for r in client.search_runs([parent.info.experiment_id]) if r.info.run_id != parent.info.run_id]
    assert len(trained) == sum(seeds.values())  # one run per seed the race asked for
    assert f"Race: {sum(seeds.values())} runs in {len(record['rounds'])} rounds; idle share" in first.stdout
    assert 0 <= record["idle_share"] < 1

    # The report's CSV: each config's n and the verdict it left the race with.
    csv = pd.read_csv(tmp_path / "multirun" / "report" / "comparison.csv")
    labels = {json.dumps(sorted(k.split())): v for k, v in record["verdicts"].items()}
    assert sorted(csv["n"]) == sorted(seeds.values())
    assert sorted(v.split(" ")[0] for v in csv["verdict"]) == sorted(labels.values())
    assert "Bonferroni over the race's 2 planned looks" in " ".join(first.stdout.split())

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    finished = [
        r for r in client.search_runs([parent.info.experiment_id]) if r.data.tags.get(names.TAG_SWEEP) != "parent"
    ]
    assert len(finished) == len(trained)  # the same race replayed from the store: nothing trained
    second = parents(store)[-1]
    again_record = mlflow.artifacts.load_dict(f"{second.info.artifact_uri}/{names.RACE_RECORD}")
    assert again_record["verdicts"] == record["verdicts"] and again_record["seeds"] == seeds


def test_a_round_runs_its_longest_jobs_first():
    predicted = {0: 100.0, 1: 400.0, 2: 200.0}  # multiply-adds: config 1 is the largest
    jobs = [(0, 0), (1, 0), (2, 0)]
    assert longest_first(jobs, {}, predicted) == [(1, 0), (2, 0), (0, 0)]  # before any time is known
    # Config 0 took 9 s for 100 units (0.09 s a unit), config 1 8 s for 400 (0.02): at their mean rate, 0.055 s a
    # unit, unmeasured config 2 is predicted at 11 s, so it goes first, then 0 (9 s), then 1 (8 s).
    assert longest_first(jobs, {0: 9.0, 1: 8.0}, predicted) == [(2, 0), (0, 0), (1, 0)]


@pytest.mark.slow
def test_ctrl_c_stops_a_race_on_the_parallel_launcher_cleanly_and_the_same_command_finishes_it(
    tiny_mnist, tmp_path, store
):
    # ``store``: tmp_path/mlflow.db made beforehand, so that the polling below never races the command's migration
    args = sweep_args(
        tmp_path,
        tiny_mnist,
        "model=mlp2,mlp3",
        "trainer.epochs=8",
        "hydra/sweeper=race",
        "hydra/launcher=parallel",
        "race.min_seeds=2",
        "race.max_seeds=2",
        "tracking.log_model=false",
    )
    proc = start_interruptible(args, tmp_path)
    wait_for_a_running_job(store, proc)  # an event the command makes: a run opened
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert "interrupted:" in err.strip().splitlines()[-1]
    assert not [r.info.run_name for r in all_runs(store) if r.info.status == "RUNNING"]

    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    trained = Counter(
        r.data.tags[names.TAG_GRID_POINT]
        for r in all_runs(store)
        if r.info.status == "FINISHED" and names.TAG_SWEEP not in r.data.tags
    )
    assert len(trained) == 4 and set(trained.values()) == {1}  # 2 configs × 2 seeds, none trained twice


def test_spare_seeds_fill_a_round_with_the_best_first_then_the_least_decided():
    rule = SequentialRule(0.05, 0.003, min_seeds=3, max_seeds=5, configs=3)
    race = Race(rule, ["best", "near", "far"])
    values = {"best": [0.980, 0.982, 0.981], "near": [0.979, 0.981, 0.980], "far": [0.976, 0.980, 0.978]}
    for config, seeds in values.items():
        for i, v in enumerate(seeds):
            race.add(config, i, v)
    race.look()
    planned = race.next_seeds()
    assert sorted(planned) == [("best", 3), ("far", 3), ("near", 3)]  # all three still in (α/(3·2) per test)
    # "near" is 1.2 standard errors from the best, "far" 2.3: near is likelier to race on.
    assert race.spare_seeds(1, planned) == [("best", 4)]
    assert race.spare_seeds(3, planned) == [("best", 4), ("near", 4), ("far", 4)]
    assert race.spare_seeds(5, [*planned, ("best", 4)]) == [("near", 4), ("far", 4)]  # never past max_seeds (5)
    assert race.spare_seeds(0, planned) == []
