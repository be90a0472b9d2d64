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
number (the run identity of :mod:`mlp_sweep.store.resume` reuses its finished seeds).

A completed trial reports its per-epoch objective to the study, for the
pruning rule of :mod:`mlp_sweep.sweep.pruning`. Nothing here imports TensorFlow.

The Hydra plugin (hydra_plugins/mlp_sweep_search) is a thin shim over
:func:`sweep`.
"""

import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.utils import JobReturn, JobStatus
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.trial import TrialState

from mlp_sweep import compat, names, policy
from mlp_sweep.errors import ConfigError, MlpSweepError
from mlp_sweep.store import history, resume, tracking
from mlp_sweep.sweep import refusal

log = logging.getLogger(__name__)

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
            raise ConfigError(
                "trainer.seed is set by the search (seeds 0..search.replicates-1): "
                "drop trainer.seed and set search.replicates"
            )
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


def open_study(
    name: str,
    storage: str,
    seed: int,
    space: Mapping[str, BaseDistribution],
    objectives: Sequence[str] = (names.OBJECTIVE,),
    directions: Sequence[str] = ("maximize",),
) -> optuna.Study:
    """Create or continue the study; refuse one that was searched over another space or for other objectives.

    Optuna would load a study of the same name whatever its directions: the
    study pins its space and objectives in user attributes, and a command that
    asks for others is refused before anything trains. The sampler's seed is
    offset by the trials the study holds: a continued study restarted at the
    bare seed would propose its first trials' configs again. TPE is Optuna's
    multi-objective sampler too.
    """
    study = optuna.create_study(study_name=name, storage=storage, directions=list(directions), load_if_exists=True)
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    wanted = {k: distribution_to_json(d) for k, d in space.items()}
    pinned = {
        names.SPACE_ATTR: (wanted, "another space"),
        names.OBJECTIVES_ATTR: ([f"{o}:{d}" for o, d in zip(objectives, directions, strict=True)], "other objectives"),
    }
    for attr, (value, what) in pinned.items():
        held = study.user_attrs.get(attr)
        if held is None:
            study.set_user_attr(attr, value)
        elif held != value:
            raise ConfigError(
                f"study {name!r} in {storage} was searched {'over' if attr == names.SPACE_ATTR else 'for'} {what} "
                f"({changes(held, value)}): name a new study, e.g. search.study_name={name}-2"
            )
    return study


def changes(held, wanted) -> str:
    """What differs between a study's pinned space or objectives and a command's: ``optimizer.lr differ``."""
    if isinstance(held, dict):
        return ", ".join(sorted(k for k in held.keys() | wanted.keys() if held.get(k) != wanted.get(k))) + " differ"
    return f"{', '.join(held)}, not {', '.join(wanted)}"


# --- trials and their jobs -------------------------------------------------------------


def trial_jobs(
    number: int, params: Mapping[str, object], fixed: Sequence[str], replicates: int, storage: str
) -> list[list[str]]:
    """One job per seed: the fixed overrides, the trial's params, its number and the study's storage."""
    chosen = [f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    return [
        [*fixed, *chosen, f"search.trial={number}", f"search.storage='{storage}'", f"trainer.seed={seed}"]
        for seed in range(replicates)
    ]


def unfinished_trials(study: optuna.Study) -> list[optuna.trial.Trial]:
    """Trials a killed command left RUNNING: launched again under their own numbers, their finished seeds reused."""
    return [
        optuna.trial.Trial(study, compat.optuna_trial_id(t))
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ]


def trials_done(study: optuna.Study) -> int:
    """Trials that count toward n_trials: completed or pruned (a failed trial is tried anew)."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def outcome(
    returns: Sequence[JobReturn], objectives: Sequence[str] = (names.OBJECTIVE,)
) -> tuple[TrialState, list[float] | None]:
    """The trial's state and objectives (each the mean over its seeds) from its seeds' return values
    (train()'s final metrics)."""
    metrics = [r.return_value if r.status == JobStatus.COMPLETED else None for r in returns]
    if any(not m or any(o not in m for o in objectives) for m in metrics):
        return TrialState.FAIL, None
    if any(names.PRUNED_AT in m for m in metrics):
        return TrialState.PRUNED, None
    return TrialState.COMPLETE, [statistics.fmean(m[o] for m in metrics) for o in objectives]


