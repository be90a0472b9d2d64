"""A config's label in the report, from the values that define it.

A grid over presets reads ``mlp3-bn_dropout``; a config a search drew reads
``mlp3 · dropout 0.47 · adamw lr 2.3e-3 wd 4e-3``. A preset's name stands for
its values, so it is written only while the config still equals that preset
(``conf/<group>/<name>.yaml``); a config that departs from it is written out.
Beyond the model and its regularisation, a label names every key that the
table's configs vary, short and in the same order on every row, so no two
rows share one: where configs differ only in their data or code, it says which
(``data 1a2b…``). A key that does not apply to a config (Adam has no weight
decay) is left out of its label, never written as ``nan``.
"""

import functools
import importlib.resources
import math
import re

from omegaconf import DictConfig, OmegaConf

from mlp_sweep import dotted, schema
from mlp_sweep.store.identity import is_hashed

PRESET_GROUPS = {"model": schema.ModelConf, "reg": schema.RegConf, "optimizer": schema.OptimizerConf}
SHORT_KEYS = {"weight_decay": "wd"}  # how a label writes a key whose name is long
# Significant digits of the numbers in labels: as few as keep two configs apart (None: as the run logged them).
DIGITS = (2, 3, 4, None)
IDENTITY_COLUMNS = ("data", "code")  # besides params, what tells two configs apart


def config_labels(configs: list[dict]) -> list[str]:
    """One label per config, each a dict of ``params.<key>`` strings as MLflow holds them (NaN where a key does
    not apply) and its ``data`` and ``code``."""
    params = [
        {k.removeprefix("params."): v for k, v in c.items() if k.startswith("params.") and applies(v)} for c in configs
    ]
    keys = sorted({k for p in params for k in p if k.split(".")[0] in schema.GROUPS and is_hashed(k)})
    varying = [k for k in keys if len({p.get(k) for p in params}) > 1]
    distinct = len({tuple(p.get(k) for k in keys) for p in params})
    for digits in DIGITS:
        labels = [label(p, varying, digits) for p in params]
        if len(set(labels)) >= distinct:
            break
    for column in IDENTITY_COLUMNS:  # what is left to tell apart: configs whose params agree
        labels = with_identity(labels, [str(c[column]) if applies(c.get(column)) else "" for c in configs], column)
    return labels


def applies(value) -> bool:
    """Whether a param holds a value: NaN (or None) where a key does not apply to a config (Adam's weight decay)."""
    return value is not None and value == value  # NaN is the one value unequal to itself


def label(row: dict[str, str], varying: list[str], digits: int | None) -> str:
    """The model and its regularisation (``mlp3-bn_dropout`` while both are presets); the optimizer where the
    table varies it or the config departs from its preset; then every other key the table varies."""
    model_departs, reg_departs = departures(row, "model"), departures(row, "reg")
    model = " ".join([str(row.get("model.name", "?")), *words(row, model_departs, digits)])
    reg = regularisation(row, digits) if reg_departs else str(row.get("reg.name", "?"))
    parts = [f"{model}-{reg}" if not model_departs and not reg_departs else f"{model} · {reg}"]
    if any(k.startswith("optimizer.") for k in varying) or departures(row, "optimizer"):
        settings = sorted((k for k in row if k.startswith("optimizer.") and k != "optimizer.name"), key=lr_first)
        name = [row["optimizer.name"]] if "optimizer.name" in row else []
        parts.append(" ".join(name + words(row, settings, digits)))
    return " · ".join(parts + words(row, [k for k in varying if k.split(".")[0] not in PRESET_GROUPS], digits))


def regularisation(row: dict[str, str], digits: int | None) -> str:
    """``bn · dropout 0.47``: batch norm where it is on, dropout where it is above 0."""
    bn = ["bn"] if str(row.get("reg.batch_norm")).lower() == "true" else []
    dropout = str(row.get("reg.dropout", "0"))
    return " · ".join(bn + ([f"dropout {number(dropout, digits)}"] if float(dropout) else [])) or "no reg"


