"""Every option composes; bad overrides fail in Hydra's or our own clear words."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from conftest import CONF_DIR, make_cfg
from mlp_sweep.errors import ConfigError
from mlp_sweep.identity import run_name
from mlp_sweep.schema import validate

GROUPS = ["dataset", "model", "reg", "optimizer", "trainer", "tracking", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in (CONF_DIR / group).iterdir() if p.name.endswith(".yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_validates(group, option):
    cfg = make_cfg(f"{group}={option}")
    validate(cfg)
    if group not in ("experiment", "tracking", "trainer"):
        assert cfg[group].name == option


def test_notebook_models_and_defaults():
    cfg = make_cfg()
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.optimizer.name) == (20, 128, "adam")
    assert list(make_cfg("model=mlp2").model.widths) == [324, 108]
    assert [i.args.stddev for i in make_cfg("model=mlp2").model.initializers] == [0.062, 0.125]
    assert list(make_cfg("model=mlp5").model.widths) == [507, 312, 212, 126, 84]
    assert make_cfg("reg=bn_dropout").reg.dropout == 0.5
    assert run_name(make_cfg("model=mlp3", "reg=bn_dropout")) == "mlp3-bn_dropout-s0"


def test_smoke_experiment_shrinks_only_size_and_epochs():
    smoke, full = make_cfg("experiment=smoke"), make_cfg()
    assert smoke.trainer.epochs == 1 and smoke.dataset.train_size < 5000
    assert smoke.model == full.model and smoke.optimizer == full.optimizer


def test_unknown_option_is_rejected_with_the_choices():
    with pytest.raises(ConfigCompositionException, match=r"(?s)Could not find 'model/mlp4'.*mlp2.*mlp3.*mlp5"):
        make_cfg("model=mlp4")


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigCompositionException, match="Could not override 'reg.dropuot'"):
        make_cfg("reg.dropuot=0.3")


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg("trainer.epochs=ten")
    assert isinstance(info.value.__cause__, ValidationError)
    assert "Value 'ten' of type 'str' could not be converted to Integer" in str(info.value.__cause__)


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.widths=[]", "model.widths is empty"),
        ("model.widths=[10,0]", "has a width <= 0"),
        ("reg.dropout=1.0", "reg.dropout=1.0 is outside [0, 1)"),
        ("reg.dropout=-0.1", "is outside [0, 1)"),
        ("trainer.epochs=0", "trainer.epochs=0 must be > 0"),
        ("trainer.batch_size=-1", "trainer.batch_size=-1 must be > 0"),
        ("optimizer.lr=0", "optimizer.lr=0.0 must be > 0"),
        ("optimizer.name=adagrad", "optimizer.name='adagrad' is unknown"),
        ("model.widths=[10,10,10]", "model.initializers has 2 entries for 3 hidden layers"),
    ],
)
def test_out_of_range_values_are_rejected(override, message):
    cfg = make_cfg("model=mlp2", override)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert message in str(info.value)


def test_cli_config_error_is_instant_and_short(tmp_path):
    from conftest import run_cli

    result = run_cli("trainer.epochs=0", cwd=tmp_path)
    assert result.returncode != 0
    assert "error: invalid config:" in result.stderr and "trainer.epochs=0 must be > 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not Path(tmp_path, "mlflow.db").exists()  # nothing tracked for a refused run
