"""Stores of the version before: what their runs lack is filled in, in one place."""

import math

from mlp_sweep.store import earlier


def test_best_epoch_is_the_logged_one_else_the_lowest_val_loss():
    curve = {1: 0.5, 2: 0.3, 3: 0.4}
    assert earlier.best_epoch(3.0, curve) == 3.0  # logged (0.3.0 on): kept, even where val_loss says otherwise
    assert earlier.best_epoch(None, curve) == 2.0  # a run of 0.2.x logged none
    assert earlier.best_epoch(math.nan, curve) == 2.0  # a frame's missing value
    assert math.isnan(earlier.best_epoch(None, {}))
