"""Next-token cross-entropy from logits, with a hand-written gradient.

For a token with logits `z` (one per vocabulary word) and target `t`:

```
nll  = log(sum_v exp(z_v)) - z_t        # (tokens,)
dz_v = softmax(z)_v - [v == t]          # (tokens, vocab), times d nll
```

`tf.nn.sparse_softmax_cross_entropy_with_logits` (what
`keras.losses.SparseCategoricalCrossentropy` calls) is compiled by XLA into
a sum of `one_hot(t) * log_softmax(z)` over the whole `(tokens, vocab)`
matrix and builds its gradient in the forward pass. With a 10,000-word
vocabulary that is several passes over a matrix 100 times larger than the
model's hidden states (docs/speed.md measures their share). Here
the forward pass reads the logits twice (row maximum, then the sum of
exponentials, kept) and picks `z_t` with a gather; the backward pass turns
the kept exponentials into the softmax, subtracts the one-hot and scales,
in one pass.
"""

import keras
import tensorflow as tf
from keras import ops


def sparse_softmax_cross_entropy(targets, logits):
    """Per-token negative log-likelihood of `targets` under `logits`.

    Args:
        targets: Integer ids `(...)`, each in `[0, vocab_size)`. Out of
            range ids give `nan` (no error can be raised inside XLA).
        logits: Float `(..., vocab_size)`; computed in float32 whatever
            their dtype (mixed precision).

    Returns:
        Float32 `(...)`: `logsumexp(logits) - logits[target]` per token.
    """
    logits = ops.convert_to_tensor(logits)
    targets = ops.convert_to_tensor(targets)
    if not keras.backend.is_int_dtype(targets.dtype):
        raise TypeError(
            "sparse_softmax_cross_entropy expects integer target ids; "
            f"received dtype {keras.backend.standardize_dtype(targets.dtype)}."
        )
    if not keras.backend.is_float_dtype(logits.dtype):
        raise TypeError(
            "sparse_softmax_cross_entropy expects floating-point logits; "
            f"received dtype {keras.backend.standardize_dtype(logits.dtype)}."
        )
    ranks = rank(logits), rank(targets)
    if None not in ranks and ranks[0] != ranks[1] + 1:
        raise ValueError(
            "sparse_softmax_cross_entropy expects logits of shape "
            f"targets.shape + (vocab_size,); received targets.shape="
            f"{tuple(targets.shape)} and logits.shape={tuple(logits.shape)}."
        )
    if keras.backend.backend() != "tensorflow":
        return token_nll_ops(targets, logits)
    vocab_size = tf.shape(logits)[-1]
    token_shape = tf.shape(targets)
    nll = _token_nll(
        tf.reshape(tf.cast(logits, "float32"), tf.stack([-1, vocab_size])),
        tf.reshape(tf.cast(targets, "int32"), [-1]),
    )
    return tf.reshape(nll, token_shape)


def rank(tensor):
    """The number of dimensions, or `None` (a graph tensor of unknown rank)."""
    if getattr(tensor.shape, "rank", 0) is None:
        return None
    return len(tensor.shape)


def token_nll_ops(targets, logits):
    """The same per-token NLL in `keras.ops`, on any backend (autodiff
    gradient): the path of the backends other than TensorFlow."""
    logits = ops.cast(logits, "float32")
    targets = ops.cast(targets, "int32")
    vocab_size = ops.shape(logits)[-1]
    in_range = ops.logical_and(targets >= 0, targets < vocab_size)
    safe_targets = ops.expand_dims(ops.where(in_range, targets, 0), -1)
    target_logit = ops.take_along_axis(logits, safe_targets, axis=-1)[..., 0]
    nll = ops.logsumexp(logits, axis=-1) - target_logit
    return ops.where(in_range, nll, float("nan"))


@tf.custom_gradient
def _token_nll(logits, targets):
    """`(tokens, vocab)` float32 logits, `(tokens,)` int32 ids -> nll."""
    vocab_size = tf.shape(logits)[1]
    # Shifting by the row maximum keeps exp() finite; it cancels out.
    max_logit = tf.reduce_max(logits, axis=1)  # (tokens,)
    exps = tf.exp(logits - max_logit[:, None])  # (tokens, vocab)
    sum_exps = tf.reduce_sum(exps, axis=1)  # (tokens,)
    in_range = (targets >= 0) & (targets < vocab_size)
    target_logit = tf.gather(  # (tokens,)
        logits,
        tf.where(in_range, targets, 0)[:, None],
        axis=1,
        batch_dims=1,
    )[:, 0]
    nll = tf.math.log(sum_exps) + max_logit - target_logit
    nll = tf.where(in_range, nll, float("nan"))

    def gradient(d_nll):
        # softmax = exps / sum_exps: the forward pass's exponentials again.
        probabilities = exps * (d_nll / sum_exps)[:, None]
        one_hot = tf.one_hot(targets, vocab_size, dtype=logits.dtype)
        return probabilities - one_hot * d_nll[:, None], None

    return nll, gradient


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class SparseSoftmaxCrossEntropy(keras.losses.Loss):
    """Cross-entropy of integer next-token targets against logits.

    The same value as `keras.losses.SparseCategoricalCrossentropy(
    from_logits=True)` (within float32 rounding), computed with
    `sparse_softmax_cross_entropy`: fewer passes over the
    `(tokens, vocab_size)` logits, which dominate a language model's
    training step when the vocabulary is large. Keras's `reduction`,
    `sample_weight` and masks work as for any loss.

    Args:
        reduction: Keras loss reduction; default `"sum_over_batch_size"`
            (mean over tokens).
        name: Loss name.
        dtype: Dtype of the loss computation; float32 by default, also
            under mixed precision.

    Call arguments:
        y_true: Integer ids `(batch, time)`.
        y_pred: Logits `(batch, time, vocab_size)`.
        sample_weight: Optional weights broadcastable to `(batch, time)`.

    Returns:
        The reduced loss (a scalar by default).

    Example:

    >>> loss = SparseSoftmaxCrossEntropy()
    >>> round(float(loss(np.array([[0, 1]]), np.zeros((1, 2, 4)))), 4)
    1.3863
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="sparse_softmax_cross_entropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)  # (batch, time, 1) ids
        # Keras's Loss.__call__ has cast the ids to the loss dtype.
        return sparse_softmax_cross_entropy(ops.cast(y_true, "int32"), y_pred)
