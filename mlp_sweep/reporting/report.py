"""Compare a sweep's configs side by side, from what MLflow holds.

    mlp-sweep report                                   # the latest sweep in the store
    mlp-sweep report --sweep <parent run id> --out reports/mine
    mlp-sweep report --experiment mlp_sweep --tracking-uri http://localhost:5000

Prints the table, writes it as Markdown and CSV with its figures (validation
curves, test accuracy, and per cost the accuracy-cost front) into the output
folder, and logs the same files under ``report/`` on the sweep's parent run.
Every multirun ends by calling :func:`make_report`. The numbers come from
:func:`mlp_sweep.reporting.frame.load_sweep`'s frame and
:func:`~mlp_sweep.reporting.frame.summarize`: the report and a notebook see the same.
"""

import argparse
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlp_sweep import names, validation
from mlp_sweep.choices import COST_AXES, DEFAULT_COSTS
from mlp_sweep.errors import MlpSweepError, TrackingError
from mlp_sweep.reporting import figures, frame, pareto, search_figures, stats, verdicts
from mlp_sweep.reporting.frame import CURVES, find_sweep, open_store, store_errors

ARTIFACT_DIR = names.REPORT_DIR  # on the parent run
FILES = ("comparison.md", "comparison.csv", "val_curves.png", "test_accuracy.png")
TEXT_COLUMNS = ("config", "model", "hidden layers", "BN", "optimizer", "vs best (Welch)", "front")  # left


@dataclass
class Report:
    parent: Run
    summary: pd.DataFrame  # numbers, one row per config (the CSV)
    table: pd.DataFrame  # the strings shown
    notes: list[str]
    out_dir: Path
    holm: bool = True
    front_note: str = ""  # which configs are on each front, and which of them the seeds cannot tell apart
    costs: Sequence[str] = DEFAULT_COSTS
    search_front: pd.DataFrame | None = None  # a multi-objective search: its trials on the study's Pareto front
    search_objectives: Sequence[str] = ()
    data: str = ""  # the datasets the runs saw, with their shapes (:func:`datasets`)
    at: str = "final"  # the epoch compared: each run's last, or its best validation epoch
    margin: float | None = None  # of equivalence, in points (report.margin); a race's own where it is one
    race: verdicts.RaceVerdicts | None = None  # a race's rule and the verdicts its configs left it with

    def search_front_title(self) -> str:
        goals = " against ".join(self.search_objectives)
        return f"The search's Pareto front ({goals}, each the mean over a trial's seeds)"

    def text(self) -> str:
        """The console version: header, table, notes, footnotes, where the files went."""
        lines = [
            header(self.parent, self.summary, self.data),
            "",
            self.table.to_string(index=False),
            "",
            *self.notes,
            textwrap.fill(stats.footnote(self.holm).replace("`", ""), width=110),
            textwrap.fill(verdicts.footnote(self.margin, self.race).replace("`", ""), width=110),
            textwrap.fill(epoch_note(self.at).replace("`", ""), width=110),
            textwrap.fill(self.front_note, width=110),
            *(
                [self.search_front_title() + ":", self.search_front.to_string(index=False)]
                if self.search_front is not None
                else []
            ),
            f"Written to {self.out_dir}/ and logged to run {self.parent.info.run_id} under {ARTIFACT_DIR}/.",
        ]
        return "\n".join(lines)


def header(parent: Run, summary: pd.DataFrame, data: str) -> str:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(parent.info.start_time / 1000))
    return (
        f"Sweep {parent.info.run_name} (run {parent.info.run_id}, started {started}): "
        f"{len(summary)} configs from {int(summary['n'].sum())} runs" + (f" on {data}" if data else "")
    )


def datasets(runs: pd.DataFrame) -> str:
    """``mnist (784 inputs, 10 classes)``: each dataset the runs saw, by name, with the shape the models were built
    for. Runs on different datasets never pool: their config hashes and data checksums differ."""
    columns = ["params.dataset.name", "params.input_dim", "params.n_classes"]
    if columns[0] not in runs:
        return ""
    seen = runs.reindex(columns=columns).drop_duplicates().fillna("?")
    return ", ".join(f"{name} ({width} inputs, {classes} classes)" for name, width, classes in seen.itertuples(False))


