"""Command line: Hydra composes and checks the config, ``train`` does the work.

    python -m mlp_sweep model=mlp5 reg=bn                                # one run
    python -m mlp_sweep -m model=mlp2,mlp3,mlp5 reg=none,bn,bn_dropout   # a sweep
    python -m mlp_sweep report --sweep <parent run id>                   # compare a sweep (mlp-sweep report ...)

TensorFlow and MLflow are imported inside ``main`` so that ``--help``,
``--cfg job`` and config errors answer at once.
"""

import logging
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mlp_sweep import identity, runtime, schema, tracking
from mlp_sweep.errors import MlpSweepError

log = logging.getLogger("mlp_sweep")
schema.register()


@hydra.main(version_base="1.3", config_path="pkg://" + schema.CONF_MODULE, config_name="config")
def main(cfg: DictConfig) -> dict | None:
    """One job. In a sweep a failed job is recorded in the store and the sweep goes on."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    started_ms = int(time.time() * 1000)
    try:
        schema.validate(cfg)
        runtime.use_backend(cfg.trainer.backend)  # before Keras loads
        runtime.import_tensorflow_quietly()
        from mlp_sweep.train import train

        runtime.settle_process()

        return train(cfg, progress="line" if multirun else "bar")
    except Exception as e:
        expected = isinstance(e, MlpSweepError)  # the input's fault: its message says it all
        if not multirun:
            if expected:
                sys.exit(f"error: {e}")
            raise
        from mlp_sweep.sweep import record_failed_job

        log.error("%s failed: %s", identity.run_name(cfg), e, exc_info=not expected)
        record_failed_job(cfg, e, started_ms)
        return None


def cli() -> None:
    """The ``mlp-sweep`` command: ``report ...`` compares a sweep, anything else is a Hydra run or sweep."""
    runtime.quiet_tensorflow()
    # A password in tracking.uri=... goes to MLflow's variables before Hydra records the command line.
    sys.argv = tracking.argv_without_userinfo(sys.argv)
    if sys.argv[1:2] == ["report"]:
        from mlp_sweep.report import main as report_main  # no TensorFlow: the report only reads MLflow

        sys.exit(report_main(sys.argv[2:]))
    main()


if __name__ == "__main__":
    cli()
