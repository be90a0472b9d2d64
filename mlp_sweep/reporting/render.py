"""The report's words: its header, its notes and footnotes, and the two forms it
takes, the console's text (:meth:`Report.text`) and comparison.md (:func:`markdown`).
The numbers come from :mod:`mlp_sweep.reporting.stats`, the strings of the table
from :mod:`mlp_sweep.reporting.table`; :mod:`mlp_sweep.reporting.report` builds
the :class:`Report` and writes its files.
"""

import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.entities import Run

from mlp_sweep import names
from mlp_sweep.choices import DEFAULT_COSTS
from mlp_sweep.reporting import answer, registry, stats, verdicts

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
    choice: registry.Choice | None = None  # the config report.choose picks (with its seed where it is registered)
    registered: registry.Registered | None = None  # where report.register put it
    front_url: str = ""  # the first front figure's address on the UI (its Markdown view shows only such images)

    def chosen_line(self) -> str:
        """The answer in one line: the chosen config, its rule and verdict, and where it is registered."""
        c, r = self.choice, self.registered
        if c is None:
            return ""
        where = f" (version {r.version}; seed {c.seed}, run {c.run_name})" if r else ""
        return answer.chosen_line(c.config, c.rule, c.verdict, r.uri if r else "", where)

    def answer_lines(self) -> list[str]:
        """comparison.md's first screen: the choice, the narrow table, the first front figure."""
        if self.choice is None:
            return []
        narrow = answer.narrow_table(self.summary, self.table, self.costs, self.choice.group)
        cost = self.costs[0]
        image = (
            f"![validation accuracy against {cost}]({self.front_url})  \n"
            f"(front_{cost}.png beside this file; comparison.html shows this summary with the figure inline "
            "wherever the UI is served)"
        )
        return ["## The answer", "", *answer.section(self.chosen_line(), narrow, image, len(self.summary))]

    def search_front_title(self) -> str:
        goals = " against ".join(self.search_objectives)
        return f"The search's Pareto front ({goals}, each the mean over a trial's seeds)"

    def text(self) -> str:
        """The console version: header, table, notes, footnotes, where the files went."""
        lines = [
            header(self.parent, self.summary, self.data),
            *([self.chosen_line().replace("**", "").replace("`", "")] if self.choice else []),
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
            f"Written to {self.out_dir}/ and logged to run {self.parent.info.run_id} under {names.REPORT_DIR}/.",
            *([self.registered.line()] if self.registered else []),
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


def left_out_notes(runs: pd.DataFrame) -> list[str]:
    """One line per run that cannot be compared, with why."""
    return [
        f"Left out {row.run_name} ({row.status}{': ' + row.left_out[:120] if row.left_out else ''})."
        for row in runs.itertuples()
        if not pd.isna(row.left_out)
    ]


def markdown(report: Report) -> str:
    return "\n".join(
        [
            f"# Comparison of sweep {report.parent.info.run_name}",
            "",
            header(report.parent, report.summary, report.data) + ".",
            "",
            *report.answer_lines(),
            "## Full comparison",
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
