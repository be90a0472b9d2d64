"""How close the training path runs to this machine's arithmetic limit.

    python -m mlp_sweep.bench --out bench.json            # the definitive table (run it alone on the machine)
    python -m mlp_sweep.bench --quick --out quick.json    # a smoke test: small data, two configs, one epoch
    python -m mlp_sweep.bench --sweep                     # also time the real 3x3 x 20-epoch sweep commands

For each config it times epochs (after a warm-up epoch, which pays for tracing)
of the project's own path, ``train(cfg)`` itself with its MLflow run, and of a
plain Keras ``model.fit`` of the same model at Keras' defaults, in this one
process and interleaved, so that both see the same machine. Each is given as a
ratio to the FLOP limit: 6 x weights x training samples (forward and backward)
+ 2 x weights x validation samples, divided by the measured fp32 matmul rate.
Thread settings are per process: both paths share them (``--threads``).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlp_sweep import schema

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

MODELS = ("mlp2", "mlp3", "mlp5")
REGS = ("none", "bn", "bn_dropout")
QUICK_CONFIGS = (("mlp2", "none"), ("mlp5", "bn_dropout"))
# The sweep command's launchers: one job after another, or two processes of one thread each.
SWEEP_LAUNCHERS = {"basic": [], "parallel": ["hydra/launcher=parallel"]}


# --- the machine ---------------------------------------------------------------


def best_seconds(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls: the least disturbed by other work."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def matmul_gflops(n: int, repeats: int) -> dict[str, float]:
    """fp32 GFLOP/s of an n x n matmul with numpy's BLAS and with TensorFlow (oneDNN/Eigen).

    The faster of the two stands for what the cores can do; the training path
    uses TensorFlow's kernels, on much smaller matrices.
    """
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    ta, tb = tf.constant(a), tf.constant(b)
    np.matmul(a, b), tf.matmul(ta, tb).numpy()  # warm up: thread pools, kernel selection
    flop = 2.0 * n**3
    return {
        "numpy": flop / best_seconds(lambda: np.matmul(a, b), repeats) / 1e9,
        "tensorflow": flop / best_seconds(lambda: tf.matmul(ta, tb).numpy(), repeats) / 1e9,
    }


def command_seconds(args: list[str], repeats: int) -> float:
    """Best wall time of ``python -m mlp_sweep <args>``, a fresh interpreter each time."""

    def run():
        subprocess.run([sys.executable, "-m", "mlp_sweep", *args], check=True, capture_output=True, cwd=tempfile.gettempdir())

    return best_seconds(run, repeats)


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import keras
    import mlflow
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "mlflow": mlflow.__version__,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


# --- the configs -----------------------------------------------------------------


def dense_weights(widths: list[int], inputs: int = 784, classes: int = 10) -> int:
    """Weights and biases of the Dense layers: what the matmuls multiply (BN's few are left out)."""
    sizes = [inputs, *widths, classes]
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def flop_limit_s(weights: int, n_train: int, n_val: int, gflops: float) -> float:
    """Seconds an epoch's matmuls need at the measured rate: 6 flops per weight and
    training sample (forward 2, backward 4), 2 per weight and validation sample."""
    return (6.0 * weights * n_train + 2.0 * weights * n_val) / (gflops * 1e9)


# --- the two training paths --------------------------------------------------------


def project_epochs(cfg) -> dict[str, object]:
    """Run ``train(cfg)`` itself; its epoch times come back from its MLflow run."""
    import mlflow

    from mlp_sweep.train import train

    started = time.perf_counter()
    final = train(cfg, progress="none")
    wall = time.perf_counter() - started
    run = mlflow.last_active_run()
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "epoch_time_s")
    epochs = [m.value for m in sorted(history, key=lambda m: m.step)]
    return {
        "epoch_s": epochs, "train_wall_s": wall, "fit_s": final["train_time_s"],
        "val_accuracy": final["val_accuracy"], "test_accuracy": final["test_accuracy"],
    }


def plain_keras_epochs(cfg, splits) -> dict[str, object]:
    """The same model, compiled and fitted at Keras' defaults: steps_per_execution=1, numpy in."""
    import keras
    from omegaconf import open_dict

    from mlp_sweep.train import compiled_model

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    times: list[float] = []
    plain = cfg.copy()
    with open_dict(plain):
        plain.trainer.steps_per_execution = 1  # Keras' default; the rest of compile() is at defaults already
    model = compiled_model(plain)
    history = model.fit(
        splits.x_train, splits.y_train, validation_data=(splits.x_val, splits.y_val),
        epochs=cfg.trainer.epochs, batch_size=cfg.trainer.batch_size, callbacks=[EpochTimes()], verbose=0,
    ).history
    return {"epoch_s": times, "val_accuracy": float(history["val_accuracy"][-1])}


def summarise(runs: list[dict]) -> dict[str, float]:
    """Median (the figure) and min (the least disturbed) epoch, each run's warm-up epoch left out."""
    measured = [t for r in runs for t in r["epoch_s"][1:]] or [r["epoch_s"][0] for r in runs]
    return {"median_s": statistics.median(measured), "min_s": min(measured), "warmup_s": runs[0]["epoch_s"][0]}


