"""`--at best`: a sweep compared at each run's best validation epoch, its header naming the data."""

import pytest
from mlflow.tracking import MlflowClient

from mlp_sweep import names
from mlp_sweep.reporting.cli import main
from mlp_sweep.reporting.frame import load_sweep
from mlp_sweep.reporting.report import make_report

# per config: val_accuracy and val_loss by epoch 1..4, whether early stopping restored the best, its test accuracy
RUNS = {
    "early": ([0.80, 0.90, 0.85, 0.84], [0.50, 0.30, 0.40, 0.45], "2", 0.88),  # best at 2 (lowest val_loss)
    "plain": ([0.70, 0.80, 0.86, 0.87], [0.60, 0.40, 0.35, 0.36], "None", 0.86),  # best at 3; trained on to 4
}


@pytest.fixture
def sweep(store):
    client = MlflowClient(store)
    experiment_id = client.create_experiment("at")
    parent = client.create_run(experiment_id, run_name="sweep-at", tags={names.TAG_SWEEP: "parent"})
    for config, (accuracies, losses, patience, test_accuracy) in RUNS.items():
        run = client.create_run(
            experiment_id,
            run_name=f"{config}-s0",
            tags={names.TAG_PARENT: parent.info.run_id, names.TAG_CONFIG_HASH: config},
        )
        rid = run.info.run_id
        params = {
            "model.name": config,
            "reg.name": "none",
            "reg.batch_norm": "False",
            "reg.dropout": "0.0",
            "optimizer.name": "adam",
            "optimizer.lr": "0.001",
            "dataset.name": "digits",
            "input_dim": "64",
            "n_classes": "5",
            "trainer.early_stopping.patience": patience,
        }
        for key, value in params.items():
            client.log_param(rid, key, value)
        for epoch, (acc, loss) in enumerate(zip(accuracies, losses, strict=True), start=1):
            for key, value in {"val_accuracy": acc, "val_loss": loss, "accuracy": acc, "loss": loss}.items():
                client.log_metric(rid, key, value, step=epoch)
            client.log_metric(rid, "epoch_time_s", 1.0, step=epoch)
        client.log_metric(rid, "test_accuracy", test_accuracy)
        client.log_metric(rid, "test_loss", 0.4)
        if patience != "None":  # the plain run stands for a run of 0.2.x, which logged none (store/earlier.py)
            client.log_metric(rid, names.BEST_EPOCH, 2)
        client.set_terminated(rid, "FINISHED")
    return parent.info.run_id


def test_final_and_best_compare_different_epochs(sweep, store):
    final = load_sweep(sweep, tracking_uri=store).set_index("params.model.name")
    assert final.loc["early", "val_accuracy"] == 0.84 and final.loc["plain", "val_accuracy"] == 0.87
    best = load_sweep(sweep, tracking_uri=store, at="best").set_index("params.model.name")
    assert best.loc["early", "val_accuracy"] == 0.90 and best.loc["plain", "val_accuracy"] == 0.86
    assert best.loc["early", "test_accuracy"] == 0.88  # its weights were the best epoch's when tested
    assert best["test_accuracy"].isna()["plain"]  # tested with its last epoch's weights: no test result at best


def test_the_report_at_best_says_so_and_names_the_data(sweep, store, tmp_path, capsys):
    report = make_report(sweep, tracking_uri=store, out_dir=tmp_path / "best", at="best")
    assert list(report.summary["model.name"]) == ["early", "plain"]  # 90% above 86%
    text = report.text()
    assert "on digits (64 inputs, 5 classes)" in text
    assert "Compared at each run's best validation epoch" in text
    assert list(report.table["test acc %"]) == ["88.00", "–"]
    final = make_report(sweep, tracking_uri=store, out_dir=tmp_path / "final")
    assert list(final.summary["model.name"]) == ["plain", "early"]  # 87% above 84%
    assert "Compared at each run's final epoch" in final.text()
    assert main(["--sweep", sweep, "--tracking-uri", store, "--out", str(tmp_path / "cli"), "--at", "best"]) == 0
    assert "best validation epoch" in capsys.readouterr().out
