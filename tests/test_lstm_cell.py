import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import LSTMCell
from tests.book_reference import book_time_lstm, keras_to_book_order
from tests.layer_testing import run_layer_test

to_numpy = keras.ops.convert_to_numpy

BATCH, TIME, FEATURES, UNITS = 4, 7, 5, 6
TOLERANCE = 1e-5


def random_inputs(shape=(BATCH, TIME, FEATURES), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def random_right_padding_mask(seed=1):
    lengths = np.random.default_rng(seed).integers(1, TIME + 1, size=BATCH)
    return np.arange(TIME)[None, :] < lengths[:, None]


def paired_layers(**rnn_kwargs):
    """Our cell in `keras.layers.RNN` and `keras.layers.LSTM`, same weights."""
    ours = keras.layers.RNN(
        LSTMCell(UNITS), return_sequences=True, return_state=True, **rnn_kwargs
    )
    builtin = keras.layers.LSTM(
        UNITS, return_sequences=True, return_state=True, **rnn_kwargs
    )
    ours.build((BATCH, TIME, FEATURES))
    builtin.build((BATCH, TIME, FEATURES))
    # Make the bias non-trivial so that a mixed-up gate order shows.
    weights = [
        w + 0.1 * np.arange(w.size).reshape(w.shape) / w.size
        for w in ours.get_weights()
    ]
    ours.set_weights(weights)
    builtin.set_weights(weights)
    return ours, builtin


def outputs_and_gradients(layer, inputs, mask, projection):
    with tf.GradientTape() as tape:
        sequence, h, c = layer(inputs, mask=mask)
        loss = (
            tf.reduce_sum(sequence * projection)
            + tf.reduce_sum(h * projection[:, 0])
            + tf.reduce_sum(c * projection[:, -1])
        )
    gradients = tape.gradient(loss, layer.trainable_weights)
    return [sequence, h, c], gradients


def max_abs_difference(first, second):
    return max(
        float(np.max(np.abs(np.array(a) - np.array(b))))
        for a, b in zip(first, second, strict=True)
    )


@pytest.mark.parametrize(
    "stateful, masked, go_backwards",
    [
        (False, False, False),
        (True, False, False),
        (False, True, False),
        (False, False, True),
        (True, True, True),
    ],
)
def test_matches_keras_lstm_outputs_states_and_gradients(
    stateful, masked, go_backwards
):
    ours, builtin = paired_layers(stateful=stateful, go_backwards=go_backwards)
    mask = random_right_padding_mask() if masked else None
    projection = random_inputs((BATCH, TIME, UNITS), seed=2)
    # Two calls, so that the stateful case also compares carried states.
    for call_seed in (0, 3):
        inputs = random_inputs(seed=call_seed)
        our_values, our_grads = outputs_and_gradients(
            ours, inputs, mask, projection
        )
        keras_values, keras_grads = outputs_and_gradients(
            builtin, inputs, mask, projection
        )
        value_diff = max_abs_difference(our_values, keras_values)
        gradient_diff = max_abs_difference(our_grads, keras_grads)
        assert value_diff <= TOLERANCE
        assert gradient_diff <= TOLERANCE
        assert len(our_grads) == 3


def test_forward_matches_the_books_numpy_equations():
    layer = keras.layers.RNN(
        LSTMCell(UNITS, bias_initializer="random_normal"),
        return_sequences=True,
        return_state=True,
    )
    inputs = random_inputs()
    h0 = random_inputs((BATCH, UNITS), seed=5)
    c0 = random_inputs((BATCH, UNITS), seed=6)
    sequence, h, c = layer(inputs, initial_state=[h0, c0])
    kernel, recurrent_kernel, bias = layer.get_weights()
    expected_sequence, expected_h, expected_c = book_time_lstm(
        inputs.astype("float64"),
        keras_to_book_order(kernel),
        keras_to_book_order(recurrent_kernel),
        keras_to_book_order(bias),
        h0.astype("float64"),
        c0.astype("float64"),
    )
    np.testing.assert_allclose(sequence, expected_sequence, atol=TOLERANCE)
    np.testing.assert_allclose(h, expected_h, atol=TOLERANCE)
    np.testing.assert_allclose(c, expected_c, atol=TOLERANCE)


def test_gradients_match_finite_differences_of_the_book_equations():
    batch, time, features, units = 2, 3, 2, 3
    rng = np.random.default_rng(7)
    inputs = rng.normal(size=(batch, time, features))
    projection = rng.normal(size=(batch, time, units))
    layer = keras.layers.RNN(
        LSTMCell(units, bias_initializer="random_normal", dtype="float64"),
        return_sequences=True,
        dtype="float64",
    )
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs) * projection)
    analytic = [np.array(g) for g in tape.gradient(loss, layer.weights)]

    def book_loss(kernel, recurrent_kernel, bias):
        hs, _, _ = book_time_lstm(
            inputs,
            keras_to_book_order(kernel),
            keras_to_book_order(recurrent_kernel),
            keras_to_book_order(bias),
        )
        return np.sum(hs * projection)

    weights = [np.array(w, dtype="float64") for w in layer.get_weights()]
    step = 1e-6
    for index, weight in enumerate(weights):
        numeric = np.zeros_like(weight)
        for position in np.ndindex(weight.shape):
            shifted_up = [w.copy() for w in weights]
            shifted_down = [w.copy() for w in weights]
            shifted_up[index][position] += step
            shifted_down[index][position] -= step
            numeric[position] = (
                book_loss(*shifted_up) - book_loss(*shifted_down)
            ) / (2 * step)
        np.testing.assert_allclose(analytic[index], numeric, atol=1e-6)


