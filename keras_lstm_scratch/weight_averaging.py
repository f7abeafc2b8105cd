"""Averaged SGD with the non-monotone trigger (NT-ASGD, AWD-LSTM).

`AveragedSGD` is `GlobalBatchClippedSGD` that, once started, also keeps
the running mean of the weights after each step (Polyak averaging).
`NonMonotoneAveraging` starts it when validation stops improving and puts
the mean into the model for every validation pass, so that the validated,
checkpointed, tested and exported weights are the averaged ones, while
training goes on from the raw ones. Keras has an exponential moving
average (`use_ema`) but no uniform average and no trigger; and its EMA is
only swapped in at the end of `fit`, never for the epochs' validation.
"""

import keras
from keras import ops

from keras_lstm_scratch.global_batch_clipping import GlobalBatchClippedSGD


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class AveragedSGD(GlobalBatchClippedSGD):
    """`GlobalBatchClippedSGD` that can keep the mean of the weights.

    Until `start_averaging()` it is `GlobalBatchClippedSGD`. From then
    on, after each step, it updates one average per variable,

        average += (variable - average) / k

    for the `k`-th step since the start: the uniform mean of the weights
    after every averaged step (AWD-LSTM's ASGD with `t0=0, lambd=0`).
    `swap_average(variables)` exchanges the weights and their averages,
    both ways.
    The averages, the start step and whether they are swapped are
    optimizer variables, so a saved optimizer state keeps them.

    Takes the arguments of `GlobalBatchClippedSGD`.

    Example:

    >>> optimizer = AveragedSGD(30.0, global_clipnorm=0.25)
    >>> model.compile(optimizer=optimizer, loss=...)
    >>> model.fit(..., callbacks=[NonMonotoneAveraging(5), ...])
    """

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.averages = self.add_optimizer_variables(variables, "average")
        # The step at which averaging started; -1: not started.
        self.average_start = self.add_variable(
            (),
            initializer=keras.initializers.Constant(-1),
            dtype="int64",
            name="average_start",
        )
        self.average_swapped = self.add_variable(
            (), initializer="zeros", dtype="int64", name="average_swapped"
        )

    @property
    def averaging(self):
        """Whether the averages are being kept."""
        return self.built and int(self.average_start.numpy()) >= 0

    @property
    def swapped(self):
        """Whether the model's variables hold the averages just now."""
        return self.built and bool(self.average_swapped.numpy())

    def start_averaging(self):
        """Averages every step from the next one on."""
        self.average_start.assign(self.iterations)

    def swap_average(self, variables):
        """Exchanges `variables` (the model's trainable variables, which
        this optimizer updates) and their averages."""
        for variable in variables:
            average = self.averages[self._get_variable_index(variable)]
            weights = ops.copy(variable)
            variable.assign(average)
            average.assign(weights)
        self.average_swapped.assign(1 - self.average_swapped)

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)
        # `_get_variable_index` is Keras's own slot lookup (SGD's momentum
        # uses it); tests/test_keras_internals.py checks it.
        average = self.averages[self._get_variable_index(variable)]
        start = self.average_start

        def update():
            # `iterations` counts the steps before this one.
            step = ops.cast(self.iterations - start + 1, variable.dtype)
            self.assign_add(average, (variable - average) / step)

        ops.cond(start >= 0, update, lambda: None)


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
