"""A trained language model read over one long token stream, states in hand.

Adaptive evaluation needs what a Keras model call hides: the top layer's
hidden vector at every position (the neural cache's keys and queries) and
the LSTM states between windows (dynamic evaluation adapts the weights
between them). `StreamModel` holds a float32 copy of the model's layers
whose recurrent layers return their states, and `score_stream` reads a
token stream through it window by window, each window starting from the
states the previous one ended with, so every token is predicted from its
whole left context, as the training application's test evaluation does.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_positive_int
from keras_lstm_scratch.language_model import float32_clone, model_parts

# Tokens per window of a stream pass (the test evaluation's window).
STREAM_WINDOW = 1000


@dataclasses.dataclass(frozen=True)
class StreamScores:
    """What a pass over a stream of `T + 1` tokens found, per predicted token.

    Attributes:
        targets: `(T,)` int32 ids of the predicted tokens, `ids[1:]`.
        log_probs: `(T,)` float64 log-probability of each target token
            (`ids[1:]`) given everything before it.
        hidden: `(T, units)` float32 top-layer hidden vector that predicted
            each target, or `None` when the pass did not keep them.
    """

    targets: np.ndarray
    log_probs: np.ndarray
    hidden: np.ndarray = None

    @property
    def mean_nll(self):
        """Mean negative log-likelihood per token, in nats."""
        return float(-np.mean(self.log_probs))

    @property
    def perplexity(self):
        return float(np.exp(self.mean_nll))


class StreamModel:
    """The layers of a `build_language_model` model, run with explicit states.

    A copy: its variables start as the model's weights (in float32, even
    for a model trained in `mixed_bfloat16`) and may then be changed, as
    dynamic evaluation does, without touching the model. Dropout, word
    dropout, weight drop and the activation regularisers act in training
    only, so the copy leaves them out.

    Args:
        model: A model from `build_language_model` (any `rnn_cell`,
            stateful or not).

    Example:

    >>> stream = StreamModel(model)
    >>> states = stream.zero_states(1)
    >>> hidden, logits, states = stream(np.array([[2, 5, 9]]), states)
    """

    def __init__(self, model):
        clone = float32_clone(model)
        self.embedding, rnn_layers, self.projection = model_parts(clone)
        self.rnn_layers = [state_returning_twin(layer) for layer in rnn_layers]
        self.units = self.rnn_layers[-1].cell.units
        self.trainable_variables = unique_variables(
            [self.embedding, *self.rnn_layers, self.projection]
        )

    def zero_states(self, batch_size):
        """Zero states of every layer: a list of `[h, c]` (`[h]` for a
        plain RNN), each `(batch_size, units)`."""
        return [
            [
                tf.zeros((batch_size, layer.cell.units))
                for _ in cell_states(layer)
            ]
            for layer in self.rnn_layers
        ]

    def __call__(self, token_ids, states):
        """`(hidden, logits, states)` of a window `(batch, time)` of ids.

        `hidden` is the top layer's `(batch, time, units)`, `logits`
        `(batch, time, vocab_size)`, `states` those after the window.
        """
        x = self.embedding(token_ids)  # (batch, time, embedding_dim)
        new_states = []
        for layer, layer_states in zip(self.rnn_layers, states, strict=True):
            x, *layer_states = layer(x, initial_state=layer_states)
            new_states.append(layer_states)
        return x, self.projection(x), new_states


def state_returning_twin(layer):
    """A copy of recurrent `layer` that returns its states and keeps none."""
    config = {
        **layer.get_config(),
        "return_sequences": True,
        "return_state": True,
        "stateful": False,
    }
    twin = layer.__class__.from_config(config)
    twin.build((None, None, layer.cell.kernel.shape[0]))
    twin.cell.set_weights(layer.cell.get_weights())
    return twin


def cell_states(layer):
    """The state sizes of a recurrent layer's cell, one per state."""
    sizes = layer.cell.state_size
    return sizes if isinstance(sizes, (list, tuple)) else [sizes]


def unique_variables(layers):
    """The trainable variables of `layers`, each once (a tied embedding is
    both the first and the last layer)."""
    seen, variables = set(), []
    for layer in layers:
        for variable in getattr(layer, "trainable_variables", []):
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def target_log_probs(logits, targets):
    """`log_softmax(logits)` at `targets`: `(batch, time)` from logits
    `(batch, time, vocab)` and int targets `(batch, time)`."""
    log_probs = tf.nn.log_softmax(logits)
    return tf.gather(log_probs, targets, axis=2, batch_dims=2)


def stream_windows(ids, window):
    """`(inputs, targets)` int32 arrays `(1, n)` over `ids`, in order: each
    token of `ids[1:]` is a target once, predicted from the one before."""
    ids = np.asarray(ids, dtype=np.int32)
    for start in range(0, len(ids) - 1, window):
        end = min(start + window, len(ids) - 1)
        yield ids[None, start:end], ids[None, start + 1 : end + 1]


def score_stream(stream_model, ids, window=STREAM_WINDOW, keep_hidden=True):
    """Reads `ids` as one stream; returns its `StreamScores`.

    Args:
        stream_model: A `StreamModel`.
        ids: 1-D int array of at least 2 token ids.
        window: Positive integer, tokens per window; the states carry
            across windows, so the scores do not depend on it (up to
            float round-off).
        keep_hidden: Also return the top-layer hidden vectors (what the
            neural cache reads).

    Returns:
        A `StreamScores` over `ids[1:]`.
    """
    window = check_positive_int("window", window)
    check_stream("ids", ids)

    @tf.function(reduce_retracing=True)
    def score_window(inputs, targets, states):
        hidden, logits, states = stream_model(inputs, states)
        return hidden, target_log_probs(logits, targets), states

    states = stream_model.zero_states(1)
    log_probs, hidden = [], []
    for inputs, targets in stream_windows(ids, window):
        window_hidden, window_log_probs, states = score_window(
            inputs, targets, states
        )
        log_probs.append(window_log_probs.numpy()[0])
        if keep_hidden:
            hidden.append(window_hidden.numpy()[0])
    return StreamScores(
        targets=np.asarray(ids[1:], np.int32),
        log_probs=np.concatenate(log_probs).astype(np.float64),
        hidden=np.concatenate(hidden) if keep_hidden else None,
    )


def check_stream(name, ids):
    """Refuses a stream with fewer than two tokens (nothing to predict)."""
    if np.ndim(ids) != 1 or len(ids) < 2:
        raise ValueError(
            f"{name} must be a 1-D stream of at least 2 token ids (the "
            f"first is the context of the second); received shape "
            f"{np.shape(ids)}."
        )
