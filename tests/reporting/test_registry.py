"""Registering a sweep's choice: which config each rule picks (hand-worked), which seed stands for it, and the
registry bookkeeping (one version per logged model, the alias moved only when the choice changes) on a store
with logged models but no Keras. The served model is tests/reporting/test_serve.py's (slow)."""

import pandas as pd
import pytest
import test_report
from mlflow.tracking import MlflowClient

from helpers import children, make_cfg, run_cli, sweep_args
from mlp_sweep import names, validation
from mlp_sweep.errors import ConfigError, TrackingError
from mlp_sweep.reporting import frame, registry
from mlp_sweep.reporting.cli import main
from mlp_sweep.reporting.report import make_report

# model name -> (n_params, val accuracies of its seeds)
CONFIGS = {
    "mlp3": (300, [0.980, 0.981, 0.982]),  # mean 98.1: the best
    # mean 98.0, sd 0.1: Welch p = 0.29 (≈ best); its 90% interval −0.10 ± 0.17 lies inside ±0.3: equivalent
    "mlp2": (200, [0.979, 0.980, 0.981]),
    "mlp5": (10, [0.960, 0.962, 0.964]),  # mean 96.2: below the best, the cheapest of all
    # mean 97.9, sd 1.0: ≈ best, but its interval (−0.2 ± 1.7) is far wider than ±0.3: undecided with a margin
    "mlp1": (50, [0.969, 0.979, 0.989]),
}


def runs() -> pd.DataFrame:
    """The sweep's runs as :func:`frame.sweep_frame` gives them (the columns the summary reads)."""
    rows = [
        {
            "run_id": f"{model}-run{seed}",
            "run_name": f"{model}-s{seed}",
            "group": model,
            "seed": seed,
            "left_out": None,
            "params.model.name": model,
            "params.n_params": str(n_params),
            "accuracy": 0.99,
            "val_accuracy": acc,
            "test_accuracy": acc,
            "test_loss": 0.1,
            "val_loss": 1 - acc,
            "epoch_time_s": 1.0,
            "n_params": float(n_params),
        }
        for model, (n_params, accuracies) in CONFIGS.items()
        for seed, acc in enumerate(accuracies)
    ]
    table = pd.DataFrame(rows)
    table.insert(table.columns.get_loc("group"), "config", table["group"])
    return table


def summary(margin: float | None = None, costs=("n_params",)) -> pd.DataFrame:
    return frame.summarize(runs(), costs=list(costs), margin=margin)


def chosen(rule: str, margin: float | None = None, costs=("n_params",)) -> str:
    return registry.choose_config(summary(margin, costs), rule, list(costs))["group"]


def test_the_table_is_what_the_cases_say():
    s = summary(margin=0.3)
    assert list(s["group"]) == ["mlp3", "mlp2", "mlp1", "mlp5"]
    assert list(s["vs_best"]) == ["best", "≈ best", "≈ best", "below"]
    assert list(s["verdict"]) == ["best", "equivalent ±0.3", "undecided", "worse"]


def test_best_is_the_best_on_validation_whatever_the_costs():
    assert chosen("best") == "mlp3"
    assert chosen("best", margin=0.3) == "mlp3"


def test_cheapest_without_a_margin_takes_the_cheapest_not_shown_worse():
    # mlp5 (10 params) is cheaper but shown below the best; mlp1 (50) is not shown to differ.
    assert chosen("cheapest") == "mlp1"


def test_cheapest_with_a_margin_takes_only_what_is_shown_equivalent():
    # mlp1 is cheaper but undecided; mlp2 (200) is shown equivalent within ±0.3.
    assert chosen("cheapest", margin=0.3) == "mlp2"


def test_cheapest_reads_the_first_cost_and_breaks_ties_toward_the_better_config():
    # Every config has the same epoch time: the tie goes to the best on validation.
    assert chosen("cheapest", costs=("epoch_time_s", "n_params")) == "mlp3"


def test_cheapest_with_no_eligible_cheaper_config_is_the_best():
    s = summary(margin=0.01)  # too narrow for anything but the best
    assert registry.choose_config(s, "cheapest", ["n_params"])["group"] == "mlp3"


