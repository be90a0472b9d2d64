"""Verdicts with a margin and the seeds a decision needs, against cases worked by hand or from textbook tables."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlp_sweep.reporting import verdicts
from mlp_sweep.reporting.stats import summarize
from mlp_sweep.reporting.table import SEEDS_PLAN, VERDICT, formatted

A, B = [0.90, 0.92, 0.94], [0.95, 0.96, 0.97]


def test_welch_comparison_by_hand():
    # variances of the means: 0.0004/3 and 0.0001/3; se = sqrt(0.0005/3); df = 0.0005² / ((0.0004² + 0.0001²)/2)
    se, df = math.sqrt(0.0005 / 3), 0.0005**2 / ((0.0004**2 + 0.0001**2) / 2)
    c = verdicts.compare(A, B)
    assert c.diff == pytest.approx(-0.04) and c.se == pytest.approx(se) and c.df == pytest.approx(df)
    assert df == pytest.approx(2.941, abs=1e-3)
    assert c.p_worse == pytest.approx(stats.t.cdf(-0.04 / se, df))
    half = stats.t.ppf(0.95, df) * se  # the 90% interval TOST at 5% reads
    assert c.interval(0.05) == pytest.approx((-0.04 - half, -0.04 + half))
    assert verdicts.compare([0.9], B) is None  # one seed: no comparison


def test_verdicts_worse_equivalent_undecided():
    close = verdicts.compare([0.9700, 0.9702, 0.9698, 0.9701], [0.9701, 0.9703, 0.9699, 0.9700])
    assert close.verdict(0.003, 0.05) == verdicts.EQUIVALENT  # ±0.3 points holds a 0.01-point difference
    assert close.verdict(0.00001, 0.05) == verdicts.UNDECIDED  # a margin narrower than the noise
    assert verdicts.compare(A, B).verdict(0.003, 0.05) == verdicts.WORSE  # 4 points below, 1 point of noise
    identical = verdicts.compare([0.9, 0.9], [0.9, 0.9])
    assert identical.verdict(0.003, 0.05) == verdicts.EQUIVALENT and identical.p_worse == 1.0


def test_seeds_needed_matches_the_textbook_power_tables():
    # Two-sample t-test, two-sided α = 0.05, 80% power: 17 a group for an effect of 1 SD, 64 for 0.5 SD
    # (Cohen 1988, table 2.4.1; G*Power gives the same).
    assert verdicts.seeds_needed(-0.01, (1e-4, 1e-4), None, 0.05, 0.05, sided=2).worse == 17
    assert verdicts.seeds_needed(-0.005, (1e-4, 1e-4), None, 0.05, 0.05, sided=2).worse == 64
    # TOST with no true difference and margin 1 SD, α = 0.05: the normal approximation gives
    # n = 2 (z_0.95 + z_0.90)² = 2 (1.645 + 1.282)² = 17.1 a group; the t distribution adds a seed or two.
    needed = verdicts.seeds_needed(0.0, (1e-4, 1e-4), 0.01, 0.05, 0.05)
    assert needed.worse is None and 18 <= needed.equivalent <= 19 and needed.nearer == verdicts.EQUIVALENT
    # A difference beyond the margin can never be shown equivalent; one as large as 1 SD is shown worse.
    beyond = verdicts.seeds_needed(-0.02, (1e-4, 1e-4), 0.01, 0.05, 0.05)
    assert (
        beyond.equivalent is None
        and beyond.nearer == verdicts.WORSE
        and beyond.text() == f"{beyond.worse} seeds (worse)"
    )
    assert verdicts.seeds_needed(0.0, (1e-4, 1e-4), None, 0.05, 0.05).text() == "> 1000"


def frame(groups: dict[str, list[float]]) -> pd.DataFrame:
    """Runs of configs that differ in their dropout, one row a seed."""
    rows = []
    for i, (name, values) in enumerate(groups.items()):
        for seed, v in enumerate(values):
            rows.append(
                {
                    "group": name,
                    "config_hash": name,
                    "params.model.name": "mlp2",
                    "params.reg.name": "none",
                    "params.reg.dropout": str(i / 10),
                    "params.trainer.seed": str(seed),
                    "val_accuracy": v,
                    "test_accuracy": v,
                    "val_loss": 1 - v,
                }
            )
    return pd.DataFrame(rows)


def test_a_report_with_a_margin_gives_each_config_a_verdict_and_the_undecided_their_seeds():
    runs = frame(
        {
            "best": [0.9700, 0.9705, 0.9710],
            "tie": [0.9701, 0.9703, 0.9707],  # 0.01 points behind, spread 0.03: within ±0.3 points
            "noisy": [0.9670, 0.9700, 0.9730],  # 0.05 points behind, spread 0.3: neither test decides yet
            "loser": [0.9100, 0.9120, 0.9110],  # 6 points behind
        }
    )
    table = summarize(runs, margin=0.3)
    verdict = dict(zip(table["group"], table["verdict"], strict=True))
    assert verdict == {"best": "best", "tie": "equivalent ±0.3", "noisy": "undecided", "loser": "worse"}
    plan = dict(zip(table["group"], table["seeds_needed"], strict=True))
    assert math.isnan(plan["tie"]) and math.isnan(plan["loser"])
    noisy, best = runs[runs.group == "noisy"].val_accuracy, runs[runs.group == "best"].val_accuracy
    d, v1, v2 = abs(noisy.mean() - best.mean()), noisy.var(), best.var()

    def tost_power(n: int) -> float:  # Welch's se and df with n seeds a side, TOST at 5%, margin 0.3 points
        se, df = math.sqrt((v1 + v2) / n), (n - 1) * (v1 + v2) ** 2 / (v1**2 + v2**2)
        crit = stats.t.ppf(0.95, df)
        return 1 - stats.nct.cdf(crit, df, (0.003 - d) / se) - stats.nct.cdf(crit, df, (0.003 + d) / se)

    expected = next(n for n in range(2, 1000) if tost_power(n) >= 0.8)
    assert plan["noisy"] == expected  # equivalence is nearer: 0.05 points is well inside ±0.3
    shown = formatted(table)
    assert list(shown[VERDICT]) == ["best", "equivalent ±0.3", "undecided", "worse"]
    assert shown[SEEDS_PLAN][2] == f"{expected} seeds (equivalent)"


def test_without_a_margin_the_verdicts_stay_as_they_were_and_too_few_seeds_get_a_plan():
    table = summarize(frame({"best": [0.97, 0.972, 0.974], "two": [0.95, 0.953]}))
    assert "verdict" not in table and list(table["vs_best"]) == ["best", "too few seeds"]
    d, v1, v2 = 0.972 - np.mean([0.95, 0.953]), np.var([0.95, 0.953], ddof=1), 0.002**2

    def welch_power(n: int) -> float:  # two-sided at 5%, Welch's se and df with n seeds a side
        se, df = math.sqrt((v1 + v2) / n), (n - 1) * (v1 + v2) ** 2 / (v1**2 + v2**2)
        return stats.nct.sf(stats.t.ppf(0.975, df), df, d / se)

    assert table["seeds_needed"][1] == next(n for n in range(2, 1000) if welch_power(n) >= 0.8)
