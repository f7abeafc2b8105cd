"""Token-weighted perplexity of each epoch, written into its `logs`."""

import math

import keras
import numpy as np

from keras_lstm_scratch.evaluation.token_nll import TokenNLLEvaluator


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
        verbose: 1: a progress bar over the validation pass, a step per
            batch (Keras's epoch line replaces it when the epoch ends).

    Call arguments:
        Used as a Keras callback: `model.fit(..., callbacks=[...])`.

    Returns:
        Nothing; it writes into the epoch `logs`.

    Example:

    >>> model.fit(train, epochs=4, callbacks=[
    ...     PerplexityCallback(valid),
    ...     keras.callbacks.ReduceLROnPlateau("val_perplexity", factor=0.25)])
    """

    def __init__(self, validation_data=None, reset_states=True, verbose=0):
        super().__init__()
        self.validation_data = validation_data
        self.reset_states = reset_states
        self.verbose = verbose
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
        mean_nll, _ = self._evaluator(
            dataset, reset_states=self.reset_states, verbose=self.verbose
        )
        return mean_nll


def _safe_exp(value):
    value = float(np.asarray(value))
    return math.exp(value) if value < 700 else math.inf
