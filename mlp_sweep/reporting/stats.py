"""The comparison table: one row per config, its seeds summarised, the best
chosen on validation accuracy alone and every other config compared with it:
the difference in mean with its Welch interval, and Welch's test where both
sides have seeds enough for one. Rows are labelled by
:mod:`mlp_sweep.reporting.labels`.

Plain pandas and scipy on a frame of runs, so it is testable without MLflow;
:mod:`mlp_sweep.reporting.table` shows the numbers as strings, and
:mod:`mlp_sweep.reporting.report` reads the runs and writes the results.
"""

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from mlp_sweep.reporting import verdicts
from mlp_sweep.reporting.labels import config_labels

# Final-epoch metrics of a run, with the columns that show them. Accuracies are shown in %.
METRICS = {
    "accuracy": "train acc %",
    "val_accuracy": "val acc %",
    "test_accuracy": "test acc %",
    "test_loss": "test loss",
    "epoch_time_s": "s/epoch",
    "predict_ms_per_1k": "predict ms/1k",
}
SELECT_BY = "val_accuracy"  # never a test metric: the test set only reports
ALPHA = 0.05
# Seeds a side below which Welch's test has almost no power (two seeds a side let 55 points pass as
# `≈ best`): such a config gets the difference and its interval, not a verdict.
MIN_SEEDS = 3
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
        "Mean ± sample standard deviation over n seeds (runs that differ only in `trainer.seed`: same config, "
        "data and code), at the epoch named below; s/epoch is the mean wall time of an epoch. Train accuracy is "
        "Keras' running mean over the last epoch's batches with dropout active, so it is not comparable with "
        "validation accuracy (measured in inference mode after the epoch). Rows are sorted by mean validation "
        "accuracy and the best config is chosen on it alone: test metrics are reported, never used to choose. "
        "95% CI: Student's t interval of the mean validation accuracy (clipped to 0–100; few seeds make it "
        "wide). A config is named by its presets (`mlp3-bn_dropout`) only while it equals them; otherwise by its "
        "values (`mlp3 · dropout 0.47 · adamw lr 2.3e-3`), then by every key the table's configs vary, and by "
        "`data …` or `code …` where configs differ only in those. vs best: Welch's t-test (two-sided, unequal "
        "variances, `scipy.stats.ttest_ind(equal_var=False)`) of each config's validation accuracies against the "
        f"best config's; `≈ best`: p ≥ {ALPHA}, not shown to differ from the best (with three seeds only large "
        f"differences can be shown: this is not evidence that the two are equal); `below`: p < {ALPHA}; `too few "
        f"seeds (n=k)`: one side has k < {MIN_SEEDS} seeds, with which the test cannot show even a large "
        "difference, so it is not made (nor counted among the comparisons below): read the interval instead. Δ "
        "vs best: the config's mean validation accuracy minus the best config's, in percentage points, with its "
        "95% Welch interval (Welch–Satterthwaite degrees of freedom, clipped to ±100; unadjusted: each interval "
        "holds for its own config, not for all at once), the range of differences the seeds do not rule out; it "
        "needs 2 seeds on each side. Where the seeds of both configs agree exactly there is no noise to weigh: "
        "different means are `below` (p = 0), equal ones `≈ best` (p = 1), and the interval is the difference "
        "itself. "
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


def group_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Each config's label (``group`` → ``mlp3-bn_dropout``, ``mlp3 · dropout 0.47 · adamw lr 2.3e-3``), the
    configs of ``runs`` labelled side by side from their params (never parsed from a run's name)."""
    first = runs.groupby("group", sort=False).first()  # a config's params and identity: the same in each seed
    return dict(zip(first.index, config_labels(first.to_dict("records")), strict=True))


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


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Welch's confidence interval of mean(a) − mean(b) of accuracies, with Welch–Satterthwaite degrees of
    freedom, clipped to [−1, 1] (two seeds can reach past what accuracies allow); NaNs where a side has a single
    value. Seeds that agree exactly on both sides leave the difference itself."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    diff = float(np.mean(a) - np.mean(b))
    if va + vb == 0:
        return diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + level) / 2, df) * math.sqrt(va + vb))
    return max(-1.0, diff - half), min(1.0, diff + half)


def verdict(rank: int, seeds: int, p: float) -> str:
    """How a config compares with the best (``rank`` 1), where ``seeds`` is the smaller seed count of the two."""
    if rank == 1:
        return "best"
    if seeds < MIN_SEEDS:
        return "too few seeds"
    return "≈ best" if p >= ALPHA else "below"


