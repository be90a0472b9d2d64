"""mlp_sweep's search sweeper, where Hydra looks for plugins; the logic is mlp_sweep.sweep.search."""
