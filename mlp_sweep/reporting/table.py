"""The comparison table as a reader sees it: :func:`formatted` turns the numbers of
:func:`mlp_sweep.reporting.stats.summarize` into the strings that the console, the
Markdown report and the README show. Plain pandas, no MLflow.
"""

import math
import re

import pandas as pd

from mlp_sweep.reporting.stats import METRICS, SELECT_BY

# How the table names a cost of the accuracy-cost front (its `front` column).
COST_LABELS = {
    "n_params": "params",
    "epoch_time_s": "s/epoch",
    "predict_ms_per_1k": "predict ms/1k",
    "train_time_s": "train s",
}
DIFFERENCE = "Δ vs best, pp (95% CI)"  # the formatted column of diff_vs_best and its interval
VERDICT = "verdict"  # with a margin: best, worse, equivalent ±m or undecided
SEEDS_PLAN = "seeds to decide"  # per config, for 80% power, and the nearer test


def short(value) -> str:
    """A param as the table shows it: numbers to four significant digits (a search draws 0.0023358825194833557)."""
    text = str(value)
    try:
        return text if len(text) <= 8 else f"{float(text):.4g}"
    except ValueError:
        return text


def mean_std(mean: float, std: float, scale: float, digits: int) -> str:
    """``97.83 ± 0.12``, the mean alone when there is no spread to show (one seed), or "–" when there is
    no value (a metric no run of the config logged)."""
    if math.isnan(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    return text if math.isnan(std) else f"{text} ± {std * scale:.{digits}f}"


def p_value(p: float) -> str:
    """``p=0.140``, or ``p<0.001`` where three decimals would show 0."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def difference(diff: float, low: float, high: float) -> str:
    """``−2.10 (−3.52 to −0.68)``: a difference of accuracies and its interval in percentage points, signed;
    the difference alone where a side has a single seed."""

    def signed(x: float) -> str:
        return f"{round(100 * x, 2) + 0.0:+.2f}".replace("-", "−")  # + 0.0: a rounded −0 reads 0

    return signed(diff) if math.isnan(low) else f"{signed(diff)} ({signed(low)} to {signed(high)})"


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The summary as the strings a reader sees: the console, Markdown and the README show this."""

    def col(key: str, default: str = "?") -> pd.Series:
        return table[key].fillna(default) if key in table else pd.Series(default, index=table.index)

    widths = col("model.widths", "[]").map(lambda w: ", ".join(re.findall(r"\d+", str(w))))
    out = pd.DataFrame(
        {
            "#": table["rank"],
            "config": table["config"],
            "model": col("model.name"),
            "hidden layers": col("n_hidden_layers").astype(str) + ": " + widths,
            "BN": col("reg.batch_norm").map(lambda b: "yes" if str(b).lower() == "true" else "no"),
            "dropout": col("reg.dropout").map(short),
            "optimizer": col("optimizer.name"),
            "params": col("n_params").map(lambda n: f"{int(n):,}" if str(n).isdigit() else n),
            "epochs": col("trainer.epochs"),
            "n": table["n"],
        }
    )
    for metric, name in METRICS.items():
        scale, digits = (100, 2) if "accuracy" in metric else (1, 4) if "loss" in metric else (1, 2)
        out[name] = [
            mean_std(m, s, scale, digits) for m, s in zip(table[f"{metric}_mean"], table[f"{metric}_std"], strict=False)
        ]
        if metric == SELECT_BY:
            out["val acc 95% CI"] = [
                ("–" if math.isnan(lo) else f"{100 * lo:.2f} – {100 * hi:.2f}")
                for lo, hi in zip(table["val_accuracy_ci_low"], table["val_accuracy_ci_high"], strict=False)
            ]
            fewest = table["n"].clip(upper=table["n"][0])  # as summarize counts them: the best is first
            out["vs best (Welch)"] = [
                f"{v} (n={n})" if v == "too few seeds" else v if math.isnan(p) else f"{v} ({p_value(p)})"
                for v, n, p in zip(table["vs_best"], fewest, table["p_vs_best"], strict=True)
            ]
            out[DIFFERENCE] = [
                "–" if rank == 1 else difference(d, lo, hi)
                for rank, d, lo, hi in zip(
                    table["rank"], table["diff_vs_best"], table["diff_ci_low"], table["diff_ci_high"], strict=True
                )
            ]
    if "verdict" in table:
        out[VERDICT] = table["verdict"]
    if (table["seeds_plan"] != "").any():
        out[SEEDS_PLAN] = table["seeds_plan"]
    if "front" in table:
        out["front"] = table["front"].map(
            lambda costs: ", ".join(COST_LABELS.get(c, c) for c in costs.split(", ") if c)
        )
    return out
