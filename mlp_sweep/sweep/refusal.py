"""What a sweeper (the search's, the race's) needs of the sweep's callback: its parent run, and a clean refusal.

Apart from :mod:`mlp_sweep.sweep.callback`, which reads a sweep's outline (and through it the search and the
race): the sweepers reach the callback through the sweeper's own list of callbacks, so nothing imports in a circle.
"""

import sys
from typing import NoReturn

from mlp_sweep import compat


def sweep_callback(sweeper):
    """The sweep's SweepCallback (the one that keeps a parent run), as its sweeper holds it; None where none does."""
    return next((c for c in compat.sweep_callbacks(sweeper) if hasattr(c, "end_parent_run")), None)


def refuse(sweeper, error: Exception) -> NoReturn:
    """End a sweep its sweeper refuses (a search or race it cannot run) in one ``error:`` line, its parent run
    FAILED: Hydra would print a traceback and leave the parent run open."""
    callback = sweep_callback(sweeper)
    if callback is not None:
        callback.end_parent_run("FAILED", str(error))
    sys.exit(f"error: {error}")
