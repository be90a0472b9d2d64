"""The accuracy–cost front: which configs are worth their cost, and which of those the seeds cannot tell apart.

The comparison table ranks configs on validation accuracy alone; a reader choosing a model also pays for
parameters, training time or prediction time. A config is on the front for a cost when no other config is
strictly more accurate (mean validation accuracy) at a lower or equal cost: anything off it is beaten on both
counts. With a few seeds a front config may be more accurate only by noise, so the front configs are also tested
pairwise (Welch, Holm-adjusted), as the table tests each config against the best.

Plain pandas and scipy on the frames of :mod:`mlp_sweep.reporting.stats`, so it is testable without MLflow.
"""

import math
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from mlp_sweep.reporting.stats import ALPHA, SELECT_BY, holm, welch_p


def on_front(accuracy: Sequence[float], cost: Sequence[float]) -> list[bool]:
    """Per config, whether no other config has a strictly higher accuracy at a lower or equal cost.

    A tie in accuracy does not dominate: a costlier config as accurate as a cheaper one stays on the front (the
    means are equal; whether it is worth its cost is for the reader to judge), and identical points are both on it.
    A config with a NaN accuracy or cost cannot be placed, so it is never on the front and never dominates.
    """
    points = list(zip(accuracy, cost, strict=True))
    known = [not (math.isnan(a) or math.isnan(c)) for a, c in points]
    return [
        known[i] and not any(known[j] and a_j > a_i and c_j <= c_i for j, (a_j, c_j) in enumerate(points))
        for i, (a_i, c_i) in enumerate(points)
    ]


def cost_column(summary: pd.DataFrame, cost: str) -> pd.Series:
    """A cost as floats: the column of that name (``n_params``, logged once per config, often as a string) or
    else the mean over seeds (``epoch_time_s_mean``). Values that are not numbers become NaN: off the front."""
    for column in (cost, f"{cost}_mean"):
        if column in summary:
            return pd.to_numeric(summary[column], errors="coerce").astype(float)
    raise ValueError(
        f"cost {cost!r}: the summary has neither {cost!r} nor {cost + '_mean'!r}; columns: {', '.join(summary.columns)}"
    )


def front_columns(summary: pd.DataFrame, costs: Sequence[str], metric: str = SELECT_BY) -> pd.DataFrame:
    """The summary with ``front_<cost>`` (bool) per cost and ``front`` (the costs whose front the row is on,
    ``"n_params, epoch_time_s"``, or ``""``): one table shows every front, so no reader has to recompute one."""
    table = summary.copy()
    accuracy = table[f"{metric}_mean"].astype(float)
    for cost in costs:
        table[f"front_{cost}"] = on_front(list(accuracy), list(cost_column(table, cost)))
    table["front"] = [", ".join(c for c in costs if row[f"front_{c}"]) for _, row in table.iterrows()]
    return table


def front_rows(summary: pd.DataFrame, cost: str, metric: str = SELECT_BY) -> pd.DataFrame:
    """The configs on the front for ``cost``, cheapest first (ties: more accurate, then by label), with the cost
    as a float column ``cost``; the order in which the footnote and the groups name them."""
    table = front_columns(summary, [cost], metric)
    table["cost"] = cost_column(table, cost)
    table = table[table[f"front_{cost}"]]
    return table.sort_values(["cost", f"{metric}_mean", "config"], ascending=[True, False, True], ignore_index=True)


def pairwise_p(runs: pd.DataFrame, groups: Sequence[str], metric: str = SELECT_BY) -> dict[tuple[int, int], float]:
    """Holm-adjusted Welch p-values of every pair of the given configs (``(i, j)``, ``i < j``: positions in
    ``groups``). The family is all pairs of front configs, since every pair is read; NaN: a side has < 2 seeds."""
    values = [runs.loc[runs["group"] == g, metric].to_numpy(dtype=float) for g in groups]
    pairs = list(combinations(range(len(groups)), 2))
    adjusted = holm([welch_p(values[i], values[j]) for i, j in pairs])
    return dict(zip(pairs, adjusted, strict=True))


def alike(p: float) -> bool:
    """Not shown to differ: tested and p ≥ ALPHA. An untested pair (NaN) is not evidence of anything, so it
    never counts as alike."""
    return not math.isnan(p) and p >= ALPHA


