import keras
import numpy as np
import pytest

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.evaluation import (
    DynamicEvaluation,
    NeuralCache,
    StreamModel,
    gradient_rms,
    score_stream,
)

VOCAB = 30


@pytest.fixture(scope="module")
def model_and_text():
    keras.utils.set_random_seed(5)
    model = build_language_model(
        VOCAB, 12, 12, num_layers=2, dropout=0.3, tie_weights=True
    )
    rng = np.random.default_rng(1)
    # A text that repeats itself: something for the adapting model to learn.
    phrase = rng.integers(0, VOCAB, 40)
    ids = np.concatenate([phrase] * 8).astype(np.int32)
    return model, ids


def test_learning_rate_zero_gives_the_static_scores_exactly(model_and_text):
    model, ids = model_and_text
    static = score_stream(StreamModel(model), ids, window=10)
    dynamic = DynamicEvaluation(segment_length=10, learning_rate=0.0)(
        model, ids
    )
    np.testing.assert_array_equal(dynamic.log_probs, static.log_probs)
    np.testing.assert_array_equal(dynamic.hidden, static.hidden)


def test_adapting_to_a_repeating_text_lowers_its_perplexity(model_and_text):
    model, ids = model_and_text
    static = score_stream(StreamModel(model), ids)
    dynamic = DynamicEvaluation(segment_length=10, learning_rate=1.0)(
        model, ids
    )
    assert dynamic.perplexity < 0.9 * static.perplexity
    # The first segment is scored before any step: as the static model.
    np.testing.assert_allclose(
        dynamic.log_probs[:10], static.log_probs[:10], rtol=1e-5
    )


def test_the_trained_weights_are_unchanged(model_and_text):
    model, ids = model_and_text
    before = [weight.copy() for weight in model.get_weights()]
    rms = gradient_rms(model, ids, segment_length=10, streams=2, segments=5)
    DynamicEvaluation(10, 1.0)(model, ids)
    DynamicEvaluation(10, 0.01, decay=0.02, method="rms")(
        model, ids, gradient_rms=rms
    )
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("method", ["sgd", "rms"])
def test_a_later_token_never_changes_an_earlier_score(model_and_text, method):
    model, ids = model_and_text
    rms = gradient_rms(model, ids, segment_length=10, streams=2, segments=5)
    dynamic = DynamicEvaluation(10, 0.5, decay=0.01, method=method)
    changed = ids.copy()
    changed[205] = (changed[205] + 1) % VOCAB  # target 204, segment 20
    before = dynamic(model, ids, gradient_rms=rms)
    after = dynamic(model, changed, gradient_rms=rms)
    np.testing.assert_array_equal(before.log_probs[:204], after.log_probs[:204])
    assert not np.array_equal(before.log_probs[204:], after.log_probs[204:])
    # ... with the cache on top of the adapting model, too.
    cache = NeuralCache(window=50, theta=1.0, interpolation=0.2)
    mixed = [
        cache(scores.log_probs, scores.hidden, scores.targets)
        for scores in (before, after)
    ]
    np.testing.assert_array_equal(mixed[0][:204], mixed[1][:204])


def test_dropout_is_off_while_adapting(model_and_text):
    model, ids = model_and_text
    dynamic = DynamicEvaluation(10, 0.5)
    first, second = dynamic(model, ids), dynamic(model, ids)
    np.testing.assert_array_equal(first.log_probs, second.log_probs)


def test_rms_rule_pulls_back_toward_the_trained_weights(model_and_text):
    model, ids = model_and_text
    rms = gradient_rms(model, ids, segment_length=10, streams=2, segments=5)
    assert len(rms) == len(StreamModel(model).trainable_variables)
    assert all((value >= 0).all() and value.any() for value in rms)
    # A rate at which the adaptation is stable: at 0.01 and above this
    # untrained model's steps are large enough to be chaotic either way.
    free = DynamicEvaluation(10, 0.001, decay=0.0, method="rms")
    pulled = DynamicEvaluation(10, 0.001, decay=0.5, method="rms")
    static = score_stream(StreamModel(model), ids)
    drift = np.abs(free(model, ids, rms).log_probs - static.log_probs).mean()
    held = np.abs(pulled(model, ids, rms).log_probs - static.log_probs).mean()
    assert held < drift


def test_rms_rule_needs_the_gradient_statistics(model_and_text):
    model, ids = model_and_text
    with pytest.raises(ValueError, match="gradient_rms"):
        DynamicEvaluation(method="rms")(model, ids)


def test_config_round_trip():
    dynamic = DynamicEvaluation(5, 0.002, decay=0.02, method="rms")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(dynamic)
    )
    assert restored.get_config() == dynamic.get_config()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(segment_length=0), "segment_length"),
        (dict(learning_rate=-1.0), "learning_rate=-1.0"),
        (dict(decay=float("nan")), "decay=nan"),
        (dict(method="adam"), "method='adam'"),
    ],
)
def test_bad_settings_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        DynamicEvaluation(**arguments)
