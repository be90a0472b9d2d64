"""What a run *is*: its params, its config hash, the code that computed it, its name.

A grid point is four things: the config hash (everything a run computes
from, except its seed), the seed, the SHA-256 of the data actually read and
a fingerprint of the code that builds, trains and evaluates. Resume, claims
and the report all compare runs by this one identity, so a run is reused or
pooled only when it truly is the same run. Nothing here imports TensorFlow.
"""

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mlp_sweep import tracking

# Keys that do not change what a run computes: left out of the config hash.
# The data is covered by its checksum, so where it lies (data_dir) and whether it
# was compared with MNIST's published sums (verify_checksum) do not count, nor how a
# search proposed the config (search: its trial, study, replicates).
HASH_EXCLUDED = ("trainer.seed", "trainer.threads", "trainer.steps_per_execution", "trainer.compile_cache", "tracking",
                 "dataset.data_dir", "dataset.verify_checksum", "search")

# The package modules that decide what a run computes: reading and splitting the
# data, building the model, training and evaluating it. Not the git commit, which
# changes with every README edit.
CODE_MODULES = ("data.py", "model.py", "train.py")
PACKAGE_DIR = Path(__file__).resolve().parent

# Keys a run name always shows (as model-reg-s<seed>), whatever the sweep varies.
NAMED_ALWAYS = ("model", "model.name", "reg", "reg.name", "trainer.seed")


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys: ``model.widths`` -> ``[356, 105, 51]``; no password in ``tracking.uri``."""

    def walk(node, prefix: str):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        else:
            yield prefix[:-1], json.dumps(node) if isinstance(node, list) else str(node)

    params = dict(walk(OmegaConf.to_container(cfg, resolve=True), ""))
    if "tracking.uri" in params:
        params["tracking.uri"] = tracking.redacted(params["tracking.uri"])
    return params


def is_hashed(key: str) -> bool:
    """Whether a dotted config key counts towards the config hash (see HASH_EXCLUDED)."""
    return not any(key == x or key.startswith(x + ".") for x in HASH_EXCLUDED)


def config_hash(cfg: DictConfig) -> str:
    """What a run computes, apart from its seed and data: runs with one hash are repeats."""
    kept = {k: v for k, v in flat_params(cfg).items() if is_hashed(k)}
    return _digest(json.dumps(kept, sort_keys=True))


def code_fingerprint(files: Sequence[Path] | None = None) -> str:
    """SHA-256 (16 hex digits) of the source of the modules that build, train and evaluate."""
    files = files if files is not None else [PACKAGE_DIR / name for name in CODE_MODULES]
    return _fingerprint(tuple(str(f) for f in files))


@functools.lru_cache(maxsize=4)
def _fingerprint(files: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).name.encode() + b"\0" + Path(f).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GridPoint:
    """One grid point: runs that share all four fields computed the same thing."""

    config_hash: str
    seed: int
    data_sha256: str
    code: str

    @property
    def key(self) -> str:
        """One tag value for all four, to find and claim the point's runs."""
        return _digest(f"{self.config_hash}|{self.seed}|{self.data_sha256}|{self.code}")

    def tags(self) -> dict[str, str]:
        return {tracking.TAG_GRID_POINT: self.key, tracking.TAG_CONFIG_HASH: self.config_hash,
                tracking.TAG_SEED: str(self.seed), tracking.TAG_DATASET_SHA: self.data_sha256,
                tracking.TAG_CODE: self.code}

    def change_since(self, tags: dict[str, str]) -> str:
        """What differs between this point and a run of the same config and seed: "the code", "the data" …"""
        changed = [what for what, tag, mine in (("the data", tracking.TAG_DATASET_SHA, self.data_sha256),
                                                ("the code", tracking.TAG_CODE, self.code))
                   if tags.get(tag) != mine]
        return " and ".join(changed)


def grid_point(cfg: DictConfig, data_sha256: str) -> GridPoint:
    return GridPoint(config_hash(cfg), int(cfg.trainer.seed), data_sha256, code_fingerprint())


def replicate_group(tags: dict[str, str]) -> str:
    """What the seeds of one config share: the grid point without its seed (the report's rows)."""
    return _digest("|".join(tags.get(t, "") for t in (tracking.TAG_CONFIG_HASH, tracking.TAG_DATASET_SHA, tracking.TAG_CODE)))


# --- names --------------------------------------------------------------------------


def varying_keys(overrides: Sequence[str]) -> list[str]:
    """The keys a sweep gives several values (``optimizer.lr=0.001,0.002``), in command-line order."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def run_name(cfg: DictConfig, varying: Sequence[str] | None = None) -> str:
    """``mlp3-bn_dropout-s0``, plus every other key the sweep varies: ``mlp2-none-lr=0.002-s0``.

    ``varying`` defaults to the keys the sweep callback hands its jobs. A key is
    shown by its last part unless two varying keys share it; a config group
    (``optimizer=sgd``) by the option chosen.
    """
    if varying is None:
        varying = json.loads(os.environ.get(tracking.ENV_VARYING) or "[]")
    shown = [k for k in dict.fromkeys(varying) if k not in NAMED_ALWAYS]
    last = [k.rsplit(".", 1)[-1] for k in shown]
    parts = [f"{short if last.count(short) == 1 else key}={_value(cfg, key)}" for key, short in zip(shown, last)]
    return "-".join([cfg.model.name, cfg.reg.name, *parts, f"s{cfg.trainer.seed}"])


def _value(cfg: DictConfig, key: str) -> str:
    node = OmegaConf.select(cfg, key)
    if isinstance(node, DictConfig):  # a config group: the option chosen
        return str(node.get("name", "?"))
    value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if isinstance(value, float):  # a search's draws: 0.0023358825194833557 reads as 0.002336
        return f"{value:.4g}"
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list) else str(value)
