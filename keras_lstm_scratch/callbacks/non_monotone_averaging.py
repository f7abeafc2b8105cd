"""NT-ASGD's trigger: average the weights once validation stops improving.

AWD-LSTM (Merity et al., 2017, section 3). The averaging itself is
`AveragedSGD`'s.
"""

import keras

from keras_lstm_scratch.optimizers.weight_averaging import AveragedSGD


def nonmonotone_trigger(history, nonmono):
    """AWD-LSTM's trigger: the last epoch's validation perplexity is worse
    than the best one before the `nonmono` epochs that precede it.

    Args:
        history: Validation perplexities by epoch, the last one newest.
        nonmono: Epochs of patience.
    """
    before = history[:-1]
    return len(before) > nonmono and history[-1] > min(before[:-nonmono])


class NonMonotoneAveraging(keras.callbacks.Callback):
    """NT-ASGD: averages the weights once validation stops improving.

    After each epoch's validation it checks `nonmonotone_trigger`; when it
    fires, the model's `AveragedSGD` starts averaging with the next step.
    From then on, at every epoch end, the averages are swapped into the
    model before the validation pass (so validation, `best.keras` and the
    epoch's backup hold them) and swapped out again when the next epoch
    begins, so that training continues from the raw weights. At the end
    of `fit` the model holds the averages.

    References:
        - [Merity, Keskar, Socher, 2017](https://arxiv.org/abs/1708.02182),
          section 3

    Args:
        nonmono: Positive integer, the epochs of patience (AWD-LSTM: 5).
        history: Validation perplexities of the epochs already done (when
            resuming a run).
        monitor: The log entry to watch (lower is better).

    Call arguments:
        Used as a Keras callback on a model compiled with `AveragedSGD`.
        Put it before the callback that validates (`PerplexityCallback`).

    Returns:
        Nothing; starts averaging and swaps the weights.

    Example:

    >>> model.compile(optimizer=AveragedSGD(30.0, global_clipnorm=0.25),
    ...               loss=SparseSoftmaxCrossEntropy())
    >>> model.fit(train, epochs=100, callbacks=[
    ...     NonMonotoneAveraging(5), PerplexityCallback(valid)])
    """

    def __init__(self, nonmono=5, history=(), monitor="val_perplexity"):
        super().__init__()
        if isinstance(nonmono, bool) or not (
            isinstance(nonmono, int) and nonmono > 0
        ):
            raise ValueError(
                f"`nonmono` must be a positive integer; received {nonmono!r}."
            )
        self.nonmono = nonmono
        self.history = list(history)
        self.monitor = monitor
        self._epoch_logs = None

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not isinstance(optimizer, AveragedSGD):
            raise ValueError(
                "NonMonotoneAveraging needs a model compiled with "
                f"AveragedSGD; this one has {type(optimizer).__name__}."
            )
        self._epoch_logs = None

    def on_epoch_begin(self, epoch, logs=None):
        self._record_last_epoch()
        optimizer = self.model.optimizer
        if optimizer.swapped:  # train on the raw weights
            optimizer.swap_average(self.model.trainable_variables)
        if not optimizer.averaging and self.history:
            if nonmonotone_trigger(self.history, self.nonmono):
                optimizer.start_averaging()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if optimizer.averaging and not optimizer.swapped:
            # Validation, best.keras and the backup see the averages.
            optimizer.swap_average(self.model.trainable_variables)
        # The validating callback writes into this same dict after us.
        self._epoch_logs = logs

    def on_train_end(self, logs=None):
        self._record_last_epoch()

    def _record_last_epoch(self):
        if self._epoch_logs is None:
            return
        if self.monitor not in self._epoch_logs:
            raise ValueError(
                f"NonMonotoneAveraging watches {self.monitor!r}, which no "
                "callback wrote; put PerplexityCallback after it."
            )
        self.history.append(float(self._epoch_logs[self.monitor]))
        self._epoch_logs = None
