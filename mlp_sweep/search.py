"""A search beyond the grid: Optuna's ask/tell behind a Hydra sweeper.

``python -m mlp_sweep -m hparams_search=mlp_optuna`` asks a seeded TPE sampler
for configs drawn from the space written in ``hydra.sweeper.params`` (Hydra's
sweeper grammar: choice, interval, tag(log, interval(...)), range). Each
proposed config is a *trial*, launched as ``search.replicates`` jobs with
``trainer.seed=0..k-1`` through whatever launcher the sweep uses; each job is
its own MLflow child run of the sweep, tagged with its trial. The trial's
objective is the mean validation accuracy over its seeds, never a test metric.

The study lives in an Optuna RDB storage beside the tracking store, so the
same command run again continues it toward ``hydra.sweeper.n_trials``: a
trial left unfinished by a killed command is launched again under its own
number (the run identity of :mod:`mlp_sweep.resume` reuses its finished seeds).

Pruning (``search.pruning=true``) is a median stopping rule: after
``search.grace_epochs``, a seed run whose validation accuracy at epoch e is
below the median of the completed trials' objective at epoch e stops. The
rule reads the completed trials from the storage, never from process memory,
so it holds across joblib workers too. A pruned run ends KILLED with the tag
``mlp_sweep.pruned`` = epoch: nothing that looks for FINISHED runs (resume, a
user's query, the UI's filters) takes it for a whole run, and the sweep does
not count it as a failure. Nothing here imports TensorFlow.

The Hydra plugin (hydra_plugins/mlp_sweep_search) is a thin shim over
:func:`sweep`.
"""

import logging
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import mlflow
import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.utils import JobReturn, JobStatus
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution,
                                  distribution_to_json)
from optuna.trial import TrialState

from mlp_sweep import history, resume, tracking
from mlp_sweep.errors import ConfigError, MlpSweepError

log = logging.getLogger(__name__)

TAG_TRIAL = "mlp_sweep.trial"  # on each seed run: the trial number it was trained for
TAG_STUDY = "mlp_sweep.study"  # on each seed run and the sweep's parent run: the study name
TAG_STORAGE = "mlp_sweep.study_storage"  # on the parent run: where the study lives, for the report
TAG_PRUNED = "mlp_sweep.pruned"  # on a pruned run: the epoch it stopped at
PRUNED_AT = "pruned_at_epoch"  # in train()'s returned metrics, for the sweeper
OBJECTIVE = "val_accuracy"  # never a test metric
SPACE_ATTR = "search_space"  # the study's user attribute that pins its space


# --- the space ---------------------------------------------------------------------


def distribution(override: Override) -> BaseDistribution:
    """An Optuna distribution for one sweep override of Hydra's grammar."""
    value = override.value()
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(override.sweep_string_iterator()))
    if isinstance(value, RangeSweep):  # its stop is exclusive: the last value it yields is the high end
        values = list(override.sweep_iterator())
        if all(isinstance(x, int) for x in values):
            return IntDistribution(min(values), max(values), step=value.step)
        return FloatDistribution(min(values), max(values), step=value.step)
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ConfigError(f"{override.input_line}: the search takes choice, range or interval sweeps; write one of those")