def components(n: int, p: dict[tuple[int, int], float]) -> list[list[int]]:
    """Connected components (two or more members, each in ascending order) of the pairs that are alike."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for (i, j), p_ij in p.items():
        if alike(p_ij):
            parent[max(root(i), root(j))] = min(root(i), root(j))
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return [m for m in members.values() if len(m) > 1]


def indistinguishable(runs: pd.DataFrame, summary: pd.DataFrame, cost: str, metric: str = SELECT_BY) -> list[list[str]]:
    """Groups of front configs (labels, cheapest first; groups ordered by their cheapest member) that the seeds
    do not show to differ in ``metric``: a cheaper one in a group with the most accurate is as good a choice as
    far as the data can tell.

    Every pair of front configs is tested (Welch) and the p-values Holm-adjusted over all those pairs; a group
    is a connected component of the pairs with adjusted p ≥ ALPHA, so two members may be linked through a third
    without being alike themselves. Pairs that cannot be tested (a config with fewer than 2 seeds) are not
    joined: no test is not evidence that two configs are alike. A config alike to no other is left out.
    """
    front = front_rows(summary, cost, metric)
    p = pairwise_p(runs, list(front["group"]), metric)
    return [[front["config"][i] for i in group] for group in components(len(front), p)]


def metric_words(metric: str) -> str:
    """``validation accuracy`` for ``val_accuracy``; other metrics by their names."""
    return "validation accuracy" if metric == "val_accuracy" else metric.replace("_", " ")


def group_text(group: list[int], labels: list[str], p: dict[tuple[int, int], float]) -> str:
    """``a ≈ b ≈ c`` when every pair in the group is alike; else its alike pairs (``a ≈ b, b ≈ c``), so the
    text never claims a pair that was shown to differ."""
    pairs = list(combinations(group, 2))
    if all(alike(p[pair]) for pair in pairs):
        return " ≈ ".join(labels[i] for i in group)
    return ", ".join(f"{labels[i]} ≈ {labels[j]}" for i, j in pairs if alike(p[i, j]))


def listed(labels: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: labels as a sentence names them."""
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def cost_sentence(runs: pd.DataFrame, summary: pd.DataFrame, cost: str, metric: str = SELECT_BY) -> str:
    """The footnote's sentence for one cost: its front (cheapest first), which front configs the seeds do not
    tell apart, which cannot be tested, and any cheaper config not shown to be less accurate than the best."""
    front = front_rows(summary, cost, metric)
    if front.empty:
        return f"Front by {cost}: none (no config has both {metric_words(metric)} and {cost})."
    labels, n = list(front["config"]), len(front)
    p = pairwise_p(runs, list(front["group"]), metric)
    seeds = [int((runs["group"] == g).sum()) for g in front["group"]]
    text = f"Front by {cost}: {', '.join(labels)}"
    groups = components(n, p)
    test = f"in {metric_words(metric)} (Welch, Holm-adjusted, p "
    if groups:
        text += f"; not shown to differ {test}≥ {ALPHA}): " + "; ".join(group_text(g, labels, p) for g in groups)
    elif any(not math.isnan(p_ij) for p_ij in p.values()):
        text += f"; every tested pair differs {test}< {ALPHA})"
    untested = [label for label, k in zip(labels, seeds, strict=True) if k < 2]
    if n > 1 and untested:
        text += f"; untested (fewer than 2 seeds): {', '.join(untested)}"
    text += "."
    best = int(np.argmax(front[f"{metric}_mean"].to_numpy()))  # the first of equals: the cheapest
    cheaper = [
        labels[i] for i in range(n) if front["cost"][i] < front["cost"][best] and alike(p[min(i, best), max(i, best)])
    ]
    if cheaper:
        verb = "is" if len(cheaper) == 1 else "are"
        text += f" {listed(cheaper)} {verb} cheaper and, as far as the seeds can tell, as accurate as {labels[best]}."
    return text


def footnote(runs: pd.DataFrame, summary: pd.DataFrame, costs: Sequence[str], metric: str = SELECT_BY) -> str:
    """What the fronts say, one sentence per cost (two when a cheaper config is as good as the most accurate)."""
    return " ".join(cost_sentence(runs, summary, cost, metric) for cost in costs)
