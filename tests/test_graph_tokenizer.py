import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch.data import Tokenization, Vocabulary
from keras_lstm_scratch.serving.graph_tokenizer import GraphTokenizer

CHARS = Tokenization("chars")
TEXTS = [
    "한국어 문장 입니다\n영화가 정말 좋아요",
    "日本語の文です。\r\n  字下げ \t",
    "café naïve e\u0301 résumé",
    "emoji 😀 👍🏽 👩‍👩‍👧 done",
    "\n\n  \nline after blanks\n\nand one more  ",
    "日本\u3000語\u00a0",
]


@pytest.fixture(scope="module")
def vocabulary():
    tokens = [t for text in TEXTS for t in CHARS.text_tokens(text)]
    return Vocabulary.from_tokens(tokens[:-12], by_frequency=True)


def test_training_and_serving_give_the_same_character_ids(vocabulary):
    tokenizer = GraphTokenizer(vocabulary.words, CHARS)
    ids = tokenizer.tokenize(tf.constant(TEXTS), end_with_eos=True)
    for text, row in zip(TEXTS, ids.to_list(), strict=True):
        expected = vocabulary.encode(["<eos>", *CHARS.text_tokens(text)])
        assert row == expected.tolist(), text


def test_served_word_count_matches_training(vocabulary):
    tokenizer = GraphTokenizer(vocabulary.words, CHARS)
    ids = tokenizer.tokenize(tf.constant(TEXTS), end_with_eos=True)
    targets = ids[:, 1:]
    mask = tf.sequence_mask(targets.row_lengths())
    counts = tokenizer.count_words(targets.to_tensor(), mask).numpy()
    expected = [CHARS.count_words(CHARS.text_tokens(t)) for t in TEXTS]
    np.testing.assert_array_equal(counts, expected)


def test_a_prompt_keeps_its_last_space(vocabulary):
    tokenizer = GraphTokenizer(vocabulary.words, CHARS)
    ids = tokenizer.tokenize(tf.constant(["영화 "]), end_with_eos=False)
    assert vocabulary.decode(ids.to_list()[0]) == ["<eos>", "영", "화", " "]


def test_characters_are_joined_without_separators(vocabulary):
    tokenizer = GraphTokenizer(vocabulary.words, CHARS)
    ids = vocabulary.encode(list("한국어") + ["<eos>"] + list("ok"))
    text = tokenizer.detokenize(tf.constant([ids]))[0].numpy().decode()
    assert text == "한국어\nok"
