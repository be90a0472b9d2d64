"""The benchmark's fourth arm: the same MLPs as a careful engineer writes them in plain JAX.

    python -m mlp_sweep.bench.handwritten --cores 1 --configs mlp2-none,mlp5-bn_dropout --epochs 3
    python -m mlp_sweep.bench.handwritten --beside-project --configs mlp2-none   # and the project's program

No Keras and no tracking: the notebook's models (the same initialisers,
BatchNormalization with Keras' momentum and epsilon, dropout, Adam at Keras'
settings, batch 128) trained an epoch at a time by one jitted program that runs
the epoch's batches in a ``jax.lax.scan`` (the last one filled up from the
epoch's first samples, as the project's JAX path does), and evaluates the
validation set. It shows what the hardware gives when nothing but the
arithmetic is in the way; :mod:`mlp_sweep.bench.compute` times it beside the
project's arm. Compiling is timed apart from the epochs. ``--beside-project``
times the project's own epoch program beside it in one process, an epoch of
each in turn: the loops alone, where the benchmark's arms run in processes
and at moments of their own.

``--cores N`` pins the process to its first N cores before JAX starts, so that
XLA's thread pools are sized for them (its thread flags alone do not cap them).
Used by nothing but the benchmark.
"""

import argparse
import json
import math
import os
import sys
import time

from mlp_sweep.core import runtime

BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras' BatchNormalization defaults
ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}  # Keras' Adam defaults
TRUNCATED_STDDEV = 0.87962566103423978  # the stddev of a unit normal truncated at ±2 (Keras' he_normal)


def initial_kernel(key, spec, fan_in: int, fan_out: int):
    """A Dense kernel drawn as Keras' initializer ``spec`` draws it (random_normal, he_normal, glorot_uniform)."""
    import jax

    name, args = (spec, {}) if isinstance(spec, str) else (spec["name"], dict(spec.get("args") or {}))
    shape = (fan_in, fan_out)
    if name == "random_normal":
        return args.get("mean", 0.0) + args.get("stddev", 0.05) * jax.random.normal(key, shape)
    if name == "he_normal":
        return math.sqrt(2 / fan_in) / TRUNCATED_STDDEV * jax.random.truncated_normal(key, -2, 2, shape)
    if name == "glorot_uniform":
        limit = math.sqrt(6 / (fan_in + fan_out))
        return jax.random.uniform(key, shape, minval=-limit, maxval=limit)
    raise ValueError(f"no hand-written initializer {name!r}")


def initial_state(seed: int, widths: list[int], initializers: list, batch_norm: bool, inputs: int, classes: int):
    """Parameters (kernels, biases, BN's scale and offset), BN's moving moments, Adam's moments and step, a key."""
    import jax
    import jax.numpy as jnp

    specs = list(initializers) * len(widths) if len(initializers) == 1 else list(initializers)
    sizes = [inputs, *widths, classes]
    keys = jax.random.split(jax.random.key(seed), len(sizes))
    params, moving = [], []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        hidden = i < len(widths)
        layer = {"w": initial_kernel(keys[i], specs[i] if hidden else "glorot_uniform", a, b), "b": jnp.zeros(b)}
        if hidden and batch_norm:
            layer |= {"gamma": jnp.ones(b), "beta": jnp.zeros(b)}
            moving.append({"mean": jnp.zeros(b), "var": jnp.ones(b)})
        params.append(layer)
    zeros = jax.tree.map(jnp.zeros_like, params)
    return {"params": params, "moving": moving, "m": zeros, "v": zeros, "t": jnp.zeros((), jnp.int32), "key": keys[-1]}


def forward(params, moving, x, key, training: bool, dropout: float):
    """Logits, and BN's moving moments updated from this batch's (training only)."""
    import jax
    import jax.numpy as jnp

    updated = []
    for i, layer in enumerate(params[:-1]):
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
        if moving:
            if training:
                mean, var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
                updated.append(
                    jax.tree.map(
                        lambda old, new: BN_MOMENTUM * old + (1 - BN_MOMENTUM) * new,
                        moving[i],
                        {"mean": mean, "var": var},
                    )
                )
            else:
                mean, var = moving[i]["mean"], moving[i]["var"]
            x = (x - mean) * jax.lax.rsqrt(var + BN_EPSILON) * layer["gamma"] + layer["beta"]
        if training and dropout > 0:
            keep = jax.random.bernoulli(jax.random.fold_in(key, i), 1 - dropout, x.shape)
            x = jnp.where(keep, x / (1 - dropout), 0)
    return x @ params[-1]["w"] + params[-1]["b"], updated or moving


