"""The sweep report: a known table from runs with known metrics, the files and
artifacts of a real smoke sweep, and clear errors for what does not exist."""

import csv
import subprocess
import sys

import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from helpers import ROOT, run_cli, sweep_args
from mlp_sweep import names
from mlp_sweep.errors import TrackingError
from mlp_sweep.reporting import stats as compare
from mlp_sweep.reporting.cli import main
from mlp_sweep.reporting.report import ARTIFACT_DIR, FILES, make_report
from mlp_sweep.reporting.table import formatted

# config hash -> (model, widths, batch norm, dropout, final val accuracies of its seeds)
CONFIGS = {
    "aaaa": ("mlp3", "[356, 105, 51]", True, 0.0, [0.978, 0.980, 0.982]),  # mean 98.0, std 0.2: the best
    "bbbb": ("mlp2", "[324, 108]", False, 0.0, [0.975, 0.979, 0.977]),  # 97.7 ± 0.2: Welch p = 0.1401
    "cccc": ("mlp5", "[507, 312, 212, 126, 84]", True, 0.5, [0.960, 0.962, 0.964]),  # 96.2 ± 0.2: p = 0.00039
    "dddd": ("mlp2", "[324, 108]", True, 0.0, [0.970]),  # one seed: cannot be tested
}
REG = {(False, 0.0): "none", (True, 0.0): "bn", (True, 0.5): "bn_dropout"}  # the presets' values
# Test accuracy = validation accuracy + this: on test, mlp2-none would be best, so a
# report that chose on the test set would fail these tests.
TEST_OFFSET = {"aaaa": -0.010, "bbbb": 0.005, "cccc": -0.005, "dddd": -0.005}
# Milliseconds to predict 1,000 images; dddd's runs predate the metric.
PREDICT_MS = {"aaaa": 2.0, "bbbb": 1.0, "cccc": 4.0}


def log_run(client, experiment_id, parent_id, config_hash, seed, val_acc, status="FINISHED", lr="0.001"):
    """A child run as ``train`` logs it, with metrics that follow from the given val accuracy."""
    model, widths, bn, dropout, _ = CONFIGS[config_hash]
    name = f"{model}-{REG[bn, dropout]}-s{seed}"
    run = client.create_run(
        experiment_id, run_name=name, tags={names.TAG_PARENT: parent_id, names.TAG_CONFIG_HASH: config_hash}
    )
    rid = run.info.run_id
    params = {
        "model.name": model,
        "reg.name": REG[bn, dropout],
        "model.widths": widths,
        "reg.batch_norm": str(bn),
        "reg.dropout": str(dropout),
        "optimizer.name": "adam",
        "optimizer.lr": lr,
        "trainer.epochs": "2",
        "trainer.seed": str(seed),
        "n_params": str(100 * len(widths)),
        "n_hidden_layers": str(widths.count(",") + 1),
    }
    metrics = [
        Metric(key, value, 0, step)
        for step, (acc, loss, seconds) in enumerate([(val_acc - 0.01, 0.3, 3.0), (val_acc, 1 - val_acc, 1.0)], start=1)
        for key, value in {
            "val_accuracy": acc,
            "val_loss": loss,
            "accuracy": acc + 0.01,
            "loss": loss / 2,
            "epoch_time_s": seconds,
        }.items()
    ]
    final = {"test_accuracy": val_acc + TEST_OFFSET[config_hash], "test_loss": 1 - val_acc, "train_time_s": 4.0}
    final["n_params"] = float(params["n_params"])  # a param and a metric, as a run logs it
    if config_hash in PREDICT_MS:
        final["predict_ms_per_1k"] = PREDICT_MS[config_hash]
    metrics += [Metric(key, value, 0, 0) for key, value in final.items()]
    # One batch per run: a call per value made this fixture the fast tier's slowest setup.
    client.log_batch(rid, metrics=metrics, params=[Param(key, value) for key, value in params.items()])
    client.set_terminated(rid, status)
    return rid


