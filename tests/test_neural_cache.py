import math

import keras
import numpy as np
import pytest

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.evaluation import NeuralCache, StreamModel, score_stream
from keras_lstm_scratch.evaluation.neural_cache import stream_cache_probs

VOCAB = 30


@pytest.fixture(scope="module")
def model_scores():
    keras.utils.set_random_seed(3)
    model = build_language_model(VOCAB, 12, 12, num_layers=2, tie_weights=True)
    ids = np.random.default_rng(0).integers(0, VOCAB, 600).astype(np.int32)
    return model, ids, score_stream(StreamModel(model), ids)


def test_hand_computed_cache_probabilities():
    # Pairs (h_i, x_{i+1}): (e1, 7), (e2, 8); the third query is e1.
    hidden = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
    targets = np.array([7, 8, 7])
    model_log_probs = np.log([0.1, 0.1, 0.1])
    cache = NeuralCache(window=2, theta=1.0, interpolation=0.25)

    mixed = cache(model_log_probs, hidden, targets)

    e = math.e
    expected = [
        math.log(0.1),  # nothing cached before the first token
        math.log(0.75 * 0.1),  # the only cached word, 7, is not 8
        math.log(0.75 * 0.1 + 0.25 * e / (e + 1)),  # exp(1) for 7, exp(0) 8
    ]
    np.testing.assert_allclose(mixed, expected, rtol=1e-6)
    # A window of one pair forgets (e1, 7) by the third query.
    narrow = NeuralCache(window=1, theta=1.0, interpolation=0.25)
    assert narrow(model_log_probs, hidden, targets)[2] == pytest.approx(
        math.log(0.75 * 0.1)
    )
    # theta 0 weighs the two cached pairs alike.
    flat = NeuralCache(window=2, theta=0.0, interpolation=0.25)
    assert flat(model_log_probs, hidden, targets)[2] == pytest.approx(
        math.log(0.75 * 0.1 + 0.25 * 0.5)
    )


def test_zero_interpolation_gives_the_static_scores_exactly(model_scores):
    _, ids, scores = model_scores
    cache = NeuralCache(window=100, theta=1.0, interpolation=0.0)
    mixed = cache(scores.log_probs, scores.hidden, scores.targets)
    np.testing.assert_array_equal(mixed, scores.log_probs)


def test_cache_matches_a_direct_loop_on_a_model_stream(model_scores):
    _, ids, scores = model_scores
    window, theta, interpolation = 50, 0.7, 0.2
    cache = NeuralCache(window, theta, interpolation)
    mixed = cache(scores.log_probs, scores.hidden, scores.targets)
    hidden, targets = scores.hidden.astype(np.float64), scores.targets
    for t in (1, 49, 50, 51, 300, len(targets) - 1):
        keys = range(max(0, t - window), t)
        logits = np.array([theta * hidden[t] @ hidden[i] for i in keys])
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        p_cache = sum(
            w
            for w, i in zip(weights, keys, strict=True)
            if targets[i] == targets[t]
        )
        expected = math.log(
            (1 - interpolation) * math.exp(scores.log_probs[t])
            + interpolation * p_cache
        )
        assert mixed[t] == pytest.approx(expected, rel=1e-5)


def test_a_later_token_never_changes_an_earlier_score(model_scores):
    model, ids, scores = model_scores
    changed = ids.copy()
    changed[400] = (changed[400] + 1) % VOCAB
    other = score_stream(StreamModel(model), changed)
    cache = NeuralCache(window=200, theta=1.0, interpolation=0.3)
    before = cache(scores.log_probs, scores.hidden, scores.targets)
    after = cache(other.log_probs, other.hidden, other.targets)
    # Target 399 is ids[400]: every score before it is unchanged.
    np.testing.assert_array_equal(before[:399], after[:399])
    assert not np.array_equal(before[399:], after[399:])


def test_streams_are_read_independently(model_scores):
    _, ids, scores = model_scores
    half = len(scores.targets) // 2
    hidden = np.stack([scores.hidden[:half], scores.hidden[half : 2 * half]])
    targets = np.stack([scores.targets[:half], scores.targets[half : 2 * half]])
    log_probs = np.stack(
        [scores.log_probs[:half], scores.log_probs[half : 2 * half]]
    )
    cache = NeuralCache(window=100, theta=1.0, interpolation=0.2)
    together = cache(log_probs, hidden, targets)
    for row in range(2):
        alone = cache(log_probs[row], hidden[row], targets[row])
        np.testing.assert_allclose(together[row], alone, rtol=1e-6)


def test_several_thetas_in_one_pass_equal_one_at_a_time(model_scores):
    _, _, scores = model_scores
    probs, has_pairs = stream_cache_probs(
        scores.hidden, scores.targets, 80, [0.3, 2.0]
    )
    for index, theta in enumerate((0.3, 2.0)):
        single, _ = stream_cache_probs(
            scores.hidden, scores.targets, 80, [theta]
        )
        np.testing.assert_allclose(probs[index], single[0], rtol=1e-6)
    assert not has_pairs[0, 0] and has_pairs[0, 1:].all()


def test_config_round_trip():
    cache = NeuralCache(window=300, theta=0.4, interpolation=0.15)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(cache)
    )
    assert restored.get_config() == cache.get_config()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(window=0), "window"),
        (dict(theta=-1.0), "theta=-1.0"),
        (dict(interpolation=1.0), "interpolation=1.0"),
    ],
)
def test_bad_settings_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        NeuralCache(**arguments)
