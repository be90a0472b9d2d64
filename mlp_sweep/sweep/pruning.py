"""A search's pruning rule, asked by each of its jobs after every epoch.

The median stopping rule (``search.pruning=true``): from epoch
``search.grace_epochs`` on, a seed run whose validation accuracy at epoch e is
below the median of the completed trials' objective at epoch e stops. The
rule reads the completed trials from the study's storage, never from process
memory, so it holds across joblib workers too. The training core ends a run
its rule stopped KILLED with the tag ``mlp_sweep.pruned`` = epoch: nothing that
looks for FINISHED runs (resume, a user's query, the UI's filters) takes it for
a whole run, and the sweep does not count it as a failure.
"""

import statistics

import optuna
from omegaconf import DictConfig
from optuna.trial import TrialState

from mlp_sweep.sweep.search import storage_url


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


def stop_rule(cfg: DictConfig) -> MedianStop | None:
    """The pruning rule for a job of a search with ``search.pruning=true``; None otherwise."""
    s = cfg.search
    if not s.pruning or s.trial is None:
        return None
    return MedianStop(storage_url(cfg), s.study_name, s.grace_epochs)
