import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import LSTMCell
from keras_lstm_scratch.layers.time_lstm import TimeLSTM
from tests.layer_testing import run_layer_test

BATCH, TIME, FEATURES, UNITS = 4, 7, 5, 6


def random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def paired(**options):
    """TimeLSTM and keras.layers.LSTM with the same (non-trivial) weights."""
    ours = TimeLSTM(
        UNITS,
        return_sequences=True,
        return_state=True,
        bias_initializer="random_normal",
        **options,
    )
    builtin = keras.layers.LSTM(
        UNITS, return_sequences=True, return_state=True, **options
    )
    ours.build((BATCH, TIME, FEATURES))
    builtin.build((BATCH, TIME, FEATURES))
    builtin.set_weights(ours.get_weights())
    return ours, builtin


def values_and_gradients(layer, inputs, projection, mask=None, jit=False):
    def compute(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            sequence, h, c = layer(x, mask=mask)
            loss = (
                tf.reduce_sum(sequence * projection)
                + tf.reduce_sum(h * projection[:, 0])
                + tf.reduce_sum(c * projection[:, -1])
            )
        return [sequence, h, c], tape.gradient(
            loss, [x, *layer.trainable_weights]
        )

    if jit:
        compute = tf.function(compute, jit_compile=True)
    values, gradients = compute(tf.constant(inputs))
    return [keras.ops.convert_to_numpy(v) for v in values + gradients]


@pytest.mark.parametrize(
    "options, masked",
    [
        ({}, False),
        ({"stateful": True}, False),
        ({}, True),
        ({"go_backwards": True}, False),
    ],
)
def test_matches_keras_lstm_outputs_states_and_gradients(options, masked):
    ours, builtin = paired(**options)
    projection = random((BATCH, TIME, UNITS), 2)
    lengths = np.random.default_rng(3).integers(1, TIME + 1, BATCH)
    mask = (np.arange(TIME)[None] < lengths[:, None]) if masked else None
    for seed in (0, 1):  # the second call starts from carried states
        inputs = random((BATCH, TIME, FEATURES), seed)
        expected = values_and_gradients(builtin, inputs, projection, mask)
        got = values_and_gradients(ours, inputs, projection, mask)
        assert len(got) == 3 + 1 + 3
        for ours_value, keras_value in zip(got, expected, strict=True):
            np.testing.assert_allclose(ours_value, keras_value, atol=1e-5)


def test_matches_the_generic_loop_over_the_same_cell():
    fast = TimeLSTM(UNITS, return_sequences=True, return_state=True)
    fast.build((BATCH, TIME, FEATURES))
    generic = keras.layers.RNN(
        LSTMCell(UNITS), return_sequences=True, return_state=True
    )
    generic.build((BATCH, TIME, FEATURES))
    generic.set_weights(fast.get_weights())
    projection = random((BATCH, TIME, UNITS), 4)
    inputs = random((BATCH, TIME, FEATURES), 5)
    for a, b in zip(
        values_and_gradients(fast, inputs, projection),
        values_and_gradients(generic, inputs, projection),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_xla_gives_the_same_values_and_gradients():
    ours, _ = paired()
    inputs = random((BATCH, TIME, FEATURES), 6)
    projection = random((BATCH, TIME, UNITS), 7)
    eager = values_and_gradients(ours, inputs, projection)
    compiled = values_and_gradients(ours, inputs, projection, jit=True)
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_traced_output_keeps_a_static_sequence_length():
    # The output projection folds its bias into the product only when it
    # can see how many tokens a call holds (output_projection.py).
    layer = TimeLSTM(UNITS, return_sequences=True)
    traced_shapes = []

    @tf.function
    def run(x):
        outputs = layer(x)
        traced_shapes.append(tuple(outputs.shape))
        return outputs

    run(tf.zeros((BATCH, TIME, FEATURES)))
    assert set(traced_shapes) == {(BATCH, TIME, UNITS)}


def test_layer_contract():
    run_layer_test(
        TimeLSTM,
        init_kwargs={
            "units": UNITS,
            "return_sequences": True,
            "kernel_regularizer": "l2",
            "unit_forget_bias": False,
        },
        input_data=random((BATCH, TIME, FEATURES), 8),
        expected_output_shape=(BATCH, TIME, UNITS),
        expected_num_trainable_weights=3,
    )


def test_computes_what_keras_rnn_of_its_lstm_cell_computes():
    layer = TimeLSTM(UNITS, return_sequences=True, return_state=True)
    generic = keras.layers.RNN(
        LSTMCell(UNITS), return_sequences=True, return_state=True
    )
    inputs = random((BATCH, TIME, FEATURES), 5)
    layer(inputs)
    generic(inputs)
    generic.set_weights(layer.get_weights())
    assert isinstance(layer.cell, LSTMCell) and layer.cell.units == UNITS
    for ours, theirs in zip(layer(inputs), generic(inputs), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="units=0"):
        TimeLSTM(0)
    with pytest.raises(TypeError, match="int32"):
        TimeLSTM(UNITS)(np.zeros((BATCH, TIME, FEATURES), "int32"))


@pytest.mark.parametrize("weight_dropout", [0.0, 0.5])
def test_the_tensorflow_loop_equals_its_keras_ops_twin(weight_dropout):
    # ops_loop is what JAX and PyTorch run; here both run on TensorFlow,
    # the weight-drop masks drawn from the same seed.
    inputs = tf.constant(random((BATCH, TIME, FEATURES), 6))
    results = []
    for twin in (False, True):
        layer = TimeLSTM(
            UNITS, return_sequences=True, weight_dropout=weight_dropout, seed=4
        )
        layer(inputs)
        layer.set_weights(
            [random(w.shape, 7 + i) for i, w in enumerate(layer.weights)]
        )
        if twin:

            def ops_loop(
                sequences, initial_state, mask, training=False, layer=layer
            ):
                drop = bool(training) and weight_dropout > 0
                return layer.ops_loop(sequences, initial_state, drop)

            layer.inner_loop = ops_loop
        with tf.GradientTape() as tape:
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(tf.sin(outputs))
        results.append([outputs, *tape.gradient(loss, layer.weights)])
    for fast, twin in zip(*results, strict=True):
        np.testing.assert_allclose(fast.numpy(), twin.numpy(), atol=1e-5)


@pytest.mark.parametrize("steps", [TIME, 60])
def test_gradients_of_the_initial_states_and_of_long_sequences(steps):
    """`initial_state` gets its gradient from the hand-written backward
    pass, as keras.layers.LSTM's from autodiff; at 60 steps too."""
    ours, builtin = paired()
    inputs = tf.constant(random((BATCH, steps, FEATURES), 5))
    projection = tf.constant(random((BATCH, steps, UNITS), 6))
    h0 = tf.constant(random((BATCH, UNITS), 7))
    c0 = tf.constant(random((BATCH, UNITS), 8))

    def values_and_gradients_from(layer):
        with tf.GradientTape() as tape:
            tape.watch([inputs, h0, c0])
            sequence, h, c = layer(inputs, initial_state=[h0, c0])
            loss = (
                tf.reduce_sum(sequence * projection)
                + tf.reduce_sum(h * projection[:, 0])
                + tf.reduce_sum(c * projection[:, -1])
            )
        gradients = tape.gradient(
            loss, [inputs, h0, c0, *layer.trainable_weights]
        )
        return [keras.ops.convert_to_numpy(v) for v in [sequence, h, c]] + [
            keras.ops.convert_to_numpy(g) for g in gradients
        ]

    got = values_and_gradients_from(ours)
    expected = values_and_gradients_from(builtin)
    assert len(got) == 3 + 3 + 3
    for ours_value, keras_value in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours_value, keras_value, atol=1e-4)
    # The initial states matter: their gradients are not zero.
    assert np.abs(got[4]).max() > 1e-3 and np.abs(got[5]).max() > 1e-3