def test_stateful_two_half_windows_equal_one_full_window():
    stateful = keras.layers.RNN(
        LSTMCell(UNITS), return_sequences=True, stateful=True
    )
    stateless = keras.layers.RNN(LSTMCell(UNITS), return_sequences=True)
    inputs = random_inputs((BATCH, 8, FEATURES))
    stateful.build(inputs.shape)
    stateless.build(inputs.shape)
    stateless.set_weights(stateful.get_weights())

    first_half = stateful(inputs[:, :4])
    second_half = stateful(inputs[:, 4:])
    full = stateless(inputs)
    np.testing.assert_allclose(
        np.concatenate([first_half, second_half], axis=1), full, atol=1e-6
    )
    assert np.abs(to_numpy(stateful.states[0])).max() > 0

    stateful.reset_state()
    for state in stateful.states:
        np.testing.assert_array_equal(to_numpy(state), 0.0)
    np.testing.assert_allclose(stateful(inputs[:, :4]), first_half, atol=1e-6)


def test_unit_forget_bias_sets_only_the_forget_block_to_one():
    cell = LSTMCell(3, bias_initializer="zeros", unit_forget_bias=True)
    cell.build((None, 2))
    np.testing.assert_array_equal(
        to_numpy(cell.bias), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    )
    plain = LSTMCell(3, unit_forget_bias=False)
    plain.build((None, 2))
    np.testing.assert_array_equal(to_numpy(plain.bias), np.zeros(12))


def test_layer_contract_inside_rnn():
    run_layer_test(
        LSTMCell,
        init_kwargs={
            "units": UNITS,
            "kernel_regularizer": "l2",
            "recurrent_constraint": "non_neg",
            "unit_forget_bias": False,
        },
        input_data=random_inputs(),
        expected_output_shape=(BATCH, TIME, UNITS),
        expected_num_trainable_weights=3,
        wrap=lambda cell: keras.layers.RNN(cell, return_sequences=True),
    )


def test_state_and_output_sizes_follow_the_rnn_cell_contract():
    cell = LSTMCell(UNITS)
    assert cell.state_size == [UNITS, UNITS]
    assert cell.output_size == UNITS
    h, states = cell(
        random_inputs((BATCH, FEATURES)),
        cell.get_initial_state(batch_size=BATCH),
    )
    assert h.shape == (BATCH, UNITS)
    np.testing.assert_array_equal(to_numpy(states[0]), to_numpy(h))


@pytest.mark.parametrize(
    "units, error",
    [
        (0, ValueError),
        (-3, ValueError),
        (2.5, TypeError),
        ("8", TypeError),
        (True, TypeError),
    ],
)
def test_bad_units_name_the_value(units, error):
    with pytest.raises(error, match=f"units.*{units!r}|units={units}"):
        LSTMCell(units)


def test_inputs_without_a_time_axis_are_rejected():
    layer = keras.layers.RNN(LSTMCell(UNITS))
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        layer(np.zeros((BATCH, TIME), dtype="float32"))


def test_integer_inputs_are_rejected():
    layer = keras.layers.RNN(LSTMCell(UNITS))
    with pytest.raises(TypeError, match="int32"):
        layer(np.zeros((BATCH, TIME, FEATURES), dtype="int32"))
