"""The benchmark: its FLOP count against one written out by hand, and its smoke mode
end to end (no timing assertions: the machine running the tests is shared)."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT
from mlp_sweep.bench import ARMS, QUICK_CONFIGS, epoch_flops, layer_weights


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
    result = subprocess.run(
        [sys.executable, "-m", "mlp_sweep.bench", "--quick", "--data-dir", str(tiny_mnist), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| config |" in result.stdout

    bench = json.loads(out.read_text())
    assert bench["matmul"]["gflops"] > 0 and bench["help_s"] > 0
    assert bench["machine"]["cores"] >= 1 and bench["machine"]["keras_backend"] == "tensorflow"
    assert [c["name"] for c in bench["configs"]] == [f"{m}-{r}" for m, r in QUICK_CONFIGS]
    for c in bench["configs"]:
        for arm in ARMS:
            assert len(c[arm]["epochs"]) == 1 and len(c[arm]["epochs"][0]) == 2  # one run of two epochs
            assert c[arm]["median_s"] > 0 and c[arm]["median_x_limit"] > 0
        # the notebook trains on train + validation (2,000 + 500 of the smoke subset) and evaluates the test set
        assert c["flops_per_epoch"]["notebook"] == epoch_flops(
            [324, 108] if c["name"].startswith("mlp2") else [507, 312, 212, 126, 84], 2500, 500)
    assert bench["grid"]["limit_s"] > 0 and bench["grid"]["notebook_s"] > 0
