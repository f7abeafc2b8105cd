"""AR and TAR add AWD-LSTM's penalties, computed here by hand."""

import keras
import numpy as np
import pytest

from keras_lstm_scratch import ActivationRegularization, build_language_model

# One sequence, two steps, two units.
HIDDEN = np.array([[[1.0, 2.0], [3.0, 5.0]]], "float32")
DROPPED = np.array([[[0.0, 4.0], [6.0, 0.0]]], "float32")
# AR:  2 * mean(0, 16, 36, 0)             = 2 * 13  = 26
# TAR: 3 * mean((3-1)^2, (5-2)^2) = 3 * 6.5 = 19.5
AR, TAR = 26.0, 19.5


def test_adds_the_documented_losses_in_training_only():
    layer = ActivationRegularization(ar=2.0, tar=3.0)
    out = layer([HIDDEN, DROPPED], training=True)
    np.testing.assert_array_equal(out, DROPPED)
    np.testing.assert_allclose([float(v) for v in layer.losses], [AR, TAR])
    layer([HIDDEN, DROPPED], training=False)
    assert layer.losses == []


@pytest.mark.parametrize("ar, tar, expected", [(2, 0, AR), (0, 3, TAR)])
def test_each_penalty_alone(ar, tar, expected):
    layer = ActivationRegularization(ar=ar, tar=tar)
    layer([HIDDEN, DROPPED], training=True)
    assert sum(float(v) for v in layer.losses) == pytest.approx(expected)


def test_training_loss_is_the_model_loss_plus_the_penalties():
    hidden = keras.Input((2, 2))
    dropped = keras.Input((2, 2))
    scale = keras.layers.Dense(
        2, use_bias=False, kernel_initializer="identity"
    )  # something to train; starts as the identity
    out = ActivationRegularization(2.0, 3.0)([hidden, scale(dropped)])
    model = keras.Model([hidden, dropped], out)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    loss = model.train_on_batch([HIDDEN, DROPPED], np.zeros_like(DROPPED))
    # mse against zeros: mean(0, 16, 36, 0) = 13.
    assert loss == pytest.approx(13.0 + AR + TAR)
    assert model.evaluate(
        [HIDDEN, DROPPED], np.zeros_like(DROPPED), verbose=0
    ) == pytest.approx(13.0)


def test_negative_coefficient_is_refused():
    with pytest.raises(ValueError, match="tar=-1"):
        ActivationRegularization(ar=1.0, tar=-1.0)


def test_language_model_with_ar_and_tar_round_trips(tmp_path):
    model = build_language_model(
        30,
        6,
        6,
        dropout=0.3,
        activation_regularization=2.0,
        temporal_activation_regularization=1.0,
    )
    ids = np.random.default_rng(0).integers(0, 30, (2, 5))
    model(ids, training=True)
    assert len(model.losses) == 2
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.get_layer("activation_regularization")
    assert (layer.ar, layer.tar) == (2.0, 1.0)
    np.testing.assert_allclose(loaded(ids), model(ids), atol=1e-6)
