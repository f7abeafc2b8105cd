"""Token-weighted perplexity: a Keras metric and an epoch-end callback."""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_lstm_scratch.cross_entropy import sparse_softmax_cross_entropy
from keras_lstm_scratch.state_reset import reset_rnn_states


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
        if "int" not in str(y_true.dtype):
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


class PerplexityCallback(keras.callbacks.Callback):
    """Puts `perplexity` and `val_perplexity` into each epoch's `logs`.

    Place it before callbacks that read these keys (`ModelCheckpoint`,
    `ReduceLROnPlateau`, `CSVLogger`, `TensorBoard`): Keras passes one
    `logs` dict through the callbacks in order, and `History` comes last.
    Those callbacks infer `mode="min"` for `val_perplexity` when a
    `Perplexity` metric is compiled; otherwise pass `mode="min"` to them.

    - `perplexity`: kept from a compiled `Perplexity` metric if there is
      one; otherwise `exp(loss)`, which is token-weighted only when every
      token weighs the same (fixed windows, no masks).
    - `val_perplexity` (and `val_loss`, the mean token NLL in nats): with
      `validation_data`, the callback runs its own pass over it, counting
      every token exactly once, starting from zero RNN states and resetting
      them afterwards. Without it, `exp(val_loss)` from Keras's own
      validation, if there was one.

    Args:
        validation_data: Optional `tf.data.Dataset` or iterable of
            `(x, y)` or `(x, y, sample_weight)` batches.
        reset_states: If `True` (default), zero stateful RNN states before
            and after the validation pass.

    Call arguments:
        Used as a Keras callback: `model.fit(..., callbacks=[...])`.

    Returns:
        Nothing; it writes into the epoch `logs`.

    Example:

    >>> model.fit(train, epochs=4, callbacks=[
    ...     PerplexityCallback(valid),
    ...     keras.callbacks.ReduceLROnPlateau("val_perplexity", factor=0.25)])
    """

    def __init__(self, validation_data=None, reset_states=True):
        super().__init__()
        self.validation_data = validation_data
        self.reset_states = reset_states
        self._evaluator = None  # made for the model at the first pass

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if "perplexity" not in logs and "loss" in logs:
            logs["perplexity"] = _safe_exp(logs["loss"])
        if self.validation_data is not None:
            mean_nll = self.evaluate_mean_nll(self.validation_data)
            logs["val_loss"] = mean_nll
            logs["val_perplexity"] = _safe_exp(mean_nll)
        elif "val_perplexity" not in logs and "val_loss" in logs:
            logs["val_perplexity"] = _safe_exp(logs["val_loss"])

    def evaluate_mean_nll(self, dataset):
        """Returns the token-weighted mean NLL of the model on `dataset`."""
        if self._evaluator is None or self._evaluator.model is not self.model:
            self._evaluator = TokenNLLEvaluator(self.model)
        mean_nll, _ = self._evaluator(dataset, reset_states=self.reset_states)
        return mean_nll


class TokenNLLEvaluator:
    """Scores one model's token-weighted NLL, with its graph traced once.

    The metric and the compiled scoring step are made when the evaluator
    is, and every call reuses them: a validation pass per epoch does not
    trace (or, with XLA, compile) again. `PerplexityCallback` keeps one
    evaluator for its model; `evaluate_token_nll` makes a fresh one.

    Args:
        model: A model from token ids to logits. Under a `tf.distribute`
            strategy (`model.distribute_strategy`) every replica scores its
            own slice of each batch with its own states; the metric sums
            over the replicas. Compiled with `jit_compile=True`, the
            scoring step is compiled with XLA too.

    Call arguments:
        dataset: `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches, in stream order for a stateful model.
        reset_states: Zero stateful RNN states before and after the pass.

    Returns:
        `(mean_nll, token_count)`: NLL per (weighted) token in nats, and
        the (weighted) number of tokens counted. Perplexity is
        `exp(mean_nll)`.

    Raises:
        ValueError: (from a call) if the dataset holds no tokens.

    Example:

    >>> evaluate = TokenNLLEvaluator(model)
    >>> mean_nll, tokens = evaluate(valid_windows)
    """

    def __init__(self, model):
        self.model = model
        self.strategy = model.distribute_strategy
        with self.strategy.scope():
            self.metric = Perplexity()
        jit_compile = bool(getattr(model, "jit_compile", False))

        @tf.function(jit_compile=jit_compile)
        def score(batch):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
            self.metric.update_state(
                y, self.model(x, training=False), sample_weight
            )

        @tf.function
        def distributed_score(batch):
            self.strategy.run(score, args=(batch,))

        self._distributed_score = distributed_score

    def __call__(self, dataset, reset_states=True):
        self.metric.reset_state()
        if reset_states:
            reset_rnn_states(self.model)
        for batch in self.strategy.experimental_distribute_dataset(dataset):
            self._distributed_score(batch)
        if reset_states:
            reset_rnn_states(self.model)
        count = float(ops.convert_to_numpy(self.metric.token_count))
        if count == 0:
            raise ValueError(
                "The evaluation data gave no tokens to count; pass a non-empty "
                "dataset."
            )
        total = float(ops.convert_to_numpy(self.metric.total_nll))
        return total / count, count


def evaluate_token_nll(model, dataset, reset_states=True):
    """Token-weighted mean negative log-likelihood of `model` on `dataset`.

    A one-off `TokenNLLEvaluator(model)(dataset, reset_states)`; to score
    the same model repeatedly, keep a `TokenNLLEvaluator`.

    Args:
        model: A model from token ids to logits.
        dataset: `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches, in stream order for a stateful model.
        reset_states: Zero stateful RNN states before and after the pass.

    Returns:
        `(mean_nll, token_count)`: NLL per (weighted) token in nats, and the
        (weighted) number of tokens counted. Perplexity is `exp(mean_nll)`.

    Raises:
        ValueError: if the dataset holds no tokens.
    """
    return TokenNLLEvaluator(model)(dataset, reset_states=reset_states)


def _safe_exp(value):
    value = float(np.asarray(value))
    return math.exp(value) if value < 700 else math.inf
