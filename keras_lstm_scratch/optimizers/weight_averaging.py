"""Averaged SGD: SGD that keeps the uniform mean of the weights (AWD-LSTM).

`AveragedSGD` is `GlobalBatchClippedSGD` that, once started, also keeps
the running mean of the weights after each step (Polyak averaging).
`callbacks.non_monotone_averaging.NonMonotoneAveraging` starts it when
validation stops improving and swaps the mean in for every validation
pass. Keras has an exponential moving average (`use_ema`) but no uniform
average and no trigger; and its EMA is only swapped in at the end of
`fit`, never for the epochs' validation.
"""

import keras
from keras import ops

from keras_lstm_scratch.optimizers.global_batch_clipping import (
    GlobalBatchClippedSGD,
)


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
