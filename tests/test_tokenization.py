import pytest

from keras_lstm_scratch.data import Tokenization, Vocabulary
from keras_lstm_scratch.data.tokenization import WORD_TOKENS

CHARS = Tokenization("chars")


def test_words_are_the_whitespace_reader():
    assert WORD_TOKENS.line_tokens("  the  market\tfell \n") == [
        "the",
        "market",
        "fell",
        "<eos>",
    ]
    assert WORD_TOKENS.line_tokens(" \n") == []


def test_every_character_is_a_token_and_a_line_ends_with_eos():
    assert CHARS.line_tokens("한국어 ok\n") == [
        "한",
        "국",
        "어",
        " ",
        "o",
        "k",
        "<eos>",
    ]


def test_characters_keep_indentation_and_drop_the_line_end_space():
    assert CHARS.line_tokens("\tif x: \r\n") == [
        "\t",
        "i",
        "f",
        " ",
        "x",
        ":",
        "<eos>",
    ]


def test_a_blank_line_adds_nothing():
    assert CHARS.line_tokens(" \t\r\n") == []
    assert CHARS.text_tokens("ab\n\n \nc") == ["a", "b", "<eos>", "c", "<eos>"]


def test_code_points_not_graphemes():
    # A decomposed é is two code points; an emoji with a skin tone is two.
    assert CHARS.line_tokens("e\u0301👍🏽") == [
        "e",
        "\u0301",
        "👍",
        "🏽",
        "<eos>",
    ]


def test_unicode_spaces_are_tokens_not_line_end_space():
    # Only ASCII whitespace is cut from a line's end (as in-graph).
    assert CHARS.line_tokens("日本\u3000\u00a0 \n") == [
        "日",
        "本",
        "\u3000",
        "\u00a0",
        "<eos>",
    ]


@pytest.mark.parametrize(
    "text, words",
    [
        ("the market fell", 4),
        ("a  b\nc", 5),
        ("한국어 문장 입니다", 4),
        ("  indented", 2),
        ("", 0),
    ],
)
def test_words_counted_in_a_character_stream_match_the_word_reader(text, words):
    assert CHARS.count_words(CHARS.text_tokens(text)) == words
    assert WORD_TOKENS.count_words(WORD_TOKENS.text_tokens(text)) == words


def test_a_character_vocabulary_is_ordered_by_frequency():
    tokens = CHARS.text_tokens("abbccc\nccc")
    vocabulary = Vocabulary.from_tokens(tokens, by_frequency=True)
    assert vocabulary.words == ["<unk>", "<eos>", "c", "b", "a"]


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match=r"'bytes'.*'words', 'chars'"):
        Tokenization("bytes")


def test_save_and_load(tmp_path):
    path = tmp_path / "tokenization.json"
    CHARS.save(path)
    assert Tokenization.load(path) == CHARS
