"""Look inside a language model's LSTM layers: every gate, every step.

The values come from the model's own cells: `LSTMCell.step` is what the
cell's `call` runs, with the gates returned as well. A probe replays the
model's layers one time step at a time on a batch of token ids, from zero
states, with the trained weights.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_lstm_scratch.language_model import model_parts
from keras_lstm_scratch.layers.lstm_cell import LSTMCell

GATES = ("input", "forget", "candidate", "output")


def trace_gates(model, token_ids):
    """Gate values and states of every LSTM layer of `model` over a batch.

    Args:
        model: A model from `build_language_model` (LSTM layers).
        token_ids: Integer ids `(batch, time)`.

    Returns:
        A list with one dict per LSTM layer (bottom first) of NumPy arrays
        `(batch, time, units)` under `"input"`, `"forget"`,
        `"candidate"`, `"output"` (the gates i, f, o in 0..1 and the
        candidate g in -1..1), `"cell"` (c) and `"hidden"` (h).

    Raises:
        ValueError: if `model` has no LSTM layers.
    """
    embedding, rnn_layers, _ = model_parts(model)
    cells = [layer.cell for layer in rnn_layers]
    if not all(isinstance(cell, LSTMCell) for cell in cells):
        raise ValueError(
            f"Model {model.name!r} has layers that are not LSTMCell RNNs "
            f"({[type(cell).__name__ for cell in cells]}); gates exist only "
            "in LSTM layers."
        )
    token_ids = np.asarray(token_ids)
    if token_ids.ndim != 2:
        raise ValueError(
            f"token_ids must be (batch, time); received shape "
            f"{token_ids.shape}."
        )
    # Computed in the weights' dtype: float32 under mixed precision too
    # (`step` is called directly, outside Keras's autocasting).
    sequences = ops.cast(
        embedding(ops.convert_to_tensor(token_ids, "int32")),
        cells[0].variable_dtype,
    )  # (N, T, D)
    traces = []
    for cell in cells:
        trace = run_cell(cell, ops.convert_to_tensor(sequences))
        traces.append(
            {key: ops.convert_to_numpy(value) for key, value in trace.items()}
        )
        sequences = trace["hidden"]  # inputs of the next layer
    return traces


def summarize_gates(traces):
    """Mean, quartiles and saturation shares of each gate per layer.

    Args:
        traces: From `trace_gates`.

    Returns:
        One dict per layer and gate (forget, input, output): `layer`,
        `gate`, `mean`, `q1`, `median`, `q3`, `share_below_0.1`,
        `share_above_0.9`.
    """
    rows = []
    for layer, trace in enumerate(traces, start=1):
        for gate in ("forget", "input", "output"):
            values = trace[gate].ravel()
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            rows.append(
                {
                    "layer": layer,
                    "gate": gate,
                    "mean": float(values.mean()),
                    "q1": float(q1),
                    "median": float(median),
                    "q3": float(q3),
                    "share_below_0.1": float((values < 0.1).mean()),
                    "share_above_0.9": float((values > 0.9).mean()),
                }
            )
    return rows


TRACED = (*GATES, "cell", "hidden")


def run_cell(cell, sequences):
    """Every step's gates and states of one `LSTMCell` over `sequences`.

    Args:
        cell: An `LSTMCell`.
        sequences: Float inputs `(batch, time, features)`.

    Returns:
        A dict of `(batch, time, units)` tensors, keyed by `TRACED`.
    """
    h, c = (
        ops.cast(state, sequences.dtype)
        for state in cell.get_initial_state(ops.shape(sequences)[0])
    )
    # On TensorFlow, `ops.scan` stacks outputs shaped as its carry only: the
    # carry holds every traced value, the gates of the step before too.
    initial = (*(ops.zeros_like(h) for _ in GATES), c, h)

    def step(carry, inputs):
        h, c, gates = cell.step(inputs, [carry[-1], carry[-2]])
        traced = (*gates, c, h)
        return traced, traced

    # Time-major for the scan: (time, batch, features).
    _, traced = ops.scan(step, initial, ops.transpose(sequences, [1, 0, 2]))
    return {
        key: ops.transpose(values, [1, 0, 2])
        for key, values in zip(TRACED, traced, strict=True)
    }


class GateHistograms(keras.callbacks.Callback):
    """Logs the gate distributions of the LSTM layers to TensorBoard.

    At the end of every epoch it traces the gates on a fixed batch of
    token ids (`trace_gates`) and writes one histogram per layer and gate
    (`gates/lstm_1/forget`, ...) to `log_dir`, beside Keras's own
    TensorBoard logs.

    Args:
        token_ids: Integer ids `(batch, time)`, e.g. validation windows.
        log_dir: Summary directory, e.g. `RUN/tensorboard/gates`.

    Example:

    >>> model.fit(data, callbacks=[GateHistograms(valid_ids, "logs/gates")])
    """

    def __init__(self, token_ids, log_dir):
        super().__init__()
        self.token_ids = np.asarray(token_ids)
        self.log_dir = log_dir
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        traces = trace_gates(self.model, self.token_ids)
        with self._writer.as_default(step=epoch + 1):
            for layer_index, trace in enumerate(traces, start=1):
                for gate in GATES:
                    tf.summary.histogram(
                        f"gates/lstm_{layer_index}/{gate}", trace[gate]
                    )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
