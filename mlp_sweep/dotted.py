"""A nested config as dotted keys: the one walker that the logged params, the report's labels and the
validation's number check share, so that a label always names a key exactly as a run logged it."""

import json


def leaves(node, prefix: str = "", into_lists: bool = False):
    """Every leaf of a plain container with its dotted key: ``("optimizer.lr", 0.001)``.

    A list is one leaf (``model.widths``), as a run logs it, unless ``into_lists``: then its items are
    walked too, keyed ``model.initializers[0].args.stddev``.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else str(key), into_lists)
    elif into_lists and isinstance(node, list):
        for i, value in enumerate(node):
            yield from leaves(value, f"{prefix}[{i}]", into_lists)
    else:
        yield prefix, node


def as_logged(node, prefix: str = "") -> dict[str, str]:
    """The params a run logs for a container: dotted keys, lists as JSON, anything else as ``str``."""
    return {key: json.dumps(value) if isinstance(value, list) else str(value) for key, value in leaves(node, prefix)}
