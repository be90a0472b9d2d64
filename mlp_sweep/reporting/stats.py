"""The comparison table: one row per config, its seeds summarised, the best
chosen on validation accuracy alone and every other config tested against it.

Plain pandas and scipy on a frame of runs, so it is testable without MLflow;
:mod:`mlp_sweep.reporting.report` reads the runs and writes the results.
"""

import math
import re
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from mlp_sweep.schema import is_hashed  # what may differ between the seeds of one config

# Final-epoch metrics of a run, with the columns that show them. Accuracies are shown in %.
METRICS = {
    "accuracy": "train acc %",
    "val_accuracy": "val acc %",
    "test_accuracy": "test acc %",
    "test_loss": "test loss",
    "epoch_time_s": "s/epoch",
    "predict_ms_per_1k": "predict ms/1k",
}
# How the table names a cost of the accuracy-cost front (its `front` column).
COST_LABELS = {
    "n_params": "params",
    "epoch_time_s": "s/epoch",
    "predict_ms_per_1k": "predict ms/1k",
    "train_time_s": "train s",
}
SELECT_BY = "val_accuracy"  # never a test metric: the test set only reports
ALPHA = 0.05
# Besides params, what tells two configs apart: the data they saw and the code that trained them.
IDENTITY_COLUMNS = ("data", "code")
# Params that describe a config in the table; run columns are ``params.<key>``.
DESCRIBED = (
    "model.name",
    "reg.name",
    "n_hidden_layers",
    "model.widths",
    "reg.batch_norm",
    "reg.dropout",
    "optimizer.name",
    "n_params",
    "trainer.epochs",
)


def footnote(holm: bool) -> str:
    """What the table's numbers and marks mean, including which multiple-comparison rule is in force."""
    correction = (
        "p-values are Holm-adjusted for the number of configs compared with the best (family-wise 5%; "
        "`--no-holm` shows raw p-values)."
        if holm
        else "p-values are raw: each config is tested against the best alone, without correction for multiple "
        "comparisons (`--holm` adjusts them)."
    )
    return (
        "Mean ± sample standard deviation over n seeds (runs that differ only in `trainer.seed`: same config, data "
        "and code), at the final epoch; s/epoch is the mean wall time of an epoch. Train accuracy is Keras' running "
        "mean over the last epoch's batches with dropout active, so it is not comparable with validation accuracy "
        "(measured in inference mode after the epoch). Rows are sorted by mean validation accuracy and the best "
        "config is chosen on it alone: test metrics are reported, never used to choose. 95% CI: Student's t interval "
        "of the mean validation accuracy (clipped to 0–100; few seeds make it wide). vs best: Welch's t-test "
        "(two-sided, unequal variances, `scipy.stats.ttest_ind(equal_var=False)`) of each config's validation "
        f"accuracies against the best config's; `≈ best`: p ≥ {ALPHA}, not shown to differ from the best (with three "
        "seeds only large differences can be shown: this is not evidence that the two are equal); `below`: p < "
        f"{ALPHA}; `untested`: fewer than 2 seeds on one side, so no test is possible. Where the seeds of both configs "
        "agree exactly there is no noise to weigh: different means are `below` (p = 0), equal ones `≈ best` (p = 1). "
        f"{correction}"
    )


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of the non-NaN p-values (NaN stays NaN)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted, running = list(p_values), 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def config_label(params: pd.Series) -> str:
    """``mlp3-bn_dropout``: model and regularisation, read from a run's params (never parsed from its name)."""
    return f"{params.get('params.model.name', '?')}-{params.get('params.reg.name', '?')}"


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test; NaN where it cannot be computed.

    Seeds that agree exactly on both sides leave no noise for a test to weigh:
    different means then differ surely (p = 0), equal means not at all (p = 1).
    """
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():  # near-identical values: scipy warns, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student's t confidence interval of the mean of accuracies, clipped to [0, 1]; NaNs for a single value."""
    n = len(values)
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1 + level) / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n)
    return max(0.0, float(np.mean(values) - half)), min(1.0, float(np.mean(values) + half))