def epoch_note(at: str) -> str:
    """Which epoch the table compares, and why choosing it keeps the test set untouched."""
    if at == "best":
        return (
            "Compared at each run's best validation epoch (`--at best`: its `best_epoch`, chosen on "
            "`trainer.early_stopping.monitor`, val_loss unless set); the epoch is chosen on validation alone, so the "
            "test set stays untouched by the choice. Test metrics are shown only for runs whose early stopping "
            "restored that epoch's weights before the test set was touched; others show –."
        )
    return (
        "Compared at each run's final epoch (`--at best` compares at each run's best validation epoch). A run with "
        "early stopping (`trainer.early_stopping.patience`) ends at the epoch it stopped and is tested with its best "
        "validation epoch's weights, chosen on validation alone: the test set stays untouched by the choice."
    )


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
        f"runs are pooled only within one, and rows that differ only in it say `{column} …` in their labels."
        for column, what in (("data", "data checksums"), ("code", "code fingerprints"))
        if runs[column].nunique() > 1
    ]


def markdown(report: Report) -> str:
    return "\n".join(
        [
            f"# Comparison of sweep {report.parent.info.run_name}",
            "",
            header(report.parent, report.summary, report.data) + ".",
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
            verdicts.footnote(report.margin, report.race),
            "",
            epoch_note(report.at),
            "",
            "## Accuracy against cost",
            "",
            report.front_note + f" {FRONT_RULE}",
            "",
            *(f"![front by {cost}](front_{cost}.png)\n" for cost in report.costs),
            *(
                [
                    f"## {report.search_front_title()}",
                    "",
                    report.search_front.to_markdown(index=False),
                    "",
                    "![search's Pareto front](search_pareto.png)",
                    "",
                ]
                if report.search_front is not None
                else []
            ),
            "## Curves and test accuracy",
            "",
            "![validation curves](val_curves.png)",
            "",
            "![test accuracy](test_accuracy.png)",
            "",
        ]
    )


FRONT_RULE = (
    "A config is on the front for a cost when no other config has a higher mean validation accuracy at a lower or "
    "equal cost (the `front` column); the figures show each config's 95% CI, the front as a step line."
)


def write_front_figures(report: Report) -> list[str]:
    """Per cost, each config's validation accuracy (mean, 95% CI) against the cost, the front drawn and named."""
    s, written = report.summary, []
    for cost in report.costs:
        file = f"front_{cost}.png"
        figures.save_figure(
            figures.front(
                pareto.cost_column(s, cost),
                100 * s["val_accuracy_mean"],
                100 * s["val_accuracy_ci_low"],
                100 * s["val_accuracy_ci_high"],
                list(s["config"]),
                list(s[f"front_{cost}"]),
                COST_AXES[cost],
                f"sweep {report.parent.info.run_name}: validation accuracy against {cost}",
                log_x=cost == "n_params",
            ),
            report.out_dir / file,
        )
        written.append(file)
    return written


def left_out_notes(runs: pd.DataFrame) -> list[str]:
    """One line per run that cannot be compared, with why."""
    return [
        f"Left out {row.run_name} ({row.status}{': ' + row.left_out[:120] if row.left_out else ''})."
        for row in runs.itertuples()
        if not pd.isna(row.left_out)
    ]


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


def race_verdicts(client: MlflowClient, parent: Run) -> verdicts.RaceVerdicts | None:
    """The race's record on its parent run (race.json), where the sweep was a race."""
    if parent.data.tags.get(names.TAG_RACE) != "true":
        return None
    record = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/{names.RACE_RECORD}")
    return verdicts.RaceVerdicts.from_record(record)


