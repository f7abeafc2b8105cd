import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import TiedEmbedding
from tests.layer_testing import run_layer_test

to_numpy = keras.ops.convert_to_numpy

# A constant matrix whose products can be checked by hand.
MATRIX = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="float32")
BIAS = np.array([0.1, 0.2, 0.3], dtype="float32")


def constant_layer():
    layer = TiedEmbedding(vocab_size=3, embedding_dim=2)
    layer.build()
    layer.set_weights([MATRIX, BIAS])
    return layer


def test_lookup_returns_rows_of_the_matrix():
    vectors = constant_layer()(np.array([[2, 0]]))
    np.testing.assert_array_equal(vectors, [[[5.0, 6.0], [1.0, 2.0]]])


def test_reverse_projects_with_the_transpose_plus_bias():
    # [1, 1] . rows = 3, 7, 11; plus bias 0.1, 0.2, 0.3.
    logits = constant_layer()(np.array([[1.0, 1.0]]), reverse=True)
    np.testing.assert_allclose(logits, [[3.1, 7.2, 11.3]], rtol=1e-6)


def test_one_shared_variable_receives_gradient_from_both_uses():
    layer = constant_layer()
    ids = np.array([2, 0])
    weights = np.array([[1.0, -1.0, 2.0], [0.5, 0.0, -2.0]])  # dL/dlogits
    with tf.GradientTape() as tape:
        logits = layer(layer(ids), reverse=True)  # (2, 3)
        loss = tf.reduce_sum(logits * weights)
    gradient = to_numpy(tape.gradient(loss, layer.embeddings))

    assert len(layer.trainable_weights) == 2  # embeddings + output bias
    hidden = MATRIX[ids]  # (2, 2)
    # Through the projection: dL/dE[v] = sum_t weights[t, v] * hidden[t].
    through_projection = weights.T @ hidden
    # Through the lookup: row ids[t] gets dL/dhidden[t] = weights[t] @ E.
    through_lookup = np.zeros_like(MATRIX)
    np.add.at(through_lookup, ids, weights @ MATRIX)
    assert np.abs(through_lookup).sum() > 0
    np.testing.assert_allclose(
        gradient, through_projection + through_lookup, rtol=1e-6
    )


# The lookup alone leaves the output bias without a gradient, as expected.
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_layer_contract():
    run_layer_test(
        TiedEmbedding,
        init_kwargs={"vocab_size": 11, "embedding_dim": 4},
        input_data=np.array([[1, 2, 3], [4, 5, 10]], dtype="int32"),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=2,
        expected_num_updated_weights=1,  # the lookup does not use the bias
    )


def test_without_output_bias_has_one_variable():
    layer = TiedEmbedding(5, 3, use_output_bias=False)
    logits = layer(layer(np.array([[1, 2]])), reverse=True)
    assert logits.shape == (1, 2, 5)
    assert len(layer.weights) == 1


def test_float_ids_are_rejected():
    with pytest.raises(TypeError, match="float32"):
        constant_layer()(np.array([[0.0, 1.0]], dtype="float32"))


def test_reverse_with_wrong_vector_size_is_rejected():
    with pytest.raises(ValueError, match=r"embedding_dim=2.*\(1, 3\)"):
        constant_layer()(np.ones((1, 3), dtype="float32"), reverse=True)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"vocab_size": 0, "embedding_dim": 2}, ValueError, "vocab_size=0"),
        (
            {"vocab_size": 3, "embedding_dim": -2},
            ValueError,
            "embedding_dim=-2",
        ),
        ({"vocab_size": "3", "embedding_dim": 2}, TypeError, "'3'"),
    ],
)
def test_bad_sizes_name_the_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        TiedEmbedding(**kwargs)
