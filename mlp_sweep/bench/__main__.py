"""``python -m mlp_sweep.bench``: the compute benchmark (:mod:`mlp_sweep.bench.compute`), its options."""

from mlp_sweep.bench.compute import main

main()
