import keras
import numpy as np
import pytest

from keras_lstm_scratch import WordDropout, build_language_model

VOCAB = 40


def ids_and_ones(seed=0):
    ids = np.random.default_rng(seed).integers(0, VOCAB, (8, 12))
    return ids.astype("int32"), np.ones((8, 12, 3), "float32")


def word_scales(layer, ids, vectors, training=True):
    """`{word: set of scales}` over every occurrence in the batch."""
    out = keras.ops.convert_to_numpy(layer([ids, vectors], training=training))
    scales = {}
    for word, row in zip(ids.ravel(), out.reshape(-1, 3), strict=True):
        assert len(set(row.tolist())) == 1  # one scale per vector
        scales.setdefault(int(word), set()).add(float(row[0]))
    return scales


def test_drops_whole_words_and_scales_the_rest():
    layer = WordDropout(VOCAB, 0.5, seed=1)
    ids, ones = ids_and_ones()
    scales = word_scales(layer, ids, ones)
    # Every occurrence of a word shares its fate: 0, or 1 / (1 - rate).
    assert all(len(values) == 1 for values in scales.values())
    fates = {value for values in scales.values() for value in values}
    assert fates == {0.0, 2.0}


def test_a_fresh_mask_per_call_and_none_at_inference():
    layer = WordDropout(VOCAB, 0.5, seed=1)
    ids, ones = ids_and_ones()
    first, second = word_scales(layer, ids, ones), word_scales(layer, ids, ones)
    assert first != second
    inference = layer([ids, ones], training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(inference), ones)


def test_keeps_the_expected_vector():
    layer = WordDropout(VOCAB, 0.3, seed=2)
    ids, ones = ids_and_ones()
    draws = [
        keras.ops.convert_to_numpy(layer([ids, ones], training=True))
        for _ in range(400)
    ]
    assert np.mean(draws) == pytest.approx(1.0, abs=0.02)


def test_config_and_serialization_round_trip():
    layer = WordDropout(VOCAB, 0.1, seed=3, name="words")
    revived = WordDropout.from_config(layer.get_config())
    assert revived.get_config() == layer.get_config()
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is WordDropout


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_a_bad_rate_names_the_value(rate):
    with pytest.raises(ValueError, match=f"rate={rate}"):
        WordDropout(VOCAB, rate)


def regularised_model(**overrides):
    arguments = dict(
        embedding_dim=6,
        hidden_units=6,
        num_layers=2,
        tie_weights=True,
        stateful=True,
        batch_size=8,
        seq_len=12,
        dropout=0.4,
        locked_dropout=True,
        word_dropout=0.5,
    )
    return build_language_model(VOCAB, **{**arguments, **overrides})


def test_with_the_tied_embedding_words_are_dropped_and_weights_kept():
    model = regularised_model()
    ids, _ = ids_and_ones()
    probe = keras.Model(model.input, model.get_layer("word_dropout").output)
    embedded = keras.ops.convert_to_numpy(
        model.get_layer("tied_embedding")(ids)
    )
    out = keras.ops.convert_to_numpy(probe(ids, training=True))
    nonzero = embedded != 0
    ratio = np.divide(out, embedded, out=np.zeros_like(out), where=nonzero)
    for word in np.unique(ids):
        values = np.round(ratio[ids == word][nonzero[ids == word]], 4)
        assert set(values.tolist()) <= {0.0, 2.0}
        assert len(set(values.tolist())) == 1
    # The projection reads the embedding matrix itself, never the mask.
    matrix = model.get_layer("tied_embedding").embeddings
    assert not np.any(np.all(keras.ops.convert_to_numpy(matrix) == 0, axis=1))


def test_locked_dropout_keeps_one_mask_across_time_and_draws_per_window():
    model = regularised_model(word_dropout=0.0)
    ids, _ = ids_and_ones()
    probe = keras.Model(
        model.input, model.get_layer("embedding_dropout").output
    )
    embedded = keras.ops.convert_to_numpy(
        model.get_layer("tied_embedding")(ids)
    )

    def mask():
        out = keras.ops.convert_to_numpy(probe(ids, training=True))
        kept = np.abs(out) > 0  # (batch, time, features)
        return kept

    first = mask()
    # The same features of a sequence are dropped at every time step.
    assert np.all(first == first[:, :1, :])
    assert 0 < first.mean() < 1
    assert np.any(mask() != first)  # the next window draws again
    assert np.all(np.abs(embedded) > 0)


def test_a_regularised_model_saves_and_loads(tmp_path):
    model = regularised_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    ids, _ = ids_and_ones()
    np.testing.assert_allclose(
        restored.predict(ids, verbose=0), model.predict(ids, verbose=0)
    )
    assert restored.get_layer("word_dropout").rate == 0.5
    assert isinstance(
        restored.get_layer("dropout_1"), keras.layers.SpatialDropout1D
    )