def bench_config(model: str, reg: str, overrides: list[str], gflops: float, repeats: int) -> dict[str, object]:
    """Project path and plain Keras, alternated ``repeats`` times, for one config."""
    from mlp_sweep.train import load_data

    cfg = schema.compose(f"model={model}", f"reg={reg}", *overrides)
    splits = load_data(cfg)
    project, plain = [], []
    for i in range(repeats):  # A B, B A, ...: neither path always runs on the warmer machine
        for path in ("project", "plain") if i % 2 == 0 else ("plain", "project"):
            if path == "project":
                project.append(project_epochs(cfg))
            else:
                plain.append(plain_keras_epochs(cfg, splits))
    weights = dense_weights(list(cfg.model.widths))
    limit = flop_limit_s(weights, len(splits.x_train), len(splits.x_val), gflops)
    p, k = summarise(project), summarise(plain)
    fit = sum(r["fit_s"] for r in project)
    overhead = sum(r["train_wall_s"] - r["fit_s"] for r in project)
    return {
        "name": f"{model}-{reg}", "model": model, "reg": reg, "weights": weights,
        "train_samples": len(splits.x_train), "val_samples": len(splits.x_val), "flop_limit_s": limit,
        "project": {**p, "ratio_to_limit": p["median_s"] / limit},
        "plain_keras": {**k, "ratio_to_limit": k["median_s"] / limit},
        "speedup_over_plain": k["median_s"] / p["median_s"],
        "train_wall_s": statistics.median(r["train_wall_s"] for r in project),
        "fit_s": statistics.median(r["fit_s"] for r in project),
        "overhead_s": overhead / repeats, "overhead_fraction": overhead / fit,
        # the same fixed cost against a 20-epoch fit (the sweep's), estimated from these epochs
        "overhead_fraction_20": overhead / repeats / (p["warmup_s"] + 19 * p["median_s"]),
        "project_val_accuracy": [r["val_accuracy"] for r in project],
        "plain_val_accuracy": [r["val_accuracy"] for r in plain],
        "project_test_accuracy": [r["test_accuracy"] for r in project],
    }


# --- the real sweep command -------------------------------------------------------------


def time_sweep(epochs: int, extra: list[str], workdir: Path) -> dict[str, object]:
    """Wall time of the 3x3 grid as a user runs it, and the fit time inside it."""
    import mlflow

    workdir.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{workdir / 'sweep.db'}"
    # Longest jobs first: parallel workers then finish together instead of one running the last mlp5 alone.
    args = ["-m", f"model={','.join(reversed(MODELS))}", f"reg={','.join(reversed(REGS))}", f"trainer.epochs={epochs}",
            f"tracking.uri={uri}", "tracking.experiment=bench_sweep", f"hydra.sweep.dir={workdir / 'multirun'}", *extra]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlp_sweep", *args], check=True, cwd=workdir)
    wall = time.perf_counter() - started
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["bench_sweep"], output_format="list")
    children = [r for r in runs if "train_time_s" in r.data.metrics]
    fit = sum(r.data.metrics["train_time_s"] for r in children)
    return {
        "command": "python -m mlp_sweep " + " ".join(a for a in args if not a.startswith(("tracking.", "hydra.sweep", "dataset.data_dir"))),
        "wall_s": wall, "jobs": len(children), "sum_fit_s": fit,
        "test_accuracy": {r.info.run_name: r.data.metrics["test_accuracy"] for r in children},
    }


# --- the table ----------------------------------------------------------------------------


