"""Build the comparison of one sweep from what MLflow holds, write its files and
log them under ``report/`` on the sweep's parent run: comparison.md and .csv, the
validation curves, the test accuracy, and per cost the accuracy-cost front.

Every multirun ends by calling :func:`make_report`; ``mlp-sweep report`` is
:mod:`mlp_sweep.reporting.cli`. The numbers come from
:func:`mlp_sweep.reporting.frame.load_sweep`'s frame and
:func:`~mlp_sweep.reporting.frame.summarize`: the report and a notebook see the same.
The words (header, notes, footnotes, console and Markdown forms) are
:mod:`mlp_sweep.reporting.render`'s, the table's strings :mod:`mlp_sweep.reporting.table`'s.
"""

from collections.abc import Sequence
from pathlib import Path

import mlflow.artifacts
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlp_sweep import names
from mlp_sweep.choices import COST_AXES, DEFAULT_COSTS
from mlp_sweep.errors import TrackingError
from mlp_sweep.reporting import answer, figures, frame, pareto, registry, search_figures, table, verdicts
from mlp_sweep.reporting.frame import CURVES, find_sweep, open_store, store_errors
from mlp_sweep.reporting.render import Report, datasets, header, identity_notes, left_out_notes, markdown, seed_notes
from mlp_sweep.store import tracking

ARTIFACT_DIR = names.REPORT_DIR  # on the parent run
FILES = ("comparison.md", "comparison.html", "comparison.csv", "val_curves.png", "test_accuracy.png")


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
    register: str | None = None,
    alias: str = "champion",
    choose: str = "best",
) -> Report:
    """Build the comparison of one sweep, write its files and log them on the parent run.

    ``client``: the store a sweep already holds open; else the one ``tracking_uri`` names is opened.
    ``costs``: what the accuracy-cost front weighs validation accuracy against (``report.costs``).
    ``at``: compare each run at its "final" epoch or at its "best" validation epoch (``report.at``).
    ``margin``: of equivalence, in points (``report.margin``): each config gets a verdict. A race's report
    shows the verdicts its configs left the race with, at the race's own margin.
    ``choose``: the config the summary names first, ``best`` or ``cheapest`` (``report.choose``); ``register``:
    the registered model it goes to, ``alias`` pointing at it (:mod:`mlp_sweep.reporting.registry`).
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
            table.formatted(summary),
            notes + identity_notes(kept) + seed_notes(kept),
            out,
            holm,
            pareto.footnote(kept, summary, costs),
            costs,
            data=datasets(kept),
            at=at,
            margin=margin,
            race=race,
            choice=registry.pick(summary, choose, costs),
            front_url=front_url(uri, parent.info.run_id, costs[0]),
        )
        if register is not None:
            report.choice = registry.choose_seed(client, kept, report.choice)
            report.registered = registry.register(client, register, alias, report.choice, parent.info.run_id)
        study = search_figures.load_study(parent)
        if study is not None and len(study.directions) > 1 and study.best_trials:
            report.search_front = search_figures.front_trials(study)
            report.search_objectives = search_figures.objectives(study)
        summary.to_csv(out / "comparison.csv", index=False)
        (out / "comparison.md").write_text(markdown(report))
        write_figures(report, curves, kept)
        fronts = write_front_figures(report)
        write_html(report)
        for name in [*FILES, *fronts, *search_figures.write_figures(parent, out)]:
            client.log_artifact(parent.info.run_id, str(out / name), ARTIFACT_DIR)
    return report


def front_url(uri: str, run_id: str, cost: str) -> str:
    """The first front figure on the UI that serves this store: MLflow's Markdown view shows an image only at an
    absolute http(s) address (checked in 3.17), so comparison.md names the server, or ``mlflow ui``'s default."""
    base = tracking.ui_links(uri, "0", run_id).run.split("/#/")[0]
    return f"{base}/get-artifact?path={ARTIFACT_DIR}/front_{cost}.png&run_uuid={run_id}"


def write_html(report: Report) -> None:
    """comparison.html: the first screen with its figure inline, wherever the UI is served, then the full table."""
    narrow = answer.narrow_table(report.summary, report.table, report.costs, report.choice.group)
    page = answer.html_page(
        f"Comparison of sweep {report.parent.info.run_name}",
        header(report.parent, report.summary, report.data),
        report.chosen_line(),
        narrow,
        (report.out_dir / f"front_{report.costs[0]}.png").read_bytes(),
        report.table,
    )
    (report.out_dir / "comparison.html").write_text(page)
