"""mlp_sweep's race sweeper, where Hydra looks for plugins; the logic is mlp_sweep.sweep.race_launch."""
