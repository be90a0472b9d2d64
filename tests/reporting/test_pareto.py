"""The accuracy–cost front: a summary whose fronts are worked out by hand below, and seeds chosen so that the
Welch/Holm conclusions are clear-cut (p-values far from 0.05 on either side)."""

import math
from itertools import combinations

import pandas as pd
import pytest
from scipy import stats

from mlp_sweep.reporting.pareto import components, footnote, front_columns, group_text, indistinguishable, on_front

# group -> (label, n_params as MLflow logs it, mean s/epoch, final val accuracies of its seeds, their mean by hand)
CONFIGS = {
    "aaaa": ("mlp1-none", "100", 0.5, [0.899, 0.900, 0.901], 0.900),  # cheapest everywhere, clearly worse
    "bbbb": ("mlp2-none", "200", 1.5, [0.970, 0.975, 0.980], 0.975),
    "cccc": ("mlp2-bn", "300", 1.2, [0.972, 0.975, 0.978], 0.975),  # ties mlp2-none in accuracy
    "dddd": ("mlp3-bn", "400", 3.0, [0.975, 0.980, 0.985], 0.980),
    "eeee": ("mlp3-bn_dropout", "400", 2.0, [0.974, 0.980, 0.986], 0.980),  # same point as mlp3-bn by n_params
    "ffff": ("mlp5-bn", "500", 4.0, [0.968, 0.970, 0.972], 0.970),  # costlier and worse than mlp3-bn: off
    "gggg": ("mlp4-none", None, 5.0, [0.990], 0.990),  # no n_params (NaN cost); one seed: untestable
}
# The fronts by hand ("no other config has a strictly higher mean accuracy at a lower or equal cost"):
# n_params (100, 200, 300, 400, 400, 500, NaN): mlp1-none (nothing cheaper), mlp2-none (only a worse one is
#   cheaper), mlp2-bn (mlp2-none is cheaper but only as accurate: a tie does not dominate), mlp3-bn and
#   mlp3-bn_dropout (identical points: neither is strictly better); not mlp5-bn (mlp3-bn is better and cheaper)
#   nor mlp4-none (no cost: off, although the most accurate).
# s/epoch (mlp1-none 0.5 < mlp2-bn 1.2 < mlp2-none 1.5 < mlp3-bn_dropout 2.0 < mlp3-bn 3.0 < mlp5-bn 4.0 <
#   mlp4-none 5.0): all but mlp5-bn (mlp3-bn_dropout is better and cheaper); mlp4-none is the most accurate.
FRONT_N_PARAMS = ["mlp1-none", "mlp2-none", "mlp2-bn", "mlp3-bn", "mlp3-bn_dropout"]  # cheapest first
FRONT_EPOCH = ["mlp1-none", "mlp2-bn", "mlp2-none", "mlp3-bn_dropout", "mlp3-bn", "mlp4-none"]
# Welch p-values, raw (see test_welch_conclusions_are_clear_cut): mlp1-none against each other front config
# < 0.0015, so < 0.015 even after Holm's largest factor (10 tested pairs); among mlp2-none, mlp2-bn, mlp3-bn and
# mlp3-bn_dropout every pair has p > 0.2, and Holm only raises p-values. mlp4-none has one seed: untested.
ALIKE = ["bbbb", "cccc", "dddd", "eeee"]


@pytest.fixture
def runs() -> pd.DataFrame:
    """One row per run: its config's group and final validation accuracy."""
    rows = [{"group": g, "val_accuracy": acc} for g, (*_, seeds, _mean) in CONFIGS.items() for acc in seeds]
    return pd.DataFrame(rows)


@pytest.fixture
def summary() -> pd.DataFrame:
    """The columns of ``stats.summarize`` that the front reads, best first, with the means written by hand
    (exact ties, which means computed in floating point need not give)."""
    rows = [
        {
            "config": label,
            "group": g,
            "n": len(seeds),
            "val_accuracy_mean": mean,
            "n_params": n_params,
            "epoch_time_s_mean": epoch,
        }
        for g, (label, n_params, epoch, seeds, mean) in CONFIGS.items()
    ]
    return pd.DataFrame(rows).sort_values("val_accuracy_mean", ascending=False, kind="stable", ignore_index=True)


@pytest.mark.parametrize(
    ("accuracy", "cost", "expected"),
    [
        ([0.9, 0.8], [1.0, 2.0], [True, False]),  # costlier and worse: off
        ([0.8, 0.9], [1.0, 2.0], [True, True]),  # cheaper but worse: on, nothing cheaper is better
        ([0.9, 0.9], [1.0, 2.0], [True, True]),  # a tie in accuracy at lower cost does not dominate
        ([0.9, 0.9], [1.0, 1.0], [True, True]),  # identical points: both on
        ([0.9, 0.8], [1.0, 1.0], [True, False]),  # better at equal cost dominates
        ([0.99, 0.9], [math.nan, 2.0], [False, True]),  # NaN cost: never on, never dominates
        ([math.nan, 0.9], [1.0, 2.0], [False, True]),  # NaN accuracy: likewise
        ([], [], []),
    ],
)
def test_on_front(accuracy, cost, expected):
    assert on_front(accuracy, cost) == expected


def test_on_front_needs_a_cost_per_accuracy():
    with pytest.raises(ValueError):
        on_front([0.9, 0.8], [1.0])


