"""Sweep-level work, as a Hydra callback: one parent MLflow run per multirun,
a ``[k/N] name`` line as each job starts, a summary of failed jobs, and the
comparison report (:mod:`mlp_sweep.report`) once every job has ended.

A job finds its parent run in an environment variable that this callback sets
around the job, in whatever process the launcher runs it (the same one, a
joblib worker, a Ray node, a submitit job), together with the sweep's store.

Hydra turns an exception raised in a callback into a warning and carries on,
so a sweep that must stop, or end with a non-zero status, exits here itself.
"""

import logging
import os
import sys
import time
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from mlp_sweep import resume, schema, tracking
from mlp_sweep.errors import MlpSweepError

log = logging.getLogger(__name__)

FAILURE_FILE = "FAILED.txt"  # written into a job's output folder when it fails


def sweep_overrides(config: DictConfig) -> list[str]:
    """The sweep's overrides: those in ``hydra.sweeper.params`` then the command line's."""
    params = config.hydra.sweeper.get("params") or {}
    return [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)


def count_jobs(overrides: list[str]) -> int:
    """How many jobs the basic sweeper makes of these overrides."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))


def record_failure(output_dir: str, name: str, error: BaseException) -> None:
    """Leave the reason a job failed where the sweep's summary will find it."""
    Path(output_dir, FAILURE_FILE).write_text(f"{name}: {type(error).__name__}: {error}\n")


def clear_failures(sweep_dir: str) -> None:
    """Forget the failures of an earlier try of this sweep in the same folder:
    its jobs run again now, and the summary must speak of this try only."""
    for stale in Path(sweep_dir).glob(f"*/{FAILURE_FILE}"):
        stale.unlink(missing_ok=True)


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_run_id: str | None = None  # stays None in a single run: no sweep around it

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            self.start_parent_run(config)
        except MlpSweepError as e:  # bad input: refuse the sweep before any job starts
            sys.exit(f"error: {e}")

    def start_parent_run(self, config: DictConfig) -> None:
        schema.validate(config)  # what the sweep does not vary is checked once, here
        overrides = sweep_overrides(config)
        try:
            total = str(count_jobs(overrides))
        except Exception:  # a sweeper other than the basic one: its own syntax
            total = "?"
        # Created here, once, before any job: jobs creating it at once race (mlflow#4123).
        experiment_id = tracking.use_experiment(config.tracking.uri, config.tracking.experiment)
        resume.close_stale_runs(experiment_id)  # a killed earlier sweep left its runs RUNNING
        clear_failures(config.hydra.sweep.dir)
        run = MlflowClient().create_run(
            experiment_id,
            run_name=time.strftime("sweep-%Y%m%d-%H%M%S"),
            tags={tracking.TAG_SWEEP: "parent", tracking.TAG_OVERRIDES: " ".join(overrides),
                  "mlp_sweep.sweep_dir": str(Path(config.hydra.sweep.dir).resolve()),
                  tracking.TAG_PROCESS: resume.process_tag()},
        )
        self.parent_run_id, self.total = run.info.run_id, total
        self.tracking_uri = tracking.resolve_uri(config.tracking.uri)  # the jobs' store, wherever they run
        client = MlflowClient()
        for override in overrides:
            key, _, value = override.partition("=")
            client.log_param(self.parent_run_id, key.lstrip("+~"), value)
        log.info("sweep of %s jobs, MLflow parent run %s", total, self.parent_run_id)

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """Hand the job its sweep, in the job's own process.

        This callback reaches every job after on_multirun_start (pickled, for
        joblib, Ray and submitit), whereas the process a job lands in may hold
        an environment of its own: a reused joblib worker, a Ray node. A job
        whose config names no store (tracking=local, or server's ${oc.env:...})
        writes where its parent is.
        """
        if self.parent_run_id is None:
            return
        os.environ[tracking.ENV_PARENT_RUN] = self.parent_run_id
        self.uri_before = os.environ.get(tracking.ENV_TRACKING_URI)
        os.environ[tracking.ENV_TRACKING_URI] = self.tracking_uri
        print(f"[{config.hydra.job.num + 1}/{self.total}] {schema.run_name(config)}", flush=True)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        """Give the process its own environment back."""
        if self.parent_run_id is None:
            return
        os.environ.pop(tracking.ENV_PARENT_RUN, None)
        if self.uri_before is None:
            os.environ.pop(tracking.ENV_TRACKING_URI, None)
        else:
            os.environ[tracking.ENV_TRACKING_URI] = self.uri_before

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        failures = sorted(Path(config.hydra.sweep.dir).glob(f"*/{FAILURE_FILE}"))
        self.write_report(config)
        MlflowClient().set_terminated(self.parent_run_id, "FAILED" if failures else "FINISHED")
        if failures:
            lines = "".join("  " + f.read_text() for f in failures)
            sys.exit(f"{len(failures)} job(s) of the sweep failed (the others ran to the end):\n{lines}")

    def write_report(self, config: DictConfig) -> None:
        """The comparison table and figures, into ``<sweep dir>/report`` and onto the parent run.

        A report that fails is logged, never raised: it must not hide the jobs' own failures.
        """
        try:
            from mlp_sweep import report  # pandas, scipy, matplotlib: only once a sweep ends

            print(report.make_report(self.parent_run_id, tracking_uri=self.tracking_uri,
                                     out_dir=Path(config.hydra.sweep.dir) / "report").text(), flush=True)
        except Exception as e:
            log.error("the sweep's report failed: %s", e, exc_info=not isinstance(e, MlpSweepError))
