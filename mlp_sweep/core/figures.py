"""The figures a run logs: the notebook's train-vs-val curves and a confusion matrix.

Matplotlib's object API (``Figure``), not pyplot: no global backend to choose and
no registry of open figures to close, so importing this module changes nothing.
"""

import numpy as np
from matplotlib.figure import Figure


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


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, title: str, n_classes: int = 10) -> Figure:
    """Counts of true class (rows) against predicted class (columns) on the test set."""
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    fig = Figure(figsize=(6, 5.5))
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, n, ha="center", va="center", fontsize=7, color="white" if n > counts.max() / 2 else "black")
    ax.set(
        xticks=range(n_classes),
        yticks=range(n_classes),
        xlabel="predicted",
        ylabel="true",
        title=f"{title}: test confusion matrix",
    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig
