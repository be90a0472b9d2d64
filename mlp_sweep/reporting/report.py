"""Compare a sweep's configs side by side, from what MLflow holds.

    mlp-sweep report                                   # the latest sweep in the store
    mlp-sweep report --sweep <parent run id> --out reports/mine
    mlp-sweep report --experiment mlp_sweep --tracking-uri http://localhost:5000

Prints the table, writes it as Markdown and CSV with two figures into the
output folder, and logs the same files under ``report/`` on the sweep's
parent run. Every multirun ends by calling :func:`make_report`.
"""

import argparse
import contextlib
import math
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlp_sweep import names
from mlp_sweep.errors import MlpSweepError, TrackingError
from mlp_sweep.reporting import figures, search_figures, stats
from mlp_sweep.store import history, identity, resume, tracking

ARTIFACT_DIR = names.REPORT_DIR  # on the parent run
FILES = ("comparison.md", "comparison.csv", "val_curves.png", "test_accuracy.png")
CURVES = ("val_loss", "val_accuracy")
CURVE_METRICS = (*CURVES, "epoch_time_s")  # what the report reads of each run's history
TEXT_COLUMNS = ("config", "model", "hidden layers", "BN", "optimizer", "vs best (Welch)", "other")  # left-aligned


@dataclass
class Report:
    parent: Run
    summary: pd.DataFrame  # numbers, one row per config (the CSV)
    table: pd.DataFrame  # the strings shown
    notes: list[str]
    out_dir: Path
    holm: bool = True

    def text(self) -> str:
        """The console version: header, table, notes, footnote, where the files went."""
        lines = [
            header(self.parent, self.summary),
            "",
            self.table.to_string(index=False),
            "",
            *self.notes,
            textwrap.fill(stats.footnote(self.holm).replace("`", ""), width=110),
            f"Written to {self.out_dir}/ and logged to run {self.parent.info.run_id} under {ARTIFACT_DIR}/.",
        ]
        return "\n".join(lines)


