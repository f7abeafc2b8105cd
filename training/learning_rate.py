"""The learning rate of a run: the rules applied between epochs.

The linear decay over a training-time budget is `time_budget.py`'s."""

import math

import keras


class EpochLearningRateDecay(keras.callbacks.Callback):
    """Divides the learning rate at epoch ends: the book's and Zaremba's rules.

    A Keras callback, not a `keras.optimizers.schedules.LearningRateSchedule`
    (whose rate is a function of the step): the rate changes between
    epochs, from validation results or the epoch count. Not
    `keras.callbacks.LearningRateScheduler` either: its rule sees the epoch
    and the rate but no validation result, so it could run `"step"` alone,
    and one callback here keeps the three rules and `logs["lr"]` together.

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
