"""The figures a search adds to its sweep's report, read from its Optuna study.

The comparison table (:mod:`mlp_sweep.reporting.report`) already ranks the search's
configs by mean validation accuracy over their seeds, with a 95% interval and
the test against the best. A search's parent run names its study (tags from
:func:`mlp_sweep.sweep.search.record_study`); from it come the objective of each
trial with the best so far, the params against the objective in parallel
coordinates, and Optuna's parameter importances where there are enough
completed trials to compute them. A study of several objectives adds Optuna's
Pareto-front plot of its trials and the list of the front's trials with their
configs (``search_front.csv``); its other figures show the first objective.
"""

import logging
import warnings
from pathlib import Path

import optuna
import pandas as pd
from mlflow.entities import Run
from optuna.visualization import matplotlib as optuna_plots

from mlp_sweep import names
from mlp_sweep.reporting import figures

log = logging.getLogger(__name__)

FIGURES = {
    "search_history.png": optuna_plots.plot_optimization_history,  # objective by trial, best so far
    "search_parallel.png": optuna_plots.plot_parallel_coordinate,  # params vs objective
    "search_importances.png": optuna_plots.plot_param_importances,  # fANOVA: needs completed trials
}


def load_study(parent: Run) -> optuna.Study | None:
    """The study a search's parent run names; None for a sweep that is not a search."""
    name, storage = parent.data.tags.get(names.TAG_STUDY), parent.data.tags.get(names.TAG_STORAGE)
    return optuna.load_study(study_name=name, storage=storage) if name and storage else None


def objectives(study: optuna.Study) -> list[str]:
    """The study's objectives by name (as its search pinned them)."""
    return [o.split(":")[0] for o in study.user_attrs.get(names.OBJECTIVES_ATTR, [f"{names.OBJECTIVE}:maximize"])]


def front_trials(study: optuna.Study) -> pd.DataFrame:
    """The trials on the study's Pareto front (Optuna's best trials), best first on the first objective:
    number, each objective (the mean over its seeds), and the trial's params."""
    goals = objectives(study)
    rows = [{"trial": t.number, **dict(zip(goals, t.values, strict=True)), **t.params} for t in study.best_trials]
    first_up = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return pd.DataFrame(rows).sort_values(goals[0], ascending=not first_up, ignore_index=True)


def write_figures(parent: Run, out_dir: Path) -> list[str]:
    """Write the study's figures (and, for several objectives, its front's trials) into ``out_dir``; their file
    names (none for a sweep that is not a search)."""
    study = load_study(parent)
    if study is None:
        return []
    goals = objectives(study)
    plots = dict(FIGURES)
    if len(goals) > 1:  # Optuna's single-objective plots need a target: the first objective
        plots = {
            "search_pareto.png": lambda s: optuna_plots.plot_pareto_front(s, target_names=goals),
            **{
                f: (lambda s, plot=plot: plot(s, target=lambda t: t.values[0], target_name=goals[0]))
                for f, plot in plots.items()
            },
        }
    written = []
    for file, plot in plots.items():
        try:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.filterwarnings("ignore", "PedAnovaImportanceEvaluator")  # a target of our own: meant
                axes = plot(study)
        except (ValueError, RuntimeError) as e:  # e.g. importances of fewer than two completed trials
            log.info("no %s for study %s: %s", file, study.study_name, e)
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        figures.save_figure(figure, out_dir / file)
        written.append(file)
    if len(goals) > 1 and study.best_trials:
        front_trials(study).to_csv(out_dir / "search_front.csv", index=False)
        written.append("search_front.csv")
    return written