def experiment_id(store: str, name: str) -> str:
    return MlflowClient(store).get_experiment_by_name(name).experiment_id


@pytest.fixture
def known_sweep(store):
    """An older sweep, then the latest one: four configs, 1 to 3 seeds, one failed run, one reused run."""
    client = MlflowClient(store)
    experiment_id = client.create_experiment("known")
    old = client.create_run(experiment_id, run_name="sweep-old", start_time=1_000, tags={names.TAG_SWEEP: "parent"})
    log_run(client, experiment_id, old.info.run_id, "cccc", 0, 0.999)  # not in the latest sweep
    parent = client.create_run(experiment_id, run_name="sweep-new", start_time=2_000, tags={names.TAG_SWEEP: "parent"})
    for config_hash, (*_, accuracies) in CONFIGS.items():
        for seed, accuracy in enumerate(accuracies):
            if config_hash == "dddd":  # found FINISHED in the older sweep and reused, as a resumed job does
                reused = log_run(client, experiment_id, old.info.run_id, config_hash, seed, accuracy)
                client.set_tag(parent.info.run_id, names.TAG_REUSED_PREFIX + reused, "point")
            else:
                log_run(client, experiment_id, parent.info.run_id, config_hash, seed, accuracy)
    log_run(client, experiment_id, parent.info.run_id, "dddd", 1, 0.5, status="FAILED")
    return parent.info.run_id


def test_known_runs_give_the_known_table(known_sweep, store, tmp_path):
    report = make_report(tracking_uri=store, experiment="known", out_dir=tmp_path / "out")

    assert report.parent.info.run_id == known_sweep  # the latest sweep, not the older one
    t = report.table
    assert list(t["config"]) == ["mlp3-bn", "mlp2-none", "mlp2-bn", "mlp5-bn_dropout"]
    assert list(t["n"]) == [3, 3, 1, 3]  # the failed run is left out, the reused one counts
    assert list(t["val acc %"]) == ["98.00 ± 0.20", "97.70 ± 0.20", "97.00", "96.20 ± 0.20"]
    assert list(t["train acc %"]) == ["99.00 ± 0.20", "98.70 ± 0.20", "98.00", "97.20 ± 0.20"]
    assert list(t["test acc %"]) == ["97.00 ± 0.20", "98.20 ± 0.20", "96.50", "95.70 ± 0.20"]  # best on val only
    assert list(t["test loss"]) == ["0.0200 ± 0.0020", "0.0230 ± 0.0020", "0.0300", "0.0380 ± 0.0020"]
    assert list(t["s/epoch"]) == ["2.00 ± 0.00", "2.00 ± 0.00", "2.00", "2.00 ± 0.00"]
    # t(0.975, 2) * 0.2 / sqrt(3) = 0.497 around each mean
    assert list(t["val acc 95% CI"]) == ["97.50 – 98.50", "97.20 – 98.20", "–", "95.70 – 96.70"]
    assert list(t["vs best (Welch)"]) == ["best", "≈ best (p=0.140)", "too few seeds (n=1)", "below (p<0.001)"]
    assert report.summary["p_vs_best_raw"][3] == pytest.approx(0.000385, rel=1e-3)
    # Holm with two tests: the smaller p doubled; the larger (0.1401 × 1) stays, being above it.
    assert report.summary["p_vs_best"][3] == pytest.approx(2 * report.summary["p_vs_best_raw"][3])
    assert report.summary["p_vs_best"][1] == pytest.approx(report.summary["p_vs_best_raw"][1])
    assert list(t["hidden layers"]) == ["3: 356, 105, 51", "2: 324, 108", "2: 324, 108", "5: 507, 312, 212, 126, 84"]
    assert list(t["BN"]) == ["yes", "no", "yes", "yes"]
    assert list(t["dropout"]) == ["0.0", "0.0", "0.0", "0.5"]
    assert any("mlp2-bn-s1" in note and "FAILED" in note for note in report.notes)
    assert "Welch's t-test" in report.text()
    assert list(t["predict ms/1k"]) == ["2.00 ± 0.00", "1.00 ± 0.00", "–", "4.00 ± 0.00"]  # mlp2-bn: no such metric


