import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import (
    SparseSoftmaxCrossEntropy,
    build_language_model,
    sparse_softmax_cross_entropy,
)
from keras_lstm_scratch.losses.cross_entropy import token_nll_ops

to_numpy = keras.ops.convert_to_numpy
VOCAB = 11


def random_batch(seed, batch=3, time=4, scale=3.0):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, VOCAB, (batch, time)).astype("int32")
    logits = rng.normal(scale=scale, size=(batch, time, VOCAB))
    return targets, logits.astype("float32")


def reference_nll(targets, logits):
    """-log softmax(logits)[target] in float64."""
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def test_uniform_logits_give_log_vocabulary_size():
    nll = sparse_softmax_cross_entropy(
        np.zeros((2, 3), "int32"), np.zeros((2, 3, VOCAB), "float32")
    )
    np.testing.assert_allclose(to_numpy(nll), np.full((2, 3), np.log(VOCAB)))


def test_values_equal_the_float64_reference():
    targets, logits = random_batch(seed=0)
    np.testing.assert_allclose(
        to_numpy(sparse_softmax_cross_entropy(targets, logits)),
        reference_nll(targets, logits),
        atol=1e-5,
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_gradient_is_softmax_minus_one_hot(jit_compile):
    targets, logits = random_batch(seed=1)
    token_weights = np.random.default_rng(2).uniform(size=targets.shape)

    @tf.function(jit_compile=jit_compile)
    def gradient(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            nll = sparse_softmax_cross_entropy(targets, logits)
            loss = tf.reduce_sum(nll * token_weights.astype("float32"))
        return tape.gradient(loss, logits)

    shifted = logits.astype("float64") - logits.max(axis=-1, keepdims=True)
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    expected = (softmax - np.eye(VOCAB)[targets]) * token_weights[..., None]
    np.testing.assert_allclose(
        to_numpy(gradient(tf.constant(logits))), expected, atol=1e-6
    )


def test_huge_logits_stay_finite():
    logits = np.array([[[1e4, 0.0, -1e4]]], "float32")
    nll = to_numpy(sparse_softmax_cross_entropy(np.array([[1]]), logits))
    np.testing.assert_allclose(nll, [[1e4]])


def test_out_of_range_targets_give_nan():
    nll = to_numpy(
        sparse_softmax_cross_entropy(
            np.array([[0, VOCAB, -1]]), np.zeros((1, 3, VOCAB), "float32")
        )
    )
    assert np.isfinite(nll[0, 0])
    assert np.isnan(nll[0, 1:]).all()


def test_bfloat16_logits_are_scored_in_float32():
    targets, logits = random_batch(seed=3)
    nll = sparse_softmax_cross_entropy(targets, tf.cast(logits, "bfloat16"))
    assert nll.dtype == "float32"
    rounded = to_numpy(tf.cast(tf.cast(logits, "bfloat16"), "float32"))
    np.testing.assert_allclose(
        to_numpy(nll), reference_nll(targets, rounded), atol=1e-5
    )


def test_bad_inputs_are_rejected():
    targets, logits = random_batch(seed=4)
    with pytest.raises(TypeError, match="integer target ids"):
        sparse_softmax_cross_entropy(targets.astype("float32"), logits)
    with pytest.raises(TypeError, match="floating-point logits"):
        sparse_softmax_cross_entropy(targets, logits.astype("int32"))
    with pytest.raises(ValueError, match="targets.shape"):
        sparse_softmax_cross_entropy(targets[0], logits)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", None])
def test_loss_equals_keras_sparse_categorical_crossentropy(reduction):
    targets, logits = random_batch(seed=5)
    weights = np.random.default_rng(6).uniform(size=targets.shape)
    ours = SparseSoftmaxCrossEntropy(reduction=reduction)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=reduction
    )
    for arguments in ((targets, logits), (targets, logits, weights)):
        np.testing.assert_allclose(
            to_numpy(ours(*arguments)),
            to_numpy(keras_loss(*arguments)),
            rtol=1e-5,
        )
    # Ids with a trailing axis of 1, as Keras accepts them.
    np.testing.assert_allclose(
        to_numpy(ours(targets[..., None], logits)),
        to_numpy(keras_loss(targets, logits)),
        rtol=1e-5,
    )


def test_loss_serialization_round_trip():
    loss = SparseSoftmaxCrossEntropy(reduction="sum", name="nll")
    revived = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(revived) is SparseSoftmaxCrossEntropy
    assert revived.get_config() == loss.get_config()


def test_a_training_step_equals_keras_loss():
    targets, _ = random_batch(seed=7, batch=2, time=5)
    ids = np.random.default_rng(8).integers(0, VOCAB, targets.shape)
    weights = []
    for loss in (
        SparseSoftmaxCrossEntropy(),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ):
        keras.utils.set_random_seed(0)
        model = build_language_model(VOCAB, 4, 4)
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
        model.train_on_batch(ids.astype("int32"), targets)
        weights.append(model.get_weights())
    for ours, reference in zip(*weights, strict=True):
        np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_the_tensorflow_path_equals_its_keras_ops_twin():
    targets, logits = random_batch(5)
    targets[0, 0] = VOCAB  # out of range: nan on both paths
    logits = tf.Variable(logits)
    results = []
    for nll_of in (sparse_softmax_cross_entropy, token_nll_ops):
        with tf.GradientTape() as tape:
            nll = nll_of(tf.constant(targets), tf.identity(logits))
            loss = tf.reduce_sum(tf.where(tf.math.is_nan(nll), 0.0, nll))
        results.append((nll.numpy(), tape.gradient(loss, logits).numpy()))
    (fast_nll, fast_grad), (twin_nll, twin_grad) = results
    np.testing.assert_allclose(fast_nll, twin_nll, rtol=1e-6, atol=1e-6)
    assert np.isnan(fast_nll[0, 0]) and np.isnan(twin_nll[0, 0])
    np.testing.assert_allclose(fast_grad[0, 1:], twin_grad[0, 1:], atol=1e-6)
    np.testing.assert_allclose(fast_grad[1:], twin_grad[1:], atol=1e-6)
