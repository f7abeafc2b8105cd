"""The neural cache in the serving functions: per request, over its own text."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.evaluation import NeuralCache, StreamModel, score_stream
from keras_lstm_scratch.serving import LanguageModelServer, request_limits

WORDS = ["<unk>", "<eos>"] + [f"w{index}" for index in range(28)]
ON, OFF = tf.constant(True), tf.constant(False)
CACHE = NeuralCache(window=20, theta=1.0, interpolation=0.3)


def text(rng, length):
    return " ".join(rng.choice(WORDS[2:12], length))  # repeats: cache hits


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(11)
    return build_language_model(len(WORDS), 16, 16, num_layers=2)


@pytest.fixture(scope="module")
def server(model):
    return LanguageModelServer(model, WORDS, cache=CACHE)


@pytest.fixture(scope="module")
def texts():
    rng = np.random.default_rng(2)
    return [
        text(rng, 60) + "\n" + text(rng, 30),
        text(rng, 7),
        "",
        text(rng, 45),
    ]


def library_log_likelihood(server, model, cache, one_text):
    """The evaluation library's cached log-likelihood of one text."""
    ids = server.tokenize(tf.constant([one_text]), end_with_eos=True)
    scores = score_stream(StreamModel(model), ids[0].numpy())
    return cache(scores.log_probs, scores.hidden, scores.targets).sum()


def test_cached_score_equals_the_evaluation_library(server, model, texts):
    score = server.function("score")
    served = score(tf.constant(texts), ON)["log_likelihood"].numpy()
    expected = [library_log_likelihood(server, model, CACHE, t) for t in texts]
    np.testing.assert_allclose(served, expected, rtol=1e-5)
    static = score(tf.constant(texts), OFF)["log_likelihood"].numpy()
    assert (served[:2] != static[:2]).all()  # the cache changed the scores


def test_cached_score_in_many_chunks_equals_one_chunk(
    model, texts, monkeypatch
):
    whole = LanguageModelServer(model, WORDS, cache=CACHE).function("score")
    expected = whole(tf.constant(texts), ON)["log_likelihood"].numpy()
    monkeypatch.setattr(request_limits, "CHUNK_LOG_PROBS", 1)
    chunked = LanguageModelServer(model, WORDS, cache=CACHE)
    assert int(chunked.cache.chunk_length(len(texts))) == 1
    served = chunked.function("score")(tf.constant(texts), ON)
    np.testing.assert_allclose(served["log_likelihood"], expected, rtol=1e-5)


def test_zero_interpolation_scores_as_without_the_cache(model, texts):
    flat = NeuralCache(window=20, theta=1.0, interpolation=0.0)
    score = LanguageModelServer(model, WORDS, cache=flat).function("score")
    cached = score(tf.constant(texts), ON)["log_likelihood"].numpy()
    static = score(tf.constant(texts), OFF)["log_likelihood"].numpy()
    np.testing.assert_allclose(cached, static, rtol=1e-6)


def test_requests_never_see_each_other(server, texts):
    score = server.function("score")
    together = score(tf.constant(texts), ON)["log_likelihood"].numpy()
    alone = [
        score(tf.constant([one]), ON)["log_likelihood"].numpy()[0]
        for one in texts
    ]
    np.testing.assert_allclose(together, alone, rtol=1e-5)
    reversed_order = score(tf.constant(texts[::-1]), ON)["log_likelihood"]
    np.testing.assert_allclose(
        reversed_order.numpy()[::-1], together, rtol=1e-5
    )
    again = score(tf.constant(texts), ON)["log_likelihood"].numpy()
    np.testing.assert_array_equal(again, together)  # nothing carried over


def test_next_words_mix_in_the_prompts_own_words(server, model):
    next_words = server.function("next_words")
    prompt = tf.constant(["w3 w4 w5 w3 w4 w5 w3 w4"])
    cached = next_words(prompt, len(WORDS), ON)
    static = next_words(prompt, len(WORDS), OFF)
    assert float(tf.reduce_sum(cached["probabilities"])) == pytest.approx(
        1.0, abs=1e-4
    )

    def probability(outputs, word):
        words = outputs["words"].numpy()[0].astype(str).tolist()
        return float(outputs["probabilities"][0, words.index(word)])

    # The prompt's pairs all lead w4 -> w5: the cache raises w5.
    assert probability(cached, "w5") > probability(static, "w5")
    alone = next_words(tf.constant(["w3 w4 w5 w3 w4 w5 w3 w4"]), 5, ON)
    both = next_words(tf.constant(["w9 w9", "w3 w4 w5 w3 w4 w5 w3 w4"]), 5, ON)
    np.testing.assert_allclose(
        both["probabilities"][1], alone["probabilities"][0], rtol=1e-5
    )


def test_generate_with_the_cache_is_per_request_and_seeded(server):
    generate = server.function("generate")
    prompts = ["w2 w3 w4 w2 w3", "w7"]

    def run(prompts, seed):
        return generate(
            tf.constant(prompts), 15, 1.0, 0, tf.constant(seed, tf.int64), ON
        )["token_ids"].numpy()

    first = run(prompts, 4)
    np.testing.assert_array_equal(run(prompts, 4), first)
    greedy = generate(tf.constant(prompts), 15, 0.0, 0, 0, ON)["token_ids"]
    alone = generate(tf.constant(prompts[:1]), 15, 0.0, 0, 0, ON)["token_ids"]
    np.testing.assert_array_equal(greedy[:1], alone)
    static = generate(tf.constant(prompts), 15, 0.0, 0, 0, OFF)["token_ids"]
    assert not np.array_equal(greedy, static)


def test_an_export_without_cache_settings_refuses_use_cache(model):
    server = LanguageModelServer(model, WORDS)
    with pytest.raises(tf.errors.InvalidArgumentError, match="no neural cache"):
        server.function("score")(tf.constant(["w2"]), ON)
    assert server.function("score")(tf.constant(["w2"]), OFF)["token_count"]


def test_the_cache_memory_per_request_is_bounded(model, monkeypatch):
    monkeypatch.setattr(request_limits, "MAX_LOG_PROBS", 2 * 20 * 16)
    server = LanguageModelServer(model, WORDS, cache=CACHE)
    score = server.function("score")
    assert score(tf.constant(["w2", "w3"]), ON)["token_count"].shape == (2,)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="at most 2 texts per request"
    ):
        score(tf.constant(["w2", "w3", "w4"]), ON)
    # Without the cache the same request is answered.
    assert score(tf.constant(["w2", "w3", "w4"]), OFF)["token_count"].shape == (
        3,
    )