def make_report(
    sweep: str | None = None,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    out_dir: str | Path | None = None,
    holm: bool = True,
    client: MlflowClient | None = None,
    costs: Sequence[str] = DEFAULT_COSTS,
    at: str = "final",
    margin: float | None = None,
) -> Report:
    """Build the comparison of one sweep, write its files and log them on the parent run.

    ``client``: the store a sweep already holds open; else the one ``tracking_uri`` names is opened.
    ``costs``: what the accuracy-cost front weighs validation accuracy against (``report.costs``).
    ``at``: compare each run at its "final" epoch or at its "best" validation epoch (``report.at``).
    ``margin``: of equivalence, in points (``report.margin``): each config gets a verdict. A race's report
    shows the verdicts its configs left the race with, at the race's own margin.
    """
    client, uri = (client, client.tracking_uri) if client is not None else open_store(tracking_uri)
    with store_errors(uri):
        parent = find_sweep(client, uri, sweep, experiment)
        runs, curves = frame.sweep_frame(client, parent, CURVES, at)
        kept, notes = frame.comparable(runs), left_out_notes(runs)
        if kept.empty:
            raise TrackingError(
                f"sweep {parent.info.run_name} ({parent.info.run_id}) has no finished runs to compare"
                + (f": {' '.join(notes)}" if notes else " yet")
            )
        race = race_verdicts(client, parent)
        margin = 100 * race.rule.margin if race is not None else margin
        summary = frame.summarize(runs, holm, costs, margin, race)
        out = Path(out_dir) if out_dir is not None else Path("reports") / parent.info.run_name
        out.mkdir(parents=True, exist_ok=True)
        report = Report(
            parent,
            summary,
            stats.formatted(summary),
            notes + identity_notes(kept) + seed_notes(kept),
            out,
            holm,
            pareto.footnote(kept, summary, costs),
            costs,
            data=datasets(kept),
            at=at,
            margin=margin,
            race=race,
        )
        study = search_figures.load_study(parent)
        if study is not None and len(study.directions) > 1 and study.best_trials:
            report.search_front = search_figures.front_trials(study)
            report.search_objectives = search_figures.objectives(study)
        summary.to_csv(out / "comparison.csv", index=False)
        (out / "comparison.md").write_text(markdown(report))
        write_figures(report, curves, kept)
        for name in [*FILES, *write_front_figures(report), *search_figures.write_figures(parent, out)]:
            client.log_artifact(parent.info.run_id, str(out / name), ARTIFACT_DIR)
    return report


def main(argv: list[str] | None = None) -> int:
    """The command line; user errors print one ``error:`` line and return 1."""
    parser = argparse.ArgumentParser(prog="mlp-sweep report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", help="parent run id or name of the sweep (default: the latest sweep)")
    parser.add_argument("--experiment", help="MLflow experiment to look in (default: all)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    parser.add_argument("--out", help="folder for the files (default: reports/<sweep run name>)")
    parser.add_argument(
        "--costs",
        default=",".join(DEFAULT_COSTS),
        help="what the accuracy-cost front weighs against, comma-separated: n_params, epoch_time_s, "
        "predict_ms_per_1k, train_time_s (default: %(default)s)",
    )
    parser.add_argument(
        "--at",
        choices=frame.AT,
        default="final",
        help="compare each run at its final epoch, or at its best validation epoch (default: %(default)s)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        help="margin of equivalence in points of validation accuracy: each config's verdict is best, worse, "
        "equivalent ±margin or undecided, with the seeds a decision needs (default: none)",
    )
    parser.add_argument(
        "--holm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Holm-adjust the p-values of the comparisons with the best (default: on)",
    )
    args = parser.parse_args(argv)
    costs = [c.strip() for c in args.costs.split(",") if c.strip()]
    unknown = [c for c in costs if c not in COST_AXES]
    if unknown or not costs:
        print(f"error: --costs {args.costs}: give one or more of {', '.join(COST_AXES)}", file=sys.stderr)
        return 1
    if args.margin is not None and not validation.is_margin(args.margin):
        print(f"error: --margin {args.margin}: give a finite number of points > 0, e.g. --margin 0.3", file=sys.stderr)
        return 1
    try:
        report = make_report(
            args.sweep,
            args.experiment,
            args.tracking_uri,
            args.out,
            args.holm,
            costs=costs,
            at=args.at,
            margin=args.margin,
        )
    except MlpSweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