def lr_first(key: str) -> tuple[bool, str]:
    """The learning rate, then the optimizer's other arguments by name."""
    return key != "optimizer.lr", key


def words(row: dict[str, str], keys: list[str], digits: int | None) -> list[str]:
    """``lr 2.3e-3``, ``wd 4e-3``: each key that applies to this config, by its last part, with its value."""
    return [f"{name} {number(str(row[k]), digits)}" for k, name in zip(keys, key_names(keys), strict=True) if k in row]


def key_names(keys: list[str]) -> list[str]:
    """Each key by its last part (``batch_size``; ``dataset`` for ``dataset.name``), or in full where two keys
    share that part."""
    last = [k.rsplit(".", 2)[-2] if k.endswith(".name") else k.rsplit(".", 1)[-1] for k in keys]
    return [SHORT_KEYS.get(s, s) if last.count(s) == 1 else k for k, s in zip(keys, last, strict=True)]


def departures(row: dict[str, str], group: str) -> list[str]:
    """The keys of ``group`` whose values differ from the preset the config names (all: no such preset).

    Only what the run logged is compared: a run that does not hold a key says nothing against its preset.
    """
    keys = [k for k in row if k.startswith(f"{group}.") and k != f"{group}.name"]
    known = preset(group, str(row.get(f"{group}.name")))
    return [k for k in keys if k not in known or not same(str(row[k]), known[k])] if known else keys


def same(logged: str, preset_value: str) -> bool:
    """Whether a logged param equals a preset's value: as text, or as numbers (``0`` and ``0.0``)."""
    if logged == preset_value:
        return True
    try:
        return float(logged) == float(preset_value)
    except ValueError:
        return False


@functools.cache
def preset(group: str, name: str) -> dict[str, str]:
    """The params a run of preset ``name`` logs for ``group`` (``{"reg.dropout": "0.5", …}``); {} for no such
    preset. Read from the packaged YAML and its schema, as Hydra composes it, and flattened as runs log it."""
    node = preset_node(group, name) if re.fullmatch(r"[\w-]+", name) else None
    return {} if node is None else dotted.as_logged(OmegaConf.to_container(node, resolve=True), group)


def preset_node(group: str, name: str) -> DictConfig | None:
    """The preset's values: its group's schema, then the presets its defaults list names, then its own keys."""
    file = importlib.resources.files(schema.CONF_MODULE) / group / f"{name}.yaml"
    if not file.is_file():
        return None
    own = OmegaConf.create(file.read_text())
    node = OmegaConf.structured(PRESET_GROUPS[group])
    for parent in own.pop("defaults", []):
        if parent != f"base_{group}":
            node = OmegaConf.merge(node, preset_node(group, parent))
    return OmegaConf.merge(node, own)


def number(text: str, digits: int | None) -> str:
    """A value as a label writes it: ``2.3e-3`` for 0.0023358825, ``0.47`` for 0.4723; integers, words and
    lists as logged."""
    try:
        x = float(text)
    except ValueError:
        return text
    if digits is None or re.fullmatch(r"-?\d+", text) or not math.isfinite(x):
        return text
    shown = f"{x:.{digits}g}"
    if "e" in shown or (x != 0 and abs(x) < 0.01):
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return shown


def with_identity(labels: list[str], values: list[str], what: str) -> list[str]:
    """Labels that several configs share, told apart by ``what`` they ran on: ``data 1a2b…``, the shortest
    prefix (4 characters at least) that keeps them apart."""
    shared = {}
    for text, value in zip(labels, values, strict=True):
        shared.setdefault(text, set()).add(value)
    width = {text: prefix_width(found) for text, found in shared.items() if len(found) > 1}
    return [
        f"{text} · {what} {value[: width[text]]}…" if text in width else text
        for text, value in zip(labels, values, strict=True)
    ]


def prefix_width(values: set[str]) -> int:
    """The shortest prefix, of 4 characters at least, that keeps the values apart."""
    width = 4
    while len({v[:width] for v in values}) < len(values):
        width += 1
    return width
