"""NT-ASGD: the non-monotone trigger and the averaged weights."""

import keras
import numpy as np
import pytest

from keras_lstm_scratch.callbacks import (
    NonMonotoneAveraging,
    nonmonotone_trigger,
)
from keras_lstm_scratch.optimizers import AveragedSGD


@pytest.mark.parametrize(
    "history, fires",
    [
        ([100, 90, 80], False),  # improving
        ([100, 90, 80, 85], False),  # 2 epochs before it: no older best
        ([100, 90, 80, 85, 86], False),  # 86 < 90, best before the last 2
        ([100, 90, 80, 85, 86, 95], True),  # 95 > 80, best before 85, 86
        ([100, 90, 80, 85, 86, 79], False),  # a new best
    ],
)
def test_trigger_fires_on_a_hand_made_validation_history(history, fires):
    assert nonmonotone_trigger(history, nonmono=2) is fires


def tiny_model(rate=0.1):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=AveragedSGD(rate), loss="mse")
    return model


DATA = (
    np.random.default_rng(0).normal(size=(8, 3)).astype("float32"),
    np.random.default_rng(1).normal(size=(8, 2)).astype("float32"),
)


class WeightLog(keras.callbacks.Callback):
    """The raw weights after every step, and what the model holds when an
    epoch's later callbacks (validation, checkpoint) run."""

    def __init__(self):
        super().__init__()
        self.after_step, self.at_epoch_end, self.at_epoch_begin = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.after_step.append(self.model.get_weights())

    def on_epoch_begin(self, epoch, logs=None):
        self.at_epoch_begin.append(self.model.get_weights())

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append(self.model.get_weights())


class HandMadeValidation(keras.callbacks.Callback):
    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_perplexity"] = self.values[epoch]


def mean_of(steps):
    return [np.mean(weights, axis=0) for weights in zip(*steps, strict=True)]


def assert_weights_close(got, expected):
    for value, reference in zip(got, expected, strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-5, atol=1e-6)


def test_validation_and_checkpoints_see_the_mean_since_the_trigger():
    model = tiny_model()
    log = WeightLog()
    # nonmono=1: epoch 3's 130 > 110, the best before epoch 2: fires.
    values = [120.0, 110.0, 115.0, 130.0, 125.0, 124.0]
    model.fit(
        *DATA,
        batch_size=2,  # 4 steps per epoch
        epochs=6,
        shuffle=False,
        verbose=0,
        callbacks=[
            # The log's epoch begin runs after the swap back, its epoch
            # end after the swap in: as the validation would.
            NonMonotoneAveraging(1),
            HandMadeValidation(values),
            log,
        ],
    )
    assert model.optimizer.averaging
    # Epochs 1-4 train without averaging; the end of epoch 4 (index 3)
    # fires, so epochs 5 and 6 (steps 16-23) are averaged.
    for epoch in range(4):
        assert_weights_close(
            log.at_epoch_end[epoch], log.after_step[4 * epoch + 3]
        )
    assert_weights_close(log.at_epoch_end[4], mean_of(log.after_step[16:20]))
    assert_weights_close(log.at_epoch_end[5], mean_of(log.after_step[16:24]))
    # Training goes on from the raw weights, and fit ends on the average.
    assert_weights_close(log.at_epoch_begin[5], log.after_step[19])
    assert_weights_close(model.get_weights(), mean_of(log.after_step[16:24]))


def test_a_saved_state_resumes_the_average_where_it_was(tmp_path):
    model = tiny_model()
    model.fit(*DATA, batch_size=2, epochs=1, verbose=0, shuffle=False)
    model.optimizer.start_averaging()
    model.fit(*DATA, batch_size=2, epochs=1, verbose=0, shuffle=False)
    raw = model.get_weights()
    # As at an epoch end:
    model.optimizer.swap_average(model.trainable_variables)
    average = model.get_weights()
    path = str(tmp_path / "backup.weights.h5")
    model.save_weights(path)

    restored = tiny_model()
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(path)
    assert restored.optimizer.averaging and restored.optimizer.swapped
    assert_weights_close(restored.get_weights(), average)
    # The callback swaps back before training, as the next epoch would.
    callback = NonMonotoneAveraging(1, history=[100.0, 90.0])
    callback.set_model(restored)
    callback.on_train_begin()
    callback.on_epoch_begin(2)
    assert_weights_close(restored.get_weights(), raw)
    assert not restored.optimizer.swapped


def test_needs_averaged_sgd_and_a_positive_patience():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="AveragedSGD"):
        model.fit(
            *DATA, epochs=1, verbose=0, callbacks=[NonMonotoneAveraging()]
        )
    with pytest.raises(ValueError, match="nonmono"):
        NonMonotoneAveraging(0)


def test_optimizer_round_trips_through_its_config():
    optimizer = AveragedSGD(30.0, global_clipnorm=0.25)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, AveragedSGD)
    assert clone.global_clipnorm == 0.25
