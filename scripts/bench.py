"""Thin wrapper: ``python scripts/bench.py [--quick] [--out bench.json]`` = ``python -m mlp_sweep.bench``."""

from mlp_sweep.bench import main

if __name__ == "__main__":
    main()
