import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import LSTMCell
from keras_lstm_scratch.layers import onednn_lstm
from keras_lstm_scratch.layers.time_lstm import TimeLSTM
from tests.layer_testing import run_layer_test

BATCH, TIME, FEATURES, UNITS = 4, 7, 5, 6
# TimeLSTM's two TensorFlow loops: its own (the book's backward pass) and
# oneDNN's fused LSTM (onednn_lstm.py), which must be built here.
LOOPS = [False, True]


def random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def paired(use_onednn="auto", **options):
    """TimeLSTM and keras.layers.LSTM with the same (non-trivial) weights."""
    ours = TimeLSTM(
        UNITS,
        return_sequences=True,
        return_state=True,
        bias_initializer="random_normal",
        use_onednn=use_onednn,
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
    "options, masked, use_onednn",
    [
        ({}, False, False),
        ({}, False, True),
        ({"stateful": True}, False, False),
        ({"stateful": True}, False, True),
        # Masked and backward calls take Keras's generic loop.
        ({}, True, "auto"),
        ({"go_backwards": True}, False, "auto"),
    ],
)
def test_matches_keras_lstm_outputs_states_and_gradients(
    options, masked, use_onednn
):
    ours, builtin = paired(use_onednn=use_onednn, **options)
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


@pytest.mark.parametrize("use_onednn", LOOPS)
@pytest.mark.parametrize("weight_dropout", [0.0, 0.5])
def test_the_tensorflow_loop_equals_its_keras_ops_twin(
    weight_dropout, use_onednn
):
    # ops_loop is what JAX and PyTorch run; here both run on TensorFlow,
    # the weight-drop masks drawn from the same seed.
    inputs = tf.constant(random((BATCH, TIME, FEATURES), 6))
    results = []
    for twin in (False, True):
        layer = TimeLSTM(
            UNITS,
            return_sequences=True,
            weight_dropout=weight_dropout,
            seed=4,
            use_onednn=use_onednn,
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


@pytest.mark.parametrize("use_onednn", LOOPS)
@pytest.mark.parametrize("steps", [TIME, 60])
def test_gradients_of_the_initial_states_and_of_long_sequences(
    steps, use_onednn
):
    """`initial_state` gets its gradient from the hand-written backward
    pass (or oneDNN's), as keras.layers.LSTM's from autodiff; at 60 steps
    too."""
    ours, builtin = paired(use_onednn=use_onednn)
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


def test_the_fused_loop_runs_in_bfloat16_near_the_own_loop():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layers = [
            TimeLSTM(UNITS, return_sequences=True, use_onednn=use)
            for use in LOOPS
        ]
        inputs = tf.constant(random((BATCH, 30, FEATURES), 9))
        results = []
        for layer in layers:
            layer(inputs)
            layer.set_weights(layers[0].get_weights())
            with tf.GradientTape() as tape:
                outputs = layer(inputs, training=True)
                loss = tf.reduce_sum(tf.cast(outputs, "float32") ** 2)
            results.append([outputs, *tape.gradient(loss, layer.weights)])
    finally:
        keras.config.set_dtype_policy("float32")
    assert layers[1].runs_onednn(tf.bfloat16)
    assert results[1][0].dtype == tf.bfloat16
    for own, fused in zip(*results, strict=True):
        own, fused = (np.asarray(tf.cast(t, "float32")) for t in (own, fused))
        # bfloat16 keeps 8 bits; oneDNN keeps c in float32, the loop not.
        np.testing.assert_allclose(
            fused, own, atol=0.03 * np.abs(own).max(), rtol=0
        )


def test_use_onednn_is_kept_and_checked():
    layer = TimeLSTM(UNITS, use_onednn=False)
    assert TimeLSTM.from_config(layer.get_config()).use_onednn is False
    assert TimeLSTM(UNITS).use_onednn == "auto"
    with pytest.raises(ValueError, match="use_onednn='yes'"):
        TimeLSTM(UNITS, use_onednn="yes")


def test_auto_takes_the_fused_loop_for_bfloat16_scoring_only():
    layer = TimeLSTM(UNITS, use_onednn="auto")
    assert layer.runs_onednn(tf.bfloat16, training=False)
    assert not layer.runs_onednn(tf.bfloat16, training=True)
    assert not layer.runs_onednn(tf.float32, training=False)
    forced = TimeLSTM(UNITS, use_onednn=True)
    assert forced.runs_onednn(tf.float32, training=True)


def test_xla_calls_run_the_own_loop():
    layer = TimeLSTM(UNITS, use_onednn="auto")
    seen = []

    @tf.function(jit_compile=True)
    def compiled(x):
        seen.append(layer.runs_onednn(tf.bfloat16))
        return layer(x)

    compiled(tf.zeros((BATCH, TIME, FEATURES)))
    assert seen and not any(seen)
    assert layer.runs_onednn(tf.bfloat16)
    with pytest.raises(ValueError, match="XLA compiles this call"):
        tf.function(
            lambda x: TimeLSTM(UNITS, use_onednn=True)(x), jit_compile=True
        )(tf.zeros((BATCH, TIME, FEATURES)))


def test_where_the_op_cannot_be_built_the_own_loop_runs(tmp_path):
    """No compiler: one line says so, and the layer computes as before."""
    script = textwrap.dedent(
        """
        import keras
        import numpy as np
        from keras_lstm_scratch.layers.time_lstm import TimeLSTM
        keras.config.set_dtype_policy("mixed_bfloat16")  # auto: the op
        x = np.ones((2, 3, 4), "float32")
        auto, own = TimeLSTM(5, seed=1), TimeLSTM(5, use_onednn=False)
        auto(x), own(x)
        own.set_weights(auto.get_weights())
        print("equal", np.array_equal(auto(x), own(x)))
        try:
            TimeLSTM(5, use_onednn=True)(x)
        except ValueError as error:
            print("refused", error)
        """
    )
    env = dict(
        os.environ,
        CXX=str(tmp_path / "no-such-compiler"),
        KERAS_LSTM_SCRATCH_CACHE=str(tmp_path / "cache"),
    )
    env.pop(onednn_lstm.ONEDNN_ENV, None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    notes = [
        line
        for line in result.stderr.splitlines()
        if "runs its own loop" in line
    ]
    assert len(notes) == 1 and "no-such-compiler" in notes[0]
    assert "equal True" in result.stdout
    assert "refused" in result.stdout and "no-such-compiler" in result.stdout


def test_a_call_outside_training_keeps_its_gradient():
    """`training=False` runs oneDNN's inference forward, which keeps no
    workspace; a gradient of such a call runs the forward again."""
    layer = TimeLSTM(UNITS, return_sequences=True, use_onednn=True)
    inputs = tf.constant(random((BATCH, TIME, FEATURES), 10))
    layer(inputs)
    results = []
    for training in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=training)
            loss = tf.reduce_sum(tf.sin(outputs))
        results.append(
            [outputs, *tape.gradient(loss, [inputs, *layer.weights])]
        )
    for kept, recomputed in zip(*results, strict=True):
        np.testing.assert_allclose(kept, recomputed, atol=1e-6)
