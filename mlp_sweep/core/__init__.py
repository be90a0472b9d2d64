"""The training core: data, model, the fit step, one run, process settings. Knows nothing of sweeps or searches."""
