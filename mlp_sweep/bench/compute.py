"""How close training runs to this machine's arithmetic limit, and how it compares with the notebook.

    python -m mlp_sweep.bench.compute --out benchmarks/<machine>.json    # the table (run it alone on the machine)
    python -m mlp_sweep.bench.compute --backend jax --out benchmarks/<machine>-jax.json
    python -m mlp_sweep.bench.compute --sweep --out benchmarks/<machine>.json    # + the grid commands' wall times
    python -m mlp_sweep.bench.compute --quick                                # a smoke test: small data, two configs

Three arms train each config in this one process, interleaved and repeated, so
that all of them see the same machine:

- ``project``: ``train(cfg)`` itself, MLflow run and all (50,000 train / 10,000 validation);
- ``keras``: the same model, compiled and fitted at Keras' defaults on the same data;
- ``notebook``: the notebook's recipe: Keras' defaults, fitted on all 60,000 training
  images with the test set as ``validation_data``, nothing tracked.

A fourth, ``handwritten`` (:mod:`mlp_sweep.bench.handwritten`), is the same models as a
plain jitted JAX loop, run in processes of its own, pinned to one core and on all of them,
its compiling timed apart: what the project's arm on JAX is held against. On JAX the
notebook's arm also runs as the notebook was written, on TensorFlow, in a process of its
own (``notebook_tensorflow``): what a user of the notebook had.

The first epoch of each run pays for tracing and compiling; the median and the
minimum of epochs 2..N are reported, each as a ratio to the FLOP limit (the
epoch's matmuls at the measured fp32 GEMM rate, :func:`epoch_flops`), and the
project's speed-up over the other two per training sample.
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

from mlp_sweep import choices, names, schema
from mlp_sweep.core import runtime

MODELS = ("mlp2", "mlp3", "mlp5")
REGS = ("none", "bn", "bn_dropout")
QUICK_CONFIGS = (("mlp2", "none"), ("mlp5", "bn_dropout"))
ARMS = ("project", "keras", "notebook")
HANDWRITTEN = {"handwritten_1core": 1, "handwritten": None}  # the fourth arm: cores it is pinned to (None: all)
NOTEBOOK_AS_WRITTEN = "notebook_tensorflow"  # on JAX: the notebook's arm on the notebook's own backend
GRID_EPOCHS = 20
# The grid commands --sweep times: the README's fast one and the plain 3x3 grid (20 epochs, TensorFlow).
SWEEP_COMMANDS = {
    "readme_fast": [
        "-m",
        "trainer.backend=jax",
        "hydra/launcher=parallel",
        "model=mlp5,mlp3,mlp2",
        "reg=bn_dropout,bn,none",
    ],
    "plain_grid": ["-m", "model=mlp2,mlp3,mlp5", "reg=none,bn,bn_dropout"],
}


# --- the FLOP limit --------------------------------------------------------------------


def layer_weights(widths: list[int], inputs: int = 784, classes: int = 10) -> list[int]:
    """Weights and biases of each Dense layer, input to output (BatchNormalization's few are left out)."""
    sizes = [inputs, *widths, classes]
    return [(a + 1) * b for a, b in zip(sizes, sizes[1:], strict=False)]


def epoch_flops(widths: list[int], n_train: int, n_eval: int, inputs: int = 784, classes: int = 10) -> float:
    """The FLOPs of an epoch's matmuls: what no implementation can skip.

    A Dense layer with W weights (biases included) costs, per sample, 2W to run
    forward (a multiply and an add per weight), 2W for its weights' gradient and
    2W for its input's gradient, which the layer below needs. The first layer's
    input is the pixels, whose gradient nothing needs. So a training sample costs
    6W - 2W1 (W: all layers, W1: the first), an evaluated sample 2W.
    """
    weights = layer_weights(widths, inputs, classes)
    per_train = 6 * sum(weights) - 2 * weights[0]
    return float(per_train * n_train + 2 * sum(weights) * n_eval)


def matmul_gflops(n: int, repeats: int) -> dict[str, float]:
    """fp32 GFLOP/s of an n x n matmul with numpy's BLAS and with the Keras backend's kernels (best of repeats)."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    ka, kb = keras.ops.convert_to_tensor(a), keras.ops.convert_to_tensor(b)
    backend_matmul = lambda: keras.ops.convert_to_numpy(keras.ops.matmul(ka, kb))  # noqa: E731 (to numpy: waits for it)
    np.matmul(a, b), backend_matmul()  # warm up: thread pools, kernel selection, compilation
    flop = 2.0 * n**3
    return {
        "numpy": flop / best_seconds(lambda: np.matmul(a, b), repeats) / 1e9,
        keras.backend.backend(): flop / best_seconds(backend_matmul, repeats) / 1e9,
    }


def best_seconds(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls: the least disturbed by other work."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def machine_basics() -> dict[str, object]:
    """What the numbers were measured on: CPU, cores and their load, Python, MLflow."""
    import mlflow

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),  # 1, 5, 15 min, as the results are written: a busy machine's numbers move
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mlflow": mlflow.__version__,
    }


def machine() -> dict[str, object]:
    """The machine, with Keras and its backend, and the Hydra plugins installed (each adds to ``--help``'s time)."""
    from importlib import metadata

    import keras

    backend = keras.backend.backend()
    plugins = sorted(
        {
            d.metadata["Name"]
            for d in metadata.distributions()
            if d.metadata["Name"].lower().startswith("hydra-") and d.metadata["Name"].lower() != "hydra-core"
        }
    )
    return {
        **machine_basics(),
        "keras_backend": backend,
        backend: __import__(backend).__version__,
        "keras": keras.__version__,
        "hydra_plugins": plugins,
    }


def command_line(module: str, argv: list[str] | None) -> str:
    """How a benchmark was run, for its results file."""
    return f"python -m mlp_sweep.{module} " + " ".join(argv if argv is not None else sys.argv[1:])


def write_results(result: dict, text: str, out: str | None) -> dict:
    """Print a benchmark's table and write every number as JSON to ``out``."""
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def command_seconds(args: list[str], repeats: int) -> float:
    """Best wall time of ``python -m mlp_sweep <args>``, a fresh interpreter each time."""

    def run():
        subprocess.run(
            [sys.executable, "-m", "mlp_sweep", *args], check=True, capture_output=True, cwd=tempfile.gettempdir()
        )

    return best_seconds(run, repeats)


# --- the three arms ------------------------------------------------------------------------


def project_epochs(cfg) -> list[float]:
    """``train(cfg)`` itself; its epoch times come back from its MLflow run (the experiment's newest)."""
    from mlp_sweep.core.run import train
    from mlp_sweep.store import tracking

    train(cfg, progress="none")
    client, experiment_id = tracking.open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    (run,) = client.search_runs([experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    history = client.get_metric_history(run.info.run_id, "epoch_time_s")
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def keras_default_epochs(cfg, s, x, y, validation, epochs: int) -> list[float]:
    """The config's model for the data ``s``, compiled at Keras' defaults (one batch per call, XLA as Keras
    decides), fitted on (x, y)."""
    import keras

    from mlp_sweep.core.run import compiled_model

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    times: list[float] = []
    model = compiled_model(cfg, s, keras_defaults=True)
    model.fit(
        x,
        y,
        validation_data=validation,
        epochs=epochs,
        batch_size=cfg.trainer.batch_size,
        callbacks=[EpochTimes()],
        verbose=0,
    )
    return times


def run_arm(arm: str, cfg, s) -> list[float]:
    import numpy as np

    epochs = cfg.trainer.epochs
    if arm == "project":
        return project_epochs(cfg)
    if arm == "keras":
        return keras_default_epochs(cfg, s, s.x_train, s.y_train, (s.x_val, s.y_val), epochs)
    everything = np.concatenate([s.x_train, s.x_val]), np.concatenate([s.y_train, s.y_val])  # all 60,000
    return keras_default_epochs(cfg, s, *everything, (s.x_test, s.y_test), epochs)


def arm_samples(arm: str, s) -> tuple[int, int]:
    """(trained, evaluated) samples per epoch of an arm."""
    if arm == "notebook":
        return len(s.x_train) + len(s.x_val), len(s.x_test)
    return len(s.x_train), len(s.x_val)


def summarise(epochs_per_run: list[list[float]], limit_s: float, n_train: int) -> dict[str, float]:
    """Median and minimum of epochs 2..N over the runs, each against the FLOP limit; the first epochs apart."""
    later = [t for run in epochs_per_run for t in run[1:]]
    median, fastest = statistics.median(later), min(later)
    return {
        "median_s": median,
        "min_s": fastest,
        "first_epoch_s": statistics.median(r[0] for r in epochs_per_run),
        "limit_s": limit_s,
        "median_x_limit": median / limit_s,
        "min_x_limit": fastest / limit_s,
        "median_s_per_1k_train": 1000 * median / n_train,
        "epochs": epochs_per_run,
    }


def bench_config(model: str, reg: str, overrides: list[str], gflops: float, repeats: int) -> dict[str, object]:
    """The three arms, rotated ``repeats`` times so that none always runs first, for one config."""
    from mlp_sweep.core import data

    cfg = schema.compose(f"model={model}", f"reg={reg}", *overrides)
    s = data.from_config(cfg.dataset)
    times: dict[str, list[list[float]]] = {arm: [] for arm in ARMS}
    for i in range(repeats):
        for arm in ARMS[i % 3 :] + ARMS[: i % 3]:
            times[arm].append(run_arm(arm, cfg, s))
    row: dict[str, object] = {"name": f"{model}-{reg}", "n_train": len(s.x_train), "flops_per_epoch": {}}
    row["n_train_notebook"] = arm_samples("notebook", s)[0]
    for arm in ARMS:
        n_train, n_eval = arm_samples(arm, s)
        flops = epoch_flops(list(cfg.model.widths), n_train, n_eval)
        row["flops_per_epoch"][arm] = flops
        row[arm] = summarise(times[arm], flops / (gflops * 1e9), n_train)
    for other in ("keras", "notebook"):  # per training sample, since the notebook trains on 10,000 more
        row[f"speedup_over_{other}"] = row[other]["median_s_per_1k_train"] / row["project"]["median_s_per_1k_train"]
    return row


def handwritten_arm(configs: list[tuple[str, str]], epochs: int, overrides: list[str], cores: int | None) -> list[dict]:
    """The hand-written JAX loop's epochs for each config, in a fresh process on ``cores`` cores (None: all),
    each config's compiling timed apart (``compile_s``)."""
    args = ["--configs", ",".join(f"{m}-{r}" for m, r in configs), "--epochs", str(epochs)]
    done = subprocess.run(
        [sys.executable, "-m", "mlp_sweep.bench.handwritten", *args, *(["--cores", str(cores)] if cores else [])]
        + [o for o in overrides if not o.startswith(("tracking.", "trainer.backend", "trainer.compile_cache"))],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **runtime.process_environment("jax")},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def add_handwritten(rows: list[dict], configs, epochs: int, overrides: list[str], repeats: int) -> None:
    """Each row's hand-written arms (:data:`HANDWRITTEN`), summarised as the others are (the first epoch
    here is compiling + the first epoch), and the project's later epochs as a multiple of theirs."""
    for arm, cores in HANDWRITTEN.items():
        runs = [handwritten_arm(configs, epochs, overrides, cores) for _ in range(repeats)]
        for i, row in enumerate(rows):
            timed = [run[i] for run in runs]
            per_run = [[t["compile_s"] + t["epochs"][0], *t["epochs"][1:]] for t in timed]
            row[arm] = summarise(per_run, row["project"]["limit_s"], row["n_train"])
            row[arm] |= {
                "compile_s": statistics.median(t["compile_s"] for t in timed),
                "cpu_per_wall": statistics.median(t["cpu_per_wall"] for t in timed),
                "cores": timed[0]["cores"],
            }
            row[f"project_over_{arm}"] = row["project"]["median_s"] / row[arm]["median_s"]


def notebook_epochs(configs, overrides: list[str], repeats: int) -> list[dict]:
    """The notebook's arm alone for each config, in this process (``--notebook-only``), with the backend it ran on."""
    import keras

    from mlp_sweep.core import data

    timed = []
    for model, reg in configs:
        cfg = schema.compose(f"model={model}", f"reg={reg}", *overrides)
        s = data.from_config(cfg.dataset)
        timed.append(
            {"backend": keras.backend.backend(), "epochs": [run_arm("notebook", cfg, s) for _ in range(repeats)]}
        )
    return timed


def add_notebook_as_written(rows: list[dict], configs, args: argparse.Namespace, epochs: int) -> None:
    """Each row's notebook arm on TensorFlow (:data:`NOTEBOOK_AS_WRITTEN`), from a process of its own, since a
    process has one Keras backend; its FLOP limit is the notebook arm's of this run."""
    command = [sys.executable, "-m", "mlp_sweep.bench.compute", "--notebook-only", "--backend", "tensorflow"]
    command += ["--configs", ",".join(f"{m}-{r}" for m, r in configs), "--epochs", str(epochs)]
    command += ["--repeats", str(args.repeats), *(["--quick"] if args.quick else [])]
    command += ["--data-dir", str(Path(args.data_dir).resolve())] if args.data_dir else []
    env = {**os.environ, **runtime.process_environment("tensorflow")}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    for row, timed in zip(rows, json.loads(done.stdout.strip().splitlines()[-1]), strict=True):
        row[NOTEBOOK_AS_WRITTEN] = summarise(timed["epochs"], row["notebook"]["limit_s"], row["n_train_notebook"])
        row[NOTEBOOK_AS_WRITTEN]["backend"] = timed["backend"]


def grid_seconds(rows: list[dict], arm: str) -> float:
    """A 20-epoch grid of these configs, one job at a time, scaled from the measured epochs:
    per config, its first epoch + 19 x the median of the later ones (fits only: no start-up, no tracking)."""
    return sum(r[arm]["first_epoch_s"] + (GRID_EPOCHS - 1) * r[arm]["median_s"] for r in rows)


def time_command(args: list[str], data_dir: list[str], workdir: Path, repeats: int) -> dict[str, object]:
    """Wall time of a grid command as a user runs it the first time (a store of its own, the compile
    cache empty), the best of ``repeats`` runs, all of them recorded, with where the best one's time went."""
    runs = []
    for i in range(repeats):
        folder = workdir / str(i)
        folder.mkdir(parents=True)
        store = f"sqlite:///{folder / 'sweep.db'}"
        full = [
            *args,
            *data_dir,
            f"tracking.uri={store}",
            "tracking.experiment=bench_sweep",
            f"trainer.compile_cache={folder / 'jax_cache'}",
            f"hydra.sweep.dir={folder / 'multirun'}",
        ]
        started = time.time()
        subprocess.run([sys.executable, "-m", "mlp_sweep", *full], check=True, cwd=folder, capture_output=True)
        runs.append((time.time() - started, store, started))
    wall, store, started = min(runs)
    return {
        "command": "python -m mlp_sweep " + " ".join(args),
        "wall_s": wall,
        "walls_s": [r[0] for r in runs],
        "breakdown": grid_breakdown(store, started, started + wall),
    }


def grid_breakdown(store: str, started: float, ended: float) -> dict[str, float]:
    """Where a grid command's wall time went, from its runs in MLflow.

    Start-up and the end are wall seconds; the rest are seconds summed over the jobs,
    which ``workers`` ran at once: compiling is each job's first
    epoch beyond its median epoch, outside fit is a run's time not spent fitting
    (building the model, evaluating, logging the model and figures), and idle is
    worker time inside the sweep's span that no run used (between jobs, and a worker
    waiting while the last job finishes).
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    children = [
        r
        for r in client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
        if r.data.tags.get(names.TAG_SWEEP) != "parent"
    ]
    spans = [(r.info.start_time / 1000, r.info.end_time / 1000) for r in children]
    workers = max(sum(a <= s < b for a, b in spans) for s, _ in spans)
    first_epochs, fitting, outside = 0.0, 0.0, 0.0
    for run, (start, end) in zip(children, spans, strict=False):
        epochs = [
            m.value for m in sorted(client.get_metric_history(run.info.run_id, "epoch_time_s"), key=lambda m: m.step)
        ]
        first_epochs += epochs[0] - statistics.median(epochs[1:])
        fitting += run.data.metrics["train_time_s"]
        outside += (end - start) - run.data.metrics["train_time_s"]
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    return {
        "workers": workers,
        "start_up_s": first - started,
        "end_s": ended - last,
        "job_s": {
            "compiling": first_epochs,
            "epochs": fitting - first_epochs,
            "outside_fit": outside,
            "idle": workers * (last - first) - sum(e - s for s, e in spans),
        },
    }


# --- the table ----------------------------------------------------------------------------


def table(result: dict) -> str:
    """The numbers as Markdown: one row per config, then the grid."""
    m = result["matmul"]
    lines = [
        f"{result['machine']['cpu']}, {result['machine']['cores']} cores, Keras {result['machine']['keras']} on "
        f"{result['machine']['keras_backend']}; fp32 GEMM {m['gflops']:.0f} GFLOP/s; `--help` {result['help_s']:.2f} s",
        "",
        "| config | limit s/epoch | project median (min) | × limit | Keras defaults median | × limit "
        "| notebook median | × limit | speed-up vs Keras / notebook (per sample) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in result["configs"]:
        p, k, n = c["project"], c["keras"], c["notebook"]
        lines.append(
            f"| {c['name']} | {p['limit_s']:.2f} | {p['median_s']:.2f} ({p['min_s']:.2f}) | "
            f"{p['median_x_limit']:.1f} ({p['min_x_limit']:.1f}) | {k['median_s']:.2f} | {k['median_x_limit']:.1f} | "
            f"{n['median_s']:.2f} | {n['median_x_limit']:.1f} | "
            f"{c['speedup_over_keras']:.2f}× / {c['speedup_over_notebook']:.2f}× |"
        )
    lines += [
        "",
        "| config | project median | hand-written JAX, all cores: median (compile s) | project ÷ hand-written "
        "| hand-written, 1 core: median (compile s) | its CPU s per wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in result["configs"]:
        h, h1 = c["handwritten"], c["handwritten_1core"]
        lines.append(
            f"| {c['name']} | {c['project']['median_s']:.2f} | {h['median_s']:.2f} ({h['compile_s']:.1f}) | "
            f"{c['project_over_handwritten']:.2f} | {h1['median_s']:.2f} ({h1['compile_s']:.1f}) | "
            f"{h1['cpu_per_wall']:.2f} |"
        )
    g = result["grid"]
    as_written = f"{NOTEBOOK_AS_WRITTEN}_s" in g
    lines += [
        "",
        f"20-epoch grid of these configs, fits only, scaled from the measured epochs: project "
        f"{g['project_s']:.0f} s, Keras defaults {g['keras_s']:.0f} s, notebook {g['notebook_s']:.0f} s"
        + (f" (as written, on TensorFlow: {g[f'{NOTEBOOK_AS_WRITTEN}_s']:.0f} s)" if as_written else "")
        + f", hand-written JAX {g['handwritten_s']:.0f} s (on one core {g['handwritten_1core_s']:.0f} s: "
        f"{g['handwritten_1core_s'] / 2:.0f} s on two one-core workers); FLOP limit {g['limit_s']:.0f} s.",
    ]
    for name, s in result.get("sweep", {}).items():
        walls = ", ".join(f"{w:.0f}" for w in s.get("walls_s", [s["wall_s"]]))
        lines.append(
            f"{name}: `{s['command']}` {s['wall_s']:.0f} s wall (best of {walls}; "
            f"{s['wall_s'] / g['limit_s']:.1f}× the limit, "
            f"{g['notebook_s'] / s['wall_s']:.1f}× faster than the notebook's grid"
            + (f", {g[f'{NOTEBOOK_AS_WRITTEN}_s'] / s['wall_s']:.1f}× than it as written)" if as_written else ")")
        )
        if "breakdown" in s:
            b = s["breakdown"]
            lines.append(
                f"  where it went: start-up {b['start_up_s']:.0f} s, the end (report, exit) {b['end_s']:.0f} s; "
                f"summed over {b['workers']} worker(s): "
                + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in b["job_s"].items())
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench.compute", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: small data, two configs, two epochs")
    p.add_argument("--epochs", type=int, help="epochs per run, the first of them not measured (default 4; quick 2)")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of each arm per config, rotated, and of each --sweep command, the best kept (default 1)",
    )
    p.add_argument("--configs", help="comma-separated subset, e.g. mlp2-none,mlp5-bn_dropout (default: all nine)")
    p.add_argument("--backend", choices=choices.BACKENDS, default="tensorflow", help="Keras' backend for all arms")
    p.add_argument("--data-dir", help="MNIST folder (default: dataset.data_dir / $MLP_SWEEP_DATA_DIR)")
    p.add_argument(
        "--sweep", action="store_true", help="also time the README's fast grid command and the plain 3x3 grid command"
    )
    p.add_argument("--out", help="write every number as JSON here")
    p.add_argument("--notebook-only", action="store_true", help=argparse.SUPPRESS)  # for add_notebook_as_written
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.environ.update(runtime.process_environment(args.backend))  # before anything loads Keras
    epochs = args.epochs or (2 if args.quick else 4)
    configs = QUICK_CONFIGS if args.quick else [(m, r) for m in MODELS for r in REGS]
    if args.configs:
        configs = [tuple(name.split("-", 1)) for name in args.configs.split(",")]
    data_dir = [f"dataset.data_dir={Path(args.data_dir).resolve()}"] if args.data_dir else []
    with tempfile.TemporaryDirectory(prefix="mlp_sweep_bench_") as tmp:
        overrides = [
            f"trainer.epochs={epochs}",
            f"trainer.backend={args.backend}",
            "trainer.compile_cache=null",
            "tracking.log_model=false",
            f"tracking.uri=sqlite:///{Path(tmp) / 'bench.db'}",
            "tracking.rerun=true",
            *data_dir,
        ]
        if args.quick:
            overrides += ["dataset=smoke"] + (["dataset.verify_checksum=false"] if args.data_dir else [])
        if args.notebook_only:
            runtime.import_tensorflow_quietly()
            json.dump(notebook_epochs(configs, overrides, args.repeats), sys.stdout)
            return {}
        help_s = command_seconds(["--help"], 1 if args.quick else 3)  # before this process loads TensorFlow
        runtime.import_tensorflow_quietly()
        runtime.settle_process()  # as the command line does for its jobs
        mm = matmul_gflops(1024 if args.quick else 4096, 2 if args.quick else 5)
        gflops = max(mm.values())
        rows = []
        for model, reg in configs:
            rows.append(bench_config(model, reg, overrides, gflops, args.repeats))
            print(
                f"{rows[-1]['name']}: " + ", ".join(f"{arm} {rows[-1][arm]['median_s']:.2f} s" for arm in ARMS),
                file=sys.stderr,
                flush=True,
            )
        add_handwritten(rows, configs, epochs, overrides, args.repeats)
        extra_arms = list(HANDWRITTEN)
        if args.backend == "jax":
            add_notebook_as_written(rows, configs, args, epochs)
            extra_arms.append(NOTEBOOK_AS_WRITTEN)
        result = {
            "command": command_line("bench.compute", argv),
            "machine": machine(),
            "matmul": {**mm, "gflops": gflops},
            "help_s": help_s,
            "settings": {
                "epochs_per_run": epochs,
                "measured": f"epochs 2..{epochs}",
                "repeats": args.repeats,
                "overrides": [o for o in overrides if not o.startswith("tracking.")],
            },
            "configs": rows,
            "grid": {f"{arm}_s": grid_seconds(rows, arm) for arm in (*ARMS, *extra_arms)}
            | {"limit_s": GRID_EPOCHS * sum(r["project"]["limit_s"] for r in rows)},
        }
        if args.sweep:
            result["sweep"] = {
                name: time_command(cmd, data_dir, Path(tmp) / name, args.repeats)
                for name, cmd in SWEEP_COMMANDS.items()
            }
    return write_results(result, table(result), args.out)


if __name__ == "__main__":
    main()
