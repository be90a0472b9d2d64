"""Thin wrapper: ``python scripts/bench.py [--quick] [--out bench.json]`` = ``python -m mlp_sweep.bench.compute``."""

from mlp_sweep.bench.compute import main

if __name__ == "__main__":
    main()
