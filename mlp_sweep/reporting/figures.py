"""The figures of a sweep's report: validation curves overlaid, test accuracy per config.

Matplotlib's object API (``Figure``), not pyplot: no global backend to choose and
no registry of open figures to close, so importing this module changes nothing.
"""

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def save_figure(fig: Figure, path) -> None:
    """Write a figure as a PNG file."""
    fig.savefig(path, dpi=120, bbox_inches="tight")


ALL_IN_COLOUR = 12  # a sweep of up to this many configs draws every one in colour (the 3x3 grid, say)
HIGHLIGHTED = 8  # past that, the best this many in colour and the others faint, so that the figure stays readable


def overlaid_curves(curves: dict, metrics: tuple[str, ...], title: str, keys: dict[str, tuple[str, str]]) -> Figure:
    """Per config (label -> metric -> frame of epochs x seeds, best config first): the mean over seeds,
    a band of ± one std.

    Up to :data:`ALL_IN_COLOUR` configs are all drawn in colour; past that, the first
    :data:`HIGHLIGHTED` are, and the rest as thin grey lines under them. ``keys`` gives
    each label its (colour, line style) keys, e.g. (model, reg): one colour per depth
    and one dash per regularisation, so both read off the figure; where two
    highlighted configs share both keys (a sweep over the learning rate), each gets a
    colour of its own instead.
    """
    fig = Figure(figsize=(6 * len(metrics), 4.5))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    n_shown = len(curves) if len(curves) <= ALL_IN_COLOUR else HIGHLIGHTED
    shown, faint = list(curves)[:n_shown], list(curves)[n_shown:]
    by_keys = len({keys[label] for label in shown}) == len(shown)
    palette = matplotlib.colormaps["tab10" if n_shown <= 10 else "tab20"].colors
    colours = _styles([keys[label][0] if by_keys else label for label in shown], palette)
    dashes = _styles([keys[label][1] for label in shown], ("-", "--", ":", "-.") if by_keys else ("-",))
    for ax, metric in zip(axes[0], metrics, strict=False):
        for i, label in enumerate(faint):
            mean = curves[label][metric].mean(axis=1)
            ax.plot(
                mean.index,
                mean,
                color="0.75",
                linewidth=0.6,
                zorder=1,
                label=f"the other {len(faint)} configs" if i == 0 else None,
            )
        for label in shown:
            colour_key, dash_key = keys[label] if by_keys else (label, keys[label][1])
            style = {"color": colours[colour_key], "linestyle": dashes[dash_key]}
            seeds = curves[label][metric]
            mean, std = seeds.mean(axis=1), seeds.std(axis=1)  # std: NaN (no band) for one seed
            ax.plot(mean.index, mean, marker="o" if len(mean) < 4 else None, label=label, zorder=3, **style)
            ax.fill_between(mean.index, mean - std, mean + std, color=style["color"], alpha=0.12, linewidth=0, zorder=2)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    order = sorted(
        range(len(labels)), key=lambda i: labels[i].startswith("the other ")
    )  # the best first, the rest last
    axes[0][-1].legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="center left",
        bbox_to_anchor=(1.02, 0.5),
        fontsize=8,
    )
    styling = "colour = model, line style = regularisation" if by_keys else "a colour per config"
    top = f"; the best {len(shown)} of {len(curves)} configs in colour" if faint else ""
    fig.suptitle(f"{title}: mean over seeds, band ± 1 std\n{styling}{top}")
    fig.tight_layout()
    return fig


def _styles(keys: list[str], choices) -> dict:
    """One style per distinct key, in order of first appearance (cycling when there are more keys than styles)."""
    return {k: choices[i % len(choices)] for i, k in enumerate(dict.fromkeys(keys))}


def errorbars(labels: list[str], means, errors, xlabel: str, title: str) -> Figure:
    """One point per label with its error bar, the first label on top."""
    fig = Figure(figsize=(8, 1.5 + 0.35 * len(labels)))
    ax = fig.subplots()
    y = np.arange(len(labels))
    ax.errorbar(np.asarray(means), y, xerr=np.nan_to_num(np.asarray(errors, dtype=float)), fmt="o", capsize=4)
    ax.set(yticks=y, yticklabels=labels, xlabel=xlabel, title=title)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def front(
    costs, means, lows, highs, labels: list[str], on_front: list[bool], cost_label: str, title: str, log_x: bool
) -> Figure:
    """Each config's mean validation accuracy (%) with its 95% CI against a cost; the front as a step line
    through its configs. Every config is named, those off the front in grey. A config with a single seed has
    no interval to draw."""
    costs, means = np.asarray(costs, dtype=float), np.asarray(means, dtype=float)
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    errors = np.nan_to_num(np.vstack([means - lows, highs - means]))
    off = ~np.asarray(on_front)
    ax.errorbar(costs[off], means[off], yerr=errors[:, off], fmt="o", color="0.6", capsize=3, label="off the front")
    ax.errorbar(costs[~off], means[~off], yerr=errors[:, ~off], fmt="o", color="C0", capsize=3, label="on the front")
    order = np.argsort(costs[~off], kind="stable")
    ax.step(costs[~off][order], means[~off][order], where="post", color="C0", linewidth=1.2)
    for x, y, label, gone in zip(costs, means, labels, off, strict=True):
        ax.annotate(
            label,
            (x, y),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=7 if gone else 8,
            color="0.5" if gone else "black",
        )
    if log_x:
        ax.set_xscale("log")
    ax.set(xlabel=cost_label, ylabel="validation accuracy % (mean, 95% CI)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
