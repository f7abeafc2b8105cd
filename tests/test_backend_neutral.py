"""The library on any Keras backend: these tests use only `keras.ops`,
NumPy and the package, and run under TensorFlow here and under JAX and
PyTorch in fresh processes (`tests/test_backends.py`)."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_lstm_scratch import (
    LSTMCell,
    Perplexity,
    PerplexityCallback,
    ResetStatesCallback,
    SparseSoftmaxCrossEntropy,
    TiedEmbedding,
    TimeLSTM,
    build_language_model,
    evaluate_token_nll,
    sparse_softmax_cross_entropy,
)

pytestmark = pytest.mark.backend_neutral

VOCAB, STREAMS, WINDOW = 12, 4, 5


def to_numpy(value):
    return ops.convert_to_numpy(value)


def random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def stream_windows(windows=3):
    """`STREAMS` token streams of a repeating pattern, cut into windows."""
    steps = windows * WINDOW + 1
    streams = np.stack(
        [(np.arange(steps) + offset) % 7 for offset in range(STREAMS)]
    ).astype("int32")
    x = np.concatenate(
        [streams[:, t : t + WINDOW] for t in range(0, steps - 1, WINDOW)]
    )
    y = np.concatenate(
        [
            streams[:, t + 1 : t + 1 + WINDOW]
            for t in range(0, steps - 1, WINDOW)
        ]
    )
    return x, y  # window w of every stream, then window w + 1


def batches(x, y):
    """The windows as a stateful model reads them: one batch per window."""
    return [
        (x[i : i + STREAMS], y[i : i + STREAMS])
        for i in range(0, len(x), STREAMS)
    ]


def test_lstm_cell_in_rnn_equals_keras_lstm():
    inputs = random((3, 6, 4), 0)
    ours = keras.layers.RNN(LSTMCell(5), return_sequences=True)
    theirs = keras.layers.LSTM(5, return_sequences=True)
    ours(inputs)
    theirs(inputs)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(
        to_numpy(ours(inputs)), to_numpy(theirs(inputs)), atol=1e-5
    )


def test_time_lstm_equals_the_rnn_of_its_cell():
    inputs = random((3, 6, 4), 1)
    fast = TimeLSTM(5, return_sequences=True, return_state=True)
    generic = keras.layers.RNN(
        LSTMCell(5), return_sequences=True, return_state=True
    )
    fast(inputs)
    generic(inputs)
    generic.set_weights(fast.get_weights())
    for ours, theirs in zip(fast(inputs), generic(inputs), strict=True):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), atol=1e-5)


def test_tied_embedding_projects_with_the_transposed_matrix_and_bias():
    layer = TiedEmbedding(VOCAB, 4)
    vectors = layer(np.array([[1, 2, 3]]))
    embeddings, bias = (to_numpy(w) for w in layer.weights)
    np.testing.assert_allclose(to_numpy(vectors)[0], embeddings[[1, 2, 3]])
    hidden = random((2, 3, 4), 2)
    np.testing.assert_allclose(
        to_numpy(layer(hidden, reverse=True)),
        hidden @ embeddings.T + bias,
        atol=1e-5,
    )


def test_the_loss_equals_keras_cross_entropy():
    logits = random((2, 3, VOCAB), 3)
    targets = np.array([[0, 5, 11], [3, 3, 7]], "int32")
    ours = SparseSoftmaxCrossEntropy()(targets, logits)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        targets, logits
    )
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-5)
    nll = to_numpy(sparse_softmax_cross_entropy(targets, logits))
    assert nll.shape == (2, 3)
    assert np.isnan(
        to_numpy(sparse_softmax_cross_entropy([[VOCAB]], logits[:1, :1]))
    )


def test_perplexity_is_the_exponential_of_the_token_weighted_mean():
    logits = random((2, 3, VOCAB), 4)
    targets = np.array([[0, 5, 11], [3, 3, 7]], "int32")
    weights = np.array([[1, 1, 0], [1, 0, 0]], "float32")
    metric = Perplexity()
    metric.update_state(targets, logits, weights)
    nll = to_numpy(sparse_softmax_cross_entropy(targets, logits))
    expected = np.exp((nll * weights).sum() / weights.sum())
    np.testing.assert_allclose(
        float(to_numpy(metric.result())), expected, rtol=1e-5
    )


OPTIONS = {
    "tied, two layers, dropout": dict(
        num_layers=2, dropout=0.2, tie_weights=True
    ),
    "AWD-LSTM's regularisers": dict(
        num_layers=2,
        tie_weights=True,
        locked_dropout=True,
        input_dropout=0.2,
        output_dropout=0.2,
        word_dropout=0.1,
        weight_dropout=0.3,
        activation_regularization=2.0,
        temporal_activation_regularization=1.0,
        seed=3,
    ),
    "SimpleRNN": dict(rnn_cell="simple_rnn"),
}
# Keras 3.15's own LSTM does not train statefully on PyTorch (it assigns
# its state variables in place under autograd); TimeLSTM does.
STATELESS_OPTIONS = {"keras.layers.LSTM": dict(rnn_cell="keras_lstm")}


CASES = [(options, True) for options in OPTIONS.values()] + [
    (options, False) for options in STATELESS_OPTIONS.values()
]
CASE_NAMES = [*OPTIONS, *STATELESS_OPTIONS]


@pytest.mark.parametrize("options, stateful", CASES, ids=CASE_NAMES)
def test_every_option_trains_with_fit(options, stateful, tmp_path):
    x, y = stream_windows()
    model = build_language_model(
        VOCAB, 8, 8, stateful=stateful, batch_size=STREAMS, seq_len=WINDOW,
        **options,
    )  # fmt: skip
    model.compile(
        keras.optimizers.SGD(3.0),
        SparseSoftmaxCrossEntropy(),
        metrics=[Perplexity()],
    )
    before, _ = evaluate_token_nll(model, batches(x, y))
    history = model.fit(
        x, y, batch_size=STREAMS, epochs=20, shuffle=False, verbose=0,
        callbacks=[PerplexityCallback(batches(x, y)), ResetStatesCallback()],
    )  # fmt: skip
    logs = history.history
    assert logs["val_perplexity"][-1] == pytest.approx(
        np.exp(logs["val_loss"][-1])
    )
    assert np.log(logs["val_perplexity"][-1]) < 0.85 * before
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    for layer in (model, restored):
        for rnn in layer.layers:
            if isinstance(rnn, keras.layers.RNN):
                rnn.reset_state()
    np.testing.assert_allclose(
        to_numpy(restored(x[:STREAMS])), to_numpy(model(x[:STREAMS])), atol=1e-5
    )


def test_stateful_windows_carry_the_states_and_a_reset_clears_them():
    x, _ = stream_windows(windows=2)
    model = build_language_model(
        VOCAB, 8, 8, stateful=True, batch_size=STREAMS, seq_len=WINDOW
    )
    first = to_numpy(model(x[:STREAMS]))
    carried = to_numpy(model(x[:STREAMS]))
    assert not np.allclose(first, carried)  # the states went on
    callback = ResetStatesCallback()
    callback.set_model(model)
    callback.on_epoch_begin(0)
    np.testing.assert_allclose(to_numpy(model(x[:STREAMS])), first, atol=1e-6)
