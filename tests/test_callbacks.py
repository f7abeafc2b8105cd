import math

import keras
import pytest

from training.callbacks import (
    DivergenceGuard,
    EpochLine,
    TrainingDivergedError,
)
from training.learning_rate import EpochLearningRateDecay
from training.time_budget import TimeBudget


def model_with_rate(rate):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    return model


def rates_over_epochs(schedule, val_perplexities, rate=20.0):
    model = model_with_rate(rate)
    schedule.set_model(model)
    used = []
    for epoch, value in enumerate(val_perplexities):
        logs = {"val_perplexity": value}
        schedule.on_epoch_end(epoch, logs)
        used.append(logs["lr"])
    return used


def test_plateau_divides_by_four_when_validation_does_not_improve():
    used = rates_over_epochs(
        EpochLearningRateDecay("plateau", 4.0), [200, 150, 160, 140, 140, 130]
    )
    # 160 and the second 140 do not improve: the next epoch runs at /4.
    assert used == [20, 20, 20, 5, 5, 1.25]


def test_step_keeps_the_full_rate_for_decay_start_epochs():
    # Zaremba's small model: 4 epochs at 1.0, then halve every epoch.
    used = rates_over_epochs(
        EpochLearningRateDecay("step", 2.0, decay_start_epoch=4),
        [0] * 7,
        rate=1.0,
    )
    assert used == [1, 1, 1, 1, 0.5, 0.25, 0.125]


def test_constant_keeps_the_rate():
    used = rates_over_epochs(EpochLearningRateDecay("constant"), [9, 8, 9, 9])
    assert used == [20, 20, 20, 20]


def test_plateau_without_validation_perplexity_says_what_is_missing():
    schedule = EpochLearningRateDecay("plateau")
    schedule.set_model(model_with_rate(1.0))
    with pytest.raises(ValueError, match="PerplexityCallback"):
        schedule.on_epoch_end(0, {})


def test_divergence_guard_raises_on_nan_only():
    guard = DivergenceGuard()
    guard.on_train_batch_end(0, {"loss": 5.0})
    with pytest.raises(TrainingDivergedError, match="loss is nan at batch 7"):
        guard.on_train_batch_end(7, {"loss": math.nan})


def test_epoch_line_is_fixed_width():
    lines = []
    line = EpochLine(tokens_per_step=100, print_fn=lines.append)
    line.on_train_begin()
    line.on_epoch_end(
        0,
        {
            "lr": 20.0,
            "perplexity": 326.6,
            "val_perplexity": 207.7,
            "train_seconds": 2.0,
            "train_steps": 10,
        },
    )
    line.on_epoch_end(
        11,
        {
            "lr": 0.078125,
            "perplexity": 99999.9,
            "val_perplexity": 5.0,
            "train_seconds": 100.0,
            "train_steps": 10,
        },
    )
    assert len({len(text) for text in lines}) == 1
    assert "|    12 |" in lines[2] and "500 |" in lines[1]


def test_time_budget_stops_before_an_epoch_that_would_overrun():
    clock = [0.0]
    budget = TimeBudget(budget_seconds=100.0, clock=lambda: clock[0])
    budget.set_model(model_with_rate(1.0))
    for epoch in range(3):
        budget.on_epoch_begin(epoch)
        clock[0] += 30.0  # one batch of 30 s, then 10 s of validation
        budget.on_train_batch_end(0)
        clock[0] += 10.0
        budget.on_epoch_end(epoch, {})
        # 30 + 30 <= 100, 60 + 30 <= 100, then 90 + 30 > 100.
        assert budget.model.stop_training == (epoch == 2)
