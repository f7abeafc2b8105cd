"""How far back the gradient reaches: `||d loss / d h_t||` against distance.

The book's chapter 6 starts from the vanishing gradient of a plain RNN:
backpropagating through `h_t = tanh(x_t @ W + h_{t-1} @ U + b)` multiplies
the gradient by `U^T` and by `tanh'` once per step, so the signal from a
loss reaches few steps back. The LSTM's cell state is carried by
`c = f * c_prev + i * g`, whose gradient is multiplied only by the forget
gate `f`, step by step.

`hidden_state_gradient_norms` measures this on a real model: it replays
the model's own cells over a window, adds a zero "probe" to every hidden
state `h_t` (so that the gradient with respect to the probe is the
gradient with respect to `h_t`, through every later step), scores the
prediction of the window's last token, and returns the mean norm of each
probe's gradient.
"""

import numpy as np
import tensorflow as tf

from keras_lstm_scratch.language_model import model_parts
from keras_lstm_scratch.losses.cross_entropy import sparse_softmax_cross_entropy


def hidden_state_gradient_norms(model, token_ids, targets):
    """Mean `||d loss / d h_t||` for every layer and time step.

    The loss is the cross-entropy of the last step's prediction, averaged
    over the batch; the states start from zero.

    Args:
        model: A language model from `build_language_model` (LSTM or
            SimpleRNN layers, e.g. `rnn_cell="simple_rnn"`).
        token_ids: Integer ids `(batch, time)`.
        targets: Integer ids `(batch, time)`; only `targets[:, -1]` is
            scored.

    Returns:
        NumPy `(layers, time)`: entry `[l, t]` is the batch mean of the
        gradient norm at layer `l + 1`'s hidden state after step `t`. The
        distance from the loss is `time - 1 - t`.
    """
    token_ids = np.asarray(token_ids)
    targets = np.asarray(targets)
    if token_ids.ndim != 2 or targets.shape != token_ids.shape:
        raise ValueError(
            "token_ids and targets must both be (batch, time); received "
            f"{token_ids.shape} and {targets.shape}."
        )
    embedding, rnn_layers, projection = model_parts(model)
    cells = [layer.cell for layer in rnn_layers]
    batch, steps = token_ids.shape
    inputs = embedding(tf.constant(token_ids, "int32"))  # (N, T, D)
    probes = [
        [tf.zeros((batch, _state_size(cell))) for _ in range(steps)]
        for cell in cells
    ]
    with tf.GradientTape() as tape:
        tape.watch(probes)
        states = [
            list(cell.get_initial_state(batch_size=batch)) for cell in cells
        ]
        for t in range(steps):
            layer_input = inputs[:, t]
            for layer, cell in enumerate(cells):
                _, new_states = cell(layer_input, states[layer])
                new_states = list(tf.nest.flatten(new_states))
                new_states[0] = new_states[0] + probes[layer][t]  # h_t
                states[layer] = new_states
                layer_input = new_states[0]
        logits = projection(layer_input)  # (N, vocab)
        loss = tf.reduce_mean(
            sparse_softmax_cross_entropy(targets[:, -1], logits)
        )
    gradients = tape.gradient(loss, probes)
    return np.array(
        [
            [float(tf.reduce_mean(tf.norm(g, axis=-1))) for g in layer]
            for layer in gradients
        ]
    )


def _state_size(cell):
    size = cell.state_size
    return size[0] if isinstance(size, (list, tuple)) else size


def gradient_ratio(norms, far=30, near=1):
    """`norm at distance far / norm at distance near` per layer.

    Args:
        norms: `(layers, time)` from `hidden_state_gradient_norms`.
        far, near: Distances from the loss, in steps (`< time`).

    Returns:
        NumPy `(layers,)`.
    """
    steps = norms.shape[1]
    if not 0 <= near < far < steps:
        raise ValueError(
            f"Distances must satisfy 0 <= near < far < time={steps}; "
            f"received near={near}, far={far}."
        )
    return norms[:, steps - 1 - far] / norms[:, steps - 1 - near]