def add_verdicts(
    table: pd.DataFrame,
    seeds: dict[str, np.ndarray],
    margin: float | None,
    race: verdicts.SequentialRule | None = None,
    raced: Mapping[str, str] | None = None,
    holm_adjusted: bool = True,
) -> pd.DataFrame:
    """Each config's verdict (``verdict``) and the seeds a config a side would need to decide it (``seeds_needed``,
    with the ``nearer`` test), ``margin`` in points.

    A grid's verdict reads its own table: ``worse`` where ``vs_best`` says below, ``equivalent`` where the 90% Welch
    interval of the difference lies inside ±margin (TOST at 5%), else ``undecided``. A race's (``race``, its rule)
    is the one each config left the race with (``raced``: group → verdict), and its seeds are planned at the
    race's level. Without a margin only the seeds to show a difference are planned.
    """
    best = seeds[table["group"][0]]
    compared = int(table["p_vs_best_raw"].notna().sum()) if holm_adjusted else 1
    rows = []
    for rank, group, vs_best in zip(table["rank"], table["group"], table["vs_best"], strict=True):
        values = seeds[group]
        if rank == 1:
            rows.append((verdicts.BEST, None))
            continue
        if race is not None:
            verdict = (raced or {}).get(group) or race.decide(values, best)
            worse_level, equivalent_level, sided = race.level, race.level, 1
        else:
            comparison = verdicts.compare(values, best) if min(len(values), len(best)) >= MIN_SEEDS else None
            if vs_best == "below":
                verdict = verdicts.WORSE
            elif comparison is not None and margin is not None and comparison.within(margin / 100, ALPHA):
                verdict = verdicts.EQUIVALENT
            else:
                verdict = verdicts.UNDECIDED
            # `below` is Holm-adjusted: planned at Bonferroni's level, Holm's strictest step (conservative)
            worse_level, equivalent_level, sided = ALPHA / max(1, compared), ALPHA, 2
        plan = None
        if verdict == verdicts.UNDECIDED:
            diff = float(np.mean(values) - np.mean(best))
            spread = verdicts.variances(values, best)
            plan = verdicts.seeds_needed(
                diff, spread, None if margin is None else margin / 100, worse_level, equivalent_level, sided
            )
        rows.append((verdict, plan))
    if margin is not None:  # without one, the table keeps its `vs best` alone
        table["verdict"] = [f"equivalent ±{margin:g}" if v == verdicts.EQUIVALENT else v for v, _ in rows]
    table["seeds_needed"] = [min_needed(plan) for _, plan in rows]
    table["nearer"] = [plan.nearer if plan else None for _, plan in rows]
    table["seeds_plan"] = [plan.text() if plan else ("–" if v == verdicts.UNDECIDED else "") for v, plan in rows]
    return table


def min_needed(plan: verdicts.SeedsNeeded | None) -> float:
    """The fewer of the two tests' seed counts; NaN where neither can decide or nothing was planned."""
    counts = [n for n in (plan.worse, plan.equivalent) if n is not None] if plan else []
    return float(min(counts)) if counts else math.nan


def summarize(
    runs: pd.DataFrame,
    holm_adjusted: bool = True,
    margin: float | None = None,
    race: verdicts.RaceVerdicts | None = None,
) -> pd.DataFrame:
    """One row per config, best first: descriptions, mean/std/n of each metric, CI, comparison with the best.

    ``runs`` holds one finished run a row: ``group`` (what its seeds share:
    config hash, data checksum, code fingerprint), ``params.<key>`` strings
    and the final values of :data:`METRICS`.
    """
    labels = group_labels(runs)
    rows = []
    for h, group in runs.groupby("group", sort=False):
        row = {"group": h, "config": labels[h], "n": len(group)}
        row |= {k: group[f"params.{k}"].iloc[0] for k in DESCRIBED if f"params.{k}" in group}
        for metric in [*METRICS, "val_loss"]:
            # a metric the frame lacks (one built by hand: summarize is public): NaN, shown as –
            values = group[metric] if metric in group else pd.Series(math.nan, index=group.index)
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1)  # NaN for a single seed
        row["val_accuracy_ci_low"], row["val_accuracy_ci_high"] = t_interval(group[SELECT_BY].to_numpy())
        row["test_accuracy_ci_low"], row["test_accuracy_ci_high"] = t_interval(group["test_accuracy"].to_numpy())
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(
        [f"{SELECT_BY}_mean", "val_loss_mean", "config"], ascending=[False, True, True], ignore_index=True
    )
    table.insert(0, "rank", range(1, len(table) + 1))

    seeds = {h: group[SELECT_BY].to_numpy() for h, group in runs.groupby("group")}
    best = seeds[table["group"][0]]
    fewest = table["n"].clip(upper=len(best))  # the smaller seed count of each config and the best
    intervals = [
        welch_interval(seeds[h], best) if rank > 1 else (math.nan, math.nan)
        for rank, h in zip(table["rank"], table["group"], strict=True)
    ]
    table["diff_vs_best"] = table[f"{SELECT_BY}_mean"] - table[f"{SELECT_BY}_mean"][0]
    table["diff_ci_low"], table["diff_ci_high"] = [lo for lo, _ in intervals], [hi for _, hi in intervals]
    table["p_vs_best_raw"] = [
        welch_p(seeds[h], best) if rank > 1 and k >= MIN_SEEDS else math.nan
        for rank, h, k in zip(table["rank"], table["group"], fewest, strict=True)
    ]
    table["p_vs_best"] = holm(list(table["p_vs_best_raw"])) if holm_adjusted else table["p_vs_best_raw"]
    table["vs_best"] = [verdict(r, k, p) for r, k, p in zip(table["rank"], fewest, table["p_vs_best"], strict=True)]
    if race is None:
        return add_verdicts(table, seeds, margin, holm_adjusted=holm_adjusted)
    hashes = runs.groupby("group")["config_hash"].first() if "config_hash" in runs else pd.Series(dtype=str)
    raced = {g: race.by_config_hash.get(h) for g, h in hashes.items() if race.by_config_hash.get(h)}
    return add_verdicts(table, seeds, 100 * race.rule.margin, race.rule, raced, holm_adjusted)