def epoch_objective(client: MlflowClient, experiment_id: str, study: str, number: int) -> dict[int, float]:
    """The trial's objective at each epoch (mean over its seeds' FINISHED runs), for the pruning rule's medians.

    A trial whose seeds were all reused from a twin trial (the same config) has
    no runs of its own: it adds nothing, its twin counts already.
    """
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{names.TAG_STUDY}` = '{study}' and tags.`{names.TAG_TRIAL}` = '{number}' "
        f"and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    histories = history.metric_histories(client, [r.info.run_id for r in runs], (names.OBJECTIVE,))
    curves = [by_key[names.OBJECTIVE] for by_key in histories.values()]
    steps = set.intersection(*(set(c) for c in curves)) if curves else set()
    return {step: statistics.fmean(c[step] for c in curves) for step in sorted(steps)}


def tell(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    returns: Sequence[JobReturn],
    client: MlflowClient,
    experiment_id: str,
) -> TrialState:
    """Tell Optuna how the trial went; a completed one of a one-objective study first reports its per-epoch
    objective (the median rule's source: Optuna keeps no intermediate values for several objectives)."""
    objectives = [o.split(":")[0] for o in study.user_attrs.get(names.OBJECTIVES_ATTR, [names.OBJECTIVE])]
    state, values = outcome(returns, objectives)
    if state == TrialState.COMPLETE and len(objectives) == 1:
        for step, v in epoch_objective(client, experiment_id, study.study_name, trial.number).items():
            trial.report(v, step)
    study.tell(trial, values, state=state, skip_if_finished=True)
    return state


# --- the sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchPlan:
    """What a search command will do, read from its config and its study before anything trains."""

    study: optuna.Study
    storage: str
    space: dict[str, BaseDistribution]
    fixed: list[str]  # the overrides every job gets
    pending: list[optuna.trial.Trial]  # trials a killed command left RUNNING
    remaining: int  # trials to run in this command
    replicates: int

    @property
    def jobs(self) -> int:
        return self.remaining * self.replicates

    @property
    def varying(self) -> list[str]:
        """The keys that name the search's runs: the space's, and the trial's number."""
        return [*self.space, "search.trial"]


def open_search(cfg: DictConfig, arguments: Sequence[str]) -> SearchPlan:
    """Open (or continue) the study for this command; refuse a search it cannot run, with the fix.

    The sweep callback asks it for the job count and the keys that name runs; the
    sweeper asks it again to run the search: one reading of the same config and study.
    """
    space, fixed = parse_space(cfg.hydra.sweeper.get("params") or {}, arguments)
    if not space:
        raise ConfigError(
            "the search has no space: give hydra.sweeper.params sweeps, e.g. "
            "optimizer.lr: tag(log, interval(1e-4, 1e-1))"
        )
    storage = storage_url(cfg)
    study = open_study(
        cfg.search.study_name,
        storage,
        cfg.search.sampler_seed,
        space,
        list(cfg.search.objectives),
        policy.directions(cfg.search),
    )
    pending = unfinished_trials(study)
    remaining = max(cfg.hydra.sweeper.n_trials - trials_done(study), len(pending), 0)
    return SearchPlan(study, storage, space, fixed, pending, remaining, cfg.search.replicates)


def record_study(client: MlflowClient, experiment_id: str, parent_run_id: str, cfg: DictConfig) -> None:
    """Name the study on the sweep's parent run, and list the study's runs from earlier commands there,
    so that the report covers the whole study."""
    study, storage = cfg.search.study_name, storage_url(cfg)
    client.set_tag(parent_run_id, names.TAG_STUDY, study)
    client.set_tag(parent_run_id, names.TAG_STORAGE, storage)
    runs = client.search_runs(
        [experiment_id],
        f"tags.`{names.TAG_STUDY}` = '{study}' and tags.`{names.TAG_PARENT}` != '{parent_run_id}'",
        max_results=5000,
    )
    resume.record_reuse(
        client, parent_run_id, [r for r in runs if r.info.status == "FINISHED" or names.TAG_PRUNED in r.data.tags]
    )


def sweep(sweeper, arguments: Sequence[str]) -> list[Sequence[JobReturn]]:
    """The search, or one ``error:`` line for a search it refuses (the sweep's parent run then ends FAILED).

    Hydra would print a traceback for the refusal and leave the parent run open.
    """
    try:
        return run_search(sweeper, arguments)
    except MlpSweepError as e:
        refusal.refuse(sweeper, e)


def run_search(sweeper, arguments: Sequence[str]) -> list[Sequence[JobReturn]]:
    """Ask for trials in batches of ``n_jobs``, launch each trial's seeds, tell the outcomes."""
    cfg = sweeper.config
    search_plan = open_search(cfg, arguments)
    client, experiment_id = tracking.open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    study, pending, remaining = search_plan.study, list(search_plan.pending), search_plan.remaining
    log.info(
        "study %s in %s: %d trial(s) done, %d to run, %d seed(s) each",
        study.study_name,
        search_plan.storage,
        trials_done(study),
        remaining,
        search_plan.replicates,
    )
    Path(cfg.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
    returns, job_idx = [], 0
    while remaining > 0:
        trials = [
            pending.pop(0) if pending else study.ask(dict(search_plan.space))
            for _ in range(min(sweeper.n_jobs, remaining))
        ]
        batch = [
            job
            for t in trials
            for job in trial_jobs(t.number, t.params, search_plan.fixed, search_plan.replicates, search_plan.storage)
        ]
        sweeper.validate_batch_is_legal(batch)
        results = sweeper.launcher.launch(batch, initial_job_idx=job_idx)
        for i, trial in enumerate(trials):
            tell(
                study,
                trial,
                results[i * search_plan.replicates : (i + 1) * search_plan.replicates],
                client,
                experiment_id,
            )
        job_idx, remaining = job_idx + len(batch), remaining - len(trials)
        returns.append(results)
    return returns
