"""The same budget three ways: the grid, a TPE search and a Hyperband search, in one run on this machine.

    python -m mlp_sweep.bench.budget --out benchmarks/budget-<machine>.json --report docs/front
    python -m mlp_sweep.bench.budget --quick dataset.data_dir=tests_data dataset.verify_checksum=false   # a smoke test

Each arm is a command as a user types it, one after the other in a store of its
own (27 seed runs of 20 epochs on the real MNIST, Keras on JAX, one job at a
time): the notebook's 3x3 grid with three seeds, then an Optuna search of 9
trials x 3 replicates by TPE, then the same search with Hyperband stopping
seed runs early. Recorded per arm: the command, its wall time, the runs and the
epochs they trained, and the best config with its 95% intervals, read back
through :func:`mlp_sweep.load_sweep` and :func:`mlp_sweep.summarize`. The
grid's report (its table, accuracy-cost front and figures) is copied to
``--report``, for docs/report.md.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlp_sweep.bench.compute import command_line, machine_basics, write_results

GRID = ["-m", "model=mlp2,mlp3,mlp5", "reg=none,bn,bn_dropout", "trainer.seed=0,1,2"]
SEARCH = ["-m", "hparams_search=mlp_optuna", "hydra.sweeper.n_trials=9", "search.replicates=3"]
ARMS = {
    "grid": [*GRID, "tracking.experiment=budget_grid"],
    "search": [*SEARCH, "tracking.experiment=budget_search"],
    "hyperband": [*SEARCH, "search.pruner=hyperband", "tracking.experiment=budget_hyperband"],
}
COMMON = ["trainer.backend=jax"]
QUICK = ["experiment=smoke", "trainer.epochs=3", "search.grace_epochs=1"]  # Hyperband needs epochs above its minimum
QUICK_ARMS = {
    "grid": ["model=mlp2,mlp3", "reg=none", "trainer.seed=0,1"],
    "search": ["hydra.sweeper.n_trials=2", "search.replicates=2"],
}
REPORT_FILES = ("comparison.csv", "front_n_params.png", "front_epoch_time_s.png", "val_curves.png")


def arm_args(arm: str, quick: bool, overrides: list[str]) -> list[str]:
    """The arm's command line (after ``python -m mlp_sweep``); quick: small data, fewer runs."""
    args = [*ARMS[arm], *COMMON, *overrides]
    if quick:
        args += [*QUICK, *QUICK_ARMS["grid" if arm == "grid" else "search"]]
    return args


def run_arm(arm: str, args: list[str], folder: Path) -> dict[str, object]:
    """Run one arm in a folder and store of its own; its wall time, runs, epochs and best config."""
    from mlp_sweep import load_sweep, summarize

    folder.mkdir(parents=True)
    store = f"sqlite:///{folder / 'mlflow.db'}"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mlp_sweep", *args, f"tracking.uri={store}"], check=True, cwd=folder, capture_output=True
    )
    wall = time.perf_counter() - started
    runs = load_sweep(tracking_uri=store)
    table = summarize(runs)
    epochs = runs["pruned_at_epoch"].fillna(runs["params.trainer.epochs"].astype(float))
    return {
        "command": "python -m mlp_sweep " + " ".join(args),
        "wall_s": round(wall, 2),
        "runs": len(runs),
        "pruned_runs": int(runs["pruned_at_epoch"].notna().sum()),
        "epochs_trained": int(epochs.sum()),
        "configs": len(table),
        "best": best(table.iloc[0]),
    }


def best(row) -> dict[str, object]:
    """The best config's summary: what it is, and its validation and test accuracy with their 95% intervals."""
    keys = (
        "config",
        "optimizer.name",
        "reg.dropout",
        "n",
        "val_accuracy_mean",
        "val_accuracy_std",
        "val_accuracy_ci_low",
        "val_accuracy_ci_high",
        "test_accuracy_mean",
        "test_accuracy_std",
        "test_accuracy_ci_low",
        "test_accuracy_ci_high",
        "n_params",
        "epoch_time_s_mean",
        "front",
    )
    return {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in keys if k in row}


def table(result: dict) -> str:
    """The arms side by side, as the budget table in docs/search.md shows them."""
    lines = ["arm        wall s  runs  pruned  epochs  best config                val acc % (95% CI)"]
    for arm, r in result["arms"].items():
        b = r["best"]
        ci = f"{100 * b['val_accuracy_ci_low']:.2f}–{100 * b['val_accuracy_ci_high']:.2f}"
        lines.append(
            f"{arm:<10} {r['wall_s']:>6.0f}  {r['runs']:>4}  {r['pruned_runs']:>6}  {r['epochs_trained']:>6}  "
            f"{b['config'][:26]:<26} {100 * b['val_accuracy_mean']:.2f} ({ci})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench.budget", description=__doc__.split("\n\n")[0])
    p.add_argument("overrides", nargs="*", help="config overrides for every arm, e.g. dataset.data_dir=/path/to/mnist")
    p.add_argument("--quick", action="store_true", help="a smoke test: the smoke subset, 3 epochs, fewer runs")
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of: " + ", ".join(ARMS))
    p.add_argument("--report", help="copy the grid's report (table, front, figures) into this folder")
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args(argv)
    arms = args.arms.split(",")
    result = {"command": command_line("bench.budget", argv), "machine": machine_basics(), "arms": {}}
    with tempfile.TemporaryDirectory(prefix="mlp_sweep_budget_") as tmp:
        for arm in arms:
            result["arms"][arm] = run_arm(arm, arm_args(arm, args.quick, args.overrides), Path(tmp) / arm)
            print(f"{arm}: {result['arms'][arm]['wall_s']:.0f} s", file=sys.stderr, flush=True)
        if args.report and "grid" in arms:
            report = next((Path(tmp) / "grid" / "multirun").glob("*/*/report"))
            Path(args.report).mkdir(parents=True, exist_ok=True)
            for name in REPORT_FILES:
                shutil.copy(report / name, Path(args.report) / name)
    return write_results(result, table(result), args.out)


if __name__ == "__main__":
    main()
