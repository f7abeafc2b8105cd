"""The neural cache: a text's own recent words, recalled by hidden state.

Grave, Joulin and Usunier, 2016, "Improving Neural Language Models with a
Continuous Cache" (https://arxiv.org/abs/1612.04426). The cache keeps the
last `window` pairs `(h_i, x_{i+1})` of a stream: the top layer's hidden
vector at position `i` and the token that followed it. At position `t`

```
p_cache(w) = sum_{i in window, x_{i+1} = w} exp(theta * h_t . h_i) / Z
p(w)       = (1 - interpolation) * p_model(w) + interpolation * p_cache(w)
```

so a word seen a few hundred tokens back, in a context like this one,
becomes more likely. No training: `theta` (how sharply the cache picks
similar contexts) and `interpolation` (lambda) are chosen on validation
text. Position `t` reads only pairs `i < t`; with none yet (the first
token) `p = p_model`.

The functions below are TensorFlow ops shared by the evaluation pass
(`NeuralCache`, over a whole stream's hidden vectors) and the serving
functions (chunk by chunk, over a request's own text), so the two give
the same numbers.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch.argument_checks import (
    check_non_negative,
    check_positive_int,
    check_rate,
)

# Queries per chunk of a stream pass: the scores of a chunk are
# `(streams, CACHE_CHUNK, window + CACHE_CHUNK)` floats.
CACHE_CHUNK = 256


def window_mask(length, key_valid):
    """Which keys each of `length` queries may read.

    Args:
        length: Number `L` of queries, the last `L` keys' own positions.
        key_valid: Boolean `(batch, W + L)`: the `W` cached pairs before the
            first query, then the queries' own pairs; which hold a pair.

    Returns:
        Boolean `(batch, L, W + L)`: query `p` reads keys `p .. W + p - 1`
        (the `W` pairs before it) that are valid.
    """
    window = tf.shape(key_valid)[1] - length
    query_index = tf.range(length)[:, None]
    key_index = tf.range(window + length)[None, :]
    in_window = (key_index >= query_index) & (key_index < window + query_index)
    return in_window[None] & key_valid[:, None, :]


def masked_softmax(logits, allowed):
    """Softmax over the last axis among `allowed` entries (0 elsewhere;
    all 0 where none is allowed)."""
    floor = tf.fill(tf.shape(logits), tf.constant(-np.inf, logits.dtype))
    masked = tf.where(allowed, logits, floor)
    top = tf.reduce_max(masked, axis=-1, keepdims=True)
    top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))
    weights = tf.where(allowed, tf.exp(masked - top), tf.zeros_like(masked))
    total = tf.reduce_sum(weights, axis=-1, keepdims=True)
    return weights / tf.maximum(total, tf.constant(1e-30, logits.dtype))


def target_cache_probs(queries, keys, key_ids, key_valid, targets, theta):
    """`p_cache` of each query's target and whether its window held a pair.

    Args:
        queries: `(batch, L, units)` hidden vectors of `L` positions.
        keys: `(batch, W + L, units)`: the `W` cached pairs' hidden vectors,
            then the queries' own.
        key_ids: Int `(batch, W + L)`: the token that followed each key.
        key_valid: Boolean `(batch, W + L)`, as in `window_mask`.
        targets: Int `(batch, L)`: the token each query predicts.
        theta: Scalar, the cache's inverse temperature.

    Returns:
        `(probs, has_pairs)`, `(batch, L)` float and bool.
    """
    allowed = window_mask(tf.shape(queries)[1], key_valid)
    logits = theta * tf.einsum("blu,bku->blk", queries, keys)
    weights = masked_softmax(logits, allowed)
    matches = tf.equal(key_ids[:, None, :], targets[:, :, None])
    probs = tf.reduce_sum(weights * tf.cast(matches, weights.dtype), axis=-1)
    return probs, tf.reduce_any(allowed, axis=-1)


def mix_log_probs(model_log_probs, cache_probs, has_pairs, interpolation):
    """`log((1 - lambda) p_model + lambda p_cache)`; `log p_model` where
    the cache is empty. Works on NumPy arrays and tensors alike."""
    if interpolation == 0:
        return model_log_probs
    ops = tf.experimental.numpy if tf.is_tensor(model_log_probs) else np
    with np.errstate(divide="ignore"):  # p_cache = 0: log 0 = -inf
        mixed = ops.logaddexp(
            np.log1p(-interpolation) + model_log_probs,
            np.log(interpolation) + ops.log(cache_probs),
        )
    return ops.where(has_pairs, mixed, model_log_probs)


def cache_distribution(
    query, memory_hidden, memory_ids, memory_valid, theta, vocab_size
):
    """`p_cache` over the whole vocabulary for one query per row.

    Args:
        query: `(batch, units)`.
        memory_hidden, memory_ids, memory_valid: the cache, `(batch, W,
            units)`, `(batch, W)` int and `(batch, W)` bool.
        theta: Scalar inverse temperature.
        vocab_size: Integer.

    Returns:
        `(probs, has_pairs)`: `(batch, vocab_size)` and `(batch,)` bool.
    """
    logits = theta * tf.einsum("bu,bku->bk", query, memory_hidden)
    weights = masked_softmax(logits, memory_valid)
    probs = tf.math.bincount(
        memory_ids,
        weights=weights,
        minlength=vocab_size,
        maxlength=vocab_size,
        axis=-1,
    )
    return probs, tf.reduce_any(memory_valid, axis=-1)


def advance_memory(memory, hidden, ids, valid):
    """The cache after a chunk: each row's last `W` valid pairs.

    Args:
        memory: `(memory_hidden, memory_ids, memory_valid)`, `(batch, W,
            units)`, `(batch, W)`, `(batch, W)`.
        hidden, ids, valid: the chunk's pairs, `(batch, L, units)`,
            `(batch, L)`, `(batch, L)`; each row's valid pairs come first
            (a row's padding is at its end).

    Returns:
        The new `memory`, same shapes.
    """
    memory_hidden, memory_ids, memory_valid = memory
    window = tf.shape(memory_ids)[1]
    new_pairs = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)  # (batch,)
    index = new_pairs[:, None] + tf.range(window)[None, :]  # (batch, W)
    joined = (
        tf.concat([memory_hidden, hidden], axis=1),
        tf.concat([memory_ids, ids], axis=1),
        tf.concat([memory_valid, valid], axis=1),
    )
    return tuple(tf.gather(part, index, batch_dims=1) for part in joined)


def empty_memory(batch_size, window, units):
    """A cache holding no pair."""
    return (
        tf.zeros(tf.stack([batch_size, window, units])),
        tf.zeros(tf.stack([batch_size, window]), tf.int32),
        tf.zeros(tf.stack([batch_size, window]), tf.bool),
    )


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class NeuralCache:
    """The continuous cache of Grave et al. (2016) over a model's streams.

    Reads the top-layer hidden vectors and the model's own log-probabilities
    of a stream (`score_stream` gives both) and returns the cache-mixed
    log-probabilities. Memory: one chunk's `(streams, 256, window + 256)`
    scores at a time, whatever the stream's length.

    Args:
        window: Positive integer, the number of recent pairs `(h_i,
            x_{i+1})` the cache holds (Grave et al.: 100 to 2,000).
        theta: Non-negative float, the inverse temperature of the cache's
            softmax over `h_t . h_i`; 0 weighs every cached pair alike.
        interpolation: Float in [0, 1), the cache's share lambda of the
            mixture; 0 gives the model's own probabilities exactly.

    Call arguments:
        model_log_probs: `(T,)` or `(streams, T)` log-probabilities of the
            targets under the model.
        hidden: `(T, units)` or `(streams, T, units)` hidden vectors that
            predicted them.
        targets: `(T,)` or `(streams, T)` int target ids. Each stream is
            read on its own: no stream sees another's pairs.

    Returns:
        The mixed log-probabilities of the targets, float64, shaped as
        `model_log_probs`.

    Example:

    >>> scores = score_stream(StreamModel(model), test_ids)
    >>> cache = NeuralCache(window=500, theta=0.5, interpolation=0.1)
    >>> log_probs = cache(scores.log_probs, scores.hidden, test_ids[1:])
    >>> perplexity = np.exp(-log_probs.mean())
    """

    def __init__(self, window=500, theta=0.5, interpolation=0.1):
        self.window = check_positive_int("window", window)
        self.theta = check_non_negative("theta", theta)
        self.interpolation = check_rate("interpolation", interpolation)

    def get_config(self):
        return {
            "window": self.window,
            "theta": self.theta,
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __call__(self, model_log_probs, hidden, targets):
        model_log_probs = np.asarray(model_log_probs, np.float64)
        probs, has_pairs = stream_cache_probs(
            hidden, targets, self.window, [self.theta]
        )
        probs, has_pairs = probs[0].reshape(model_log_probs.shape), has_pairs
        return mix_log_probs(
            model_log_probs,
            probs,
            has_pairs.reshape(model_log_probs.shape),
            self.interpolation,
        )


def stream_cache_probs(hidden, targets, window, thetas):
    """`p_cache` of every target of whole streams, for several `theta`s.

    The scores `h_t . h_i` are computed once for all `thetas` (the search
    of `training.evaluate` tries several).

    Args:
        hidden: `(T, units)` or `(streams, T, units)`.
        targets: `(T,)` or `(streams, T)` int.
        window: Positive integer.
        thetas: Sequence of inverse temperatures.

    Returns:
        `(probs, has_pairs)`: float64 `(len(thetas), streams, T)` and bool
        `(streams, T)`.
    """
    hidden = np.asarray(hidden, np.float32)
    targets = np.asarray(targets, np.int32)
    if hidden.ndim == 2:
        hidden, targets = hidden[None], targets[None]
    streams, length, units = hidden.shape
    if targets.shape != (streams, length):
        raise ValueError(
            f"targets must be shaped {(streams, length)} to match hidden "
            f"{hidden.shape}; received {targets.shape}."
        )
    # Pairs before the stream: `window` empty slots.
    keys = np.concatenate(
        [np.zeros((streams, window, units), np.float32), hidden], 1
    )
    key_ids = np.concatenate(
        [np.zeros((streams, window), np.int32), targets], 1
    )
    key_valid = np.arange(window + length) >= window
    thetas = tf.constant(list(thetas), tf.float32)
    probs = np.zeros((len(thetas), streams, length))
    has_pairs = np.zeros((streams, length), bool)
    for start in range(0, length, CACHE_CHUNK):
        end = min(start + CACHE_CHUNK, length)
        chunk_probs, chunk_has = chunk_cache_probs(
            hidden[:, start:end],
            keys[:, start : end + window],
            key_ids[:, start : end + window],
            np.broadcast_to(
                key_valid[start : end + window], (streams, end - start + window)
            ),
            targets[:, start:end],
            thetas,
        )
        probs[:, :, start:end] = chunk_probs.numpy()
        has_pairs[:, start:end] = chunk_has.numpy()
    return probs, has_pairs


@tf.function(reduce_retracing=True)
def chunk_cache_probs(queries, keys, key_ids, key_valid, targets, thetas):
    """`target_cache_probs` of one chunk for every theta in `thetas`."""
    scores = tf.einsum("blu,bku->blk", queries, keys)
    allowed = window_mask(tf.shape(queries)[1], key_valid)
    matches = tf.cast(
        tf.equal(key_ids[:, None, :], targets[:, :, None]), scores.dtype
    )

    def for_theta(theta):
        weights = masked_softmax(theta * scores, allowed)
        return tf.reduce_sum(weights * matches, axis=-1)

    probs = tf.map_fn(for_theta, thetas)
    return probs, tf.reduce_any(allowed, axis=-1)