def parse_space(params: Mapping[str, str], arguments: Sequence[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The search space (``hydra.sweeper.params`` and sweeps on the command line) and the overrides every job gets."""
    overrides = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()] + list(arguments))
    space, fixed = {}, []
    for o in overrides:
        if o.key_or_group == "trainer.seed":
            raise ConfigError("trainer.seed is set by the search (seeds 0..search.replicates-1): "
                              "drop trainer.seed and set search.replicates")
        if o.is_sweep_override():
            space[o.key_or_group] = distribution(o)
        else:
            fixed.append(o.input_line)
    return space, fixed


def storage_url(cfg: DictConfig) -> str:
    """``search.storage``, else optuna.db beside a SQLite tracking store, else ./optuna.db (absolute)."""
    if cfg.search.storage:
        return cfg.search.storage
    uri = tracking.resolve_uri(cfg.tracking.uri)
    folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else Path.cwd()
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def open_study(name: str, storage: str, seed: int, space: Mapping[str, BaseDistribution]) -> optuna.Study:
    """Create or continue the study; refuse one that was searched over another space.

    The sampler's seed is offset by the trials the study holds: a continued study
    restarted at the bare seed would propose its first trials' configs again.
    """
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    wanted = {k: distribution_to_json(d) for k, d in space.items()}
    held = study.user_attrs.get(SPACE_ATTR)
    if held is None:
        study.set_user_attr(SPACE_ATTR, wanted)
    elif held != wanted:
        changed = sorted(k for k in held.keys() | wanted.keys() if held.get(k) != wanted.get(k))
        raise ConfigError(f"study {name!r} in {storage} was searched over another space ({', '.join(changed)} differ): "
                          f"name a new study, e.g. search.study_name={name}-2")
    return study


# --- trials and their jobs -------------------------------------------------------------


def trial_jobs(number: int, params: Mapping[str, object], fixed: Sequence[str], replicates: int, storage: str) -> list[list[str]]:
    """One job per seed: the fixed overrides, the trial's params, its number and the study's storage."""
    chosen = [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    return [[*fixed, *chosen, f"search.trial={number}", f"search.storage='{storage}'", f"trainer.seed={seed}"]
            for seed in range(replicates)]


def unfinished_trials(study: optuna.Study) -> list[optuna.trial.Trial]:
    """Trials a killed command left RUNNING: launched again under their own numbers, their finished seeds reused."""
    return [optuna.trial.Trial(study, t._trial_id) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def trials_done(study: optuna.Study) -> int:
    """Trials that count toward n_trials: completed or pruned (a failed trial is tried anew)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def outcome(returns: Sequence[JobReturn]) -> tuple[TrialState, float | None]:
    """The trial's state and objective from its seeds' return values (train()'s final metrics)."""
    metrics = [r.return_value if r.status == JobStatus.COMPLETED else None for r in returns]
    if any(not m or OBJECTIVE not in m for m in metrics):
        return TrialState.FAIL, None
    if any(PRUNED_AT in m for m in metrics):
        return TrialState.PRUNED, None
    return TrialState.COMPLETE, statistics.fmean(m[OBJECTIVE] for m in metrics)


def epoch_objective(client: MlflowClient, experiment_id: str, study: str, number: int) -> dict[int, float]:
    """The trial's objective at each epoch (mean over its seeds' FINISHED runs), for the pruning rule's medians.

    A trial whose seeds were all reused from a twin trial (the same config) has
    no runs of its own: it adds nothing, its twin counts already.
    """
    runs = client.search_runs([experiment_id], f"tags.`{TAG_STUDY}` = '{study}' and tags.`{TAG_TRIAL}` = '{number}' "
                              f"and attributes.status = 'FINISHED'", max_results=1000)
    histories = history.metric_histories(client, [r.info.run_id for r in runs], (OBJECTIVE,))
    curves = [by_key[OBJECTIVE] for by_key in histories.values()]
    steps = set.intersection(*(set(c) for c in curves)) if curves else set()
    return {step: statistics.fmean(c[step] for c in curves) for step in sorted(steps)}


def tell(study: optuna.Study, trial: optuna.trial.Trial, returns: Sequence[JobReturn], client: MlflowClient,
         experiment_id: str) -> TrialState:
    """Tell Optuna how the trial went; a completed one first reports its per-epoch objective."""
    state, value = outcome(returns)
    if state == TrialState.COMPLETE:
        for step, v in epoch_objective(client, experiment_id, study.study_name, trial.number).items():
            trial.report(v, step)
    study.tell(trial, value, state=state, skip_if_finished=True)
    return state


# --- the sweep ---------------------------------------------------------------------------


def sweep_callback(hydra_context):
    """The sweep's SweepCallback, to hand it the job count and the keys that name runs (or None)."""
    from mlp_sweep.sweep import SweepCallback

    callbacks = getattr(getattr(hydra_context, "callbacks", None), "callbacks", [])
    return next((c for c in callbacks if isinstance(c, SweepCallback)), None)


def record_earlier_runs(client: MlflowClient, experiment_id: str, parent_run_id: str, study: str) -> None:
    """List the study's runs from earlier commands on this sweep's parent, so its report covers the whole study."""
    runs = client.search_runs([experiment_id], f"tags.`{TAG_STUDY}` = '{study}' and tags.`{tracking.TAG_PARENT}` != "
                              f"'{parent_run_id}'", max_results=5000)
    resume.record_reuse(parent_run_id, [r for r in runs if r.info.status == "FINISHED" or TAG_PRUNED in r.data.tags])


def sweep(sweeper, arguments: Sequence[str]) -> list[Sequence[JobReturn]]:
    """The search, or one ``error:`` line for a search it refuses (the sweep's parent run then ends FAILED).

    Hydra would print a traceback for the refusal and leave the parent run open.
    """
    try:
        return run_search(sweeper, arguments)
    except MlpSweepError as e:
        callback = sweep_callback(sweeper.hydra_context)
        if callback is not None:
            callback.end_parent_run("FAILED", str(e))
        sys.exit(f"error: {e}")


def run_search(sweeper, arguments: Sequence[str]) -> list[Sequence[JobReturn]]:
    """Ask for trials in batches of ``n_jobs``, launch each trial's seeds, tell the outcomes."""
    cfg = sweeper.config
    space, fixed = parse_space(sweeper.params or {}, arguments)
    if not space:
        raise ConfigError("the search has no space: give hydra.sweeper.params sweeps, e.g. "
                          "optimizer.lr: tag(log, interval(1e-4, 1e-1))")
    storage = storage_url(cfg)
    study = open_study(cfg.search.study_name, storage, cfg.search.sampler_seed, space)
    replicates = cfg.search.replicates
    client = MlflowClient(tracking.resolve_uri(cfg.tracking.uri))
    experiment_id = tracking.use_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    pending = unfinished_trials(study)
    remaining = max(0, sweeper.n_trials - trials_done(study))
    remaining = max(remaining, len(pending))
    callback = sweep_callback(sweeper.hydra_context)
    if callback is not None:
        callback.total, callback.varying = remaining * replicates, [*space, "search.trial"]
        if callback.parent_run_id:
            client.set_tag(callback.parent_run_id, TAG_STUDY, study.study_name)
            client.set_tag(callback.parent_run_id, TAG_STORAGE, storage)
            record_earlier_runs(client, experiment_id, callback.parent_run_id, study.study_name)
    log.info("study %s in %s: %d trial(s) done, %d to run, %d seed(s) each", study.study_name, storage,
             trials_done(study), remaining, replicates)
    Path(cfg.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
    returns, job_idx = [], 0
    while remaining > 0:
        trials = [pending.pop(0) if pending else study.ask(dict(space)) for _ in range(min(sweeper.n_jobs, remaining))]
        batch = [job for t in trials for job in trial_jobs(t.number, t.params, fixed, replicates, storage)]
        sweeper.validate_batch_is_legal(batch)
        results = sweeper.launcher.launch(batch, initial_job_idx=job_idx)
        for i, trial in enumerate(trials):
            tell(study, trial, results[i * replicates:(i + 1) * replicates], client, experiment_id)
        job_idx, remaining = job_idx + len(batch), remaining - len(trials)
        returns.append(results)
    return returns


# --- pruning, in each job ----------------------------------------------------------------


class MedianStop:
    """The median stopping rule for one seed run, read from the study's storage at each epoch."""

    def __init__(self, storage: str, study: str, grace_epochs: int):
        self.study = optuna.load_study(study_name=study, storage=storage)
        self.grace_epochs = grace_epochs

    def __call__(self, epoch: int, val_accuracy: float) -> bool:
        """Whether to stop after this (1-based) epoch."""
        if epoch < self.grace_epochs:
            return False
        done = [t.intermediate_values[epoch] for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if epoch in t.intermediate_values]
        return bool(done) and val_accuracy < statistics.median(done)


def stop_rule(cfg: DictConfig) -> Callable[[int, float], bool] | None:
    """The pruning rule for a job of a search with ``search.pruning=true``; None otherwise."""
    s = cfg.search
    if not s.pruning or s.trial is None:
        return None
    return MedianStop(storage_url(cfg), s.study_name, s.grace_epochs)


def run_tags(cfg: DictConfig) -> dict[str, str]:
    """The trial and study of a search's job, for its run."""
    if cfg.search.trial is None:
        return {}
    return {TAG_TRIAL: str(cfg.search.trial), TAG_STUDY: cfg.search.study_name}


def end_pruned(name: str, epoch: int) -> None:
    """End the active run as pruned: KILLED, with the epoch it stopped at."""
    mlflow.set_tag(TAG_PRUNED, str(epoch))
    mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
    print(f"{name}: pruned after epoch {epoch} (below the median of the completed trials)", flush=True)
