"""mlp_sweep: compare MLP architectures on MNIST honestly and reproducibly.

The package's folders are its layers, each importing only those below it
(``pyproject.toml``'s import contracts hold them to it), top-down:

- ``__main__``: the command line, wiring Hydra to ``train``;
- ``bench/``: measurement only, imported by nothing else;
- ``sweep/``: the Hydra callback around a multirun, the Optuna search, its pruning rule;
- ``core/`` (training) beside ``reporting/`` (reading sweeps back);
- ``store/``: the MLflow store, a run's identity, claims and resume, bulk history;
- ``validation`` (the ranges a config's types cannot express) over ``schema`` (what a config may hold, and
  its composition) over ``choices`` (every list of allowed names);
- at the bottom, ``names``, ``errors``, ``compat`` (every private API used) and ``dotted`` (config keys).

A sweep as a DataFrame: ``from mlp_sweep import load_sweep, summarize``.
"""

__version__ = "0.3.0"
__all__ = ["load_sweep", "summarize"]


def __getattr__(name: str):
    """``from mlp_sweep import load_sweep, summarize``: a sweep as a DataFrame (docs/analysis.md), loaded on first
    use, so that importing the package (as the command line does) stays instant."""
    if name in __all__:
        from mlp_sweep.reporting import frame

        return getattr(frame, name)
    raise AttributeError(f"module 'mlp_sweep' has no attribute {name!r}")
