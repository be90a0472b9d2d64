"""The figures a run logs: the notebook's train-vs-val curves and a confusion matrix sized for the data's classes.

Matplotlib's object API (``Figure``), not pyplot: no global backend to choose and
no registry of open figures to close, so importing this module changes nothing.
"""

import numpy as np
from matplotlib.figure import Figure

MAX_ANNOTATED_CLASSES = 30  # above this, the cells are too small to hold their counts: the colour alone shows them


def curves(history: dict[str, list[float]], title: str) -> Figure:
    """Loss and accuracy per epoch, train against validation, side by side."""
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
        ax.plot(epochs, history[metric], "b-", label=f"train {metric}")
        ax.plot(epochs, history[f"val_{metric}"], "r-", label=f"validation {metric}")
        ax.set(xlabel="epoch", ylabel=metric, title=f"{title}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """An ``n_classes`` × ``n_classes`` table: row = true class, column = predicted class, cell = test samples."""
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def confusion_matrix(counts: np.ndarray, title: str) -> Figure:
    """The confusion counts as a heat map, its size and lettering following the number of classes."""
    n_classes = len(counts)
    side = max(5.0, 0.5 * n_classes + 2)
    fig = Figure(figsize=(side + 1, side))
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    if n_classes <= MAX_ANNOTATED_CLASSES:
        size = 9 if n_classes <= 10 else 7
        for (i, j), n in np.ndenumerate(counts):
            color = "white" if n > counts.max() / 2 else "black"
            ax.text(j, i, n, ha="center", va="center", fontsize=size, color=color)
    ticks = range(0, n_classes, max(1, n_classes // MAX_ANNOTATED_CLASSES))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true", title=f"{title}: test confusion matrix")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig
