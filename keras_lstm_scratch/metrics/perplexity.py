"""Token-weighted perplexity, a Keras metric."""

import keras
from keras import ops

from keras_lstm_scratch.losses.cross_entropy import sparse_softmax_cross_entropy


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class Perplexity(keras.metrics.Metric):
    """Perplexity `exp(total token NLL / token count)` of next-token logits.

    Every token weighs the same, however the tokens fall into batches:
    the metric sums the negative log-likelihood of each (weighted) token
    and the (weighted) token count over all updates, and exponentiates the
    ratio only in `result()`. This is the perplexity of the book, of the
    PyTorch example and of the papers. A mean of per-batch perplexities, or
    a mean weighted by sequences, is wrong for an uneven last batch or for
    masked tokens.

    Args:
        from_logits: If `True` (default), `y_pred` holds logits; otherwise
            probabilities.
        mask_token_id: Optional token id whose targets are not counted
            (padding).
        name: Metric name; `"perplexity"` gives `val_perplexity` in the
            validation logs.
        dtype: Dtype of the accumulators.

    Call arguments (of `update_state`):
        y_true: Integer target ids `(batch, time)`.
        y_pred: Logits (or probabilities) `(batch, time, vocab_size)`.
        sample_weight: Optional weights broadcastable to `(batch, time)`;
            a weight of 0 masks a token out.

    Returns:
        `result()` returns the perplexity as a scalar, or 0.0 before any
        token was counted.

    Example:

    >>> metric = Perplexity()
    >>> metric.update_state(np.array([[0, 1]]), np.zeros((1, 2, 4)))
    >>> float(metric.result())  # uniform over 4 words
    4.0
    """

    def __init__(
        self,
        from_logits=True,
        mask_token_id=None,
        name="perplexity",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype or "float32")
        self.from_logits = bool(from_logits)
        self.mask_token_id = mask_token_id
        # Lets ModelCheckpoint, EarlyStopping and ReduceLROnPlateau infer
        # mode="min" when they monitor "perplexity" or "val_perplexity".
        self._direction = "down"
        self.total_nll = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total_nll"
        )
        self.token_count = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="token_count"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if not keras.backend.is_int_dtype(y_true.dtype):
            # Ids that came as floats (Keras builds metrics with float
            # targets under tf.distribute), as Keras's own metrics take them.
            y_true = ops.cast(y_true, "int32")
        if len(y_pred.shape) != len(y_true.shape) + 1:
            raise ValueError(
                "Perplexity expects y_pred of shape y_true.shape + "
                f"(vocab_size,); received y_true.shape={y_true.shape} and "
                f"y_pred.shape={y_pred.shape}."
            )
        # Per-token NLL in float32 even under mixed precision: (batch, time).
        if self.from_logits:
            nll = sparse_softmax_cross_entropy(y_true, y_pred)
        else:
            nll = ops.sparse_categorical_crossentropy(
                y_true, ops.cast(y_pred, "float32")
            )
        weights = ops.ones_like(nll)
        if self.mask_token_id is not None:
            weights = weights * ops.cast(
                ops.not_equal(y_true, self.mask_token_id), weights.dtype
            )
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, weights.dtype)
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        self.total_nll.assign_add(ops.cast(ops.sum(nll * weights), self.dtype))
        self.token_count.assign_add(ops.cast(ops.sum(weights), self.dtype))

    def result(self):
        mean_nll = ops.divide_no_nan(self.total_nll, self.token_count)
        return ops.where(self.token_count > 0, ops.exp(mean_nll), 0.0)

    def reset_state(self):
        self.total_nll.assign(0.0)
        self.token_count.assign(0.0)

    def get_config(self):
        config = {
            "from_logits": self.from_logits,
            "mask_token_id": self.mask_token_id,
        }
        return {**super().get_config(), **config}