def test_an_unknown_rule_or_no_cost_is_refused():
    with pytest.raises(ValueError, match="unknown rule"):
        registry.choose_config(summary(), "fastest", ["n_params"])
    with pytest.raises(ValueError, match="needs a cost"):
        registry.choose_config(summary(), "cheapest", [])


def test_the_seed_closest_to_the_configs_mean_stands_for_it():
    r = runs()
    assert list(registry.seed_order(r, "mlp3")["seed"]) == [1, 0, 2]  # 98.1 is the mean; 98.0 and 98.2 tie: seed 0
    r.loc[r["run_id"] == "mlp3-run1", "left_out"] = "FAILED"  # a run that cannot be compared never stands for it
    assert list(registry.seed_order(r, "mlp3")["seed"]) == [0, 2]


# --- the registry, on a store with logged models (no Keras) ------------------------------------------------


@pytest.fixture
def logged(store):
    """Runs of the four configs in a store, each with a LoggedModel of its own (as train logs it)."""
    client = MlflowClient(store)
    experiment_id = client.create_experiment("registry")
    parent = client.create_run(experiment_id, run_name="sweep", tags={names.TAG_SWEEP: "parent"})
    table = runs()
    for i, row in table.iterrows():
        run = client.create_run(experiment_id, run_name=row["run_name"], tags={names.TAG_PARENT: parent.info.run_id})
        model = client.create_logged_model(experiment_id, source_run_id=run.info.run_id, name="model")
        client.set_tag(run.info.run_id, names.TAG_MODEL_URI, f"models:/{model.model_id}")
        client.set_terminated(run.info.run_id)
        table.loc[i, "run_id"] = run.info.run_id
    return client, parent.info.run_id, table


def test_registering_twice_adds_no_version_and_moves_the_alias_only_with_the_choice(logged):
    client, parent, table = logged
    s = frame.summarize(table, costs=["n_params"], margin=0.3)
    best = registry.choose(client, s, table, "best", ["n_params"])
    assert (best.config, best.seed, best.rule, best.verdict) == ("mlp3-?", 1, "best", "best")

    first = registry.register(client, "mnist_mlp", "champion", best, parent)
    again = registry.register(client, "mnist_mlp", "champion", best, parent)
    assert (first.version, first.new_version, first.moved, first.previous) == ("1", True, True, None)
    assert (again.version, again.new_version, again.moved) == ("1", False, False)
    assert len(client.search_model_versions("name = 'mnist_mlp'")) == 1
    assert first.uri == "models:/mnist_mlp@champion"

    version = client.get_model_version_by_alias("mnist_mlp", "champion")
    assert version.source == client.get_logged_model(registry.model_id(best.model_uri)).artifact_location
    assert version.run_id == best.run_id
    assert version.tags[registry.TAG_SWEEP_RUN] == parent
    assert (version.tags[registry.TAG_CONFIG], version.tags[registry.TAG_RULE]) == ("mlp3-?", "best")
    assert version.tags[registry.TAG_VERDICT] == "best"

    cheap = registry.choose(client, s, table, "cheapest", ["n_params"])
    assert (cheap.config, cheap.rule, cheap.verdict) == ("mlp2-?", "cheapest by n_params", "equivalent ±0.3")
    moved = registry.register(client, "mnist_mlp", "champion", cheap, parent)
    assert (moved.version, moved.new_version, moved.previous) == ("2", True, "1")
    assert "alias moved from version 1" in moved.line()
    back = registry.register(client, "mnist_mlp", "champion", best, parent)  # the choice changes back
    assert (back.version, back.new_version, back.previous) == ("1", False, "2")


def test_a_config_without_logged_models_is_refused_naming_tracking_log_model(logged):
    client, _, table = logged
    for run_id in table.loc[table["group"] == "mlp3", "run_id"]:
        client.delete_tag(run_id, names.TAG_MODEL_URI)
    s = frame.summarize(table, costs=["n_params"])
    with pytest.raises(TrackingError, match=r"tracking\.log_model=true") as error:
        registry.choose(client, s, table, "best", ["n_params"])
    assert "\n" not in str(error.value)


def test_a_local_store_needs_no_permission_check(logged):
    client, *_ = logged
    registry.check_may_register(client, "mnist_mlp")  # nothing to ask a local store
    assert client.search_registered_models() == []


