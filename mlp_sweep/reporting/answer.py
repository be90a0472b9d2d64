"""The answer first: what comparison.md opens with, before the full table.

MLflow's artifact pane shows about ten columns of a table, so the report's
first screen is a short summary that fits it:

- the chosen config (``report.choose``: the best on validation, or the cheapest
  not shown worse) and, where ``report.register`` is set, the registry alias
  that serves it (:mod:`mlp_sweep.reporting.registry`);
- a narrow table (at most :data:`MAX_COLUMNS` columns) of each config's mean
  validation accuracy, its verdict against the best, the difference with its
  interval, and its costs;
- the accuracy-cost front of the first cost, inline.

Plain pandas on the report's summary and its formatted table: no MLflow.
"""

import base64
import html
import math
import re
from collections.abc import Sequence

import pandas as pd

from mlp_sweep.reporting import pareto, table

MAX_COLUMNS = 8
MAX_ROWS = 10  # configs in the summary; the full table below holds every one
FIXED = ("config", "n", "val acc %")  # then the verdict, the difference, and the costs
SHORT_DIFFERENCE = "Δ pp (95% CI)"  # the pane cuts long headers


def verdict_column(formatted: pd.DataFrame) -> str:
    """The verdict where a margin gave one, else Welch's ``vs best``."""
    return table.VERDICT if table.VERDICT in formatted else "vs best (Welch)"


def cost_text(cost: str, value: float) -> str:
    """A cost as the summary shows it: parameters counted, times to two decimals; "–" where none was logged."""
    if math.isnan(value):
        return "–"
    return f"{int(value):,}" if cost == "n_params" else f"{value:.2f}"


def shown_rows(summary: pd.DataFrame, chosen: str | None) -> pd.Index:
    """The best :data:`MAX_ROWS` configs, and the chosen one where it is further down."""
    rows = summary.index[:MAX_ROWS]
    if chosen is not None and chosen not in set(summary.loc[rows, "group"]):
        rows = rows.append(summary.index[summary["group"] == chosen])
    return rows


def narrow_table(
    summary: pd.DataFrame, formatted: pd.DataFrame, costs: Sequence[str], chosen: str | None = None
) -> pd.DataFrame:
    """Each config's val accuracy, verdict, Δ vs best with its interval and costs; the chosen config in bold."""
    rows = shown_rows(summary, chosen)
    out = formatted.loc[rows, [*FIXED, verdict_column(formatted), table.DIFFERENCE]].copy()
    for cost in list(costs)[: MAX_COLUMNS - len(out.columns)]:
        out[table.COST_LABELS.get(cost, cost)] = [cost_text(cost, v) for v in pareto.cost_column(summary, cost)[rows]]
    out = out.rename(columns={"vs best (Welch)": "vs best", table.DIFFERENCE: SHORT_DIFFERENCE})
    if chosen is not None:
        mine = summary.loc[rows, "group"] == chosen
        out.loc[mine, "config"] = out.loc[mine, "config"] + " ◀ chosen"
    return out


def chosen_line(config: str, rule: str, verdict: str, registered: str = "", seed: str = "") -> str:
    """``**Chosen: mlp2-bn** (cheapest by n_params; equivalent ±0.3) → `models:/mnist_mlp@champion` …``."""
    head = f"**Chosen: {config}** (rule: {rule}; verdict: {verdict})"
    if registered:
        return f"{head}, registered as `{registered}`{seed}."
    return f"{head}. Not registered: `report.register=<name>` (or `--register <name>`) registers it."


def section(line: str, narrow: pd.DataFrame, front_image: str, rows_total: int) -> list[str]:
    """The summary's lines in Markdown: the choice, the narrow table, the front figure."""
    more = f" (the best {MAX_ROWS} of {rows_total}; all below)" if rows_total > MAX_ROWS else ""
    return [
        line,
        "",
        narrow.to_markdown(
            index=False,
            disable_numparse=True,
            colalign=["left" if c in ("config", "verdict", "vs best") else "right" for c in narrow.columns],
        ),
        "",
        f"Validation accuracy in %, mean ± std over n seeds; Δ vs best in points with its 95% interval{more}.",
        "",
        front_image,
        "",
    ]


def as_html(markdown_line: str) -> str:
    """A line of the summary's Markdown (``**bold**``, ```code```) as HTML."""
    text = html.escape(markdown_line)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def html_page(title: str, header: str, line: str, narrow: pd.DataFrame, front_png: bytes, full: pd.DataFrame) -> str:
    """comparison.html: the same first screen, its figure inline (MLflow's artifact view renders HTML, with its
    images, where its Markdown view shows only images at an absolute address), then the full table."""
    figure = base64.b64encode(front_png).decode()
    return "\n".join(
        [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;font-size:14px} table{border-collapse:collapse}"
            " td,th{border:1px solid #ccc;padding:2px 6px;text-align:right} td:first-child{text-align:left}</style>",
            f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(header)}</p>",
            f"<p>{as_html(line)}</p>",
            narrow.to_html(index=False, border=0),
            f"<p><img alt='accuracy against cost' style='max-width:100%' src='data:image/png;base64,{figure}'></p>",
            "<h2>Full comparison</h2>",
            full.to_html(index=False, border=0),
            "<p>The notes and footnotes are in comparison.md.</p></body></html>",
        ]
    )
