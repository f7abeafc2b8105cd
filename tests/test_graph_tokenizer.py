import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch.data import Corpus, Tokenization, Vocabulary
from keras_lstm_scratch.data.prepared_corpus import load_text_corpus
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
    # The count of a run's results, over the ids: a space outside the
    # vocabulary is an <unk> there, as in the export.
    corpus = Corpus(None, None, None, vocabulary, tokenization=CHARS)
    expected = [
        corpus.count_words(vocabulary.encode(CHARS.text_tokens(t)))
        for t in TEXTS
    ]
    np.testing.assert_array_equal(counts, expected)
    # ... and the rule on the text itself where every space is known.
    for text, count in zip(TEXTS, counts, strict=True):
        if all(t in vocabulary.word_to_id for t in CHARS.text_tokens(text)):
            assert count == CHARS.count_words(CHARS.text_tokens(text))


def test_a_prompt_keeps_its_last_space(vocabulary):
    tokenizer = GraphTokenizer(vocabulary.words, CHARS)
    ids = tokenizer.tokenize(tf.constant(["영화 "]), end_with_eos=False)
    assert vocabulary.decode(ids.to_list()[0]) == ["<eos>", "영", "화", " "]


def test_characters_are_joined_without_separators(vocabulary):
    tokenizer = GraphTokenizer(vocabulary.words, CHARS)
    ids = vocabulary.encode(list("한국어") + ["<eos>"] + list("ok"))
    text = tokenizer.detokenize(tf.constant([ids]))[0].numpy().decode()
    assert text == "한국어\nok"


WORDS = Tokenization("words")
# Unicode spaces and line separators: one word separator each, never a
# line's end (only \n ends a line, in training and in the export).
WORD_TEXTS = [
    "a\u3000b c\xa0d\u2028e\x85f",
    "  the\tmarket \r\n\n fell\u2009sharply\u202f \x0c",
    "日本\u3000語です\u3000です\n\u00a0\n한국어\u2029문장",
    "x\x1cy\x1dz\x1ew\x1fv\u1680u\u205ft",
    "\u200bzero\u200bwidth joins",  # U+200B is not a space anywhere
]


def test_training_and_serving_give_the_same_word_ids():
    tokens = [t for text in WORD_TEXTS for t in WORDS.text_tokens(text)]
    vocabulary = Vocabulary.from_tokens(tokens[:-6])
    tokenizer = GraphTokenizer(vocabulary.words, WORDS)
    ids = tokenizer.tokenize(tf.constant(WORD_TEXTS), end_with_eos=True)
    for text, row in zip(WORD_TEXTS, ids.to_list(), strict=True):
        expected = vocabulary.encode(["<eos>", *WORDS.text_tokens(text)])
        assert row == expected.tolist(), text
    assert WORDS.text_tokens(WORD_TEXTS[0]) == [*"abcdef", "<eos>"]


def test_a_file_is_read_into_the_same_words(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text(
            "\n".join(WORD_TEXTS) + "\n", encoding="utf-8"
        )
    corpus = load_text_corpus(str(tmp_path), tokenization=WORDS)
    expected = [t for text in WORD_TEXTS for t in WORDS.text_tokens(text)]
    assert corpus.vocabulary.decode(corpus.test) == expected