def test_known_runs_give_the_known_front(known_sweep, store, tmp_path):
    """By hand, params (100 x the length of the widths' text: 1400, 1000, 1000, 2500) against val accuracy
    (98.0, 97.7, 97.0, 96.2): mlp2-none (cheapest, nothing better at 1000) and mlp3-bn (the most accurate) are on
    the front; mlp2-bn is as cheap as mlp2-none but worse, mlp5 costlier and worse. Every s/epoch is 2.0: only the
    most accurate is on that front. mlp2-none against mlp3-bn: Welch p = 0.1401, the only pair, so not shown to
    differ: the cheaper one is, as far as three seeds can tell, as good."""
    report = make_report(tracking_uri=store, experiment="known", out_dir=tmp_path / "out")

    s = report.summary
    assert list(s["front_n_params"]) == [True, True, False, False]
    assert list(s["front_epoch_time_s"]) == [True, False, False, False]
    assert list(report.table["front"]) == ["params, s/epoch", "params", "", ""]
    assert "mlp2-none is cheaper and, as far as the seeds can tell, as accurate as mlp3-bn" in report.front_note
    assert "Front by epoch_time_s: mlp3-bn" in report.front_note
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert report.front_note in md and "![front by n_params](front_n_params.png)" in md
    rows = list(csv.DictReader((tmp_path / "out" / "comparison.csv").open()))
    assert [r["front"] for r in rows] == ["n_params, epoch_time_s", "n_params", "", ""]


def test_known_runs_give_the_files_and_parent_artifacts(known_sweep, store, tmp_path):
    out = tmp_path / "out"
    make_report(sweep=known_sweep, tracking_uri=store, out_dir=out)

    files = {*FILES, "front_n_params.png", "front_epoch_time_s.png"}
    assert {p.name for p in out.iterdir()} == files
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [r["config"] for r in rows] == ["mlp3-bn", "mlp2-none", "mlp2-bn", "mlp5-bn_dropout"]
    assert float(rows[0]["val_accuracy_mean"]) == pytest.approx(0.98)
    assert float(rows[0]["val_accuracy_std"]) == pytest.approx(0.002)
    md = (out / "comparison.md").read_text()
    assert "| mlp2-none " in md and "≈ best (p=0.140)" in md and "Welch's t-test" in md
    artifacts = {a.path for a in MlflowClient(store).list_artifacts(known_sweep, ARTIFACT_DIR)}
    assert artifacts == {f"{ARTIFACT_DIR}/{name}" for name in files}


def test_configs_the_columns_cannot_tell_apart_show_what_differs():
    runs = pd.DataFrame(
        [
            {
                "group": h,
                "run_name": f"mlp2-none-s{s}",
                "params.model.name": "mlp2",
                "params.reg.name": "none",
                "params.optimizer.lr": lr,
                "params.trainer.seed": str(s),
                "accuracy": 0.9,
                "val_accuracy": acc,
                "test_accuracy": 0.9,
                "test_loss": 0.3,
                "epoch_time_s": 1.0,
                "val_loss": 0.3,
            }
            for h, lr, accs in [("x", "0.01", [0.91, 0.93, 0.95]), ("y", "0.001", [0.95, 0.95, 0.95])]
            for s, acc in enumerate(accs)
        ]
    )
    table = formatted(compare.summarize(runs))
    assert list(table["config"]) == ["mlp2-none · lr 1e-3", "mlp2-none · lr 0.01"]
    assert list(table["vs best (Welch)"]) == ["best", "≈ best (p=0.225)"]  # the best has no spread: still testable


