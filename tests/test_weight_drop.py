"""TimeLSTM's weight drop: DropConnect on the recurrent kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import (
    ResetStatesCallback,
    TimeLSTM,
    build_language_model,
    reset_rnn_states,
)

BATCH, TIME, FEATURES, UNITS, RATE = 3, 6, 4, 5, 0.5


def random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def dropping_layer(seed=7):
    layer = TimeLSTM(
        UNITS,
        return_sequences=True,
        return_state=True,
        bias_initializer="random_normal",
        weight_dropout=RATE,
        seed=seed,
    )
    layer.build((BATCH, TIME, FEATURES))
    return layer


def outputs_and_gradients(layer, inputs, weights, training):
    """Outputs, and gradients of a fixed projection of them, with respect
    to the inputs and `weights`."""
    x = tf.constant(inputs)
    projection = random((BATCH, TIME, UNITS), 11)
    with tf.GradientTape() as tape:
        tape.watch(x)
        sequence, h, c = layer(x, training=training)
        loss = tf.reduce_sum(sequence * projection) + tf.reduce_sum(h * c)
    gradients = tape.gradient(loss, [x, *weights])
    return [np.asarray(v) for v in (sequence, h, c, *gradients)]


def test_equals_keras_lstm_with_the_masked_recurrent_kernel():
    ours = dropping_layer()
    twin = dropping_layer()  # same seed: draws the same masks in turn
    kernel, recurrent_kernel, bias = ours.get_weights()
    masks = []
    for seed in (0, 1):  # two batch windows: a new mask for each
        inputs = random((BATCH, TIME, FEATURES), seed)
        mask = np.asarray(twin.recurrent_kernel_mask())
        masks.append(mask)
        builtin = keras.layers.LSTM(
            UNITS, return_sequences=True, return_state=True
        )
        builtin.build((BATCH, TIME, FEATURES))
        builtin.set_weights([kernel, recurrent_kernel * mask, bias])
        expected = outputs_and_gradients(
            builtin, inputs, builtin.trainable_weights, training=True
        )
        got = outputs_and_gradients(
            ours, inputs, ours.trainable_weights, training=True
        )
        # d loss / d U = (d loss / d (U * mask)) * mask; other gradients
        # and every output are those of the masked LSTM, at every step.
        expected[5] = expected[5] * mask
        for value, reference in zip(got, expected, strict=True):
            np.testing.assert_allclose(value, reference, atol=1e-5)
    assert not np.array_equal(masks[0], masks[1])


def test_mask_zeroes_a_share_rate_of_entries_and_keeps_the_mean():
    layer = TimeLSTM(64, weight_dropout=0.3, seed=3)
    mask = np.asarray(layer.recurrent_kernel_mask())
    assert mask.shape == (64, 256)
    np.testing.assert_allclose(np.unique(mask), [0.0, 1 / 0.7], rtol=1e-6)
    assert (mask == 0).mean() == pytest.approx(0.3, abs=0.02)
    assert mask.mean() == pytest.approx(1.0, abs=0.03)


def test_inference_uses_the_whole_kernel():
    ours = dropping_layer()
    plain = TimeLSTM(UNITS, return_sequences=True, return_state=True)
    plain.build((BATCH, TIME, FEATURES))
    plain.set_weights(ours.get_weights())
    inputs = random((BATCH, TIME, FEATURES), 4)
    for value, reference in zip(
        ours(inputs, training=False), plain(inputs), strict=True
    ):
        np.testing.assert_allclose(value, reference, atol=1e-6)
    dropped = ours(inputs, training=True)[0]
    assert not np.allclose(dropped, plain(inputs)[0], atol=1e-3)


def test_generic_loop_refuses_weight_drop_in_training():
    layer = TimeLSTM(UNITS, weight_dropout=RATE, go_backwards=True)
    inputs = random((BATCH, TIME, FEATURES), 5)
    layer(inputs, training=False)  # inference: nothing to drop
    with pytest.raises(ValueError, match="weight_dropout=0.5"):
        layer(inputs, training=True)


def test_config_and_saved_model_keep_the_weight_drop(tmp_path):
    layer = TimeLSTM(UNITS, weight_dropout=RATE, seed=9)
    clone = TimeLSTM.from_config(layer.get_config())
    assert (clone.weight_dropout, clone.seed) == (RATE, 9)

    model = build_language_model(
        40, 6, 6, num_layers=2, weight_dropout=0.4, seed=2
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    rates = [layer.weight_dropout for layer in loaded.layers[2:4]]
    assert rates == [0.4, 0.4]
    ids = np.random.default_rng(0).integers(0, 40, (2, 7))
    np.testing.assert_allclose(loaded(ids), model(ids), atol=1e-6)


def test_weight_drop_trains_a_stateful_language_model():
    model = build_language_model(
        30,
        8,
        8,
        num_layers=2,
        weight_dropout=0.5,
        stateful=True,
        batch_size=2,
        seq_len=5,
        seed=1,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    # Two streams that repeat a pattern: learnable, so the loss must fall.
    ids = np.tile(np.arange(6, dtype="int32"), (2, 4))  # (2, 24)
    inputs = np.concatenate([ids[:, t : t + 5] for t in range(0, 18, 5)])
    targets = np.concatenate([ids[:, t + 1 : t + 6] for t in range(0, 18, 5)])

    def stream_loss():
        reset_rnn_states(model)
        loss = model.evaluate(inputs, targets, batch_size=2, verbose=0)
        reset_rnn_states(model)
        return loss

    before = stream_loss()
    model.fit(
        inputs, targets, epochs=10, verbose=0, batch_size=2, shuffle=False,
        callbacks=[ResetStatesCallback()],
    )  # fmt: skip
    assert stream_loss() < 0.75 * before
