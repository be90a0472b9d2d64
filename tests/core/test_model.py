"""The builder reproduces the notebook's architectures."""

import keras
import pytest

from helpers import make_cfg
from mlp_sweep.core.model import build_mlp, build_optimizer


def notebook_model(name: str, **reg) -> keras.Model:
    m = make_cfg(f"model={name}").model
    inits = [{"name": i.name, "args": dict(i.args)} for i in m.initializers]
    return build_mlp(
        list(m.widths), input_dim=28 * 28, n_classes=10, initializers=inits, activation=m.activation, **reg
    )


@pytest.mark.parametrize("name,n_params", [("mlp2", 290_530), ("mlp3", 322_871), ("mlp5", 661_203)])
def test_notebook_parameter_counts(name, n_params):
    assert notebook_model(name).count_params() == n_params


def test_batch_norm_then_dropout_follow_each_hidden_layer():
    model = notebook_model("mlp2", batch_norm=True, dropout=0.5)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "BatchNormalization", "Dropout"] * 2 + ["Dense"]
    assert model.layers[-1].activation.__name__ == "softmax"
    # BN adds 4 weights per unit (gamma, beta, moving mean and variance).
    assert model.count_params() == 290_530 + 4 * (324 + 108)


def test_per_layer_initializers_are_applied():
    model = notebook_model("mlp2")
    assert [layer.kernel_initializer.stddev for layer in model.layers[:2]] == [0.062, 0.125]


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "adamw"])
def test_optimizers_take_their_config(name):
    o = make_cfg(f"optimizer={name}", "optimizer.lr=0.02").optimizer
    optimizer = build_optimizer(o.name, o.lr, dict(o.args))
    assert float(optimizer.learning_rate) == pytest.approx(0.02)
    if name == "sgd":
        assert optimizer.momentum == 0.9
