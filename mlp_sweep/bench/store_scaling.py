"""How reading a sweep back scales with its size, against a real ``mlflow server``.

    python -m mlp_sweep.bench.store_scaling --out benchmarks/store-<machine>.json   # 100 configs x 10 seeds, 20 epochs
    python -m mlp_sweep.bench.store_scaling --configs 4 --seeds 2 --epochs 3        # a smoke test

A search or a multi-seed sweep on a team's server holds hundreds of runs. This
makes such a sweep without training: a local server (SQLite behind it, as
``scripts/mlflow_server.py`` runs it), a parent run, and one child run per
config and seed, logged the way a job logs it (the params, tags and grid point
of a composed config, where ``optimizer.lr`` tells the configs apart; a curve of
every per-epoch metric; the final metrics). Then it times, against the server:

- the report (:func:`mlp_sweep.reporting.report.make_report`), files and figures included;
- the curves the report reads, in bulk and run by run (as the client alone would ask);
- a resume lookup: what a job of a resumed sweep asks before it trains
  (:func:`mlp_sweep.store.resume.claim` on a grid point a FINISHED run holds).
"""

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from mlp_sweep import names, schema
from mlp_sweep.bench.compute import command_line, machine_basics, write_results
from mlp_sweep.reporting import frame, report
from mlp_sweep.store import history, identity, login, resume

SERVER_START_S = 120
LOGGING_THREADS = 8  # the server answers several clients at once; a sweep's jobs log in parallel too