def test_missing_experiment_or_sweep_is_a_clear_error(known_sweep, store, tmp_path):
    with pytest.raises(TrackingError, match="no experiment named 'nope'.*it has: .*known"):
        make_report(tracking_uri=store, experiment="nope", out_dir=tmp_path)
    with pytest.raises(TrackingError, match="no run or sweep 'deadbeef'.*parent run id or name"):
        make_report(sweep="deadbeef", tracking_uri=store, out_dir=tmp_path)
    child = (
        MlflowClient(store)
        .search_runs([experiment_id(store, "known")], "attributes.run_name = 'mlp2-none-s0'")[0]
        .info.run_id
    )
    with pytest.raises(TrackingError, match=f"not a sweep's parent run; its sweep is {known_sweep}"):
        make_report(sweep=child, tracking_uri=store, out_dir=tmp_path)
    with pytest.raises(TrackingError, match="no sweep in experiment 'Default'"):
        make_report(tracking_uri=store, experiment="Default", out_dir=tmp_path)
    with pytest.raises(TrackingError, match="no MLflow store at"):
        make_report(tracking_uri=f"sqlite:///{tmp_path / 'absent.db'}", out_dir=tmp_path)
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.slow
def test_cli_prints_the_error_without_a_traceback(known_sweep, store, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mlp_sweep", "report", "--tracking-uri", store, "--experiment", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no experiment named 'nope'")
    assert "Traceback" not in done.stderr


