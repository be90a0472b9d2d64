"""Sweep-level work, as a Hydra callback: one parent MLflow run per multirun,
a ``[k/N] name`` line with the time elapsed and left as each job starts
(:mod:`mlp_sweep.sweep.progress`), the count of failed jobs, the comparison
report (:mod:`mlp_sweep.reporting.report`) once every job has ended, and a
closing note: where the report is, the links that open the sweep in MLflow's
UI, and the sweep's wall time.

A job finds its parent run, the sweep's store and the keys the sweep varies
(for its run name) in environment variables that this callback sets around
the job, in whatever process the launcher runs it (the same one, a joblib
worker, a Ray node, a submitit job).

What the sweep did is read back from the store, never from a job's output
folder, so the final status is right on any launcher, with or without a
shared disk. Hydra turns an exception raised in a callback into a warning
and carries on, so every failure here ends the command itself, non-zero,
with a one-line reason, and the parent run never stays RUNNING.
"""

import json
import logging
import os
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from mlp_sweep import compat, names, policy
from mlp_sweep.errors import ConfigError, reason
from mlp_sweep.store import identity, redaction, resume, tracking
from mlp_sweep.sweep import interrupt, outline, progress

log = logging.getLogger(__name__)


def closing_note(
    report_dir: Path | None, links: tracking.UiLinks, jobs: int | None, wall_s: float, model: str | None = None
) -> str:
    """The sweep's last lines: where its report is, the UI's pages on it (and the command that serves
    them, for a local store), how long the sweep took, and the registered model (report.register), last."""
    lines = [f"Report: {report_dir}/"] if report_dir else []
    lines.append(f"MLflow UI: {links.command}  (from any folder), then open" if links.command else "MLflow UI:")
    lines += [f"  the sweep's runs  {links.runs}", f"  its parent run    {links.run}"]
    lines.append(f"Wall time: {progress.clock(wall_s)} for {jobs if jobs is not None else '?'} jobs.")
    if model:
        lines.append(f"Serve it: mlflow models serve -m {model} --env-manager local -p 5001; the model is {model}")
    return "\n".join(lines)


