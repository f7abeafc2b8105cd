"""The learning rate of a run: rules applied between epochs, and the linear
decay to zero over a training-time budget."""

import math
import time

import keras

from training.callbacks import TimeBudget


class EpochLearningRateDecay(keras.callbacks.Callback):
    """Divides the learning rate at epoch ends: the book's and Zaremba's rules.

    A Keras callback, not a `keras.optimizers.schedules.LearningRateSchedule`
    (whose rate is a function of the step): the rate changes between
    epochs, from validation results or the epoch count.

    - `"plateau"` (the book, PyTorch's example): after an epoch whose
      `val_perplexity` is not below the best so far, divide the rate by
      `decay`.
    - `"step"` (Zaremba et al.): epochs `1 .. decay_start_epoch` run at the
      full rate; from the end of epoch `decay_start_epoch` on, divide the
      rate by `decay` after every epoch.
    - `"constant"` (AWD-LSTM, whose NT-ASGD averages in place of a decay):
      never divide.

    Args:
        mode: `"plateau"`, `"step"` or `"constant"`.
        decay: Divisor, > 1.
        decay_start_epoch: For `"step"`, epochs at the full rate.
        best: Best validation perplexity so far (to resume a run).
            Keras's `ReduceLROnPlateau` would do the plateau rule, but it
            forgets its best value at every `fit`, so a resumed run would
            skip the first division it owes.

    Call arguments:
        Used as a Keras callback; place it after `PerplexityCallback`.

    Returns:
        Nothing; sets the optimizer's rate and writes `logs["lr"]` (the rate
        used during the epoch).
    """

    def __init__(
        self, mode="plateau", decay=4.0, decay_start_epoch=0, best=math.inf
    ):
        super().__init__()
        if mode not in ("plateau", "step", "constant"):
            raise ValueError(
                f"mode={mode!r}; allowed: 'plateau', 'step', 'constant'."
            )
        self.mode = mode
        self.decay = decay
        self.decay_start_epoch = decay_start_epoch
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        rate = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        logs["lr"] = rate
        if self.mode == "constant":
            return
        if self.mode == "plateau":
            value = logs.get("val_perplexity")
            if value is None:
                raise ValueError(
                    "EpochLearningRateDecay('plateau') needs val_perplexity in "
                    "the logs; put PerplexityCallback before it."
                )
            if value < self.best:
                self.best = value
                return
        elif epoch + 1 < self.decay_start_epoch:
            return
        self.model.optimizer.learning_rate.assign(rate / self.decay)


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
        super().__init__(budget_seconds, spent_seconds)
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
        self.clock = clock
        self._epoch_start = self._batch_start = self._last_batch_end = None
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
        self._epoch_start = self._last_batch_end = self.clock()
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
        self.spent_seconds += self._last_batch_end - self._epoch_start
        if self.finished():
            self.model.stop_training = True