# --- bad input: one line each, before anything trains ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["report.register=team/mnist"], "report.register='team/mnist' holds one of / : @"),
        (["report.register=a:b"], "report.register='a:b' holds one of"),
        (["report.register=mnist@prod"], "holds one of"),
        (["report.register=.."], "is not a plain name"),
        (["report.register=mnist", "report.alias=latest"], "report.alias='latest' is reserved"),
        (["report.register=mnist", "report.alias=a b"], "report.alias='a b' may hold only"),
        (["report.choose=fastest"], "report.choose='fastest' is unknown: choose one of best, cheapest"),
        (["report.choose=cheapest", "report.costs=[]"], "report.choose=cheapest needs a cost"),
        (["report.register=mnist", "tracking.log_model=false"], "set tracking.log_model=true"),
    ],
)
def test_bad_register_settings_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        validation.validate(make_cfg("experiment=smoke", *overrides))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_good_register_settings_pass():
    validation.validate(make_cfg("experiment=smoke", "report.register=mnist_mlp", "report.choose=cheapest"))


def test_a_sweep_with_a_bad_registry_name_stops_before_any_run(tiny_mnist, tmp_path):
    done = run_cli(*sweep_args(tmp_path, tiny_mnist, "report.register=team/mnist"), cwd=tmp_path)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "report.register='team/mnist'" in errors[0], done.stderr
    assert not (tmp_path / "mlflow.db").exists() or not children(f"sqlite:///{tmp_path / 'mlflow.db'}")


# --- the report: the answer first ---------------------------------------------------------------------------

known_sweep = test_report.known_sweep  # four configs, 1 to 3 seeds (a fixture)


def with_models(store: str) -> None:
    """A LoggedModel for every run in the store, tagged on the run as train tags it."""
    client = MlflowClient(store)
    for run in client.search_runs([client.get_experiment_by_name("known").experiment_id]):
        if run.data.tags.get(names.TAG_SWEEP) != "parent":
            model = client.create_logged_model(run.info.experiment_id, source_run_id=run.info.run_id, name="model")
            client.set_tag(run.info.run_id, names.TAG_MODEL_URI, f"models:/{model.model_id}")


def test_the_report_opens_with_the_answer_and_registers_once(known_sweep, store, tmp_path):
    with_models(store)
    report = make_report(tracking_uri=store, experiment="known", out_dir=tmp_path / "out", register="known_mlp")
    assert report.registered.uri == "models:/known_mlp@champion"
    assert (report.choice.config, report.choice.seed) == ("mlp3-bn", 1)  # 98.0 is seed 1's and the mean

    md = (tmp_path / "out" / "comparison.md").read_text()
    first = md[: md.index("## Full comparison")]
    assert "**Chosen: mlp3-bn** (rule: best; verdict: best), registered as `models:/known_mlp@champion`" in first
    table = [line for line in first.splitlines() if line.startswith("|")]
    assert len(table[0].strip("|").split("|")) <= 8
    assert "mlp3-bn ◀ chosen" in first and "below (p<0.001)" in first  # each config's verdict on the first screen
    assert f"http://127.0.0.1:5000/get-artifact?path=report/front_n_params.png&run_uuid={known_sweep}" in first
    assert "data:image/png;base64," in (tmp_path / "out" / "comparison.html").read_text()
    logged = MlflowClient(store).list_artifacts(known_sweep, "report")
    assert "report/comparison.html" in {f.path for f in logged}
    assert "models:/known_mlp@champion" in report.text()

    again = make_report(tracking_uri=store, experiment="known", out_dir=tmp_path / "again", register="known_mlp")
    assert (again.registered.version, again.registered.new_version, again.registered.moved) == ("1", False, False)


def test_the_cheapest_rule_is_named_without_registering(known_sweep, store, tmp_path):
    report = make_report(tracking_uri=store, experiment="known", out_dir=tmp_path / "out", choose="cheapest")
    # mlp2-none (200 params) is not shown below the best; mlp2-bn has one seed (not tested), also 200 params:
    # the tie goes to the better on validation.
    assert report.choice.config == "mlp2-none" and report.registered is None
    assert "Not registered: `report.register=<name>`" in (tmp_path / "out" / "comparison.md").read_text()
    assert MlflowClient(store).search_registered_models() == []


def test_cli_register_refuses_a_bad_name_in_one_line(capsys):
    assert main(["--register", "a/b"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