def header(parent: Run, summary: pd.DataFrame) -> str:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(parent.info.start_time / 1000))
    return (
        f"Sweep {parent.info.run_name} (run {parent.info.run_id}, started {started}): "
        f"{len(summary)} configs from {int(summary['n'].sum())} runs"
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
    tracking.check_reachable(uri)
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
    if sweep is None:
        found = ids and client.search_runs(
            ids, f"tags.`{names.TAG_SWEEP}` = 'parent'", order_by=["attributes.start_time DESC"], max_results=1
        )
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
        raise TrackingError(
            f"no run {sweep!r} in {uri}: pass the parent run id of a sweep "
            "(the `mlflow ui` shows it), or leave out --sweep for the latest sweep"
        ) from e
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
    needed = [m for m in (*stats.METRICS, "val_loss") if m != "epoch_time_s"]
    missing = [m for m in needed if m not in metrics]
    infinite = [f"{m}={metrics[m]}" for m in needed if m in metrics and not math.isfinite(metrics[m])]
    if run.info.status != "FINISHED" or names.TAG_FAILURE in tags:
        return tags.get(names.TAG_FAILURE) or (
            f"pruned after epoch {tags[names.TAG_PRUNED]}" if names.TAG_PRUNED in tags else ""
        )
    if missing or names.TAG_CONFIG_HASH not in tags:
        return f"no {', '.join(missing)}" if missing else "no config hash tag"
    return f"non-finite {', '.join(infinite)}" if infinite else None


def runs_frame(
    client: MlflowClient, runs: list[Run]
) -> tuple[pd.DataFrame, dict[str, dict[str, pd.Series]], list[str]]:
    """Finished runs with finite metrics as one row each, their validation curves, and notes on the runs left out."""
    kept, notes = [], []
    for run in runs:
        why = left_out(run)
        if why is None:
            kept.append(run)
        else:
            notes.append(f"Left out {run.info.run_name} ({run.info.status}{': ' + why[:120] if why else ''}).")
    histories = history.metric_histories(client, [r.info.run_id for r in kept], CURVE_METRICS)
    curves = {
        run_id: {k: pd.Series(steps, dtype=float).sort_index() for k, steps in by_key.items()}
        for run_id, by_key in histories.items()
    }
    rows = [
        {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "group": identity.replicate_group(run.data.tags),
            "data": run.data.tags.get(names.TAG_DATASET_SHA, "")[:12],
            "code": run.data.tags.get(names.TAG_CODE, "")[:12],
            **{f"params.{k}": v for k, v in run.data.params.items()},
            **{m: run.data.metrics.get(m) for m in stats.METRICS},
            "val_loss": run.data.metrics["val_loss"],
            "epoch_time_s": curves[run.info.run_id]["epoch_time_s"].mean(),
        }
        for run in kept
    ]
    return pd.DataFrame(rows), curves, notes


def seed_notes(runs: pd.DataFrame) -> list[str]:
    """Repeats that share a seed are not independent samples: say so."""
    if "params.trainer.seed" not in runs:
        return []
    counts = runs.groupby(["group", "params.trainer.seed"]).size()
    return [
        f"Note: config {h} has {n} runs with seed {s}; they count as {n} samples."
        for (h, s), n in counts[counts > 1].items()
    ]


def identity_notes(runs: pd.DataFrame) -> list[str]:
    """A sweep whose runs saw different data or code: its rows are split by them, and the reader must know."""
    return [
        f"Note: this sweep holds runs of {runs[column].nunique()} {what} ({', '.join(sorted(runs[column].unique()))}); "
        f"runs are pooled only within one, and the column `other` tells the rows apart."
        for column, what in (("data", "data checksums"), ("code", "code fingerprints"))
        if runs[column].nunique() > 1
    ]


def markdown(report: Report) -> str:
    return "\n".join(
        [
            f"# Comparison of sweep {report.parent.info.run_name}",
            "",
            header(report.parent, report.summary) + ".",
            "",
            report.table.to_markdown(
                index=False,
                disable_numparse=True,
                colalign=["left" if c in TEXT_COLUMNS else "right" for c in report.table.columns],
            ),
            "",
            *(f"{n}  " for n in report.notes),
            "",
            stats.footnote(report.holm),
            "",
            "![validation curves](val_curves.png)",
            "",
            "![test accuracy](test_accuracy.png)",
            "",
        ]
    )


BARS = 30  # configs in the test-accuracy figure; the table and the CSV hold every one


def write_figures(report: Report, curves: dict[str, dict[str, pd.Series]], runs: pd.DataFrame) -> None:
    """The validation curves of the configs (the best highlighted) and the test accuracy of the best :data:`BARS`."""
    by_config = {}
    for label, h in zip(report.summary["config"], report.summary["group"], strict=False):
        ids = runs.loc[runs["group"] == h, "run_id"]
        by_config[label] = {m: pd.concat({i: curves[i][m] for i in ids}, axis=1).sort_index() for m in CURVES}
    s = report.summary
    unknown = pd.Series("?", index=s.index)
    keys = {
        label: (str(model), str(reg))
        for label, model, reg in zip(
            s["config"], s.get("model.name", unknown), s.get("reg.name", unknown), strict=False
        )
    }
    figures.save_figure(
        figures.overlaid_curves(by_config, CURVES, f"sweep {report.parent.info.run_name}", keys),
        report.out_dir / "val_curves.png",
    )
    top = s.head(BARS)
    shown = (
        f"the best {len(top)} of {len(s)} configs by validation (all in comparison.csv)"
        if len(s) > BARS
        else "rows in validation order"
    )
    figures.save_figure(
        figures.errorbars(
            [f"{c} (n={n})" for c, n in zip(top["config"], top["n"], strict=False)],
            100 * top["test_accuracy_mean"],
            100 * top["test_accuracy_std"],
            f"test accuracy % (mean over seeds, bars ± 1 std; {shown})",
            f"sweep {report.parent.info.run_name}: test accuracy per config",
        ),
        report.out_dir / "test_accuracy.png",
    )


def make_report(
    sweep: str | None = None,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    out_dir: str | Path | None = None,
    holm: bool = True,
    client: MlflowClient | None = None,
) -> Report:
    """Build the comparison of one sweep, write its files and log them on the parent run.

    ``client``: the store a sweep already holds open; else the one ``tracking_uri`` names is opened.
    """
    client, uri = (client, client.tracking_uri) if client is not None else open_store(tracking_uri)
    with store_errors(uri):
        parent = find_sweep(client, uri, sweep, experiment)
        runs, curves, notes = runs_frame(client, sweep_runs(client, parent))
        if runs.empty:
            raise TrackingError(
                f"sweep {parent.info.run_name} ({parent.info.run_id}) has no finished runs to compare"
                + (f": {' '.join(notes)}" if notes else " yet")
            )
        summary = stats.summarize(runs, holm)
        out = Path(out_dir) if out_dir is not None else Path("reports") / parent.info.run_name
        out.mkdir(parents=True, exist_ok=True)
        report = Report(
            parent, summary, stats.formatted(summary), notes + identity_notes(runs) + seed_notes(runs), out, holm
        )
        summary.to_csv(out / "comparison.csv", index=False)
        (out / "comparison.md").write_text(markdown(report))
        write_figures(report, curves, runs)
        for name in [*FILES, *search_figures.write_figures(parent, out)]:
            client.log_artifact(parent.info.run_id, str(out / name), ARTIFACT_DIR)
    return report


def main(argv: list[str] | None = None) -> int:
    """The command line; user errors print one ``error:`` line and return 1."""
    parser = argparse.ArgumentParser(prog="mlp-sweep report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", help="parent run id of the sweep (default: the latest sweep)")
    parser.add_argument("--experiment", help="MLflow experiment to look in (default: all)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    parser.add_argument("--out", help="folder for the files (default: reports/<sweep run name>)")
    parser.add_argument(
        "--holm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Holm-adjust the p-values of the comparisons with the best (default: on)",
    )
    args = parser.parse_args(argv)
    try:
        report = make_report(args.sweep, args.experiment, args.tracking_uri, args.out, args.holm)
    except MlpSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
