"""``python -m mlp_sweep.bench.race_bench``: races against a fixed grid of 10 seeds, on real MNIST, in one run.

Four commands, each run on the command line as a user would run it, each timed:

1. ``fixed_grid``: the notebook's 3×3 grid, 10 seeds per config (90 runs), into store A;
2. ``fixed_grid_loser``: the same grid with a clear loser added (``optimizer.lr=0.001,<tiny>``: Adam at a
   learning rate far too small for the epochs), 10 seeds, into store A: it reuses (1)'s 90 runs and trains the
   loser's 90, so the loser grid's fixed cost is (1) + (2);
3. ``race``: the 3×3 grid as a race (min 3, max 10 seeds), into store B;
4. ``race_loser``: the grid with the loser as a race, into store C.

Then each race's verdicts beside the 10-seed grid's (its report at the same
margin), the contradictions (the race says ``worse`` where the grid says best
or equivalent, or ``equivalent`` where the grid says worse), runs, wall time
and idle share, as JSON (``--out``); docs/race.md reads it.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

from mlp_sweep import load_sweep, names, summarize
from mlp_sweep.reporting.verdicts import RaceVerdicts

GRID = ["model=mlp2,mlp3,mlp5", "reg=none,bn,bn_dropout"]
FAST = ["trainer.backend=jax", "hydra/launcher=parallel"]  # the README's fast grid: JAX, two workers


def command(store: Path, folder: Path, *overrides: str) -> list[str]:
    """A sweep's command line into its own store and folder."""
    return [
        sys.executable,
        "-m",
        "mlp_sweep",
        "-m",
        *overrides,
        f"tracking.uri=sqlite:///{store}",
        "tracking.experiment=race_bench",
        "tracking.log_model=false",
        f"hydra.sweep.dir={folder}",
    ]


def timed(cmd: list[str], log: Path) -> float:
    """Run a command to the end, its output into ``log``; its wall time."""
    started = time.perf_counter()
    with log.open("w") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def sweeps(store: Path) -> list:
    """A store's sweep parent runs, oldest first."""
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`{names.TAG_SWEEP}` = 'parent'", order_by=["attributes.start_time"])
    return list(runs)


def verdicts_of(table) -> dict[str, dict]:
    """label → the config's verdict and seed count, from a summary."""
    return {
        c: {"verdict": v.split(" ")[0], "n": int(n)}
        for c, v, n in zip(table["config"], table["verdict"], table["n"], strict=True)
    }


def grid_verdicts(store: Path, parent, margin: float) -> dict[str, dict]:
    """A fixed grid's verdicts at the margin."""
    return verdicts_of(summarize(load_sweep(parent.info.run_id, tracking_uri=f"sqlite:///{store}"), margin=margin))


def race_outcome(store: Path) -> tuple[dict[str, dict], dict]:
    """A race's verdicts (as its configs left it) and its record."""
    (parent,) = sweeps(store)
    record = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/{names.RACE_RECORD}")
    runs = load_sweep(parent.info.run_id, tracking_uri=f"sqlite:///{store}")
    return verdicts_of(summarize(runs, race=RaceVerdicts.from_record(record))), record


def contradictions(race: dict[str, dict], grid: dict[str, dict]) -> list[str]:
    """Where the race and the 10-seed grid disagree in a way that matters."""
    found = []
    for config, r in race.items():
        g = grid.get(config, {}).get("verdict", "?")
        if (r["verdict"] == "worse" and g in ("best", "equivalent")) or (r["verdict"] == "equivalent" and g == "worse"):
            found.append(f"{config}: race {r['verdict']}, 10-seed grid {g}")
    return found


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench.race_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default: %(default)s)")
    p.add_argument(
        "--train-size", type=int, default=20_000, help="training images, of MNIST's 50,000 (default: %(default)s)"
    )
    p.add_argument("--margin", type=float, default=0.3, help="points of validation accuracy (default: %(default)s)")
    p.add_argument("--loser-lr", default="1e-5", help="the loser's Adam learning rate (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=10, help="the fixed grid's seeds, and the races' max_seeds")
    p.add_argument("--work", help="folder for the stores and logs (default: a new temporary one)")
    p.add_argument("--smoke", action="store_true", help="a check of the benchmark itself: the smoke subset of MNIST")
    p.add_argument("--out", help="write every number as JSON here")
    args = p.parse_args(argv)
    if not os.environ.get(names.ENV_DATA_DIR):
        sys.exit(f"error: set {names.ENV_DATA_DIR} to a folder with the real MNIST (the benchmark trains on it)")
    work = Path(args.work or tempfile.mkdtemp(prefix="race_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    common = [*FAST, f"trainer.epochs={args.epochs}", *(["experiment=smoke"] if args.smoke else [])]
    common += [] if args.smoke else [f"dataset.train_size={args.train_size}"]
    seeds = f"trainer.seed=range(0,{args.seeds})"
    loser = f"optimizer.lr=0.001,{args.loser_lr}"
    race = ["hydra/sweeper=race", f"race.margin={args.margin}", "race.min_seeds=3", f"race.max_seeds={args.seeds}"]
    arms = {
        "fixed_grid": command(work / "a.db", work / "a1", *GRID, seeds, *common),
        "fixed_grid_loser": command(work / "a.db", work / "a2", *GRID, loser, seeds, *common),
        "race": command(work / "b.db", work / "b", *GRID, *race, *common),
        "race_loser": command(work / "c.db", work / "c", *GRID, loser, *race, *common),
    }
    walls = {}
    for name, cmd in arms.items():
        walls[name] = timed(cmd, work / f"{name}.log")
        print(f"{name}: {walls[name]:.0f} s", flush=True)
    grid_sweep, loser_sweep = sweeps(work / "a.db")
    fixed = grid_verdicts(work / "a.db", grid_sweep, args.margin)
    fixed_loser = grid_verdicts(work / "a.db", loser_sweep, args.margin)
    results = {}
    for name, store, grid, fixed_runs, fixed_wall in (
        ("race", work / "b.db", fixed, 9 * args.seeds, walls["fixed_grid"]),
        ("race_loser", work / "c.db", fixed_loser, 18 * args.seeds, walls["fixed_grid"] + walls["fixed_grid_loser"]),
    ):
        verdicts, record = race_outcome(store)
        runs = sum(record["seeds"].values())
        results[name] = {
            "runs": runs,
            "fixed_runs": fixed_runs,
            "runs_share": runs / fixed_runs,
            "wall_s": walls[name],
            "fixed_wall_s": fixed_wall,
            "wall_share": walls[name] / fixed_wall,
            "rounds": len(record["rounds"]),
            "idle_share": record["idle_share"],
            "rule": record["rule"],
            "verdicts": {c: {"race": v, "fixed": grid[c]} for c, v in verdicts.items()},
            "contradictions": contradictions(verdicts, grid),
        }
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "epochs": args.epochs,
        "data": "the smoke subset" if args.smoke else f"MNIST: {args.train_size:,} train, 10,000 validation",
        "margin_points": args.margin,
        "commands": {name: " ".join(cmd[2:]) for name, cmd in arms.items()},
        "wall_s": walls,
        "races": results,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return out


if __name__ == "__main__":
    main()