def cross_entropy(logits, y):
    import jax
    import jax.numpy as jnp

    return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]


def epoch_program(n_train: int, batch_size: int, dropout: float, lr: float):
    """One jitted program per epoch: ``(state, order, x, y, x_val, y_val) -> (state, loss, val_loss, val_accuracy)``."""
    import jax
    import jax.numpy as jnp

    steps = -(-n_train // batch_size)

    def step(state, x, y):
        key = jax.random.fold_in(state["key"], state["t"])

        def loss_of(params):
            logits, moving = forward(params, state["moving"], x, key, True, dropout)
            return jnp.mean(cross_entropy(logits, y)), moving

        (loss, moving), grads = jax.value_and_grad(loss_of, has_aux=True)(state["params"])
        t = state["t"] + 1
        m = jax.tree.map(lambda m, g: m + (g - m) * (1 - ADAM["beta_1"]), state["m"], grads)
        v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - ADAM["beta_2"]), state["v"], grads)
        tf = t.astype(jnp.float32)
        alpha = lr * jnp.sqrt(1 - ADAM["beta_2"] ** tf) / (1 - ADAM["beta_1"] ** tf)
        params = jax.tree.map(lambda p, m, v: p - alpha * m / (jnp.sqrt(v) + ADAM["epsilon"]), state["params"], m, v)
        return {**state, "params": params, "moving": moving, "m": m, "v": v, "t": t}, loss

    def epoch(state, order, x, y, x_val, y_val):
        batches = jnp.resize(order, steps * batch_size).reshape(steps, batch_size)  # the last filled up from the start
        state, losses = jax.lax.scan(lambda s, rows: step(s, x[rows], y[rows]), state, batches)
        logits, _ = forward(state["params"], state["moving"], x_val, None, False, dropout)
        val_accuracy = jnp.mean(jnp.argmax(logits, axis=1) == y_val)
        return state, jnp.mean(losses), jnp.mean(cross_entropy(logits, y_val)), val_accuracy

    return jax.jit(epoch)


def time_config(model: str, reg: str, epochs: int, overrides: list[str], seed: int = 0) -> dict[str, object]:
    """Compile the config's epoch program (timed), then time ``epochs`` epochs of it on the config's data."""
    import jax
    import numpy as np

    from mlp_sweep import schema
    from mlp_sweep.core import data

    cfg = schema.compose(f"model={model}", f"reg={reg}", *overrides)
    s = data.from_config(cfg.dataset)
    state = initial_state(
        seed, list(cfg.model.widths), list(cfg.model.initializers), cfg.reg.batch_norm, s.input_dim, s.n_classes
    )
    placed = [jax.device_put(a) for a in (s.x_train, s.y_train, s.x_val, s.y_val)]
    program = epoch_program(len(s.x_train), cfg.trainer.batch_size, cfg.reg.dropout, cfg.optimizer.lr)
    shuffling = np.random.default_rng(seed)
    order = shuffling.permutation(len(s.x_train)).astype(np.int32)
    started = time.perf_counter()
    compiled = program.lower(state, order, *placed).compile()
    compile_s = time.perf_counter() - started
    times, val_accuracy = [], []
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for _ in range(epochs):
        order = shuffling.permutation(len(s.x_train)).astype(np.int32)
        started = time.perf_counter()
        state, loss, val_loss, accuracy = jax.block_until_ready(compiled(state, order, *placed))
        times.append(time.perf_counter() - started)
        val_accuracy.append(float(accuracy))
    cpu_per_wall = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)  # cores kept busy
    return {
        "name": f"{model}-{reg}",
        "compile_s": compile_s,
        "epochs": times,
        "cpu_per_wall": cpu_per_wall,
        "val_accuracy": val_accuracy,
    }


