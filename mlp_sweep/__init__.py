"""mlp_sweep: compare MLP architectures on MNIST honestly and reproducibly.

Layout, read top-down: ``schema`` (what a config may hold) -> ``data`` ->
``model`` -> ``train`` (one run) -> ``tracking`` (MLflow) -> ``sweep``
(the Hydra callback around a multirun) -> ``report`` (the comparison table).
"""

__version__ = "0.1.0"
