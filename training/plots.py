"""Training curves as a PNG."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history, path, title=""):
    """Plots train and validation perplexity per epoch (log scale).

    Args:
        history: Rows with `epoch`, `perplexity` and `val_perplexity`.
        path: Output PNG path.
        title: Figure title.
    """
    epochs = [row["epoch"] for row in history]
    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    for key, label in (("perplexity", "train"), ("val_perplexity", "valid")):
        points = [(row["epoch"], row[key]) for row in history if key in row]
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label=label)
    axis.set_yscale("log")
    axis.set_xlabel("epoch")
    axis.set_ylabel("perplexity")
    if epochs:
        axis.set_xticks(
            epochs if len(epochs) <= 20 else epochs[:: len(epochs) // 10]
        )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
