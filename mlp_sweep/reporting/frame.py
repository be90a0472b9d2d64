"""A sweep as a DataFrame: one row per run, read back from the store in a few calls.

    from mlp_sweep import load_sweep, summarize
    runs = load_sweep("sweep-20261201-101500")      # a parent run's name or id; the latest sweep if None
    table = summarize(runs)                          # one row per config: the report's statistics and front

The report is built from these two functions (:mod:`mlp_sweep.reporting.report`),
so a notebook sees exactly the numbers the report shows.
"""

import contextlib
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlp_sweep import choices, names
from mlp_sweep.choices import DEFAULT_COSTS
from mlp_sweep.errors import TrackingError
from mlp_sweep.reporting import pareto, stats, verdicts
from mlp_sweep.store import earlier, history, identity, login, resume, tracking

RUN_ID = re.compile(r"[0-9a-f]{32}")  # MLflow's run ids; anything else names a sweep by its run name
# What a run must hold, finite, to be compared. Its costs need not: a config without one is off that front.
COMPARED = ("accuracy", "val_accuracy", "test_accuracy", "test_loss", "val_loss")
CURVES = ("val_loss", "val_accuracy")  # the report's figures
CURVE_METRICS = ("epoch_time_s", *CURVES)  # what the report reads of each run's history
AT = choices.REPORT_AT  # which epoch a report compares: each run's last, or its best validation epoch
TEST_METRICS = ("test_loss", "test_accuracy")
NO_SUCH_SWEEP = (
    "no run or sweep {sweep!r} in {uri}: pass the parent run id or name of a sweep "
    "(the `mlflow ui` shows both), or leave out --sweep for the latest sweep"
)


@contextlib.contextmanager
def store_errors(uri: str):
    """MLflow's own failures (server down, bad store) as a TrackingError naming the store."""
    try:
        yield
    except MlflowException as e:
        raise TrackingError(
            f"the MLflow store {uri} failed: {e.message}; check --tracking-uri "
            "(or $MLFLOW_TRACKING_URI) and that its server is running"
        ) from e


def open_store(uri: str | None) -> tuple[MlflowClient, str]:
    """A client for the store; a local SQLite file must already exist (never create an empty one)."""
    uri = tracking.resolve_uri(uri)
    login.check_reachable(uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise TrackingError(
            f"no MLflow store at {uri.removeprefix('sqlite:///')}: pass --tracking-uri with the "
            "store the sweep wrote to (or set MLFLOW_TRACKING_URI), or run from the folder that holds mlflow.db"
        )
    return MlflowClient(tracking_uri=uri), uri


def find_sweep(client: MlflowClient, uri: str, sweep: str | None, experiment: str | None) -> Run:
    """The sweep's parent run: the one asked for, else the latest one (in the experiment, if named)."""
    experiments = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    if experiment is not None and experiment not in {e.name for e in experiments}:
        known = ", ".join(sorted(e.name for e in experiments)) or "none"
        raise TrackingError(
            f"no experiment named {experiment!r} in {uri} (it has: {known}): "
            "pass --experiment with one of these, or --tracking-uri with the store the sweep wrote to"
        )
    ids = [e.experiment_id for e in experiments if experiment in (None, e.name)]
    if sweep is None or not RUN_ID.fullmatch(sweep):  # the latest sweep, or the latest of this name
        named = f" and attributes.run_name = '{sweep}'" if sweep is not None else ""
        found = ids and client.search_runs(
            ids,
            f"tags.`{names.TAG_SWEEP}` = 'parent'{named}",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not found and sweep is not None:
            raise TrackingError(NO_SUCH_SWEEP.format(sweep=sweep, uri=uri))
        if not found:
            where = f"experiment {experiment!r}" if experiment else "any experiment"
            raise TrackingError(
                f"no sweep in {where} of {uri}: run one with `python -m mlp_sweep -m ...`, "
                "or pass --tracking-uri / --experiment where it was logged"
            )
        return found[0]
    try:
        run = client.get_run(sweep)
    except MlflowException as e:
        raise TrackingError(NO_SUCH_SWEEP.format(sweep=sweep, uri=uri)) from e
    if run.data.tags.get(names.TAG_SWEEP) != "parent":
        parent = run.data.tags.get(names.TAG_PARENT)
        hint = f"; its sweep is {parent}" if parent else ""
        raise TrackingError(
            f"run {sweep} ({run.info.run_name}) is not a sweep's parent run{hint}: pass a parent run id"
        )
    if experiment is not None and run.info.experiment_id not in ids:
        raise TrackingError(f"sweep {sweep} is not in experiment {experiment!r}: leave out --experiment or fix it")
    return run


def sweep_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """Every run of the sweep: its children, and the runs its jobs reused (finished, or still training elsewhere)."""
    runs = resume.child_runs(client, parent)
    reused = set(resume.reused_run_ids(parent)) - {r.info.run_id for r in runs}
    return runs + resume.runs_by_id(client, parent.info.experiment_id, sorted(reused))


def left_out(run: Run) -> str | None:
    """Why a run cannot be compared (unfinished, failed, pruned, metrics missing or not finite), or None."""
    tags, metrics = run.data.tags, run.data.metrics
    needed = COMPARED
    missing = [m for m in needed if m not in metrics]
    infinite = [f"{m}={metrics[m]}" for m in needed if m in metrics and not math.isfinite(metrics[m])]
    if run.info.status != "FINISHED" or names.TAG_FAILURE in tags:
        return tags.get(names.TAG_FAILURE) or (
            f"pruned after epoch {tags[names.TAG_PRUNED]}" if names.TAG_PRUNED in tags else ""
        )
    if missing or names.TAG_CONFIG_HASH not in tags:
        return f"no {', '.join(missing)}" if missing else "no config hash tag"
    return f"non-finite {', '.join(infinite)}" if infinite else None


def sweep_frame(
    client: MlflowClient, parent: Run, curves: Sequence[str] = (), at: str = "final"
) -> tuple[pd.DataFrame, dict[str, dict[str, pd.Series]]]:
    """One row per run of the sweep (its own and those it reused), and the per-epoch ``curves`` of the runs.

    Columns: ``run_id``, ``run_name``, ``status``, ``parent_run_id`` (the sweep that trained it), ``seed``,
    ``config`` (its label beside the sweep's other configs: ``mlp3-bn``, or its values), ``group`` (what its
    seeds share), ``grid_point``, ``config_hash``, ``data``, ``code``, ``left_out`` (why it cannot be compared,
    or None), ``pruned_at_epoch`` (where a search's pruner stopped it, or None), ``params.<key>``, and every
    metric at its last value except ``epoch_time_s``: the mean over its epochs. ``at="best"``: the per-epoch
    metrics at each run's best validation epoch instead (:func:`at_best`).
    """
    runs = sweep_runs(client, parent)
    keys = tuple(dict.fromkeys(["epoch_time_s", *curves, *(names.EPOCH_METRICS if at == "best" else ())]))
    histories = history.metric_histories(client, [r.info.run_id for r in runs], keys)
    series = {
        run_id: {k: pd.Series(steps, dtype=float).sort_index() for k, steps in by_key.items()}
        for run_id, by_key in histories.items()
    }
    rows = [run_row(run, series[run.info.run_id]["epoch_time_s"]) for run in runs]
    if at == "best":
        rows = [at_best(row, series[row["run_id"]]) for row in rows]
    if not rows:
        return pd.DataFrame(columns=["run_id", "left_out", "group", "config"]), series
    frame = pd.DataFrame(rows)
    frame.insert(frame.columns.get_loc("group"), "config", frame["group"].map(stats.group_labels(frame)))
    return frame, series


def at_best(row: dict, curves: dict[str, pd.Series]) -> dict:
    """A run's row at its best validation epoch (:func:`mlp_sweep.store.earlier.best_epoch`).

    The test metrics stay only where early stopping restored that epoch's weights before the test set
    was touched; a run that trained on has no test result for its best epoch, so they become NaN.
    """
    best = earlier.best_epoch(row.get(names.BEST_EPOCH), curves.get("val_loss", pd.Series(dtype=float)).to_dict())
    at = {k: curves[k].get(int(best), math.nan) for k in names.EPOCH_METRICS if k != "epoch_time_s" and k in curves}
    restored = row.get("params.trainer.early_stopping.patience") not in (None, "None")
    return {**row, **at, names.BEST_EPOCH: best, **({} if restored else dict.fromkeys(TEST_METRICS, math.nan))}


def run_row(run: Run, epoch_times: pd.Series) -> dict:
    """A run as one row of :func:`sweep_frame`."""
    tags, params = run.data.tags, run.data.params
    metrics = {**run.data.metrics, "epoch_time_s": epoch_times.mean() if len(epoch_times) else math.nan}
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "parent_run_id": tags.get(names.TAG_PARENT),
        "seed": int(tags[names.TAG_SEED]) if names.TAG_SEED in tags else None,
        "group": identity.replicate_group(tags),
        "grid_point": tags.get(names.TAG_GRID_POINT),
        "config_hash": tags.get(names.TAG_CONFIG_HASH),
        "data": tags.get(names.TAG_DATASET_SHA, "")[:12],
        "code": tags.get(names.TAG_CODE, "")[:12],
        "left_out": left_out(run),
        names.PRUNED_AT: int(tags[names.TAG_PRUNED]) if names.TAG_PRUNED in tags else None,
        **{f"params.{k}": v for k, v in params.items()},
        **metrics,
    }


def load_sweep(
    sweep: str | None = None, tracking_uri: str | None = None, experiment: str | None = None, at: str = "final"
) -> pd.DataFrame:
    """A sweep's runs as a DataFrame, one row per run (:func:`sweep_frame`), read through the report's bulk reads.

    ``sweep``: its parent run's id or name (``sweep-20261201-101500``); None for the latest sweep.
    ``tracking_uri``: as ``tracking.uri`` (None: $MLFLOW_TRACKING_URI, else ./mlflow.db).
    ``at``: "final" (each run's last epoch) or "best" (its best validation epoch).
    """
    client, uri = open_store(tracking_uri)
    with store_errors(uri):
        return sweep_frame(client, find_sweep(client, uri, sweep, experiment), at=at)[0]


def comparable(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that can be compared: finished, with every compared metric finite."""
    return runs[runs["left_out"].isna()].reset_index(drop=True)


def summarize(
    runs: pd.DataFrame,
    holm: bool = True,
    costs: Sequence[str] = DEFAULT_COSTS,
    margin: float | None = None,
    race: verdicts.RaceVerdicts | None = None,
) -> pd.DataFrame:
    """One row per config, best first: the report's statistics (:func:`mlp_sweep.reporting.stats.summarize`)
    and its accuracy-cost front (``front`` and ``front_<cost>`` columns, :mod:`mlp_sweep.reporting.pareto`).

    ``margin`` (points of validation accuracy) adds each config's verdict: best, worse, equivalent ±margin or
    undecided (:mod:`mlp_sweep.reporting.verdicts`); ``race``: the verdicts a race's configs left it with."""
    kept = comparable(runs)
    if kept.empty:
        raise ValueError("no run of this sweep can be compared: every one is unfinished, failed or pruned")
    table = stats.summarize(kept, holm, margin, race)
    for cost in costs:  # a cost the summary does not carry: its mean per config, NaN where no run logged it
        if cost not in table and f"{cost}_mean" not in table:
            means = kept.groupby("group")[cost].mean() if cost in kept else pd.Series(dtype=float)
            table[f"{cost}_mean"] = table["group"].map(means).astype(float)
    return pareto.front_columns(table, costs)
