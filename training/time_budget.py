"""A run's training-time budget: stop before it is spent, or decay the rate
to zero over it (`lr_schedule="linear"`).

`TimeBudget` stops before an epoch that would overrun the budget (and
cuts one that overruns it all the same);
`BudgetLinearDecay` is a `TimeBudget` that also sets the learning rate
before every batch from the time spent; `budget_callback` picks one for a
run's config (or none), and `check_time_budget` refuses a budget that the
workers of a multi-worker run could not keep together.
"""

import math
import time

import keras

from keras_lstm_scratch.distribution import is_multi_worker
from keras_lstm_scratch.errors import InvalidInputError


class TimeBudget(keras.callbacks.Callback):
    """Stops before an epoch that would overrun a training-time budget.

    After each epoch it adds the epoch's training seconds (its batches',
    on its clock) to the time spent and stops training if one more epoch
    of the same length would exceed the budget. An epoch in which the
    budget runs out all the same (the first epoch of a large text) is cut
    at the first batch that ends past it.

    Args:
        budget_seconds: Training seconds allowed in all (validation passes
            excluded).
        spent_seconds: Seconds already spent (when resuming; inside an
            epoch, its seconds before the resume included).
        epoch_seconds: The last epoch's seconds (when resuming), for
            `finished`.
        clock: Seconds as a float, `time.perf_counter` by default (a test
            passes a fake clock).
    """

    def __init__(
        self,
        budget_seconds,
        spent_seconds=0.0,
        epoch_seconds=None,
        clock=time.perf_counter,
    ):
        super().__init__()
        self.budget_seconds = budget_seconds
        self.spent_seconds = spent_seconds
        self.epoch_seconds = epoch_seconds
        self.clock = clock
        self._epoch_start = self._last_batch_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._last_batch_end = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = self.clock()
        seconds = self.spent_seconds + self._last_batch_end - self._epoch_start
        if seconds >= self.budget_seconds:
            self.model.stop_training = True  # Keras ends the epoch here

    def on_epoch_end(self, epoch, logs=None):
        # The epoch's batches, not the validation pass after them.
        seconds = self._last_batch_end - self._epoch_start
        self.spent_seconds += seconds
        self.epoch_seconds = seconds
        if self.finished():
            self.model.stop_training = True

    def epochs_left(self, epoch_seconds):
        """Whole epochs of `epoch_seconds` that fit in what is left."""
        left = self.budget_seconds - self.spent_seconds
        return max(0, math.floor(left / max(epoch_seconds, 1e-9)))

    def finished(self):
        """Whether no further epoch fits (`False` before any epoch)."""
        if self.epoch_seconds is None:
            return False
        return self.epochs_left(self.epoch_seconds) == 0


class BudgetLinearDecay(TimeBudget):
    """Brings the learning rate linearly to zero as a time budget runs out.

    Linear decay to zero over the whole budget is the robust schedule for
    budgeted training (Li, Yumer, Ramanan, "Budgeted Training: Rethinking
    Deep Neural Network Training Under Resource Constraints", ICLR 2020).
    The budget is training time, not epochs, so the schedule fits the
    machine it runs on: before every batch the rate is set from the
    training seconds `t` spent so far (validation passes excluded),

        rate = base_rate * min(1, (budget - t) / (budget - start))

    with `start = constant_fraction * budget`. Epochs run whole while they
    fit; the one in which the budget runs out is cut after the last batch
    that ends within it (a batch is assumed to last as long as the one
    before). So the whole budget is used, and the rate reaches zero as the
    last epoch ends, whatever the speed of the machine or its changes.

    Args:
        base_rate: The starting (and constant-phase) rate.
        budget_seconds: Training seconds allowed in all.
        constant_fraction: Share of the budget at `base_rate` before the
            decay, in `[0, 1)`.
        spent_seconds: Training seconds already spent (when resuming).
        batch_seconds: A batch's training seconds (when resuming): with
            less than that left the run is `finished`.
        clock: Seconds as a float, `time.perf_counter` by default (a test
            passes a fake clock).

    Call arguments:
        Used as a Keras callback, in place of `EpochLearningRateDecay`
        and the `TimeBudget` stop.

    Returns:
        Nothing; sets the optimizer's rate before every batch, writes
        `logs["lr"]` (the rate of the epoch's first batch) and stops
        training when the next batch would overrun the budget.

    Example:

    ```python
    schedule = BudgetLinearDecay(20.0, budget_seconds=30 * 60)
    model.fit(train, epochs=100, callbacks=[schedule])
    ```
    """

    def __init__(
        self,
        base_rate,
        budget_seconds,
        constant_fraction=0.0,
        spent_seconds=0.0,
        batch_seconds=0.0,
        clock=time.perf_counter,
    ):
        super().__init__(budget_seconds, spent_seconds, clock=clock)
        if not 0.0 <= constant_fraction < 1.0:
            raise ValueError(
                f"constant_fraction={constant_fraction}; give a share of "
                "the run in [0, 1)."
            )
        if budget_seconds <= 0:
            raise ValueError(
                f"budget_seconds={budget_seconds}; give a positive budget."
            )
        self.base_rate = base_rate
        self.constant_fraction = constant_fraction
        self.batch_seconds = batch_seconds
        self._batch_start = None
        self._epoch_rate = None

    def rate_at(self, seconds):
        """The rate after `seconds` of training."""
        end = self.budget_seconds
        start = self.constant_fraction * end
        if seconds <= start:
            return self.base_rate
        return self.base_rate * max(0.0, (end - seconds) / (end - start))

    def finished(self):
        """Whether less than one batch of the budget is left."""
        left = self.budget_seconds - self.spent_seconds
        return left <= 0 or left < self.batch_seconds

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._epoch_rate = None

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = self.clock()
        seconds = self.spent_seconds + self._batch_start - self._epoch_start
        rate = self.rate_at(seconds)
        self.model.optimizer.learning_rate.assign(rate)
        if self._epoch_rate is None:
            self._epoch_rate = rate

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = self.clock()
        self.batch_seconds = self._last_batch_end - self._batch_start
        seconds = self.spent_seconds + self._last_batch_end - self._epoch_start
        if self.budget_seconds - seconds < self.batch_seconds:
            self.model.stop_training = True  # Keras ends the epoch here

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = self._epoch_rate
        super().on_epoch_end(epoch, logs)


def budget_callback(config, progress):
    """The callback that keeps the time budget (and, for `"linear"`, sets
    the rate from it), or `None` without a budget."""
    if config.time_budget_minutes <= 0:
        return None
    seconds = config.time_budget_minutes * 60
    last = progress.history[-1] if progress.history else {}
    spent = progress.train_seconds + progress.epoch_seconds
    if config.lr_schedule != "linear":
        return TimeBudget(
            seconds, spent, epoch_seconds=last.get("train_seconds")
        )
    steps = last.get("train_steps")  # absent in runs made before it was kept
    return BudgetLinearDecay(
        config.learning_rate,
        seconds,
        constant_fraction=config.lr_constant_fraction,
        spent_seconds=spent,
        batch_seconds=last["train_seconds"] / steps if steps else 0.0,
    )


def check_time_budget(config, strategy):
    """Refuses a time budget that the workers could not keep together."""
    if is_multi_worker(strategy) and config.time_budget_minutes > 0:
        raise InvalidInputError(
            "time_budget_minutes needs every worker to stop after the same "
            "epoch, which their own clocks cannot promise; set "
            "time_budget_minutes=0 or --epochs for a multi-worker run."
        )
