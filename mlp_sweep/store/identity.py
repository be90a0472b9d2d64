"""What a run *is*: its params, its config hash, the computation that made it, its name.

A grid point is four things: the config hash (everything a run computes
from, except its seed), the seed, the SHA-256 of the data actually read and
a fingerprint of the computation: the normalised code of the modules that
read the data, build the model and fit and evaluate it, with the versions of
the libraries that run it (Keras and its backend). Resume, claims and the
report all compare runs by this one identity, so a run is reused or pooled
only when it truly is the same run. Nothing here imports TensorFlow.
"""

import ast
import functools
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mlp_sweep import dotted, names
from mlp_sweep.store import redaction

# The modules that decide what a run computes: reading and splitting the data,
# building the model, the fit and evaluation step. Read as files (this layer does not
# import the training core above it); not the git commit, which changes with every README edit.
COMPUTATION_MODULES = ("core/data.py", "core/model.py", "core/step.py", "core/jax_epoch.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]

# Keys that do not change what a run computes: left out of the config hash.
# The data is covered by its checksum, so where it lies (data_dir), which published set
# it claims to be (source) and whether that was checked (verify_checksum) do not count, nor how a
# search proposed the config (search: its trial, study, replicates), nor what a report compares (report), nor
# how a race spends seeds (race).
HASH_EXCLUDED = (
    "trainer.seed",
    "trainer.threads",
    "trainer.steps_per_execution",
    "trainer.compile_cache",
    "tracking",
    "dataset.data_dir",
    "dataset.source",
    "dataset.verify_checksum",
    "search",
    "report",
    "race",
)

# Keys a run name always shows (as model-reg-s<seed>), whatever the sweep varies.
NAMED_ALWAYS = ("model", "model.name", "reg", "reg.name", "trainer.seed")


def flat_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as dotted keys: ``model.widths`` -> ``[356, 105, 51]``; no password in ``tracking.uri``."""
    params = dotted.as_logged(OmegaConf.to_container(cfg, resolve=True))
    if "tracking.uri" in params:
        params["tracking.uri"] = redaction.redacted(params["tracking.uri"])
    return params


def is_hashed(key: str) -> bool:
    """Whether a dotted config key counts towards the config hash (see HASH_EXCLUDED)."""
    return not any(key == x or key.startswith(x + ".") for x in HASH_EXCLUDED)


def config_hash(cfg: DictConfig) -> str:
    """What a run computes, apart from its seed and data: runs with one hash are repeats."""
    kept = {k: v for k, v in flat_params(cfg).items() if is_hashed(k)}
    return _digest(json.dumps(kept, sort_keys=True))


def code_fingerprint(versions: Mapping[str, str], files: Sequence[Path] | None = None) -> str:
    """SHA-256 (16 hex digits) of the computation: the normalised code of its modules and the library versions.

    ``versions`` are those that decide the numbers (Keras, its backend and the
    backend's version): a run made with another TensorFlow or JAX is another run.
    """
    files = files if files is not None else [PACKAGE_DIR / name for name in COMPUTATION_MODULES]
    return _fingerprint(tuple(str(f) for f in files), json.dumps(dict(versions), sort_keys=True))


@functools.lru_cache(maxsize=8)
def _fingerprint(files: tuple[str, ...], versions: str) -> str:
    with _PARSING:  # CPython 3.11's ast.parse is not safe in two threads at once ("recursion depth mismatch")
        return _fingerprint_of(files, versions)


_PARSING = threading.Lock()


def _fingerprint_of(files: tuple[str, ...], versions: str) -> str:
    h = hashlib.sha256(versions.encode() + b"\0")
    for f in files:
        h.update(Path(f).name.encode() + b"\0" + normalised_code(Path(f).read_text()).encode() + b"\0")
    return h.hexdigest()[:16]


def normalised_code(source: str) -> str:
    """The code as Python parses it, without docstrings: comments, blank lines, formatting and
    docstrings leave it unchanged, any change to an expression or statement changes it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


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
        return {
            names.TAG_GRID_POINT: self.key,
            names.TAG_CONFIG_HASH: self.config_hash,
            names.TAG_SEED: str(self.seed),
            names.TAG_DATASET_SHA: self.data_sha256,
            names.TAG_CODE: self.code,
        }

    def change_since(self, tags: dict[str, str]) -> str:
        """What differs between this point and a run of the same config and seed: "the data", "the computation" …"""
        changed = [
            what
            for what, tag, mine in (
                ("the data", names.TAG_DATASET_SHA, self.data_sha256),
                ("the computation (its code or library versions)", names.TAG_CODE, self.code),
            )
            if tags.get(tag) != mine
        ]
        return " and ".join(changed)


def grid_point(cfg: DictConfig, data_sha256: str, versions: Mapping[str, str]) -> GridPoint:
    """The grid point of a run of ``cfg`` on data with this checksum, computed by these library versions."""
    return GridPoint(config_hash(cfg), int(cfg.trainer.seed), data_sha256, code_fingerprint(versions))


def replicate_group(tags: dict[str, str]) -> str:
    """What the seeds of one config share: the grid point without its seed (the report's rows)."""
    return _digest("|".join(tags.get(t, "") for t in (names.TAG_CONFIG_HASH, names.TAG_DATASET_SHA, names.TAG_CODE)))


# --- names --------------------------------------------------------------------------


def varying_keys(overrides: Sequence[str]) -> list[str]:
    """The keys a sweep gives several values (``optimizer.lr=0.001,0.002``), in command-line order."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.key_or_group for o in parsed if o.is_sweep_override()]


def run_name(cfg: DictConfig, varying: Sequence[str] = ()) -> str:
    """``mlp3-bn_dropout-s0``, plus every other key the sweep varies: ``mlp2-none-lr=0.002-s0``.

    A key is shown by its last part unless two varying keys share it; a config
    group (``optimizer=sgd``) by the option chosen.
    """
    shown = [k for k in dict.fromkeys(varying) if k not in NAMED_ALWAYS]
    last = [k.rsplit(".", 1)[-1] for k in shown]
    parts = [
        f"{short if last.count(short) == 1 else key}={_value(cfg, key)}"
        for key, short in zip(shown, last, strict=False)
    ]
    return "-".join([cfg.model.name, cfg.reg.name, *parts, f"s{cfg.trainer.seed}"])


def _value(cfg: DictConfig, key: str) -> str:
    node = OmegaConf.select(cfg, key)
    if isinstance(node, DictConfig):  # a config group: the option chosen
        return str(node.get("name", "?"))
    value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if isinstance(value, float):  # a search's draws: 0.0023358825194833557 reads as 0.002336
        return f"{value:.4g}"
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list) else str(value)
