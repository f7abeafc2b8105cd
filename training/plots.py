"""Training curves and model inspection figures as PNGs.

Figures are made as `matplotlib.figure.Figure` objects, without `pyplot`:
no backend is chosen and no global state is touched, so importing this
module changes nothing for a notebook or an application around it.
"""

from matplotlib.figure import Figure


def new_figure(figsize, rows=1, columns=1):
    """A figure of its own (no pyplot state) and its axes."""
    figure = Figure(figsize=figsize, dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def plot_curves(history, path, title=""):
    """Plots train and validation perplexity per epoch (log scale).

    Args:
        history: Rows with `epoch`, `perplexity` and `val_perplexity`.
        path: Output PNG path.
        title: Figure title.
    """
    epochs = [row["epoch"] for row in history]
    figure, axes = new_figure((6, 4))
    axis = axes[0][0]
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


def plot_gradient_flow(norms_by_label, path, model_size):
    """`||d loss / d h_t||` against distance from the loss, log scale.

    Args:
        norms_by_label: `{label: (time,) norms}`, time step order.
        path: Output PNG path.
        model_size: For the title, e.g. `"1 layer, 100 units"`.
    """
    figure, axes = new_figure((7, 4.5))
    axis = axes[0][0]
    for label, norms in norms_by_label.items():
        distances = list(range(len(norms) - 1, -1, -1))
        style = "-" if "LSTM" in label else "--"
        marker = "o" if "untrained" not in label else "."
        axis.plot(distances, norms, style, marker=marker, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("distance from the loss (time steps back)")
    axis.set_ylabel("mean ||d loss / d h_t||")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title(f"How far back the gradient reaches ({model_size})")
    figure.tight_layout()
    figure.savefig(path)


def plot_gate_histograms(traces, path):
    """Histograms of forget, input and output gate values, one row a layer.

    Args:
        traces: From `keras_lstm_scratch.inspection.trace_gates`.
        path: Output PNG path.
    """
    gates = ("forget", "input", "output")
    figure, axes = new_figure(
        (10, 2.8 * len(traces)), rows=len(traces), columns=len(gates)
    )
    for layer, trace in enumerate(traces):
        for column, gate in enumerate(gates):
            axis = axes[layer][column]
            axis.hist(trace[gate].ravel(), bins=50, range=(0.0, 1.0))
            axis.set_title(f"layer {layer + 1}: {gate} gate")
            axis.set_xlabel("openness (0 closed, 1 open)")
            axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path)


def plot_cell_trajectory(cell_states, words, units, path):
    """The cell state `c` of a few units, word by word through a sentence.

    Args:
        cell_states: `(time, len(units))`.
        words: The sentence's words, one per step.
        units: The unit indices plotted.
        path: Output PNG path.
    """
    figure, axes = new_figure((max(7, 0.4 * len(words)), 4))
    axis = axes[0][0]
    for column, unit in enumerate(units):
        axis.plot(cell_states[:, column], marker=".", label=f"unit {unit}")
    axis.set_xticks(range(len(words)))
    axis.set_xticklabels(words, rotation=70, fontsize=8)
    axis.set_ylabel("cell state c")
    axis.axhline(0.0, color="gray", linewidth=0.5)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, ncol=2)
    axis.set_title("Cell state across a validation sentence (layer 1)")
    figure.tight_layout()
    figure.savefig(path)
