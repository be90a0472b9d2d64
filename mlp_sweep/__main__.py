"""Command line: Hydra composes and checks the config, ``train`` does the work.

    python -m mlp_sweep model=mlp5 reg=bn                 # one run
    python -m mlp_sweep -m model=mlp2,mlp3,mlp5 reg=none,bn,bn_dropout   # a sweep
"""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mlp_sweep import schema, tracking
from mlp_sweep.errors import MlpSweepError
from mlp_sweep.sweep import record_failure

log = logging.getLogger("mlp_sweep")
schema.register()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict | None:
    """One job. In a sweep a failed job is recorded and the sweep goes on."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        schema.validate(cfg)  # before TensorFlow is imported: config errors are instant
        from mlp_sweep.train import train

        return train(cfg, progress="line" if multirun else "bar")
    except Exception as e:
        expected = isinstance(e, MlpSweepError)
        if not multirun:
            if expected:
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)
            raise
        log.error("%s failed: %s", tracking.run_name(cfg), e, exc_info=not expected)
        record_failure(HydraConfig.get().runtime.output_dir, tracking.run_name(cfg), e)
        return None


if __name__ == "__main__":
    main()
