"""The linear decay to zero over a training-time budget, on a fake clock."""

import keras
import numpy as np
import pytest

from training.learning_rate import BudgetLinearDecay


class FakeClock:
    """A clock that moves only when a batch ends: one second per batch."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class BatchTakesOneSecond(keras.callbacks.Callback):
    def __init__(self, clock):
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch, logs=None):
        self.clock.now += 1.0


class RateRecorder(keras.callbacks.Callback):
    """Reads the rate of every batch (after the schedule has set it)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        rate = self.model.optimizer.learning_rate
        self.rates.append(float(keras.ops.convert_to_numpy(rate)))


def fit_with_budget(schedule, clock, epochs=20, initial_epoch=0):
    """4 batches per epoch; returns (rates per batch, epochs run)."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    recorder = RateRecorder()
    x, y = np.zeros((8, 2)), np.zeros((8, 1))
    history = model.fit(
        x,
        y,
        batch_size=2,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        shuffle=False,
        # The clock ticks before the schedule reads it at batch end.
        callbacks=[BatchTakesOneSecond(clock), schedule, recorder],
    )
    return recorder.rates, len(history.history["loss"]), history


def test_rate_falls_to_zero_as_the_last_epoch_that_fits_ends():
    clock = FakeClock()
    schedule = BudgetLinearDecay(12.0, budget_seconds=14.0, clock=clock)
    rates, epochs, history = fit_with_budget(schedule, clock)
    # 4-second epochs in 14 s: 3 fit (12 s); a 4th would end at 16 s.
    assert epochs == 3
    assert clock.now == 12.0 <= schedule.budget_seconds
    # Epoch 1 plans for the whole budget (end = 14), then the end moves
    # to 12 s, where the third epoch ends: rate = 12 * (12 - t) / 12.
    expected_first = [12.0 * (14 - t) / 14 for t in range(4)]
    expected_rest = [12.0 - t for t in range(4, 12)]
    np.testing.assert_allclose(rates, expected_first + expected_rest)
    assert schedule.rate_at(12.0) == 0.0
    np.testing.assert_allclose(history.history["lr"], [12.0, 8.0, 4.0])


def test_constant_phase_keeps_the_base_rate_then_decays_linearly():
    schedule = BudgetLinearDecay(10.0, 100.0, constant_fraction=0.5)
    assert schedule.rate_at(0.0) == schedule.rate_at(50.0) == 10.0
    assert schedule.rate_at(75.0) == pytest.approx(5.0)
    assert schedule.rate_at(100.0) == 0.0


def test_a_resumed_run_continues_the_schedule_where_it_stopped():
    clock = FakeClock()
    whole = BudgetLinearDecay(12.0, budget_seconds=14.0, clock=clock)
    rates_whole, _, _ = fit_with_budget(whole, clock)

    # Stopped after epoch 1 (4 s spent), then resumed in a new process:
    # the backup gives the seconds spent and the last epoch's length.
    clock = FakeClock()
    first = BudgetLinearDecay(12.0, budget_seconds=14.0, clock=clock)
    rates_first, _, _ = fit_with_budget(first, clock, epochs=1)
    clock = FakeClock()
    resumed = BudgetLinearDecay(
        12.0,
        budget_seconds=14.0,
        spent_seconds=first.spent_seconds,
        epoch_seconds=4.0,
        clock=clock,
    )
    rates_rest, epochs, _ = fit_with_budget(resumed, clock, initial_epoch=1)
    assert epochs == 2
    np.testing.assert_allclose(rates_first + rates_rest, rates_whole)


def test_a_spent_budget_leaves_no_epoch():
    schedule = BudgetLinearDecay(1.0, 10.0, spent_seconds=8.0)
    assert schedule.epochs_left(4.0) == 0
    assert schedule.epochs_left(2.0) == 1


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_constant_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match=f"constant_fraction={fraction}"):
        BudgetLinearDecay(1.0, 10.0, constant_fraction=fraction)
