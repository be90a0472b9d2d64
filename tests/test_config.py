"""Every option composes; bad overrides fail in Hydra's or our own clear words."""

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from helpers import CONF_DIR, make_cfg
from mlp_sweep.store.identity import run_name
from mlp_sweep.validation import validate

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
