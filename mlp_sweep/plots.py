"""The figures a run logs: the notebook's train-vs-val curves and a confusion matrix."""

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def log_figure(run_id: str, fig: Figure, artifact_file: str) -> None:
    """Log a figure as a PNG artifact of the run, then free it."""
    mlflow.MlflowClient().log_figure(run_id, fig, artifact_file)
    plt.close(fig)


def curves(history: dict[str, list[float]], title: str) -> Figure:
    """Loss and accuracy per epoch, train against validation, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
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
    fig, ax = plt.subplots(figsize=(6, 5.5))
    image = ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, n, ha="center", va="center", fontsize=7, color="white" if n > counts.max() / 2 else "black")
    ax.set(xticks=range(n_classes), yticks=range(n_classes), xlabel="predicted", ylabel="true",
           title=f"{title}: test confusion matrix")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig
