"""The linear decay to zero over a training-time budget, on a fake clock."""

import keras
import numpy as np
import pytest

from training.time_budget import BudgetLinearDecay, TimeBudget


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


def test_rate_falls_to_zero_as_the_budget_ends_in_a_cut_last_epoch():
    clock = FakeClock()
    schedule = BudgetLinearDecay(14.0, budget_seconds=14.0, clock=clock)
    rates, epochs, history = fit_with_budget(schedule, clock)
    # 4-second epochs in 14 s: 3 whole ones (12 s), then the 4th is cut
    # after its second batch, which ends as the budget does.
    assert epochs == 4
    assert clock.now == schedule.spent_seconds == 14.0
    np.testing.assert_allclose(rates, [14.0 - t for t in range(14)])
    assert schedule.rate_at(14.0) == 0.0
    np.testing.assert_allclose(history.history["lr"], [14.0, 10.0, 6.0, 2.0])
    assert schedule.finished()


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
    # the backup gives the seconds spent and a batch's length.
    clock = FakeClock()
    first = BudgetLinearDecay(12.0, budget_seconds=14.0, clock=clock)
    rates_first, _, _ = fit_with_budget(first, clock, epochs=1)
    clock = FakeClock()
    resumed = BudgetLinearDecay(
        12.0,
        budget_seconds=14.0,
        spent_seconds=first.spent_seconds,
        batch_seconds=1.0,
        clock=clock,
    )
    rates_rest, epochs, _ = fit_with_budget(resumed, clock, initial_epoch=1)
    assert epochs == 3
    np.testing.assert_allclose(rates_first + rates_rest, rates_whole)


def test_less_than_a_batch_left_is_a_finished_run():
    assert BudgetLinearDecay(
        1.0, 10.0, spent_seconds=9.5, batch_seconds=1.0
    ).finished()
    assert not BudgetLinearDecay(
        1.0, 10.0, spent_seconds=8.0, batch_seconds=1.0
    ).finished()
    # A run made before batches were timed: finished once nothing is left.
    assert not BudgetLinearDecay(1.0, 10.0, spent_seconds=9.9).finished()
    assert BudgetLinearDecay(1.0, 10.0, spent_seconds=10.0).finished()


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_constant_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ValueError, match=f"constant_fraction={fraction}"):
        BudgetLinearDecay(1.0, 10.0, constant_fraction=fraction)


def test_a_plain_budget_cuts_an_epoch_longer_than_all_of_it():
    # The first epoch of a large text: 4 batches of a second, 2.5 allowed.
    clock = FakeClock()
    budget = TimeBudget(budget_seconds=2.5, clock=clock)
    rates, epochs, history = fit_with_budget(budget, clock)
    assert (epochs, len(rates)) == (1, 3)  # cut at the batch ending past it