class SweepCallback(Callback):
    """Built by Hydra from ``hydra.callbacks.sweep``; it learns the rest from the sweep's config."""

    def __init__(self) -> None:
        # None until on_multirun_start has completed: no code may assume it did.
        self.parent_run_id: str | None = None
        self.experiment_id: str | None = None
        self.tracking_uri: str | None = None
        self.client: MlflowClient | None = None  # the sweep's one client, opened with its parent run
        self.total: int | None = None  # jobs the sweep will run, where known
        self.varying: list[str] = []
        self.credentials: dict[str, str] = {}  # MLflow's own variables, for jobs in other processes
        self.submitted = False  # the jobs go to a scheduler (Slurm): a stop leaves them to it
        self.env_before: dict[str, str | None] = {}
        # Progress, kept in the sweep's process: its start, its pid, and either the jobs' times
        # (jobs run here) or a watch of the store (jobs run elsewhere).
        self.started = time.monotonic()
        self.sweep_pid: int | None = None
        self.job_started: float | None = None
        self.durations: list[float] = []
        self.watch: progress.StoreWatch | None = None
        self.model_uri: str | None = None  # models:/<name>@<alias>, once the report registered the choice

    # --- start ---------------------------------------------------------------------

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self.started, self.sweep_pid = time.monotonic(), os.getpid()
        try:
            self.start_parent_run(config)
        except Exception as e:  # bad input, a store that cannot be opened, or a bug: no job starts
            log.debug("the sweep could not start", exc_info=True)
            self.end_parent_run("FAILED", f"the sweep could not start: {reason(e)}")
            sys.exit(f"error: {reason(e)}")

    def start_parent_run(self, config: DictConfig) -> None:
        policy.validate(config)  # what the sweep does not vary is checked once, here
        overrides = outline.sweep_overrides(config)
        self.total, self.varying = outline.sweep_shape(config, overrides)
        if "trainer.backend" in self.varying:
            raise ConfigError(
                "a sweep runs one Keras backend (it is chosen once per process): run one sweep per trainer.backend"
            )
        if not any(k == "dataset" or k.startswith("dataset.") for k in self.varying):
            outline.check_data(config.dataset)  # bad data: one line, before the store or any run exists
        # Created here, once, before any job: jobs creating it at once race (mlflow#4123).
        client, experiment_id = tracking.open_experiment(config.tracking.uri, config.tracking.experiment)
        resume.close_stale_runs(client, experiment_id)  # a killed earlier sweep left its runs RUNNING
        if config.report.register is not None:  # a login that may not register: one line, before any training
            from mlp_sweep.reporting import registry

            registry.check_may_register(client, config.report.register)
        self.client, self.tracking_uri = client, client.tracking_uri  # the jobs' store, wherever they run
        # submitit pickles this callback into the sweep's folder, and its jobs inherit
        # this process' environment (local executor, sbatch): the credentials stay out of it.
        self.submitted = "submitit" in str(config.hydra.launcher.get("_target_", ""))  # jobs a scheduler owns
        if not self.submitted:
            self.credentials = redaction.credentials()
        overrides = [redaction.redact_text(o) for o in overrides]  # as logged below: no password
        run = client.create_run(
            experiment_id,
            run_name=time.strftime("sweep-%Y%m%d-%H%M%S"),
            # The user, source and git tags its children get (mlflow.start_run would add them; create_run does not).
            tags=compat.run_context_tags(
                {
                    names.TAG_SWEEP: "parent",
                    names.TAG_OVERRIDES: " ".join(overrides),
                    names.TAG_SWEEP_DIR: str(Path(config.hydra.sweep.dir).resolve()),
                    names.TAG_PROCESS: resume.process_tag(),
                    names.TAG_GIT_COMMIT: tracking.git_commit(),
                }
            ),
        )
        self.parent_run_id, self.experiment_id = run.info.run_id, experiment_id
        params = dict(override.partition("=")[::2] for override in overrides)  # a key given twice: the last wins
        client.log_batch(self.parent_run_id, params=[Param(k.lstrip("+~"), v) for k, v in params.items()])
        if outline.is_search(config):
            from mlp_sweep.sweep import search

            search.record_study(client, experiment_id, self.parent_run_id, config)
        interrupt.watch(self)  # from here on, Ctrl-C closes this sweep's runs
        log.info("sweep of %s jobs, MLflow parent run %s", self.total or "?", self.parent_run_id)
        if not outline.runs_jobs_here(config):
            self.watch = progress.StoreWatch(self.tracking_uri, self.parent_run_id, self.total, self.started)

    # --- each job, in its own process ---------------------------------------------------

    def __getstate__(self) -> dict:
        """What reaches a job in another process (joblib, Ray, submitit pickle the callback): all but the
        client, which holds the store's connections (a job opens its own), and the watch, a thread of the sweep's."""
        return {**self.__dict__, "client": None, "watch": None}

    def times_jobs_here(self) -> bool:
        """Whether this process is the sweep's and no watch prints the jobs' lines: then the job callbacks do."""
        return os.getpid() == self.sweep_pid and self.watch is None

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        """Hand the job its sweep and the sweep's login (MLflow's credential variables), in the job's own process;
        in the sweep's own process, print the job's line.

        This callback reaches every job after on_multirun_start (pickled, for
        joblib, Ray and submitit), whereas the process a job lands in may hold
        an environment of its own: a reused joblib worker, a Ray node. A job
        whose config names no store (tracking=local, or server's ${oc.env:...})
        writes where its parent is.
        """
        if self.parent_run_id is None:
            return
        env = {
            names.ENV_PARENT_RUN: self.parent_run_id,
            names.ENV_VARYING: json.dumps(self.varying),
            names.ENV_TRACKING_URI: self.tracking_uri,
            **self.credentials,
        }
        self.env_before = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        if self.times_jobs_here():
            self.print_job_line(config)

    def print_job_line(self, config: DictConfig) -> None:
        """The job's ``[k/N] name`` line with the sweep's time so far and left, for a job run in the sweep's
        process: the jobs before it have all ended, and each took the time between its callbacks."""
        self.job_started = time.monotonic()
        left = None
        if self.total is not None:
            left = progress.time_left_s(self.total - len(self.durations), self.durations)
        name = identity.run_name(config, self.varying)
        elapsed = self.job_started - self.started
        print(progress.job_line(config.hydra.job.num + 1, self.total, name, elapsed, left), flush=True)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        """Give the process its own environment back, and count the job's time toward the sweep's estimate."""
        if self.times_jobs_here() and self.job_started is not None:
            self.durations.append(time.monotonic() - self.job_started)
        for key, value in self.env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    # --- end -------------------------------------------------------------------------

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.parent_run_id is None:  # on_multirun_start exits when it fails; never end a sweep that did not start
            sys.exit("error: the sweep has no parent run (its start failed); nothing was counted")
        if self.watch is not None:
            self.watch.stop()
        failure, report_dir = None, None
        try:
            problems = self.count_failures()
            report_error = self.write_report(config)
            if report_error:
                problems.append(
                    f"the sweep's report failed ({report_error}); every run is in the store: "
                    f"`mlp-sweep report --sweep {self.parent_run_id}` makes it again"
                )
            else:
                report_dir = Path(config.hydra.sweep.dir) / "report"
            self.end_parent_run("FAILED" if problems else "FINISHED", "; ".join(problems)[:5000] or None, strict=True)
            if problems:
                failure = (
                    f"error: the sweep failed ({len(problems)} problem(s); the other jobs ran to the end):\n"
                    + "\n".join(f"  {p}" for p in problems)
                )
        except Exception as e:
            log.debug("the sweep's end failed", exc_info=True)
            self.end_parent_run("FAILED", f"the sweep's end failed: {reason(e)}")
            failure = f"error: the sweep's end failed: {reason(e)}"
        # Where to look, failed or not: the runs are in the store either way.
        links = tracking.ui_links(self.tracking_uri, self.experiment_id, self.parent_run_id)
        wall_s = time.monotonic() - self.started
        print(closing_note(report_dir, links, self.total, wall_s, self.model_uri), flush=True)
        if failure:
            sys.exit(failure)

    def count_failures(self) -> list[str]:
        """What went wrong in the jobs, read from the store: failed runs, and jobs that left no run.

        A run a search pruned (KILLED, tagged with its epoch) stopped by design: not a failure.
        """
        client = self.client
        parent = client.get_run(self.parent_run_id)
        resume.close_stale_runs(
            client, parent.info.experiment_id, f"tags.`{names.TAG_PARENT}` = '{self.parent_run_id}'"
        )
        children = resume.child_runs(client, parent)
        problems = [
            f"{r.info.run_name} ({r.info.run_id}) {r.info.status}: "
            + " ".join(r.data.tags.get(names.TAG_FAILURE, "").split())  # one line, however long the reason
            for r in children
            if r.info.status != "FINISHED" and names.TAG_PRUNED not in r.data.tags
        ]
        accounted = len(children) + len(resume.reused_run_ids(parent))
        if self.total is not None and accounted < self.total:
            problems.append(
                f"{self.total - accounted} of {self.total} job(s) left no run in the store "
                "(see their logs under the sweep's folder)"
            )
        return problems

    def write_report(self, config: DictConfig) -> str | None:
        """The comparison table and figures, into ``<sweep dir>/report`` and onto the parent run;
        the reason it failed, if it did.
        """
        try:
            from mlp_sweep.reporting import report  # pandas, scipy, matplotlib: only once a sweep ends

            made = report.make_report(
                self.parent_run_id,
                client=self.client,
                out_dir=Path(config.hydra.sweep.dir) / "report",
                costs=list(config.report.costs),
                at=config.report.at,
                margin=config.report.margin,
                register=config.report.register,
                alias=config.report.alias,
                choose=config.report.choose,
            )
            self.model_uri = made.registered.uri if made.registered else None
            print(made.text(), flush=True)
        except Exception as e:
            log.debug("the sweep's report failed", exc_info=True)
            return reason(e)
        return None

    def close_interrupted(self, why: str) -> str:
        """The command was stopped (:mod:`mlp_sweep.sweep.interrupt`, once its workers have ended): close the runs
        its jobs left open and the parent run KILLED, with ``why``; say what became of the jobs."""
        if self.watch is not None:
            self.watch.stopping.set()
        parent = self.client.get_run(self.parent_run_id)
        children = f"tags.`{names.TAG_PARENT}` = '{self.parent_run_id}'"
        resume.close_stale_runs(self.client, parent.info.experiment_id, children, why, this_process=True)
        statuses = [
            r.info.status for r in resume.child_runs(self.client, parent) if names.TAG_PRUNED not in r.data.tags
        ]
        finished, stopped = statuses.count("FINISHED") + len(resume.reused_run_ids(parent)), statuses.count("KILLED")
        summary = f"{finished} finished, {stopped} stopped"
        if self.submitted:  # the scheduler holds every job it was handed: those not ended run (or wait) on
            left = (self.total or 0) - finished - stopped - statuses.count("FAILED")
            summary += f", {left} submitted job(s) left to Slurm (scancel them to stop them)" if left > 0 else ""
        self.end_parent_run("KILLED", f"{why}: {summary}")
        return summary

    def end_parent_run(self, status: str, failure: str | None, strict: bool = False) -> None:
        """Close the parent run (with the reason, if any); ``strict``: let an error in doing so propagate."""
        if self.parent_run_id is None:
            return
        try:
            if failure:
                self.client.set_tag(self.parent_run_id, names.TAG_FAILURE, failure)
            self.client.set_terminated(self.parent_run_id, status)
        except Exception:
            if strict:
                raise
            log.error("could not close the sweep's parent run %s", self.parent_run_id, exc_info=True)
