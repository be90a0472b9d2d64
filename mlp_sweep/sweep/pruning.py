"""A search's pruning rule, asked by each of its jobs after every epoch (``search.pruner``).

- ``median``: from epoch ``search.grace_epochs`` on, a seed run whose validation
  accuracy at epoch e is below the median of the completed trials' objective at
  epoch e stops.
- ``hyperband``: Optuna's ``HyperbandPruner`` (successive halving over several
  brackets), its minimum resource ``search.grace_epochs`` and its maximum
  ``trainer.epochs``. It judges seed runs, not trials: each seed run is a trial
  of a companion study (``<study>:runs``) in the same storage, reporting its
  validation accuracy each epoch, since a trial's seeds run side by side and
  Optuna takes one report per step.

Both read the storage, never process memory, so they hold across joblib
workers too. The training core ends a run its rule stopped KILLED with the tag
``mlp_sweep.pruned`` = epoch: nothing that looks for FINISHED runs (resume, a
user's query, the UI's filters) takes it for a whole run, the sweep does not
count it as a failure, and its trial is told PRUNED.
"""

import statistics

import optuna
from omegaconf import DictConfig
from optuna.trial import TrialState

from mlp_sweep import policy
from mlp_sweep.sweep.search import storage_url

RUNS_STUDY_SUFFIX = ":runs"  # the companion study whose trials are a search's seed runs (hyperband)


class MedianStop:
    """The median stopping rule for one seed run, read from the study's storage at each epoch."""

    def __init__(self, storage: str, study: str, grace_epochs: int):
        self.study = optuna.load_study(study_name=study, storage=storage)
        self.grace_epochs = grace_epochs

    def __call__(self, epoch: int, val_accuracy: float) -> bool:
        """Whether to stop after this (1-based) epoch."""
        if epoch < self.grace_epochs:
            return False
        done = [
            t.intermediate_values[epoch]
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if epoch in t.intermediate_values
        ]
        return bool(done) and val_accuracy < statistics.median(done)


class HyperbandStop:
    """Optuna's Hyperband pruner for one seed run, a trial of the search's companion study of runs.

    The trial is asked for at the first epoch, so a job that trains nothing (its
    grid point already held) leaves none behind.
    """

    def __init__(self, storage: str, study: str, min_epochs: int, max_epochs: int):
        self.storage, self.study_name = storage, study + RUNS_STUDY_SUFFIX
        self.pruner = optuna.pruners.HyperbandPruner(min_resource=min_epochs, max_resource=max_epochs)
        self.max_epochs = max_epochs
        self.runs: optuna.Study | None = None
        self.trial: optuna.trial.Trial | None = None

    def __call__(self, epoch: int, val_accuracy: float) -> bool:
        """Whether to stop after this (1-based) epoch; the last epoch completes the run's trial."""
        if self.trial is None:
            self.runs = optuna.create_study(
                study_name=self.study_name,
                storage=self.storage,
                direction="maximize",
                load_if_exists=True,
                pruner=self.pruner,
            )
            self.trial = self.runs.ask()
        self.trial.report(val_accuracy, epoch)
        if epoch >= self.max_epochs:
            self.runs.tell(self.trial, val_accuracy)
            return False
        if self.trial.should_prune():
            self.runs.tell(self.trial, state=TrialState.PRUNED)
            return True
        return False


def stop_rule(cfg: DictConfig) -> MedianStop | HyperbandStop | None:
    """The pruning rule for a job of a search that prunes (``search.pruner``); None otherwise."""
    s, pruner = cfg.search, policy.pruner(cfg.search)
    if s.trial is None or pruner == "none":
        return None
    if pruner == "hyperband":
        return HyperbandStop(storage_url(cfg), s.study_name, s.grace_epochs, cfg.trainer.epochs)
    return MedianStop(storage_url(cfg), s.study_name, s.grace_epochs)
