"""mlp_sweep's launchers, where Hydra looks for plugins; the logic is mlp_sweep.sweep.submitit_launcher and
mlp_sweep.sweep.ray_launcher."""
