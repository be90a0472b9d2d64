"""The comparison table of a search as a reader sees it: labels from the values that define each config, no
`nan`, no bare hash, and the difference to the best with its Welch interval, worked out by hand below."""

import math

import pandas as pd
import pytest
from scipy import stats

from mlp_sweep.reporting.labels import config_labels
from mlp_sweep.reporting.stats import footnote, summarize, welch_interval
from mlp_sweep.reporting.table import DIFFERENCE, formatted

MLP3 = {
    "model.name": "mlp3",
    "model.widths": "[356, 105, 51]",
    "model.initializers": '[{"name": "he_normal", "args": {}}]',
}
MLP5 = {
    "model.name": "mlp5",
    "model.widths": "[507, 312, 212, 126, 84]",
    "model.initializers": '[{"name": "he_normal", "args": {}}]',
}
MLP2 = {
    "model.name": "mlp2",
    "model.widths": "[324, 108]",
    "model.initializers": '[{"name": "random_normal", "args": {"mean": 0.0, "stddev": 0.062}}, '
    '{"name": "random_normal", "args": {"mean": 0.0, "stddev": 0.125}}]',
}
NONE = {"reg.name": "none", "reg.batch_norm": "False", "reg.dropout": "0.0"}
BN_DROPOUT = {"reg.name": "bn_dropout", "reg.batch_norm": "True", "reg.dropout": "0.5"}
ADAM = {"optimizer.name": "adam", "optimizer.lr": "0.001"}

# A search as Optuna draws it: group -> (params as MLflow holds them, data checksum, final val accuracies of its seeds)
SEARCH = {
    # reg=none with reg.dropout set on top of it; AdamW and its weight decay: the best
    "best": (
        {**MLP3, **NONE, "reg.dropout": "0.4723", "optimizer.name": "adamw", "optimizer.lr": "0.0023358825194833557"}
        | {"optimizer.args.weight_decay": "0.004"},
        "1a2b3c4d5e6f",
        [0.97, 0.98, 0.99],
    ),
    # RMSprop has no weight decay; these two differ only in the data they saw
    "rms-1": (
        {**MLP3, "reg.name": "bn", "reg.batch_norm": "True", "reg.dropout": "0.1819"}
        | {"optimizer.name": "rmsprop", "optimizer.lr": "0.02372"},
        "1a2b3c4d5e6f",
        [0.95, 0.96, 0.97],
    ),
    "rms-2": (
        {**MLP3, "reg.name": "bn", "reg.batch_norm": "True", "reg.dropout": "0.1819"}
        | {"optimizer.name": "rmsprop", "optimizer.lr": "0.02372"},
        "9f8e7d6c5b4a",
        [0.94, 0.95, 0.96],
    ),
    # two seeds, 83 points below the best
    "far": (
        {**MLP5, "reg.name": "bn", "reg.batch_norm": "True", "reg.dropout": "0.4719"}
        | {"optimizer.name": "adam", "optimizer.lr": "0.0001516"},
        "1a2b3c4d5e6f",
        [0.14, 0.16],
    ),
}


def run_frame(configs: dict[str, tuple[dict[str, str], str, list[float]]], code: str = "c0de") -> pd.DataFrame:
    """One row per run, as :func:`mlp_sweep.reporting.frame.sweep_frame` gives them: params as strings (NaN where
    a config lacks a key), identity columns, final metrics that follow from the val accuracy."""
    return pd.DataFrame(
        [
            {
                "group": group,
                "data": data,
                "code": code,
                **{f"params.{k}": v for k, v in params.items()},
                "params.trainer.epochs": "2",
                "params.trainer.seed": str(seed),
                "params.n_params": "322871",
                "params.n_hidden_layers": "3",
                "accuracy": acc,
                "val_accuracy": acc,
                "val_loss": 1 - acc,
                "test_accuracy": acc,
                "test_loss": 1 - acc,
                "epoch_time_s": 1.0,
            }
            for group, (params, data, accuracies) in configs.items()
            for seed, acc in enumerate(accuracies)
        ]
    )


