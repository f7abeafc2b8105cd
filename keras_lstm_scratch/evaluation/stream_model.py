"""A trained language model read over a long token stream, states in hand.

Evaluation needs what a Keras model call hides: the top layer's hidden
vector at every position (the neural cache's keys and queries) and the
LSTM states between windows (dynamic evaluation adapts the weights between
them). `StreamModel` holds a float32 copy of the model's layers whose
recurrent layers return their states. `stream_window_scores` is the one
loop that reads a token stream through it, as one stream or as B parallel
ones, window by window, each window starting from the states the previous
one ended with: `score_stream` keeps every token's score (the neural cache,
`training.evaluate`), `stream_nll` only their total (the training
application's test figure, in memory that does not grow with the text).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_positive_int
from keras_lstm_scratch.data.batching import TBPTTLayout, count_targets
from keras_lstm_scratch.language_model import float32_clone, model_parts

# Tokens per stream in a window of a stream pass.
STREAM_WINDOW = 1000
# Logits of one window, streams * tokens * vocabulary, at most this many
# (128 MiB of float32).
MAX_WINDOW_LOGITS = 1 << 25


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
        self.vocab_size = self.embedding.embeddings.shape[0]
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


def window_length(streams, vocab_size, window=STREAM_WINDOW):
    """Tokens per stream in one window: `window`, or fewer where the
    window's `streams * tokens * vocab_size` logits would pass
    `MAX_WINDOW_LOGITS`."""
    return max(1, min(window, MAX_WINDOW_LOGITS // (streams * vocab_size)))


def stream_window_scores(
    stream_model,
    ids,
    streams=1,
    window=STREAM_WINDOW,
    keep_hidden=False,
    verbose=0,
):
    """Reads `ids` as `streams` parallel streams, a window at a time.

    The one loop that scores a token stream with a trained model: the
    training application's test figure, `score_stream` and so
    `training.evaluate` and the neural cache all read through it. The
    streams lie as in training (`TBPTTLayout`, padded at the end), each
    carrying its states from window to window; a window is gathered from
    `ids` when it is reached, so a memory-mapped corpus is never loaded
    whole, and the memory is a window's whatever the length of `ids`.

    Args:
        stream_model: A `StreamModel`.
        ids: 1-D int array (or memory map) of at least 2 token ids.
        streams: Positive integer, parallel streams. One predicts every
            token from its whole left context; B streams lose it at the B -
            1 stream starts and read B windows per step.
        window: Positive integer, the most tokens per stream in a window
            (fewer for a large vocabulary, `window_length`); the states
            carry across windows, so the scores do not depend on it (up to
            float round-off).
        keep_hidden: Also yield the top-layer hidden vectors.
        verbose: 1: a progress bar, a step per window.

    Yields:
        `(log_probs, hidden, weights)` per window, NumPy: log-probability
        of each target `(streams, time)`, the hidden vectors that predicted
        them `(streams, time, units)` (or `None`), and weights `(streams,
        time)`, 1 for a target of the text and 0 for padding.
    """
    check_stream("ids", ids)
    streams = check_positive_int("streams", streams)
    window = window_length(
        streams, stream_model.vocab_size, check_positive_int("window", window)
    )
    layout = TBPTTLayout(ids, streams, window, pad=True)

    @tf.function(reduce_retracing=True)
    def score_window(inputs, targets, states):
        hidden, logits, states = stream_model(inputs, states)
        return hidden, target_log_probs(logits, targets), states

    progress = keras.utils.Progbar(
        layout.num_windows, verbose=verbose, unit_name="window"
    )
    states = stream_model.zero_states(streams)
    for index in range(layout.num_windows):
        inputs, targets, weights = layout.window(index)
        hidden, log_probs, states = score_window(inputs, targets, states)
        yield (
            log_probs.numpy(),
            hidden.numpy() if keep_hidden else None,
            weights,
        )
        progress.update(index + 1)


def score_stream(
    stream_model,
    ids,
    window=STREAM_WINDOW,
    keep_hidden=True,
    streams=1,
    verbose=0,
):
    """Reads `ids` as one stream (or several); returns its `StreamScores`.

    Every token's score is kept (what the neural cache and the searches of
    `training.evaluate` need); `stream_nll` keeps only their sum.

    Args:
        stream_model: A `StreamModel`.
        ids: 1-D int array of at least 2 token ids.
        window: As for `stream_window_scores`.
        keep_hidden: Also return the top-layer hidden vectors (what the
            neural cache reads).
        streams: As for `stream_window_scores`; the scores come back in
            the text's order whatever their number.
        verbose: 1: a progress bar.

    Returns:
        A `StreamScores` over `ids[1:]`.
    """
    log_probs, hidden = [], []
    for window_log_probs, window_hidden, _ in stream_window_scores(
        stream_model, ids, streams, window, keep_hidden, verbose
    ):
        log_probs.append(window_log_probs)
        hidden.append(window_hidden)
    count = count_targets(ids)

    def in_text_order(windows):
        # (streams, time) windows -> the streams end to end, padding cut.
        rows = np.concatenate(windows, axis=1)
        return rows.reshape(-1, *rows.shape[2:])[:count]

    return StreamScores(
        targets=np.asarray(ids[1:], np.int32),
        log_probs=in_text_order(log_probs).astype(np.float64),
        hidden=in_text_order(hidden) if keep_hidden else None,
    )


def stream_nll(stream_model, ids, streams=1, window=STREAM_WINDOW, verbose=0):
    """Mean negative log-likelihood of `ids` read as `streams` streams.

    `score_stream`'s figure in memory that does not grow with the text: a
    window's scores are added to a float64 total and let go.

    Args:
        stream_model, ids, streams, window, verbose: As for
            `stream_window_scores`.

    Returns:
        `(mean_nll, token_count)`: nats per predicted token, and the
        number of tokens predicted (`count_targets(ids)`).
    """
    total = 0.0
    for log_probs, _, weights in stream_window_scores(
        stream_model, ids, streams, window, verbose=verbose
    ):
        total -= float(np.sum(log_probs.astype(np.float64) * weights))
    count = count_targets(ids)
    return total / count, count


def check_stream(name, ids):
    """Refuses a stream with fewer than two tokens (nothing to predict)."""
    if np.ndim(ids) != 1 or len(ids) < 2:
        raise ValueError(
            f"{name} must be a 1-D stream of at least 2 token ids (the "
            f"first is the context of the second); received shape "
            f"{np.shape(ids)}."
        )