def distinguishing_params(runs: pd.DataFrame) -> pd.Series:
    """Per config, what tells it apart from the other configs of its label (``mlp3-bn``) that the
    table's columns do not show: params such as the learning rate, or the data or code it ran on."""
    params = [c for c in runs.columns if c.startswith("params.") and is_hashed(c.removeprefix("params."))]
    params += [c for c in IDENTITY_COLUMNS if c in runs]
    first = runs.groupby("group").first()
    shown = [f"params.{k}" for k in DESCRIBED]
    other = pd.Series("", index=first.index)
    for _, twins in first.groupby(first.apply(config_label, axis=1)):
        if len(twins) > 1:
            varying = [c for c in params if c not in shown and twins[c].nunique(dropna=False) > 1]
            for h, row in twins[varying].iterrows():
                other[h] = ", ".join(f"{c.removeprefix('params.')}={short(row[c])}" for c in varying)
    return other


def short(value) -> str:
    """A param as the table shows it: numbers to four significant digits (a search draws 0.0023358825194833557)."""
    text = str(value)
    try:
        return text if len(text) <= 8 else f"{float(text):.4g}"
    except ValueError:
        return text


def summarize(runs: pd.DataFrame, holm_adjusted: bool = True) -> pd.DataFrame:
    """One row per config, best first: descriptions, mean/std/n of each metric, CI, test against the best.

    ``runs`` holds one finished run a row: ``group`` (what its seeds share:
    config hash, data checksum, code fingerprint), ``params.<key>`` strings
    and the final values of :data:`METRICS`.
    """
    other = distinguishing_params(runs)
    rows = []
    for h, group in runs.groupby("group", sort=False):
        row = {"group": h, "config": config_label(group.iloc[0]), "other": other[h], "n": len(group)}
        row |= {k: group[f"params.{k}"].iloc[0] for k in DESCRIBED if f"params.{k}" in group}
        for metric in [*METRICS, "val_loss"]:
            values = group[metric] if metric in group else pd.Series(math.nan, index=group.index)  # older runs
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1)  # NaN for a single seed
        row["val_accuracy_ci_low"], row["val_accuracy_ci_high"] = t_interval(group[SELECT_BY].to_numpy())
        row["test_accuracy_ci_low"], row["test_accuracy_ci_high"] = t_interval(group["test_accuracy"].to_numpy())
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(
        [f"{SELECT_BY}_mean", "val_loss_mean", "config"], ascending=[False, True, True], ignore_index=True
    )
    if table["config"].duplicated(keep=False).any():  # same name, other settings: say which
        table["config"] = [
            c + (f" ({o})" if o else f" [{h[:6]}]")
            for c, o, h in zip(table["config"], table["other"], table["group"], strict=False)
        ]
    table.insert(0, "rank", range(1, len(table) + 1))

    best = runs.loc[runs["group"] == table["group"][0], SELECT_BY].to_numpy()
    table["p_vs_best_raw"] = [
        math.nan if i == 0 else welch_p(runs.loc[runs["group"] == h, SELECT_BY].to_numpy(), best)
        for i, h in enumerate(table["group"])
    ]
    table["p_vs_best"] = holm(list(table["p_vs_best_raw"])) if holm_adjusted else table["p_vs_best_raw"]
    table["vs_best"] = [
        "best" if i == 0 else "untested" if math.isnan(p) else "≈ best" if p >= ALPHA else "below"
        for i, p in enumerate(table["p_vs_best"])
    ]
    return table


def mean_std(mean: float, std: float, scale: float, digits: int) -> str:
    """``97.83 ± 0.12``, the mean alone when there is no spread to show (one seed), or "–" when there is
    no value (a cost that runs from before 0.2.0 did not log)."""
    if math.isnan(mean):
        return "–"
    text = f"{mean * scale:.{digits}f}"
    return text if math.isnan(std) else f"{text} ± {std * scale:.{digits}f}"


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The summary as the strings a reader sees: the console, Markdown and the README show this."""

    def col(key: str, default: str = "?") -> pd.Series:
        return table[key] if key in table else pd.Series(default, index=table.index)

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
            out["vs best (Welch)"] = [
                v if math.isnan(p) else f"{v} (p<0.001)" if p < 0.001 else f"{v} (p={p:.3f})"
                for v, p in zip(table["vs_best"], table["p_vs_best"], strict=False)
            ]
    if "front" in table:
        out["front"] = table["front"].map(
            lambda costs: ", ".join(COST_LABELS.get(c, c) for c in costs.split(", ") if c)
        )
    if (table["other"] != "").any():
        out["other"] = table["other"]
    return out
