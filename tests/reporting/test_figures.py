"""The report's figures: which configs are drawn in colour, and how."""

import numpy as np
import pandas as pd
import pytest

from mlp_sweep.reporting import figures


def curves_of(n_configs: int, epochs: int = 3, seeds: int = 2) -> dict:
    rng = np.random.default_rng(0)
    index = pd.RangeIndex(1, epochs + 1)
    return {
        f"c{i}": {m: pd.DataFrame(rng.random((epochs, seeds)), index=index) for m in ("val_loss", "val_accuracy")}
        for i in range(n_configs)
    }


def legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]


def colours(fig) -> tuple[list, set]:
    """The grey lines of the first panel, and the distinct colours of the others."""
    lines = fig.axes[0].get_lines()
    return [line for line in lines if line.get_color() == "0.75"], {line.get_color() for line in lines} - {"0.75"}


def test_past_twelve_configs_the_best_eight_in_colour_and_the_rest_faint():
    curves = curves_of(16)
    fig = figures.overlaid_curves(
        curves, ("val_loss", "val_accuracy"), "sweep", {label: ("mlp2", "none") for label in curves}
    )
    assert legend_texts(fig) == [f"c{i}" for i in range(8)] + ["the other 8 configs"]
    grey, coloured = colours(fig)
    assert len(grey) == 8 and len(coloured) == 8  # all share (model, reg): a colour per config


@pytest.mark.parametrize("n", [9, 12])
def test_up_to_twelve_configs_every_one_in_a_colour_of_its_own(n):
    curves = curves_of(n)
    fig = figures.overlaid_curves(
        curves, ("val_loss", "val_accuracy"), "sweep", {label: ("mlp2", "none") for label in curves}
    )
    assert legend_texts(fig) == [f"c{i}" for i in range(n)]
    grey, coloured = colours(fig)
    assert grey == [] and len(coloured) == n


def test_few_configs_keep_colour_by_model_and_dash_by_regularisation():
    curves = curves_of(3)
    keys = {"c0": ("mlp2", "none"), "c1": ("mlp2", "bn"), "c2": ("mlp3", "none")}
    fig = figures.overlaid_curves(curves, ("val_loss", "val_accuracy"), "sweep", keys)
    assert legend_texts(fig) == ["c0", "c1", "c2"]
    c0, c1, c2 = fig.axes[0].get_lines()
    assert c0.get_color() == c1.get_color() != c2.get_color()
    assert c0.get_linestyle() == c2.get_linestyle() != c1.get_linestyle()
