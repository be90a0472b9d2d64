"""Command line: Hydra composes and checks the config, ``train`` does the work.

    python -m mlp_sweep model=mlp5 reg=bn                                # one run
    python -m mlp_sweep -m model=mlp2,mlp3,mlp5 reg=none,bn,bn_dropout   # a sweep
    python -m mlp_sweep report --sweep <parent run id>                   # compare a sweep (mlp-sweep report ...)

The top of the package: the one place, with the sweep callback's job
environment, that reads or writes the process' environment. TensorFlow and
MLflow are imported inside ``main`` so that ``--help``, ``--cfg job`` and
config errors answer at once.
"""

import json
import logging
import os
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mlp_sweep import names, policy, schema
from mlp_sweep.core import runtime
from mlp_sweep.errors import MlpSweepError, interruption, reason
from mlp_sweep.store import identity, redaction, tracking

log = logging.getLogger("mlp_sweep")
schema.register()


def sweep_env() -> tuple[str | None, list[str]]:
    """The sweep's parent run and the keys it varies, as the sweep callback set them for this job."""
    return os.environ.get(names.ENV_PARENT_RUN) or None, json.loads(os.environ.get(names.ENV_VARYING) or "[]")


def job_of(cfg: DictConfig):
    """What the sweep callback told this job (its parent run, the keys it varies) and, in a search, the
    trial's tags and its pruning rule: the :class:`~mlp_sweep.core.run.Job` that ``train`` is handed."""
    from mlp_sweep.core.run import Job

    parent, varying = sweep_env()
    if cfg.search.trial is None:  # a grid job: Optuna stays unloaded
        return Job(parent, varying)
    from mlp_sweep.sweep.pruning import stop_rule

    tags = {names.TAG_TRIAL: str(cfg.search.trial), names.TAG_STUDY: cfg.search.study_name}
    return Job(parent, varying, stop_rule(cfg), tags)


@hydra.main(version_base="1.3", config_path="pkg://" + schema.CONF_MODULE, config_name="config")
def main(cfg: DictConfig) -> dict | None:
    """One job. In a sweep a failed job is recorded in the store and the sweep goes on."""
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    started_ms = int(time.time() * 1000)
    try:
        policy.validate(cfg)
        runtime.check_backend(cfg.trainer.backend)
        os.environ.update(runtime.process_environment(cfg.trainer.backend, cfg.trainer.threads))  # before Keras loads
        runtime.own_cores(cfg.trainer.threads)  # a parallel worker on cores of its own, before XLA sizes its pools
        runtime.import_tensorflow_quietly()
        from mlp_sweep.core.run import train

        runtime.settle_process()
        return train(cfg, progress="line" if multirun else "bar", job=job_of(cfg))
    except Exception as e:
        if (stopped := interruption(e)) is not None:  # Ctrl-C, whatever a library made of it on its way out
            raise stopped from e
        expected = isinstance(e, MlpSweepError)  # the input's fault: its message says it all
        if not multirun:
            if expected:
                sys.exit(f"error: {e}")
            raise
        log.error("%s failed: %s", identity.run_name(cfg, sweep_env()[1]), e, exc_info=not expected)
        record_failed_job(cfg, e, started_ms)
        return None


def record_failed_job(cfg: DictConfig, error: BaseException, since_ms: int) -> None:
    """Leave a FAILED run in the store for a job that failed, if the job's own run did not end so already.

    A store that cannot be reached leaves the job uncounted, which the sweep's
    end reports as a job that left no run.
    """
    from mlp_sweep.store import resume

    parent, varying = sweep_env()
    if not parent:
        return
    try:
        client, experiment_id = tracking.open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
        resume.record_failed_job(client, experiment_id, parent, identity.run_name(cfg, varying), error, since_ms)
    except Exception as e:
        log.error("could not record the failure in the MLflow store: %s", reason(e))


def cli() -> None:
    """The ``mlp-sweep`` command: ``report ...`` compares a sweep, anything else is a Hydra run or sweep."""
    os.environ.update(runtime.process_environment())  # TensorFlow's start-up noise, before anything loads it
    # A login in a URI (tracking.uri=https://user:pw@host, $MLFLOW_TRACKING_URI) goes to MLflow's
    # variables before Hydra records the command line: the bare URI is all that is ever shown.
    sys.argv, login = redaction.argv_without_userinfo(sys.argv)
    if os.environ.get(names.ENV_TRACKING_URI):
        os.environ[names.ENV_TRACKING_URI], env_login = redaction.split_userinfo(os.environ[names.ENV_TRACKING_URI])
        login |= env_login
    os.environ.update(login)
    if sys.argv[1:2] == ["report"]:
        from mlp_sweep.reporting.cli import main as report_main  # no TensorFlow: the report only reads MLflow

        sys.exit(report_main(sys.argv[2:]))
    from mlp_sweep.sweep import interrupt  # not in main(): a grid job's process loads no sweeping layer

    interrupt.install()
    try:
        main()
    except KeyboardInterrupt as stopped:  # Ctrl-C or SIGTERM: the workers ended, the runs closed, one line
        sys.exit(interrupt.stop(stopped))


if __name__ == "__main__":
    cli()
