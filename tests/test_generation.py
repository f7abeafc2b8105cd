"""`complete` and `generate`: stopping, top-p, the repetition penalty,
several samples, rows drawn independently of their place, the bounds."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.data import Tokenization
from keras_lstm_scratch.serving import (
    MAX_GENERATED_ROW_TOKENS,
    LanguageModelServer,
)
from keras_lstm_scratch.serving.sampling import (
    SamplingOptions,
    choose,
    penalize_repetition,
)

WORDS = ["<unk>", "<eos>", "the", "cat", "sat", "a", "dog", "ran", "on", "mat"]
CHARS = ["<unk>", "<eos>", "a", "b", " ", "c", "d", "é", "한"]
EOS = 1


def server_of(words, tokens="words", seed=2):
    keras.utils.set_random_seed(seed)
    model = build_language_model(len(words), 8, 16, num_layers=2)
    model(np.zeros((1, 2), np.int32))
    # Larger weights: distributions far from uniform, as a trained
    # model's, so that samples differ from prompt to prompt.
    for weight in model.trainable_weights:
        weight.assign(weight * 3.0)
    return LanguageModelServer(model, words, Tokenization(tokens))


@pytest.fixture(scope="module")
def word_server():
    return server_of(WORDS)


@pytest.fixture(scope="module")
def char_server():
    return server_of(CHARS, "chars")


def complete(server, prompts, **options):
    function = server.function("complete")
    outputs = function(prompts=tf.constant(prompts), **options)
    return {key: value.numpy() for key, value in outputs.items()}


def detokenize(server, ids):
    text = server.tokenizer.detokenize(tf.constant([ids], tf.int32))
    return text.numpy()[0].decode()


def test_a_prompt_samples_the_same_in_any_row(word_server):
    options = dict(max_tokens=15, seed=tf.constant(11, tf.int64))
    alone = complete(word_server, ["the cat"], **options)
    among = complete(word_server, ["a dog", "the cat", "mat"], **options)
    np.testing.assert_array_equal(among["token_ids"][1], alone["token_ids"][0])
    several = complete(
        word_server, ["mat", "the cat"], num_samples=3, **options
    )
    again = complete(word_server, ["the cat"], num_samples=3, **options)
    np.testing.assert_array_equal(several["token_ids"][3:], again["token_ids"])


def test_several_samples_differ_and_come_back_with_the_seed(word_server):
    options = dict(max_tokens=20, num_samples=4, top_k=5)
    first = complete(
        word_server, ["the"], seed=tf.constant(3, tf.int64), **options
    )
    again = complete(
        word_server, ["the"], seed=tf.constant(3, tf.int64), **options
    )
    other = complete(
        word_server, ["the"], seed=tf.constant(4, tf.int64), **options
    )
    assert len(set(first["text"].tolist())) == 4
    np.testing.assert_array_equal(first["token_ids"], again["token_ids"])
    assert not np.array_equal(first["token_ids"], other["token_ids"])


def test_prompts_of_one_request_draw_on_their_own_numbers(word_server):
    prompts = ["the", "a", "the cat", "a dog", "mat", "on the"]
    options = dict(max_tokens=20, seed=tf.constant(8, tf.int64))
    texts = complete(word_server, prompts, **options)["text"].tolist()
    alone = [complete(word_server, [p], **options)["text"][0] for p in prompts]
    assert texts == alone
    # generate, kept as the first exports drew, is also independent of
    # the row's place.
    generate = word_server.function("generate")
    seed = tf.constant(8, tf.int64)
    together = generate(tf.constant(prompts), 20, 1.0, 0, seed)["text"]
    first = generate(tf.constant(prompts[2:3]), 20, 1.0, 0, seed)["text"]
    assert together.numpy()[2] == first.numpy()[0]


@pytest.mark.parametrize("server_name", ["word_server", "char_server"])
def test_rows_stop_at_eos(server_name, request):
    server = request.getfixturevalue(server_name)
    out = complete(
        server,
        ["a", "b"],
        max_tokens=40,
        num_samples=8,
        stop_at_eos=True,
        seed=tf.constant(5, tf.int64),
    )
    assert (out["lengths"] < 40).any()
    for ids, length, text in zip(
        out["token_ids"], out["lengths"], out["text"], strict=True
    ):
        written = ids[:length].tolist()
        assert EOS not in written[:-1]
        assert (ids[length:] == -1).all()
        stopped = written[-1] == EOS
        assert stopped or length == 40
        if stopped:
            written = written[:-1]
        assert text.decode() == detokenize(server, written)
        assert "\n" not in text.decode()


@pytest.mark.parametrize(
    "server_name,span", [("word_server", 2), ("char_server", 3)]
)
def test_a_stop_text_spanning_tokens_ends_the_text_before_it(
    server_name, span, request
):
    server = request.getfixturevalue(server_name)
    options = dict(max_tokens=30, seed=tf.constant(9, tf.int64))
    free = complete(server, ["a"], **options)["token_ids"][0].tolist()
    start = next(
        i
        for i in range(0, 25)
        if EOS not in free[i : i + span] and 0 not in free[i : i + span]
    )
    stop = detokenize(server, free[start : start + span])
    # The first number of tokens whose text holds the stop text.
    needed = next(
        k for k in range(1, 31) if stop in detokenize(server, free[:k])
    )
    full_text = detokenize(server, free[:needed])
    out = complete(
        server, ["a"], stop_texts=tf.constant([stop, "zzz"]), **options
    )
    assert out["lengths"][0] == needed
    assert out["token_ids"][0][:needed].tolist() == free[:needed]
    assert (out["token_ids"][0][needed:] == -1).all()
    assert out["text"][0].decode() == full_text[: full_text.index(stop)]


def nucleus_reference(logits, temperature, top_k, top_p):
    """NumPy: softmax(logits / T), the top k, then the nucleus of top_p."""
    probs = np.exp(logits / temperature)
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    if top_k > 0:
        probs[order[top_k:]] = 0.0
        probs /= probs.sum()
    before = np.cumsum(probs[order]) - probs[order]
    probs[order[before >= top_p]] = 0.0
    return probs / probs.sum()


@pytest.mark.parametrize(
    "temperature,top_k,top_p", [(1.0, 0, 0.7), (2.0, 3, 0.6), (0.7, 0, 0.95)]
)
def test_top_p_draws_the_frequencies_numpy_gives(temperature, top_k, top_p):
    probs = np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.03, 0.02])
    logits = np.log(probs).astype(np.float32)
    draws = 40_000
    options = SamplingOptions(
        tf.constant(temperature),
        tf.constant(top_k),
        tf.constant(top_p),
        tf.constant(1.0),
        tf.constant(17, tf.int64),
    )
    tokens = choose(
        tf.constant(np.tile(logits, (draws, 1))),
        tf.zeros((draws, len(probs)), tf.bool),
        tf.constant(0),
        tf.range(draws),  # one sample each: independent uniforms
        options,
        tf.fill([draws], "a prompt"),
    ).numpy()
    counts = np.bincount(tokens, minlength=len(probs))
    expected = nucleus_reference(logits, temperature, top_k, top_p)
    # Each frequency within 5 standard errors; tokens cut, never drawn.
    error = np.sqrt(expected * (1 - expected) / draws)
    np.testing.assert_array_less(
        np.abs(counts / draws - expected), 5 * error + 1e-12
    )
    assert (counts[expected == 0] == 0).all()


def test_the_repetition_penalty_follows_the_formula():
    logits = tf.constant([[2.0, -1.0, 0.5, 1.5]])
    seen = tf.constant([[True, True, False, False]])
    penalized = penalize_repetition(logits, seen, 1.5).numpy()[0]
    np.testing.assert_allclose(penalized, [2.0 / 1.5, -1.0 * 1.5, 0.5, 1.5])
    before = tf.nn.softmax(logits).numpy()[0]
    after = tf.nn.softmax(penalized).numpy()
    assert after[0] < before[0] and after[1] < before[1]
    assert after[2] > before[2] and after[3] > before[3]
    # Greedy picks the best token no row has written yet.
    options = SamplingOptions(
        tf.constant(0.0),
        tf.constant(0),
        tf.constant(1.0),
        tf.constant(1.5),
        tf.constant(0, tf.int64),
    )
    token = choose(logits, seen, tf.constant(0), tf.constant([0]), options)
    assert token.numpy()[0] == 3


def test_a_penalty_stops_greedy_from_looping(word_server):
    greedy = dict(max_tokens=30, temperature=0.0)
    plain = complete(word_server, ["the"], **greedy)["token_ids"][0]
    penalized = complete(
        word_server, ["the"], repetition_penalty=5.0, **greedy
    )["token_ids"][0]
    assert len(set(penalized[:9].tolist())) > len(set(plain[:9].tolist()))


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("top_p", 0.0, "top_p"),
        ("top_p", 1.5, "top_p"),
        ("top_p", float("nan"), "top_p"),
        ("repetition_penalty", 0.0, "repetition_penalty"),
        ("repetition_penalty", float("inf"), "repetition_penalty"),
        ("num_samples", 0, "num_samples"),
        ("stop_texts", [""], "stop_texts"),
        ("stop_texts", ["x"] * 17, "stop_texts"),
        ("temperature", float("nan"), "temperature"),
    ],
)
def test_bad_options_are_invalid_arguments(word_server, option, value, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        complete(word_server, ["the"], max_tokens=2, **{option: value})


def test_the_compute_of_a_request_is_bounded(word_server):
    samples = MAX_GENERATED_ROW_TOKENS // 1000 + 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="tokens per"):
        complete(word_server, ["the"], max_tokens=1000, num_samples=samples)
    generate = word_server.function("generate")
    with pytest.raises(tf.errors.InvalidArgumentError, match="tokens per"):
        generate(
            tf.constant(["a"] * samples), 1000, 1.0, 0, tf.constant(0, tf.int64)
        )
