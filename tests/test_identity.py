"""What identifies a run: the config hash and what it leaves out, the code
fingerprint, and run names that tell every job of a sweep apart."""

import shutil

import pytest

from helpers import make_cfg
from mlp_sweep import identity


def hash_of(*overrides: str) -> str:
    return identity.config_hash(make_cfg(*overrides))


@pytest.mark.parametrize("override", [
    "trainer.seed=7",  # the seed is the fourth part of a grid point, not the config
    "trainer.threads=1",
    "trainer.steps_per_execution=1",
    "trainer.compile_cache=/elsewhere",  # a cache hit is the same program
    "tracking.uri=sqlite:///elsewhere.db",
    "tracking.experiment=other",
    "tracking.rerun=true",
    "tracking.log_model=false",
    "dataset.data_dir=/some/other/copy",  # the data is covered by its checksum instead
    "dataset.verify_checksum=false",
])
def test_what_does_not_change_the_computation_is_left_out_of_the_hash(override):
    assert hash_of(override) == hash_of()


@pytest.mark.parametrize("override", [
    "model.widths=[356,105,50]", "reg.dropout=0.1", "optimizer.lr=0.002", "trainer.epochs=19",
    "trainer.batch_size=64", "dataset.val_size=9999", "dataset.split_seed=1", "model.activation=tanh",
])
def test_what_changes_the_computation_changes_the_hash(override):
    assert hash_of(override) != hash_of()


def test_code_fingerprint_follows_the_source_of_the_training_modules(tmp_path):
    copies = []
    for name in identity.CODE_MODULES:
        copies.append(tmp_path / name)
        shutil.copy(identity.PACKAGE_DIR / name, copies[-1])
    assert identity.code_fingerprint(copies) == identity.code_fingerprint()
    model = tmp_path / "model.py"
    model.write_text(model.read_text() + "\n# a change\n")
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in copies:
        shutil.copy(f, changed / f.name)
    assert identity.code_fingerprint([changed / f.name for f in copies]) != identity.code_fingerprint()


def test_grid_point_key_changes_with_each_of_its_four_parts():
    base = identity.GridPoint("h", 0, "data", "code")
    others = [identity.GridPoint("h2", 0, "data", "code"), identity.GridPoint("h", 1, "data", "code"),
              identity.GridPoint("h", 0, "data2", "code"), identity.GridPoint("h", 0, "data", "code2")]
    assert len({base.key, *(o.key for o in others)}) == 5
    assert base.change_since(others[2].tags()) == "the data"
    assert base.change_since(identity.GridPoint("h", 0, "d2", "c2").tags()) == "the data and the code"


def test_run_name_shows_every_key_the_sweep_varies():
    varying = identity.varying_keys(["model=mlp2", "optimizer.lr=0.001,0.002", "trainer.seed=0,1", "reg=none,bn"])
    assert varying == ["optimizer.lr", "trainer.seed", "reg"]
    names = {identity.run_name(make_cfg("model=mlp2", f"optimizer.lr={lr}", f"trainer.seed={s}", f"reg={r}"), varying)
             for lr in ("0.001", "0.002") for s in (0, 1) for r in ("none", "bn")}
    assert len(names) == 8
    assert "mlp2-none-lr=0.002-s0" in names and "mlp2-bn-lr=0.001-s1" in names


def test_run_name_shows_a_group_by_its_option_and_clashing_keys_in_full():
    cfg = make_cfg("optimizer=sgd", "optimizer.args.momentum=0.5")
    assert identity.run_name(cfg, ["optimizer", "optimizer.args.momentum"]) == "mlp3-none-optimizer=sgd-momentum=0.5-s0"
    assert identity.run_name(cfg, ["optimizer.name", "dataset.name"]) == \
        "mlp3-none-optimizer.name=sgd-dataset.name=mnist-s0"
    assert identity.run_name(make_cfg("model=mlp5", "reg=bn_dropout")) == "mlp5-bn_dropout-s0"


def test_run_name_shows_a_drawn_number_by_four_significant_digits():
    cfg = make_cfg("optimizer.lr=0.0023358825194833557", "reg.dropout=0.47233445852479194")
    assert identity.run_name(cfg, ["optimizer.lr", "reg.dropout"]) == "mlp3-none-lr=0.002336-dropout=0.4723-s0"
