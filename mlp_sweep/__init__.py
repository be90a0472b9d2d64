"""mlp_sweep: compare MLP architectures on MNIST honestly and reproducibly.

The package's folders are its layers, each importing only those below it
(``pyproject.toml``'s import contracts hold them to it), top-down:

- ``__main__``: the command line, wiring Hydra to ``train``;
- ``bench/``: measurement only, imported by nothing else;
- ``sweep/``: the Hydra callback around a multirun, the Optuna search, its pruning rule;
- ``core/`` (training) beside ``reporting/`` (reading sweeps back);
- ``store/``: the MLflow store, a run's identity, claims and resume, bulk history;
- at the bottom, ``schema`` (what a config may hold), ``names``, ``errors`` and ``compat``.
"""

__version__ = "0.2.0"
