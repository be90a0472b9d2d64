"""The benchmark: its FLOP count against one written out by hand, and its smoke mode
end to end (no timing assertions: the machine running the tests is shared)."""

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import ROOT, requires
from mlp_sweep import names
from mlp_sweep.bench.compute import ARMS, QUICK_CONFIGS, epoch_flops, layer_weights


def run_module(module: str, *args: str, cwd, timeout: int) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` as a user runs a benchmark, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_epoch_flops_of_a_tiny_mlp_counted_by_hand():
    # 2 inputs -> 3 hidden -> 2 classes: layer 1 has 2*3 weights + 3 biases = 9, layer 2 3*2 + 2 = 8.
    assert layer_weights([3], inputs=2, classes=2) == [9, 8]
    forward = 2 * 9 + 2 * 8  # a multiply and an add per weight
    weight_grads = 2 * 9 + 2 * 8
    input_grads = 2 * 8  # only layer 2's input (layer 1's output) needs a gradient, not the pixels
    train_sample, eval_sample = forward + weight_grads + input_grads, forward  # 84 and 34
    assert epoch_flops([3], n_train=5, n_eval=4, inputs=2, classes=2) == 5 * train_sample + 4 * eval_sample == 556


def test_the_notebook_models_weights():
    assert sum(layer_weights([324, 108])) == 290_530 and sum(layer_weights([507, 312, 212, 126, 84])) == 661_203


@pytest.mark.slow
def test_quick_bench_writes_sane_json(tiny_mnist, tmp_path):
    out = tmp_path / "bench.json"
    started = time.monotonic()
    result = run_module(
        "mlp_sweep.bench.compute", "--quick", "--data-dir", str(tiny_mnist), "--out", str(out), cwd=ROOT, timeout=600
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| config |" in result.stdout

    # No timing is judged (the machine is shared); each number is checked against what it is made of,
    # and every time against the wall time of the command that measured it.
    bench = json.loads(out.read_text())
    matmul = {k: v for k, v in bench["matmul"].items() if k != "gflops"}
    assert set(matmul) == {"numpy", "tensorflow"} and bench["matmul"]["gflops"] == max(matmul.values())
    assert 0 < bench["help_s"] < took
    assert bench["machine"]["cores"] == os.cpu_count() and bench["machine"]["keras_backend"] == "tensorflow"
    assert [c["name"] for c in bench["configs"]] == [f"{m}-{r}" for m, r in QUICK_CONFIGS]
    grid_notebook = 0.0
    for c in bench["configs"]:
        for arm in ARMS:
            ((first, second),) = c[arm]["epochs"]  # one run of two epochs
            assert 0 < first < took and 0 < second < took
            limit = c["flops_per_epoch"][arm] / (bench["matmul"]["gflops"] * 1e9)
            assert c[arm]["limit_s"] == pytest.approx(limit) and c[arm]["median_s"] == second  # epochs 2..N
            assert c[arm]["median_x_limit"] == pytest.approx(second / limit)
        # the notebook trains on train + validation (2,000 + 500 of the smoke subset) and evaluates the test set
        assert c["flops_per_epoch"]["notebook"] == epoch_flops(
            [324, 108] if c["name"].startswith("mlp2") else [507, 312, 212, 126, 84], 2500, 500
        )
        grid_notebook += c["notebook"]["epochs"][0][0] + 19 * c["notebook"]["epochs"][0][1]  # 20 epochs a config
    assert bench["grid"]["limit_s"] == pytest.approx(20 * sum(c["project"]["limit_s"] for c in bench["configs"]))
    assert bench["grid"]["notebook_s"] == pytest.approx(grid_notebook)


@pytest.mark.slow
@requires("jax", extra="jax")
def test_quick_bench_on_jax_times_the_notebook_as_written_on_tensorflow(tiny_mnist, tmp_path):
    out = tmp_path / "bench.json"
    args = ["--quick", "--backend", "jax", "--configs", "mlp2-none", "--data-dir", str(tiny_mnist), "--out", str(out)]
    result = run_module("mlp_sweep.bench.compute", *args, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    bench = json.loads(out.read_text())
    assert bench["machine"]["keras_backend"] == "jax"
    (row,) = bench["configs"]
    as_written = row["notebook_tensorflow"]
    assert (
        as_written["backend"] == "tensorflow" and len(as_written["epochs"]) == 1 and len(as_written["epochs"][0]) == 2
    )
    assert as_written["limit_s"] == row["notebook"]["limit_s"]  # the same recipe, the same arithmetic
    first, second = as_written["epochs"][0]
    assert bench["grid"]["notebook_tensorflow_s"] == pytest.approx(first + 19 * second)
    assert f"(as written, on TensorFlow: {first + 19 * second:.0f} s)" in result.stdout


def test_profile_counts_each_top_level_op_once_per_step():
    from mlp_sweep.bench.profile import per_step, top_level_ops

    def op(name, ts, dur, tid=1, module="jit_train_step"):
        return {
            "ph": "X",
            "name": name,
            "ts": ts,
            "dur": dur,
            "tid": tid,
            "args": {"hlo_module": module, "hlo_op": name},
        }

    trace = [
        op("while.3", 0, 10),
        op("copy.1", 1, 2),
        op("copy.2", 4, 3),  # a loop and two ops inside it
        op("dot.7", 10, 6),
        op("dot.8", 0, 5, tid=2),  # after the loop; another thread
        op("copy.9", 20, 4, module="jit_test_step"),  # the evaluation's program: not the training step
        {"ph": "X", "name": "ThunkExecutor::Execute", "ts": 0, "dur": 30, "tid": 1, "args": {}},  # not an op
    ]
    ops = top_level_ops(trace, "jit_train_step")
    assert sorted(e["name"] for e in ops) == ["dot.7", "dot.8", "while.3"]
    # Two steps: while 10 / 2 = 5 µs, dot (6 + 5) / 2 = 5.5 µs; the copies count inside the while.
    assert per_step(ops, steps=2) == {"dot": 5.5, "while": 5.0}


@pytest.mark.slow
@requires("jax", extra="jax")
def test_profile_of_a_real_step_on_jax(tiny_mnist, tmp_path):
    out = tmp_path / "profile.json"
    started = time.monotonic()
    result = run_module(
        "mlp_sweep.bench.profile",
        "--configs",
        "mlp2-bn_dropout",
        "--epochs",
        "1",
        "--out",
        str(out),
        "experiment=smoke",
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())["configs"]
    assert row["steps"] == 16  # the smoke subset's 2,000 training images in batches of 128
    assert row["op_total_us_per_step"] == pytest.approx(sum(row["op_us_per_step"].values()))
    assert 0 < row["epoch_s"] < time.monotonic() - started
    assert "| mlp2-bn_dropout µs/step (share) |" in result.stdout


def test_grid_breakdown_of_runs_with_known_times(tmp_path):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from mlp_sweep.bench.compute import grid_breakdown

    store = f"sqlite:///{tmp_path / 'sweep.db'}"
    client = MlflowClient(store)
    experiment_id = client.create_experiment("bench_sweep")
    client.create_run(experiment_id, start_time=99_000, tags={names.TAG_SWEEP: "parent"})  # not a job
    # (start s, end s, epoch times, train_time_s): A and B at once, then C in B's worker.
    jobs = [(100, 130, [5, 2, 2, 3], 12), (101, 121, [4, 1, 1], 6), (122, 140, [3, 2, 2], 7)]
    for start, end, epochs, train in jobs:
        run_id = client.create_run(experiment_id, start_time=start * 1000).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("epoch_time_s", t, 0, i) for i, t in enumerate(epochs, 1)]
            + [Metric("train_time_s", train, 0, 0)],
        )
        client.set_terminated(run_id, end_time=end * 1000)
    b = grid_breakdown(store, started=95, ended=143)
    assert (b["workers"], b["start_up_s"], b["end_s"]) == (2, 5, 3)
    # compiling: first epoch minus the median of the rest, 3 + 3 + 1; outside fit: run time less
    # train time, 18 + 14 + 11; idle: 2 workers x (140 - 100) s less the runs' 30 + 20 + 18 s.
    assert b["job_s"] == {"compiling": 7, "epochs": 25 - 7, "outside_fit": 43, "idle": 12}


@pytest.mark.slow
def test_quick_budget_runs_the_three_arms_as_commands_and_reads_them_back(tiny_mnist, tmp_path):
    out, report = tmp_path / "budget.json", tmp_path / "front"
    result = run_module(
        "mlp_sweep.bench.budget",
        "--quick",
        "--out",
        str(out),
        "--report",
        str(report),
        f"dataset.data_dir={tiny_mnist}",
        "dataset.verify_checksum=false",
        "tracking.log_model=false",
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    arms = json.loads(out.read_text())["arms"]
    assert list(arms) == ["grid", "search", "hyperband"]
    # quick: the grid is mlp2 and mlp3 x 2 seeds, a search 2 trials x 2 replicates; 3 epochs a run
    assert [a["runs"] for a in arms.values()] == [4, 4, 4]
    assert arms["grid"]["epochs_trained"] == arms["search"]["epochs_trained"] == 12
    # A pruned run stops after epoch 1 or 2 of 3 (grace 1): its one or two epochs are missing from the 12;
    # with none pruned, all 12 were trained.
    pruned = arms["hyperband"]["pruned_runs"]
    assert 0 <= pruned <= 4 and 12 - 2 * pruned <= arms["hyperband"]["epochs_trained"] <= 12 - pruned
    assert "search.pruner=hyperband" in arms["hyperband"]["command"]
    assert {"comparison.csv", "front_n_params.png"} <= {p.name for p in report.iterdir()}


@requires("jax", extra="jax")
def test_handwritten_initialisers_draw_as_keras_documents_them():
    import jax
    import numpy as np

    from mlp_sweep.bench.handwritten import initial_kernel

    key = jax.random.key(0)
    # he_normal: a normal truncated at two standard deviations, of standard deviation sqrt(2 / fan_in)
    he = np.asarray(initial_kernel(key, {"name": "he_normal"}, 784, 500))
    assert he.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02) and np.abs(he).max() <= 2 * np.sqrt(2 / 784) / 0.8796
    normal = np.asarray(initial_kernel(key, {"name": "random_normal", "args": {"stddev": 0.062}}, 784, 324))
    assert normal.std() == pytest.approx(0.062, rel=0.02) and normal.mean() == pytest.approx(0, abs=0.001)
    glorot = np.asarray(initial_kernel(key, "glorot_uniform", 84, 10))
    assert np.abs(glorot).max() <= np.sqrt(6 / 94) and glorot.std() == pytest.approx(
        np.sqrt(6 / 94) / np.sqrt(3), rel=0.1
    )


@requires("jax", extra="jax")
def test_handwritten_epoch_learns_separable_data_and_sees_every_sample():
    import jax
    import numpy as np

    from mlp_sweep.bench.handwritten import epoch_program, initial_state

    rng = np.random.default_rng(0)
    y = np.arange(300) % 3  # 300 samples, batches of 128: the last batch filled up from the start
    x = (np.eye(3)[y] + rng.normal(0, 0.1, (300, 3))).astype(np.float32)
    state = initial_state(0, [16], [{"name": "he_normal"}], True, inputs=3, classes=3)
    program = epoch_program(300, 128, dropout=0.5, lr=0.01)
    losses = []
    for _ in range(20):
        state, loss, val_loss, val_accuracy = program(state, rng.permutation(300).astype(np.int32), x, y, x, y)
        losses.append(float(loss))
    assert int(state["t"]) == 20 * 3  # three steps an epoch: no sample left out
    assert losses[-1] < losses[0] / 2 and float(val_accuracy) == 1.0
    assert jax.tree.structure(state["moving"]) == jax.tree.structure([{"mean": 0, "var": 0}])


@pytest.mark.slow
@requires("jax", extra="jax")
def test_the_project_and_hand_written_programs_take_turns_in_one_process(tiny_mnist):
    data = ["dataset=smoke", f"dataset.data_dir={tiny_mnist}", "dataset.verify_checksum=false"]
    args = ["--beside-project", "--configs", "mlp2-bn_dropout", "--epochs", "3", "--cores", "1", *data]
    started = time.monotonic()
    result = run_module("mlp_sweep.bench.handwritten", *args, cwd=ROOT, timeout=600)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(result.stdout)
    assert row["name"] == "mlp2-bn_dropout" and row["cores"] == [min(row["cores"])]
    for arm in ("project", "handwritten"):
        times = [row[arm]["compile_s"], *row[arm]["epochs"]]
        assert len(row[arm]["epochs"]) == 3 and all(0 < t < took for t in times)  # within the command's own time
    project, handwritten = (sorted(row[arm]["epochs"])[1] for arm in ("project", "handwritten"))  # the medians
    assert row["project_over_handwritten"] == pytest.approx(project / handwritten)
    assert f"mlp2-bn_dropout: project {project:.2f} s, hand-written {handwritten:.2f} s" in result.stderr


def test_profile_looks_into_the_epochs_scan_but_not_into_a_loop_inside_the_step():
    from mlp_sweep.bench.profile import per_step, top_level_ops

    def op(name, ts, dur):
        return {"ph": "X", "name": name, "ts": ts, "dur": dur, "tid": 1, "args": {"hlo_module": "jit_train_epoch"}}

    trace = [
        op("while.1", 0, 100),  # the scan over two steps
        op("dot.2", 0, 20),
        op("while.3", 20, 20),  # dropout's random bits, inside the step
        op("add.4", 21, 5),
        op("dot.2", 50, 20),
        op("while.3", 70, 20),
        op("dot.9", 100, 10),  # the validation pass, after the scan
    ]
    ops = top_level_ops(trace, "jit_train_epoch", through_loops=True)
    assert per_step(ops, steps=2) == {"dot": 25.0, "while": 20.0}
    assert [e["name"] for e in top_level_ops(trace, "jit_train_epoch")] == ["while.1", "dot.9"]
