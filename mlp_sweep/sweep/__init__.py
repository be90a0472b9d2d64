"""Sweeping: the Hydra callback around a multirun, the Optuna search behind a Hydra sweeper, its pruning rule."""