def test_main_returns_1_on_a_missing_sweep(known_sweep, store, tmp_path, capsys):
    assert main(["--tracking-uri", store, "--sweep", "0" * 32, "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: no run or sweep '{'0' * 32}'")


@pytest.mark.slow
def test_smoke_sweep_with_two_seeds_reports_itself(tiny_mnist, store, tmp_path):
    sweep_dir = tmp_path / "multirun"
    done = run_cli(
        "-m",
        "experiment=smoke",
        "model=mlp2",
        "reg=none,bn",
        "trainer.seed=0,1",
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        "tracking.log_model=false",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mlp2-none" in done.stdout and "Welch" in done.stdout  # the table, printed as the sweep ends

    out = sweep_dir / "report"
    files = {*FILES, "front_n_params.png", "front_epoch_time_s.png"}
    assert {p.name for p in out.iterdir()} == files
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["config"]) == ["mlp2-bn", "mlp2-none"] and list(table["n"]) == [2, 2]
    client = MlflowClient(store)
    parent = client.search_runs([experiment_id(store, "mlp_sweep_smoke")], f"tags.`{names.TAG_SWEEP}` = 'parent'")[0]
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id, ARTIFACT_DIR)} == {
        f"{ARTIFACT_DIR}/{n}" for n in files
    }

    # The console script's subcommand reads the same sweep back.
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mlp_sweep.__main__ import cli; sys.argv[0] = 'mlp-sweep'; cli()",
            "report",
            "--tracking-uri",
            store,
            "--out",
            str(tmp_path / "again"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"run {parent.info.run_id}" in again.stdout
    assert (
        pd.read_csv(tmp_path / "again" / "comparison.csv")["val_accuracy_mean"].tolist()
        == table["val_accuracy_mean"].tolist()
    )


@pytest.mark.slow
def test_a_failed_report_does_not_hide_failed_jobs(store, tmp_path):
    done = run_cli(
        "-m",
        "experiment=smoke",
        "model=mlp2",
        # a sweep over data folders: each job reads its own (a sweep of one dataset checks it before any job)
        f"dataset.data_dir={tmp_path / 'no_data'},{tmp_path / 'no_data_either'}",
        f"tracking.uri={store}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "error: the sweep failed (3 problem(s); the other jobs ran to the end):" in done.stderr
    assert done.stderr.count(") FAILED: DataError: data folder") == 2  # both jobs, each a FAILED run in the store
    assert "the sweep's report failed (sweep sweep-" in done.stderr and "has no finished runs" in done.stderr
    assert "`mlp-sweep report --sweep " in done.stderr
    parent = MlflowClient(store).search_runs(
        [experiment_id(store, "mlp_sweep_smoke")], f"tags.`{names.TAG_SWEEP}` = 'parent'"
    )[0]
    assert parent.info.status == "FAILED"


def frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Runs as the report reads them: (group, lr, val accuracy) each; the other metrics fixed."""
    return pd.DataFrame(
        [
            {
                "group": g,
                "run_name": f"mlp2-none-s{i}",
                "params.model.name": "mlp2",
                "params.reg.name": "none",
                "params.optimizer.lr": lr,
                "accuracy": 0.9,
                "val_accuracy": acc,
                "test_accuracy": 0.9,
                "test_loss": 0.3,
                "epoch_time_s": 1.0,
                "val_loss": 0.3,
            }
            for i, (g, lr, acc) in enumerate(rows)
        ]
    )


def test_seeds_that_agree_exactly_on_both_sides_are_below_when_the_means_differ():
    runs = frame(
        [
            *[("x", "0.01", 0.95)] * 3,
            *[("y", "0.02", 0.93)] * 3,
            *[("z", "0.03", 0.95)] * 3,
        ]
    )
    table = formatted(compare.summarize(runs))
    assert list(table["vs best (Welch)"]) == ["best", "≈ best (p=1.000)", "below (p<0.001)"]
    assert "seeds of both configs agree exactly" in compare.footnote(holm=True)


def test_holm_adjusts_by_hand():
    # sorted: 0.01 × 3 = 0.03; 0.03 × 2 = 0.06; 0.04 × 1 = 0.04, raised to the running 0.06.
    adjusted = compare.holm([0.01, float("nan"), 0.04, 0.03])
    assert (
        adjusted[0] == pytest.approx(0.03) and adjusted[2] == pytest.approx(0.06) and adjusted[3] == pytest.approx(0.06)
    )
    assert adjusted[1] != adjusted[1]  # NaN stays
    assert compare.holm([0.6, 0.7]) == [1.0, 1.0]


def test_footnote_says_which_correction_is_in_force():
    adjusted, raw = compare.footnote(holm=True), compare.footnote(holm=False)
    assert "p-values are Holm-adjusted" in adjusted and "p-values are Holm-adjusted" not in raw
    assert "p-values are raw" in raw and "p-values are raw" not in adjusted


def test_a_finished_run_with_a_non_finite_metric_is_left_out_and_listed(known_sweep, store, tmp_path):
    client = MlflowClient(store)
    nan_run = log_run(client, experiment_id(store, "known"), known_sweep, "aaaa", 3, 0.99)
    client.log_metric(nan_run, "val_accuracy", float("nan"), step=3)  # the latest value is the final one

    report = make_report(tracking_uri=store, experiment="known", out_dir=tmp_path / "out")

    assert list(report.table["n"]) == [3, 3, 1, 3]  # not counted in mlp3-bn's n
    assert any(note.startswith("Left out mlp3-bn-s3 (FINISHED: non-finite val_accuracy=nan)") for note in report.notes)


def test_load_sweep_gives_one_row_per_run_from_both_parents_and_summarize_the_report(known_sweep, store, tmp_path):
    from mlp_sweep import load_sweep, summarize

    runs = load_sweep(known_sweep, tracking_uri=store)
    # 3 + 3 + 3 runs of its own, the reused mlp2-bn run of the older sweep, and its own failed one
    assert len(runs) == 11 and runs["run_id"].is_unique
    old = (
        MlflowClient(store)
        .search_runs([experiment_id(store, "known")], "attributes.run_name = 'sweep-old'")[0]
        .info.run_id
    )
    assert runs.groupby("parent_run_id").size().to_dict() == {known_sweep: 10, old: 1}
    assert runs.loc[runs["status"] == "FAILED", "left_out"].notna().all() and runs["left_out"].isna().sum() == 10
    assert sorted(runs["config"].unique()) == ["mlp2-bn", "mlp2-none", "mlp3-bn", "mlp5-bn_dropout"]
    assert {"params.optimizer.lr", "val_accuracy", "test_accuracy", "n_params", "epoch_time_s", "seed"} <= set(runs)
    assert runs["epoch_time_s"].tolist() == [2.0] * 11  # the mean of the epochs' 3.0 and 1.0, not the last
    assert load_sweep("sweep-new", tracking_uri=store)["run_id"].tolist() == runs["run_id"].tolist()  # by name
    assert set(load_sweep(tracking_uri=store)["run_id"]) == set(runs["run_id"])  # the latest sweep

    table = summarize(runs)
    report = make_report(sweep=known_sweep, tracking_uri=store, out_dir=tmp_path / "out")
    pd.testing.assert_frame_equal(table, report.summary)  # one code path
    assert summarize(runs, costs=["predict_ms_per_1k"])["front"].tolist() == [
        "predict_ms_per_1k",
        "predict_ms_per_1k",
        "",
        "",
    ]


def test_each_run_carries_its_configs_label_from_the_table(store):
    """A run's ``config`` is labelled beside the sweep's other configs, as the table labels it: alone,
    the lr-1e-3 run would read ``mlp3-bn`` (Adam's preset), though the sweep varies the rate."""
    from mlp_sweep import load_sweep, summarize

    client = MlflowClient(store)
    parent = client.create_run(client.create_experiment("lr"), tags={names.TAG_SWEEP: "parent"}).info
    for config_hash, lr in (("aaaa", "0.001"), ("bbbb", "0.003")):
        for seed in (0, 1):
            log_run(client, parent.experiment_id, parent.run_id, config_hash, seed, 0.97 + seed / 100, lr=lr)
    runs = load_sweep(parent.run_id, tracking_uri=store)
    assert sorted(set(runs["config"])) == ["mlp2-none · adam lr 3e-3", "mlp3-bn · adam lr 1e-3"]
    table = summarize(runs)
    assert runs.groupby("group")["config"].first().to_dict() == dict(zip(table["group"], table["config"], strict=True))


def test_the_analysis_page_finds_the_cheapest_config_not_shown_to_differ_from_the_best(known_sweep, store, capsys):
    """docs/analysis.md's example, run as written on the known sweep: the best is mlp3-bn (1,400 params);
    mlp2-none (1,000) is not shown to differ (p = 0.140); mlp2-bn (1,000) is untested, one seed: mlp2-none."""
    page = (ROOT / "docs" / "analysis.md").read_text()
    example = page.split("## The cheapest config not shown to differ from the best")[1].split("```python")[1]
    exec(example.split("```")[0], {})
    assert capsys.readouterr().out.strip() == "mlp2-none: 1,000 parameters, validation accuracy 97.70% over 3 seeds"


@pytest.mark.slow
def test_load_sweep_of_a_resumed_sweep_holds_the_runs_it_reused(tiny_mnist, tmp_path):
    """A sweep of two configs, then the same sweep grown to three: the second trains one run and reuses two."""
    from mlp_sweep import load_sweep

    first = run_cli(
        *sweep_args(tmp_path, tiny_mnist, "model=mlp2", "reg=none,bn", "tracking.log_model=false"), cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli(
        *sweep_args(
            tmp_path, tiny_mnist, "model=mlp2", "reg=none,bn,bn_dropout", "tracking.log_model=false", folder="again"
        ),
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped, already FINISHED") == 2

    runs = load_sweep(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")  # the latest sweep: the second
    assert sorted(runs["config"]) == ["mlp2-bn", "mlp2-bn_dropout", "mlp2-none"] and runs["run_id"].is_unique
    assert runs["parent_run_id"].nunique() == 2 and runs["status"].eq("FINISHED").all()
    assert runs.groupby("parent_run_id").size().sort_values().tolist() == [1, 2]  # one trained here, two reused