def test_front_columns(summary):
    before = summary.copy()
    table = front_columns(summary, ["n_params", "epoch_time_s"]).set_index("config")
    assert table["front_n_params"].to_dict() == {label: label in FRONT_N_PARAMS for label in table.index}
    assert table["front_epoch_time_s"].to_dict() == {label: label in FRONT_EPOCH for label in table.index}
    assert table["front"].to_dict() == {
        "mlp4-none": "epoch_time_s",
        "mlp3-bn": "n_params, epoch_time_s",
        "mlp3-bn_dropout": "n_params, epoch_time_s",
        "mlp2-none": "n_params, epoch_time_s",
        "mlp2-bn": "n_params, epoch_time_s",
        "mlp5-bn": "",
        "mlp1-none": "n_params, epoch_time_s",
    }
    pd.testing.assert_frame_equal(summary, before)  # a copy: the summary itself is left alone


def test_front_columns_of_a_missing_cost_names_it_and_the_columns(summary):
    with pytest.raises(ValueError, match=r"'predict_ms_per_1k'.*'predict_ms_per_1k_mean'.*epoch_time_s_mean"):
        front_columns(summary, ["n_params", "predict_ms_per_1k"])


def test_welch_conclusions_are_clear_cut():
    """The fixture's premise, checked with scipy itself: Holm multiplies a raw p-value by at most the number of
    tested pairs (10 on either front) and never lowers it."""
    seeds = {g: CONFIGS[g][3] for g in ["aaaa", *ALIKE]}
    p = {(a, b): stats.ttest_ind(seeds[a], seeds[b], equal_var=False).pvalue for a, b in combinations(seeds, 2)}
    assert max(v for pair, v in p.items() if "aaaa" in pair) * 10 < 0.015
    assert min(v for pair, v in p.items() if "aaaa" not in pair) > 0.2
    assert p["bbbb", "dddd"] == pytest.approx(0.2879, abs=1e-4)  # mlp2-none vs mlp3-bn


def test_indistinguishable(runs, summary):
    # Cheapest first on each front; mlp1-none differs from all, mlp4-none is untested: both left out.
    assert indistinguishable(runs, summary, "n_params") == [["mlp2-none", "mlp2-bn", "mlp3-bn", "mlp3-bn_dropout"]]
    assert indistinguishable(runs, summary, "epoch_time_s") == [["mlp2-bn", "mlp2-none", "mlp3-bn_dropout", "mlp3-bn"]]


def test_untested_pairs_are_not_joined():
    """Two one-seed configs on the front: no test, so no claim that they are alike, and none that they differ."""
    summary = pd.DataFrame(
        {"config": ["a", "b"], "group": ["ga", "gb"], "val_accuracy_mean": [0.9, 0.8], "n_params": ["2", "1"]}
    )
    runs = pd.DataFrame({"group": ["ga", "gb"], "val_accuracy": [0.9, 0.8]})
    assert indistinguishable(runs, summary, "n_params") == []
    assert footnote(runs, summary, ["n_params"]) == "Front by n_params: b, a; untested (fewer than 2 seeds): b, a."


def test_groups_are_connected_components():
    """a ≈ b and b ≈ c, but a differs from c: one group, whose text names only the pairs that are alike."""
    p = {(0, 1): 0.5, (1, 2): 0.5, (0, 2): 0.01, (0, 3): math.nan, (1, 3): math.nan, (2, 3): math.nan}
    assert components(4, p) == [[0, 1, 2]]
    assert group_text([0, 1, 2], ["a", "b", "c", "d"], p) == "a ≈ b, b ≈ c"
    assert group_text([0, 1], ["a", "b"], {(0, 1): 0.05}) == "a ≈ b"  # p = ALPHA: not shown to differ


def test_footnote(runs, summary):
    by_params, by_epoch = (
        "Front by n_params: mlp1-none, mlp2-none, mlp2-bn, mlp3-bn, mlp3-bn_dropout; not shown to differ in "
        "validation accuracy (Welch, Holm-adjusted, p ≥ 0.05): mlp2-none ≈ mlp2-bn ≈ mlp3-bn ≈ mlp3-bn_dropout. "
        "mlp2-none and mlp2-bn are cheaper and, as far as the seeds can tell, as accurate as mlp3-bn.",
        # The most accurate, mlp4-none, has one seed: nothing can be said to be as accurate as it.
        "Front by epoch_time_s: mlp1-none, mlp2-bn, mlp2-none, mlp3-bn_dropout, mlp3-bn, mlp4-none; not shown to "
        "differ in validation accuracy (Welch, Holm-adjusted, p ≥ 0.05): mlp2-bn ≈ mlp2-none ≈ mlp3-bn_dropout ≈ "
        "mlp3-bn; untested (fewer than 2 seeds): mlp4-none.",
    )
    assert footnote(runs, summary, ["n_params", "epoch_time_s"]) == f"{by_params} {by_epoch}"


def test_footnote_when_every_pair_differs(runs, summary):
    two = summary[summary["group"].isin(["aaaa", "dddd"])]  # mlp1-none vs mlp3-bn: raw p = 0.00089, one pair
    assert footnote(runs, two, ["n_params"]) == (
        "Front by n_params: mlp1-none, mlp3-bn; every tested pair differs in validation accuracy "
        "(Welch, Holm-adjusted, p < 0.05)."
    )


def test_footnote_of_an_empty_front(runs, summary):
    no_cost = summary.assign(n_params=None)
    assert footnote(runs, no_cost, ["n_params"]) == (
        "Front by n_params: none (no config has both validation accuracy and n_params)."
    )