def beside_project(model: str, reg: str, epochs: int, overrides: list[str], seed: int = 0) -> dict[str, object]:
    """The project's epoch program (:mod:`mlp_sweep.core.jax_epoch` on the Keras model ``train`` builds) and the
    hand-written one, in this one process, compiled apart, then an epoch of each in turn on the same shuffled
    order: the two loops compared with nothing else between them (no tracking, no other process, no other time).
    """
    import jax
    import numpy as np

    from mlp_sweep import schema
    from mlp_sweep.core import data, jax_epoch
    from mlp_sweep.core.run import compiled_model

    cfg = schema.compose(f"model={model}", f"reg={reg}", "trainer.backend=jax", *overrides)
    s = data.from_config(cfg.dataset)
    placed = [jax.device_put(a) for a in (s.x_train, s.y_train, s.x_val, s.y_val)]
    keras_model = compiled_model(cfg, s)
    programs = {
        "project": jax_epoch.compile_epoch(keras_model, len(s.x_train), cfg.trainer.batch_size),
        "handwritten": epoch_program(len(s.x_train), cfg.trainer.batch_size, cfg.reg.dropout, cfg.optimizer.lr),
    }
    states = {
        "project": jax_epoch.model_state(keras_model),
        "handwritten": initial_state(
            seed, list(cfg.model.widths), list(cfg.model.initializers), cfg.reg.batch_norm, s.input_dim, s.n_classes
        ),
    }
    shuffling = np.random.default_rng(seed)
    order = shuffling.permutation(len(s.x_train)).astype(np.int32)
    compiled, timed = {}, {}
    for arm, program in programs.items():
        started = time.perf_counter()
        compiled[arm] = program.lower(states[arm], order, *placed).compile()
        timed[arm] = {"compile_s": time.perf_counter() - started, "epochs": []}
    for epoch in range(epochs):
        order = shuffling.permutation(len(s.x_train)).astype(np.int32)
        for arm in sorted(compiled, reverse=epoch % 2 == 1):  # neither always first
            started = time.perf_counter()
            states[arm] = jax.block_until_ready(compiled[arm](states[arm], order, *placed))[0]
            timed[arm]["epochs"].append(time.perf_counter() - started)
    for t in timed.values():
        t["median_s"] = float(np.median(t["epochs"]))
    ratio = timed["project"]["median_s"] / timed["handwritten"]["median_s"]
    return {"name": f"{model}-{reg}", **timed, "project_over_handwritten": ratio}


def pin(cores: int | None) -> list[int]:
    """Keep this process on its first ``cores`` cores (all where None); the cores it runs on."""
    allowed = sorted(os.sched_getaffinity(0))
    if cores:
        os.sched_setaffinity(0, allowed[:cores])
    return sorted(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m mlp_sweep.bench.handwritten", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="mlp2-none", help="comma-separated, e.g. mlp2-none,mlp5-bn_dropout")
    p.add_argument("--epochs", type=int, default=3, help="epochs timed after compiling (default 3)")
    p.add_argument("--cores", type=int, help="pin to this many cores before JAX starts (default: all)")
    p.add_argument(
        "--beside-project",
        action="store_true",
        help="time the project's epoch program beside this one, in this process, an epoch of each in turn",
    )
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. dataset.data_dir=/path/to/mnist")
    args = p.parse_args(argv)
    cores = pin(args.cores)  # before JAX sizes its thread pools
    if args.beside_project:
        os.environ.update(runtime.process_environment("jax"))  # before Keras loads
    rows = []
    for name in args.configs.split(","):
        if args.beside_project:
            rows.append({**beside_project(*name.split("-", 1), args.epochs, args.overrides), "cores": cores})
            print(beside_line(rows[-1]), file=sys.stderr, flush=True)
        else:
            rows.append({**time_config(*name.split("-", 1), args.epochs, args.overrides), "cores": cores})
    json.dump(rows, sys.stdout)
    return rows


def beside_line(row: dict) -> str:
    """``mlp2-none: project 0.55 s, hand-written 0.56 s an epoch (median): 0.98×; compiling 2.1 s / 1.4 s``."""
    project, handwritten = row["project"]["median_s"], row["handwritten"]["median_s"]
    return (
        f"{row['name']}: project {project:.2f} s, hand-written {handwritten:.2f} s an epoch (median): "
        f"{row['project_over_handwritten']:.2f}×; compiling {row['project']['compile_s']:.1f} s / "
        f"{row['handwritten']['compile_s']:.1f} s"
    )


if __name__ == "__main__":
    main()