def table(result: dict) -> str:
    """The numbers as a Markdown table, one row per config."""
    lines = [
        f"fp32 matmul: {result['matmul']['gflops']:.0f} GFLOP/s (numpy {result['matmul']['numpy']:.0f}, "
        f"TensorFlow {result['matmul']['tensorflow']:.0f}); `--help` {result['help_s']:.2f} s, `--cfg job` {result['cfg_job_s']:.2f} s",
        "",
        "| config | FLOP limit s/epoch | project s/epoch (min) | × limit | plain Keras s/epoch (min) | × limit | speed-up "
        "| MLflow overhead s (% of 20 epochs) | val acc project / plain |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for c in result["configs"]:
        p, k = c["project"], c["plain_keras"]
        acc = f"{statistics.mean(c['project_val_accuracy']):.4f} / {statistics.mean(c['plain_val_accuracy']):.4f}"
        lines.append(
            f"| {c['name']} | {c['flop_limit_s']:.2f} | {p['median_s']:.2f} ({p['min_s']:.2f}) | {p['ratio_to_limit']:.1f} "
            f"| {k['median_s']:.2f} ({k['min_s']:.2f}) "
            f"| {k['ratio_to_limit']:.1f} | {c['speedup_over_plain']:.2f}× | {c['overhead_s']:.2f} ({100 * c['overhead_fraction_20']:.1f}%) | {acc} |"
        )
    t = result["totals"]
    lines += [
        "",
        f"Grid of {t['configs']} configs × {t['grid_epochs']} epochs from these epoch times: project {t['grid_project_s']:.0f} s, "
        f"plain Keras {t['grid_plain_s']:.0f} s (one job at a time). MLflow overhead (train() wall − fit): "
        f"{100 * t['overhead_fraction_20']:.1f}% of 20-epoch fits ({100 * t['overhead_fraction']:.1f}% of the "
        f"{t['measured_epochs'] + 1}-epoch fits measured).",
    ]
    for launcher, s in result.get("sweep", {}).items():
        lines.append(
            f"Sweep command, {launcher} launcher ({s['jobs']} jobs): {s['wall_s']:.0f} s wall, "
            f"{s['sum_fit_s']:.0f} s of fit inside it; `{s['command']}`"
        )
    return "\n".join(lines)


def totals(configs: list[dict], grid_epochs: int, measured_epochs: int) -> dict[str, float]:
    """What the per-config numbers add up to for a full sweep."""
    fit = sum(c["fit_s"] for c in configs)
    return {
        "configs": len(configs), "grid_epochs": grid_epochs, "measured_epochs": measured_epochs,
        "grid_project_s": grid_epochs * sum(c["project"]["median_s"] for c in configs),
        "grid_plain_s": grid_epochs * sum(c["plain_keras"]["median_s"] for c in configs),
        "overhead_fraction": sum(c["overhead_s"] for c in configs) / fit,
        "overhead_fraction_20": sum(c["overhead_s"] for c in configs)
        / sum(c["project"]["warmup_s"] + 19 * c["project"]["median_s"] for c in configs),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: small data, two configs, one measured epoch")
    p.add_argument("--epochs", type=int, help="measured epochs per run, after one warm-up epoch (default 3; quick 1)")
    p.add_argument("--repeats", type=int, default=1, help="runs of each path per config, alternated (default 1)")
    p.add_argument("--configs", help="comma-separated subset, e.g. mlp2-none,mlp5-bn_dropout (default: all nine; quick: two)")
    p.add_argument("--threads", type=int, help="trainer.threads for this process (default: the config's)")
    p.add_argument("--data-dir", help="MNIST folder (default: dataset.data_dir / $MLP_SWEEP_DATA_DIR)")
    p.add_argument("--sweep", nargs="*", choices=SWEEP_LAUNCHERS, help="also time the real 3x3 sweep command with "
                   "these launchers (none named: all of them), trainer.epochs=--sweep-epochs")
    p.add_argument("--sweep-epochs", type=int, default=20)
    p.add_argument("--out", help="write every number as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 3)
    configs = QUICK_CONFIGS if args.quick else [(m, r) for m in MODELS for r in REGS]
    if args.configs:
        configs = [tuple(name.split("-", 1)) for name in args.configs.split(",")]
    with tempfile.TemporaryDirectory(prefix="mlp_sweep_bench_") as tmp:
        overrides = [
            f"trainer.epochs={epochs + 1}",  # + the warm-up epoch
            f"tracking.uri=sqlite:///{Path(tmp) / 'bench.db'}",
            f"tracking.experiment=bench-{int(time.time())}",
            "tracking.rerun=true",
        ]
        overrides += ["dataset=smoke"] if args.quick else []
        data_dir = [f"dataset.data_dir={Path(args.data_dir).resolve()}"] if args.data_dir else []
        overrides += data_dir
        overrides += [f"trainer.threads={args.threads}"] if args.threads else []
        if args.data_dir and args.quick:
            overrides.append("dataset.verify_checksum=false")  # the tests' stand-in data is not MNIST
        help_s = command_seconds(["--help"], 1 if args.quick else 3)  # before this process loads TensorFlow
        cfg_job_s = command_seconds(["--cfg", "job"], 1 if args.quick else 3)
        from mlp_sweep.runtime import settle_process
        from mlp_sweep.train import use_threads

        settle_process()  # as the command line does for its jobs
        use_threads(args.threads)  # before the matmuls start TensorFlow's runtime
        mm = matmul_gflops(1024 if args.quick else 4096, 2 if args.quick else 5)
        gflops = max(mm.values())
        rows = []
        for model, reg in configs:
            rows.append(bench_config(model, reg, overrides, gflops, args.repeats))
            print(f"{rows[-1]['name']}: project {rows[-1]['project']['median_s']:.2f} s/epoch, "
                  f"plain Keras {rows[-1]['plain_keras']['median_s']:.2f} s/epoch", file=sys.stderr, flush=True)
        result = {
            "machine": machine(),
            "settings": {"quick": args.quick, "measured_epochs": epochs, "warmup_epochs": 1, "repeats": args.repeats,
                         "threads": args.threads, "overrides": [o for o in overrides if not o.startswith("tracking.")]},
            "matmul": {**mm, "gflops": gflops, "n": 1024 if args.quick else 4096},
            "help_s": help_s, "cfg_job_s": cfg_job_s,
            "configs": rows,
            "totals": totals(rows, 20, epochs),
        }
        if args.sweep is not None:
            result["sweep"] = {
                launcher: time_sweep(args.sweep_epochs, data_dir + SWEEP_LAUNCHERS[launcher], Path(tmp) / launcher)
                for launcher in args.sweep or SWEEP_LAUNCHERS
            }
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
