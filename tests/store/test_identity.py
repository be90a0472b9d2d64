"""What identifies a run: the config hash and what it leaves out, the code
fingerprint, and run names that tell every job of a sweep apart."""

from pathlib import Path

import pytest

from helpers import make_cfg
from mlp_sweep.store import identity


def hash_of(*overrides: str) -> str:
    return identity.config_hash(make_cfg(*overrides))


@pytest.mark.parametrize(
    "override",
    [
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
    ],
)
def test_what_does_not_change_the_computation_is_left_out_of_the_hash(override):
    assert hash_of(override) == hash_of()


@pytest.mark.parametrize(
    "override",
    [
        "model.widths=[356,105,50]",
        "reg.dropout=0.1",
        "optimizer.lr=0.002",
        "trainer.epochs=19",
        "trainer.batch_size=64",
        "dataset.val_size=9999",
        "dataset.split_seed=1",
        "model.activation=tanh",
    ],
)
def test_what_changes_the_computation_changes_the_hash(override):
    assert hash_of(override) != hash_of()


VERSIONS = {"keras_backend": "tensorflow", "tensorflow_version": "2.21.0", "keras_version": "3.15.1"}


def copy_computation(folder: Path, edit: str = "", to: str = "core/model.py") -> list[Path]:
    """The computation's modules copied into ``folder``, with ``edit`` appended to one of them."""
    copies = []
    for name in identity.COMPUTATION_MODULES:
        copies.append(folder / name)
        copies[-1].parent.mkdir(parents=True, exist_ok=True)
        copies[-1].write_text((identity.PACKAGE_DIR / name).read_text() + (edit if name == to else ""))
    return copies


@pytest.mark.parametrize("edit", ["\n# a comment\n", "\n\n\n", '\ndef f():\n    """A docstring."""\n    return 1\n'])
def test_comments_docstrings_and_blank_lines_keep_the_fingerprint(tmp_path, edit):
    plain = copy_computation(tmp_path / "plain", "\ndef f():\n    return 1\n" if "def f" in edit else "")
    assert identity.code_fingerprint(
        VERSIONS, copy_computation(tmp_path / "edited", edit)
    ) == identity.code_fingerprint(VERSIONS, plain)


def test_an_operator_or_a_library_version_changes_the_fingerprint(tmp_path):
    base = copy_computation(tmp_path / "a", "\nSCALE = 1 + 2\n")
    other_operator = copy_computation(tmp_path / "b", "\nSCALE = 1 - 2\n")
    assert identity.code_fingerprint(VERSIONS, base) != identity.code_fingerprint(VERSIONS, other_operator)
    newer_tensorflow = {**VERSIONS, "tensorflow_version": "2.22.0"}
    assert identity.code_fingerprint(VERSIONS, base) != identity.code_fingerprint(newer_tensorflow, base)
    assert identity.code_fingerprint(VERSIONS) != identity.code_fingerprint({**VERSIONS, "keras_version": "3.16.0"})


def test_normalised_code_drops_docstrings_but_keeps_strings_that_are_values():
    with_doc = 'def f():\n    """Why."""\n    return "a"\n'
    without = "def f():  # no docstring\n    return 'a'\n"
    assert identity.normalised_code(with_doc) == identity.normalised_code(without)
    assert identity.normalised_code(without) != identity.normalised_code(without.replace("'a'", "'b'"))


def test_grid_point_key_changes_with_each_of_its_four_parts():
    base = identity.GridPoint("h", 0, "data", "code")
    others = [
        identity.GridPoint("h2", 0, "data", "code"),
        identity.GridPoint("h", 1, "data", "code"),
        identity.GridPoint("h", 0, "data2", "code"),
        identity.GridPoint("h", 0, "data", "code2"),
    ]
    assert len({base.key, *(o.key for o in others)}) == 5
    assert base.change_since(others[2].tags()) == "the data"
    assert (
        base.change_since(identity.GridPoint("h", 0, "d2", "c2").tags())
        == "the data and the computation (its code or library versions)"
    )


def test_run_name_shows_every_key_the_sweep_varies():
    varying = identity.varying_keys(["model=mlp2", "optimizer.lr=0.001,0.002", "trainer.seed=0,1", "reg=none,bn"])
    assert varying == ["optimizer.lr", "trainer.seed", "reg"]
    names = {
        identity.run_name(make_cfg("model=mlp2", f"optimizer.lr={lr}", f"trainer.seed={s}", f"reg={r}"), varying)
        for lr in ("0.001", "0.002")
        for s in (0, 1)
        for r in ("none", "bn")
    }
    assert len(names) == 8
    assert "mlp2-none-lr=0.002-s0" in names and "mlp2-bn-lr=0.001-s1" in names


def test_run_name_shows_a_group_by_its_option_and_clashing_keys_in_full():
    cfg = make_cfg("optimizer=sgd", "optimizer.args.momentum=0.5")
    assert identity.run_name(cfg, ["optimizer", "optimizer.args.momentum"]) == "mlp3-none-optimizer=sgd-momentum=0.5-s0"
    assert (
        identity.run_name(cfg, ["optimizer.name", "dataset.name"])
        == "mlp3-none-optimizer.name=sgd-dataset.name=mnist-s0"
    )
    assert identity.run_name(make_cfg("model=mlp5", "reg=bn_dropout")) == "mlp5-bn_dropout-s0"


def test_run_name_shows_a_drawn_number_by_four_significant_digits():
    cfg = make_cfg("optimizer.lr=0.0023358825194833557", "reg.dropout=0.47233445852479194")
    assert identity.run_name(cfg, ["optimizer.lr", "reg.dropout"]) == "mlp3-none-lr=0.002336-dropout=0.4723-s0"
