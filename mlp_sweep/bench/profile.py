"""Where a training step's time goes: XLA's own per-op times, from JAX's profiler.

    python -m mlp_sweep.bench.profile --out benchmarks/profile-<machine>.json   # mlp5-bn_dropout beside mlp5-bn
    python -m mlp_sweep.bench.profile --configs mlp2-none --epochs 1 dataset.data_dir=/path/to/mnist

The project trains an epoch on JAX as one XLA program, its steps a ``scan``
(mlp_sweep/core/jax_epoch.py). This fits a config's model as the project trains
it (one epoch compiles), then traces the next epochs with ``jax.profiler`` and
adds up, per step, the time of each op the CPU ran at the top of the program or
of its scan's body (XLA's thunks: a ``while`` loop inside the step, such as
dropout's random bits, counts with everything inside it), by kind: the name
XLA gives the op, less its number (``dot``, the matmuls it runs itself;
``ynn_fusion``, the matmuls and what is fused with them that XNNPACK runs;
``…_fusion``, fused element-wise ops; ``copy``; ``while``). Two configs that
differ in one layer type, side by side, show what that layer costs.

Op times add up over XLA's threads, so "all ops" can exceed a step's wall
time; a wall time above it is time outside XLA's ops (the loop's own
bookkeeping, the callbacks between epochs). The validation pass is in the
program: its ops count, spread over the epoch's steps.
"""

import argparse
import collections
import gzip
import json
import os
import re
import tempfile
import time
from pathlib import Path

from mlp_sweep import schema
from mlp_sweep.bench.compute import command_line, machine, write_results
from mlp_sweep.core import runtime

DEFAULT_CONFIGS = ("mlp5-bn_dropout", "mlp5-bn")  # the slowest model, and the same without dropout
TOP = 12  # op kinds listed per config; the rest are summed as "other"


def top_level_ops(trace: list[dict], module: str, through_loops: bool = False) -> list[dict]:
    """The op events of one XLA program that no other op event of it contains (per thread).

    ``through_loops``: the program's outermost ``while`` loops (the epoch's ``scan``) are looked
    into, their direct contents counted in their place.
    """
    ops = [e for e in trace if e.get("ph") == "X" and e.get("args", {}).get("hlo_module", "").startswith(module)]
    top = outermost(ops)
    if through_loops:
        loops = {id(e) for e in top if op_kind(e["name"]) == "while"}
        top = outermost([e for e in ops if id(e) not in loops])
    return top


def outermost(ops: list[dict]) -> list[dict]:
    """The events that no other one contains (per thread)."""
    top, end_of = [], {}
    for e in sorted(ops, key=lambda e: (e["tid"], e["ts"], -e["dur"])):
        if e["ts"] >= end_of.get(e["tid"], float("-inf")):
            top.append(e)
            end_of[e["tid"]] = e["ts"] + e["dur"]
    return top


def op_kind(name: str) -> str:
    return re.sub(r"\.\d+$", "", name)


def per_step(ops: list[dict], steps: int) -> dict[str, float]:
    """Microseconds per step of each op kind, largest first, the kinds past :data:`TOP` as "other"."""
    totals = collections.Counter()
    for e in ops:
        totals[op_kind(e["name"])] += e["dur"]
    ranked = totals.most_common()
    kinds = {k: v / steps for k, v in ranked[:TOP]}
    if len(ranked) > TOP:
        kinds["other"] = sum(v for _, v in ranked[TOP:]) / steps
    return kinds


def read_trace(folder: Path) -> list[dict]:
    (path,) = folder.rglob("perfetto_trace.json.gz")
    with gzip.open(path) as f:
        trace = json.load(f)
    return trace["traceEvents"] if isinstance(trace, dict) else trace


def profile_config(name: str, epochs: int, overrides: list[str]) -> dict[str, object]:
    """One config: a warm-up epoch, then ``epochs`` traced; per-step op times of its training step."""
    import jax

    from mlp_sweep.core import data, step
    from mlp_sweep.core.run import compiled_model

    model_name, reg = name.split("-", 1)
    cfg = schema.compose(f"model={model_name}", f"reg={reg}", "trainer.backend=jax", *overrides)
    s = data.from_config(cfg.dataset)
    model = compiled_model(cfg, s)

    def fit(n):  # as train() fits: one program per epoch (mlp_sweep/core/jax_epoch.py)
        return step.fit(model, s, step.Schedule(epochs=n, batch_size=cfg.trainer.batch_size, seed=cfg.trainer.seed))

    fit(1)  # compiles
    steps = epochs * -(-len(s.x_train) // cfg.trainer.batch_size)
    with tempfile.TemporaryDirectory(prefix="mlp_sweep_profile_") as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            started = time.perf_counter()
            fit(epochs)
            traced_s = time.perf_counter() - started
        ops = top_level_ops(read_trace(Path(tmp)), "jit_train_epoch", through_loops=True)
    kinds = per_step(ops, steps)
    return {
        "name": name,
        "steps": steps,
        "epoch_s": traced_s / epochs,
        "wall_us_per_step": 1e6 * traced_s / steps,
        "op_us_per_step": kinds,
        "op_total_us_per_step": sum(kinds.values()),
    }


def table(rows: list[dict]) -> str:
    """Op kinds as rows, configs as columns: µs per step and share of the step's op time."""
    kinds = list(dict.fromkeys(k for r in rows for k in r["op_us_per_step"] if k != "other")) + ["other"]
    lines = [
        "| op kind | " + " | ".join(f"{r['name']} µs/step (share)" for r in rows) + " |",
        "| --- |" + " ---: |" * len(rows),
    ]
    for kind in kinds:
        cells = []
        for r in rows:
            us = r["op_us_per_step"].get(kind)
            cells.append(f"{us:.0f} ({100 * us / r['op_total_us_per_step']:.0f}%)" if us else "–")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| all ops | " + " | ".join(f"{r['op_total_us_per_step']:.0f}" for r in rows) + " |")
    lines.append(
        "| wall per step, validation included | " + " | ".join(f"{r['wall_us_per_step']:.0f}" for r in rows) + " |"
    )
    lines.append("| epoch wall s (traced) | " + " | ".join(f"{r['epoch_s']:.2f}" for r in rows) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="comma-separated, e.g. mlp5-bn_dropout,mlp5-bn")
    p.add_argument("--epochs", type=int, default=2, help="epochs traced after the warm-up one (default 2)")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. dataset.data_dir=/path/to/mnist")
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args(argv)
    os.environ.update(runtime.process_environment("jax"))  # before anything loads Keras
    runtime.import_tensorflow_quietly()
    overrides = ["trainer.compile_cache=null", *args.overrides]
    rows = [profile_config(name, args.epochs, overrides) for name in args.configs.split(",")]
    result = {"command": command_line("bench.profile", argv), "machine": machine(), "configs": rows}
    return write_results(result, table(rows), args.out)


if __name__ == "__main__":
    main()