def start_server(root: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` on loopback with its SQLite store and artifacts under ``root``; back once it answers."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        try:
            login.check_reachable(f"http://127.0.0.1:{port}", timeout_s=1)
            MlflowClient(f"http://127.0.0.1:{port}").search_experiments(max_results=1)
            return server
        except Exception:  # still starting
            if server.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {server.returncode} on port {port}") from None
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"mlflow server did not answer on port {port} within {SERVER_START_S} s")


def seconds(fn) -> float:
    """The wall time of one call."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SYNTHETIC_VERSIONS = {"keras_backend": "none"}  # no Keras computed these runs


def synthetic_curve(rng: np.random.Generator, floor: float, epochs: int) -> np.ndarray:
    """A validation loss that falls toward ``floor``, with a seed's noise."""
    t = np.arange(1, epochs + 1)
    return floor + 0.5 * np.exp(-t / 4) + rng.normal(0, 0.004, epochs)


def log_run(client: MlflowClient, experiment_id: str, parent_id: str, cfg, epochs: int, data_sha: str) -> None:
    """One child run as a finished job leaves it: its tags, params, curves and final metrics."""
    point = identity.grid_point(cfg, data_sha, SYNTHETIC_VERSIONS)
    tags = {**point.tags(), names.TAG_PARENT: parent_id}
    run = client.create_run(experiment_id, run_name=identity.run_name(cfg, ["optimizer.lr"]), tags=tags).info
    lr, seed = float(cfg.optimizer.lr), int(cfg.trainer.seed)
    rng = np.random.default_rng([seed, int(lr * 1e9)])
    floor = 0.07 + 0.5 * (math.log10(lr) + 2.5) ** 2  # best near lr = 10^-2.5
    curves = {"val_loss": synthetic_curve(rng, floor, epochs), "loss": synthetic_curve(rng, floor * 0.8, epochs)}
    curves["val_accuracy"] = 1 - curves["val_loss"] / 3
    curves["accuracy"] = 1 - curves["loss"] / 3
    curves["epoch_time_s"] = rng.normal(1.0, 0.05, epochs)
    final = {
        "test_loss": curves["val_loss"][-1] + 0.01,
        "test_accuracy": curves["val_accuracy"][-1] - 0.002,
        "train_time_s": float(curves["epoch_time_s"].sum()),
    }
    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, step) for k, values in curves.items() for step, v in enumerate(values, 1)]
    metrics += [Metric(k, float(v), now, 0) for k, v in final.items()]
    params = [Param(k, str(v)) for k, v in {**identity.flat_params(cfg), "n_hidden_layers": 2}.items()]
    for start in range(0, len(metrics), 1000):  # MLflow's limit per batch
        client.log_batch(run.run_id, metrics=metrics[start : start + 1000], params=params if start == 0 else [])
    client.set_terminated(run.run_id, RunStatus.to_string(RunStatus.FINISHED))


def make_sweep(uri: str, n_configs: int, n_seeds: int, epochs: int) -> tuple[str, str, identity.GridPoint]:
    """The synthetic sweep; returns (experiment id, parent run id, the grid point of one of its runs, to look up)."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("bench_store")
    parent = client.create_run(experiment_id, run_name="synthetic", tags={names.TAG_SWEEP: "parent"}).info
    lrs = np.logspace(-4, -1, n_configs)
    configs = []
    for lr in lrs:  # composed once per config, then one copy per seed
        cfg = schema.compose("model=mlp2", f"optimizer.lr={lr:.6g}", f"trainer.epochs={epochs}")
        for seed in range(n_seeds):
            configs.append(cfg.copy())
            configs[-1].trainer.seed = seed
    data_sha = "0" * 64
    with ThreadPoolExecutor(LOGGING_THREADS) as pool:
        list(pool.map(lambda cfg: log_run(client, experiment_id, parent.run_id, cfg, epochs, data_sha), configs))
    client.set_terminated(parent.run_id, RunStatus.to_string(RunStatus.FINISHED))
    return experiment_id, parent.run_id, identity.grid_point(configs[len(configs) // 2], data_sha, SYNTHETIC_VERSIONS)


def measure(n_configs: int, n_seeds: int, epochs: int, lookups: int) -> dict[str, object]:
    """A server of its own, the synthetic sweep in it, then the timings against it."""
    with tempfile.TemporaryDirectory(prefix="mlp_sweep_store_") as tmp:
        root, port = Path(tmp), free_port()
        server = start_server(root, port)
        try:
            uri = f"http://127.0.0.1:{port}"
            started = time.perf_counter()
            experiment_id, parent_id, point = make_sweep(uri, n_configs, n_seeds, epochs)
            logging_s = time.perf_counter() - started
            client = MlflowClient(uri)  # as a job's: its own client of the store
            lookup = [
                seconds(lambda: resume.claim(client, experiment_id, point, "lookup", {}, rerun=False))
                for _ in range(lookups)
            ]
            report_s = seconds(lambda: report.make_report(sweep=parent_id, tracking_uri=uri, out_dir=root / "report"))
            run_ids = [r.info.run_id for r in resume.child_runs(client, client.get_run(parent_id))]
            curves_s = {
                f"curves_{'bulk' if bulk else 'per_run'}_s": seconds(
                    lambda bulk=bulk: history.metric_histories(client, run_ids, frame.CURVE_METRICS, bulk=bulk)
                )
                for bulk in (True, False)
            }
            rows = len(pd.read_csv(root / "report" / "comparison.csv"))
        finally:
            server.terminate()
            server.wait(30)
    return {
        "configs": n_configs,
        "seeds": n_seeds,
        "epochs": epochs,
        "runs": n_configs * n_seeds,
        "logging_s": logging_s,
        "report_s": report_s,
        "report_rows": rows,
        **curves_s,
        "resume_lookup_median_s": statistics.median(lookup),
        "resume_lookup_max_s": max(lookup),
        "resume_lookups_s": lookup,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench.store_scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", type=int, default=100, help="configs in the sweep (default 100)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per config (default 10)")
    p.add_argument("--epochs", type=int, default=20, help="steps of each curve (default 20)")
    p.add_argument("--lookups", type=int, default=20, help="resume lookups timed (default 20)")
    p.add_argument("--out", help="write the numbers as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # MLflow prints a link per run it ends on a server
    result = {
        "command": command_line("bench.store_scaling", argv),
        "machine": machine_basics(),
        **measure(args.configs, args.seeds, args.epochs, args.lookups),
    }
    return write_results(result, summary(result), args.out)


def summary(result: dict) -> str:
    """The numbers in one line, as the command prints them."""
    return (
        f"{result['runs']} runs ({result['configs']} configs x {result['seeds']} seeds, "
        f"{result['epochs']}-step curves) "
        f"behind mlflow server: logged in {result['logging_s']:.0f} s; report {result['report_s']:.1f} s "
        f"({result['report_rows']} rows; its curves {result['curves_bulk_s']:.1f} s in bulk, "
        f"{result['curves_per_run_s']:.1f} s run by run); resume lookup median "
        f"{1000 * result['resume_lookup_median_s']:.0f} ms (max {1000 * result['resume_lookup_max_s']:.0f} ms)"
    )


if __name__ == "__main__":
    main()
