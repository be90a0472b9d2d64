"""The figures a search adds to its sweep's report, read from its Optuna study.

The comparison table (:mod:`mlp_sweep.reporting.report`) already ranks the search's
configs by mean validation accuracy over their seeds, with a 95% interval and
the test against the best. A search's parent run names its study (tags from
:func:`mlp_sweep.sweep.search.record_study`); from it come the objective of each
trial with the best so far, the params against the objective in parallel
coordinates, and Optuna's parameter importances where there are enough
completed trials to compute them.
"""

import logging
import warnings
from pathlib import Path

import optuna
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


def write_figures(parent: Run, out_dir: Path) -> list[str]:
    """Write the study's figures into ``out_dir``; their file names (none for a sweep that is not a search)."""
    name, storage = parent.data.tags.get(names.TAG_STUDY), parent.data.tags.get(names.TAG_STORAGE)
    if not name or not storage:
        return []
    study = optuna.load_study(study_name=name, storage=storage)
    written = []
    for file, plot in FIGURES.items():
        try:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = plot(study)
        except (ValueError, RuntimeError) as e:  # e.g. importances of fewer than two completed trials
            log.info("no %s for study %s: %s", file, name, e)
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        figures.save_figure(figure, out_dir / file)
        written.append(file)
    return written