def welch_by_hand(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """mean(a) − mean(b) and its 95% interval: Welch's standard error, Welch–Satterthwaite degrees of freedom."""
    va, vb = stats.tvar(a) / len(a), stats.tvar(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff, half = sum(a) / len(a) - sum(b) / len(b), stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def pp(x: float) -> str:
    return f"{100 * x:+.2f}".replace("-", "−")


def test_a_search_is_labelled_by_its_values_without_nan_or_bare_hash():
    summary = summarize(run_frame(SEARCH))
    table = formatted(summary)

    assert list(table["config"]) == [
        "mlp3 · dropout 0.47 · adamw lr 2.3e-3 wd 4e-3",  # not mlp3-none: it has dropout
        "mlp3 · bn · dropout 0.18 · rmsprop lr 0.024 · data 1a2b…",  # no weight decay: left out, not nan
        "mlp3 · bn · dropout 0.18 · rmsprop lr 0.024 · data 9f8e…",
        "mlp5 · bn · dropout 0.47 · adam lr 1.5e-4",
    ]
    assert list(table["BN"]) == ["no", "yes", "yes", "yes"]  # as the labels say
    assert list(table["dropout"]) == ["0.4723", "0.1819", "0.1819", "0.4719"]
    assert not table.astype(str).apply(lambda column: column.str.contains("nan", case=False)).any().any()
    assert "other" not in table  # the labels carry what tells the configs apart


def test_the_difference_to_the_best_has_its_welch_interval_and_two_seeds_get_no_verdict():
    summary = summarize(run_frame(SEARCH))
    table = formatted(summary)
    best = SEARCH["best"][2]

    for row, group in enumerate(summary["group"]):
        if row == 0:
            continue
        diff, low, high = welch_by_hand(SEARCH[group][2], best)
        assert summary["diff_vs_best"][row] == pytest.approx(diff)
        assert (summary["diff_ci_low"][row], summary["diff_ci_high"][row]) == pytest.approx((low, high))
        assert table[DIFFERENCE][row] == f"{pp(diff)} ({pp(low)} to {pp(high)})"
    # The two-seed config, 83 points below: variances of the means 1e-4 and 1e-4/3, df = 1.684, t(0.975, df) =
    # 5.176, half-width 5.176 × 1.155 = 5.98 points. The interval shows; the test, which two seeds leave almost
    # no power, is not made.
    assert table[DIFFERENCE][3] == "−83.00 (−88.98 to −77.02)" and table[DIFFERENCE][0] == "–"
    assert list(table["vs best (Welch)"])[3] == "too few seeds (n=2)"
    assert math.isnan(summary["p_vs_best_raw"][3]) and summary["vs_best"][3] == "too few seeds"
    # Holm over the two tested configs only: rms-2's smaller raw p doubled, rms-1's raised to it if below.
    rms1, rms2 = (stats.ttest_ind(SEARCH[g][2], best, equal_var=False).pvalue for g in ("rms-1", "rms-2"))
    assert list(summary["p_vs_best"][1:3]) == pytest.approx([max(rms1, 2 * rms2), 2 * rms2])
    columns = list(table.columns)
    assert columns[columns.index("vs best (Welch)") + 1] == DIFFERENCE
    note = footnote(holm=True)
    assert "Welch–Satterthwaite" in note and "unadjusted" in note and "`too few seeds (n=k)`" in note


def test_one_seed_shows_the_difference_alone_exact_seeds_the_difference_itself_and_no_bound_passes_100():
    assert all(math.isnan(x) for x in welch_interval([0.9], [0.95, 0.96, 0.97]))
    assert welch_interval([0.93, 0.93, 0.93], [0.95, 0.95, 0.95]) == pytest.approx((-0.02, -0.02))
    assert welch_interval([0.1, 0.9], [0.95, 0.96, 0.97]) == (-1.0, 1.0)  # ± 5.1 by Welch: clipped to what can be
    table = formatted(
        summarize(run_frame({"a": (ADAM | MLP2 | NONE, "d", [0.95, 0.96]), "b": (MLP3 | NONE | ADAM, "d", [0.9])}))
    )
    assert list(table[DIFFERENCE]) == ["–", "−5.50"]
    assert list(table["vs best (Welch)"]) == ["best", "too few seeds (n=1)"]


def test_a_grid_over_presets_keeps_its_preset_names():
    grid = {
        f"{m['model.name']}-{r['reg.name']}": (m | r | ADAM, "d", [0.97 + i / 1000, 0.975 + i / 1000, 0.98 + i / 1000])
        for i, (m, r) in enumerate([(MLP2, NONE), (MLP2, BN_DROPOUT), (MLP3, NONE), (MLP3, BN_DROPOUT)])
    }
    table = formatted(summarize(run_frame(grid)))

    assert list(table["config"]) == ["mlp3-bn_dropout", "mlp3-none", "mlp2-bn_dropout", "mlp2-none"]
    assert list(table.columns) == [
        *["#", "config", "model", "hidden layers", "BN", "dropout", "optimizer", "params", "epochs", "n"],
        *["train acc %", "val acc %", "val acc 95% CI", "vs best (Welch)", DIFFERENCE, "test acc %", "test loss"],
        *["s/epoch", "predict ms/1k", "seeds to decide"],  # ≈ best: the seeds to show the difference
    ]


def test_labels_name_what_the_table_varies_with_as_few_digits_as_keep_them_apart():
    adam = {**MLP3, **NONE, **ADAM}
    assert config_labels(
        [
            {f"params.{k}": v for k, v in (adam | {"optimizer.lr": lr, "trainer.batch_size": b}).items()}
            for lr, b in [("0.0023358", "64"), ("0.0023412", "64"), ("0.0023412", "128")]
        ]
    ) == [  # 2.3e-3 and 2.34e-3 would name two configs alike
        "mlp3-none · adam lr 2.336e-3 · batch_size 64",
        "mlp3-none · adam lr 2.341e-3 · batch_size 64",
        "mlp3-none · adam lr 2.341e-3 · batch_size 128",
    ]
    same_but_code = [
        {**{f"params.{k}": v for k, v in adam.items()}, "data": "d", "code": c} for c in ("3c4d5e", "3c4f00")
    ]
    assert config_labels(same_but_code) == ["mlp3-none · code 3c4d…", "mlp3-none · code 3c4f…"]


def test_one_config_alone_is_labelled_by_its_values():
    """A config on its own: a preset while it is one, its values once a search changed them."""
    drawn = {**MLP3, **NONE, "reg.dropout": "0.4723", "optimizer.name": "adamw", "optimizer.lr": "0.0023358825"}
    assert config_labels([{f"params.{k}": v for k, v in drawn.items()}]) == ["mlp3 · dropout 0.47 · adamw lr 2.3e-3"]
    preset = {**MLP2, **BN_DROPOUT, **ADAM}
    assert config_labels([{f"params.{k}": v for k, v in preset.items()}]) == ["mlp2-bn_dropout"]
