import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import OutputProjection, project_with_bias
from keras_lstm_scratch.layers.output_projection import (
    folds_bias,
    project_with_bias_ops,
)
from tests.layer_testing import run_layer_test

to_numpy = keras.ops.convert_to_numpy


def twin_layers(units=7, features=5, **kwargs):
    """An OutputProjection and a Dense with the same random weights."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(features, units)).astype("float32")
    bias = rng.normal(size=(units,)).astype("float32")
    layers = (
        OutputProjection(units, **kwargs),
        keras.layers.Dense(units, **kwargs),
    )
    for layer in layers:
        layer.build((None, None, features))
        layer.set_weights([kernel, bias][: len(layer.weights)])
    return layers


def test_bias_folded_into_the_product_by_hand():
    # [1, 2] @ [[1, 0], [0, 1]] + [10, 20] = [11, 22]
    layer = OutputProjection(2)
    layer.build((None, 2))
    layer.set_weights([np.eye(2, dtype="float32"), np.array([10.0, 20.0])])
    np.testing.assert_allclose(
        to_numpy(layer(np.array([[1.0, 2.0]], "float32"))), [[11.0, 22.0]]
    )


def test_bias_folds_from_four_tokens_per_unit():
    assert folds_bias(20, 5)
    assert not folds_bias(19, 5)
    assert not folds_bias(None, 5)  # token count unknown when traced


# 20 tokens of 5 units fold the bias into the product; 2 tokens do not.
@pytest.mark.parametrize("shape", [(4, 5, 5), (1, 2, 5)])
def test_logits_and_gradients_equal_dense(shape):
    ours, dense = twin_layers()
    inputs = tf.constant(
        np.random.default_rng(1).normal(size=shape).astype("float32")
    )
    results = []
    for layer in (ours, dense):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            logits = layer(inputs)
            # A loss that weighs every logit differently.
            loss = tf.reduce_sum(logits * tf.range(7, dtype="float32"))
        results.append(
            [logits, *tape.gradient(loss, [inputs, *layer.trainable_weights])]
        )
    for ours_value, dense_value in zip(*results, strict=True):
        np.testing.assert_allclose(ours_value, dense_value, atol=1e-5)


# 16 tokens of 4 units fold the bias into the product; 1 token does not.
@pytest.mark.parametrize("shape", [(4, 4, 4), (1, 1, 4)])
def test_transposed_kernel_is_the_tied_layout(shape):
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=shape).astype("float32")
    matrix = rng.normal(size=(9, 4)).astype("float32")  # (vocab, units)
    bias = rng.normal(size=(9,)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(
            project_with_bias(inputs, matrix, bias, transpose_kernel=True)
        ),
        inputs @ matrix.T + bias,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "kwargs", [{"use_bias": False}, {"activation": "softmax"}]
)
def test_other_settings_run_dense_unchanged(kwargs):
    ours, dense = twin_layers(**kwargs)
    inputs = np.ones((2, 3, 5), "float32")
    np.testing.assert_allclose(
        to_numpy(ours(inputs)), to_numpy(dense(inputs)), atol=1e-6
    )


def test_mixed_precision_computes_in_bfloat16():
    layer = OutputProjection(6, dtype="mixed_bfloat16")
    logits = layer(np.ones((2, 3, 4), "float32"))
    assert logits.dtype == "bfloat16"
    assert layer.kernel.dtype == "float32"  # master weights


def test_layer_contract():
    run_layer_test(
        OutputProjection,
        init_kwargs={"units": 6},
        input_data=np.ones((2, 3, 4), "float32"),
        expected_output_shape=(2, 3, 6),
        expected_num_trainable_weights=2,
    )


@pytest.mark.parametrize("transpose_kernel", [False, True])
def test_the_tensorflow_path_equals_its_keras_ops_twin(transpose_kernel):
    # 700 tokens of 8 units: the TensorFlow path folds the bias.
    inputs = tf.random.normal((20, 35, 8), seed=1)
    kernel = tf.Variable(
        tf.random.normal((9, 8) if transpose_kernel else (8, 9))
    )
    bias = tf.Variable(tf.random.normal((9,)))
    results = []
    for project in (project_with_bias, project_with_bias_ops):
        with tf.GradientTape() as tape:
            logits = project(inputs, kernel, bias, transpose_kernel)
            loss = tf.reduce_sum(tf.sin(logits))
        results.append([logits, *tape.gradient(loss, [kernel, bias])])
    for fast, twin in zip(*results, strict=True):
        np.testing.assert_allclose(fast.numpy(), twin.numpy(), atol=1e-4)
