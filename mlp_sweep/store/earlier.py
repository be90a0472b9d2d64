"""Stores written by an earlier version: what their runs lack, filled in where they are read.

The one place that reads them. A version reads the stores of the minor version before it:
0.3.x reads the runs, sweeps and studies of 0.2.x (docs/faults.md, "Stores from earlier
versions"). The next minor version drops what only the version before its predecessor needs.
"""

import math
from collections.abc import Mapping

READS_SINCE = "0.2.0"  # the oldest version whose stores this one reads


def best_epoch(logged: float | None, val_loss: Mapping[int, float]) -> float:
    """A run's best validation epoch: the ``best_epoch`` it logged; a run of 0.2.x logged none, so the epoch of
    its lowest ``val_loss`` (0.2.x had no early stopping, so no other monitor); NaN for a run without epochs."""
    if logged is not None and not math.isnan(logged):
        return logged
    return float(min(val_loss, key=val_loss.__getitem__)) if val_loss else math.nan
