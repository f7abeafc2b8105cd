import re

import keras
import numpy as np
import pytest

from keras_lstm_scratch import (
    LSTMCell,
    TiedEmbedding,
    build_language_model,
    reset_rnn_states,
)

to_numpy = keras.ops.convert_to_numpy


def layers_of_type(model, layer_type):
    return [layer for layer in model.layers if isinstance(layer, layer_type)]


def test_book_rnnlm_shape_and_parameter_count():
    model = build_language_model(10000, 100, 100, num_layers=1)
    # Embedding 10000*100, LSTM 4*100*(100+100)+4*100, Dense 100*10000+10000.
    assert model.count_params() == 1_000_000 + 80_400 + 1_010_000
    assert not layers_of_type(model, keras.layers.Dropout)
    assert model(np.zeros((2, 3), dtype="int32")).shape == (2, 3, 10000)


def test_book_better_rnnlm_is_tied_with_one_vocab_matrix():
    model = build_language_model(
        10000, 650, 650, num_layers=2, dropout=0.5, tie_weights=True
    )
    vocab_matrices = [w for w in model.weights if w.shape == (10000, 650)]
    assert len(vocab_matrices) == 1
    assert not [w for w in model.weights if w.shape == (650, 10000)]
    # Tied matrix 10000*650 + output bias 10000 + 2 LSTMs 4*650*1300+2600.
    assert model.count_params() == 6_500_000 + 10_000 + 2 * 3_382_600
    dropouts = layers_of_type(model, keras.layers.Dropout)
    assert [d.rate for d in dropouts] == [0.5, 0.5, 0.5]
    cells = [layer.cell for layer in layers_of_type(model, keras.layers.RNN)]
    assert all(isinstance(cell, LSTMCell) for cell in cells)


def test_dropout_is_between_layers_only():
    model = build_language_model(20, 4, 4, num_layers=2, dropout=0.3)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == [
        "Embedding",
        "Dropout",
        "TimeLSTM",
        "Dropout",
        "TimeLSTM",
        "Dropout",
        "OutputProjection",
    ]


def test_dropout_acts_only_in_training():
    model = build_language_model(20, 4, 4, dropout=0.5)
    ids = np.arange(10, dtype="int32").reshape(2, 5)
    np.testing.assert_array_equal(model(ids), model(ids))
    assert not np.allclose(model(ids, training=True), model(ids))


@pytest.mark.parametrize("tie_weights", [False, True])
def test_keras_file_round_trip_gives_identical_logits(tmp_path, tie_weights):
    model = build_language_model(
        30, 6, 6, num_layers=2, dropout=0.2, tie_weights=tie_weights
    )
    ids = np.random.default_rng(0).integers(0, 30, (3, 7)).astype("int32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        model.predict(ids, verbose=0), restored.predict(ids, verbose=0)
    )
    if tie_weights:
        assert isinstance(restored.get_layer("tied_embedding"), TiedEmbedding)


def test_stateful_model_round_trips_and_resets(tmp_path):
    model = build_language_model(
        30, 6, 6, num_layers=2, stateful=True, batch_size=2, seq_len=4
    )
    ids = np.random.default_rng(1).integers(0, 30, (2, 4)).astype("int32")
    first = to_numpy(model(ids))
    second = to_numpy(model(ids))  # starts from carried states
    assert not np.allclose(first, second)
    assert reset_rnn_states(model) == 2
    np.testing.assert_allclose(to_numpy(model(ids)), first, atol=1e-6)

    reset_rnn_states(model)
    model.save(tmp_path / "stateful.keras")
    restored = keras.models.load_model(tmp_path / "stateful.keras")
    reset_rnn_states(restored)
    np.testing.assert_allclose(to_numpy(restored(ids)), first, atol=1e-6)


def test_five_epochs_of_fit_lower_the_loss():
    model = build_language_model(15, 8, 8, tie_weights=True)
    model.compile(
        optimizer=keras.optimizers.SGD(1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ids = np.tile(np.arange(15, dtype="int32"), (4, 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    before = model.evaluate(inputs, targets, verbose=0)
    model.fit(inputs, targets, epochs=5, verbose=0)
    assert model.evaluate(inputs, targets, verbose=0) < before


def test_tying_with_mismatched_sizes_says_what_to_change():
    with pytest.raises(
        ValueError, match=r"embedding_dim=100 and hidden_units=650"
    ):
        build_language_model(100, 100, 650, tie_weights=True)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"vocab_size": -5}, ValueError, "vocab_size=-5"),
        ({"vocab_size": 10.0}, TypeError, "10.0"),
        ({"vocab_size": 10, "num_layers": 0}, ValueError, "num_layers=0"),
        ({"vocab_size": 10, "dropout": 1.0}, ValueError, "dropout=1.0"),
        ({"vocab_size": 10, "dropout": "0.5"}, TypeError, "'0.5'"),
        ({"vocab_size": 10, "stateful": True}, ValueError, "batch_size=None"),
        ({"vocab_size": 10, "hidden_units": 0}, ValueError, "hidden_units=0"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_language_model(**kwargs)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_token_ids_of_wrong_rank_are_rejected(shape):
    model = build_language_model(10, 4, 4)
    message = re.escape(f"incompatible shape {shape}")
    with pytest.raises(ValueError, match=message):
        model(np.zeros(shape, dtype="int32"))


def test_keras_lstm_layers_give_the_time_lstm_model_s_logits():
    ours = build_language_model(30, 8, 12, num_layers=2)
    stock = build_language_model(30, 8, 12, num_layers=2, rnn_cell="keras_lstm")
    assert [type(layer) for layer in stock.layers].count(keras.layers.LSTM) == 2
    stock.set_weights(ours.get_weights())  # same gate order: i, f, g, o
    ids = np.random.default_rng(0).integers(0, 30, (3, 9))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stock(ids)),
        keras.ops.convert_to_numpy(ours(ids)),
        atol=1e-5,
    )
