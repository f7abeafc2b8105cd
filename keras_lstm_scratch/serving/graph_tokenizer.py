"""A `Tokenization`'s rules as TensorFlow ops, for the SavedModel.

`GraphTokenizer` turns request strings into ids and ids back into text
with core TensorFlow ops only (`tf.strings`, a lookup table), so TF
Serving runs it without this package or extra op libraries. It follows
`keras_lstm_scratch/data/tokenization.py` rule for rule, and the tests
check that both give the same ids for the same text:

- words: the text's words, separated by any character of `WORD_SPACE`
  (what Python's `str.split()` splits at); each line break (`\\n`) is an
  `<eos>`;
- characters: the text's Unicode code points (UTF-8; invalid bytes become
  U+FFFD, a `<unk>`); each line loses the ASCII whitespace before its
  line break, a blank line adds nothing, and a line break is an `<eos>`.

Unknown tokens become `<unk>`. A leading `<eos>` is the context of the
first token, as in the training stream, where every line follows one.
"""

import tensorflow as tf

from keras_lstm_scratch.data.tokenization import (
    WORD_SEPARATORS,
    WORD_SPACE,
    WORD_TOKENS,
)
from keras_lstm_scratch.data.vocabulary import END_OF_SENTENCE, UNKNOWN

# data/tokenization.py's LINE_END_SPACE as RE2 patterns: before a line
# break, and at the end of the text (line breaks too).
SPACE_BEFORE_LINE_BREAK = r"[ \t\r\f\v]+\n"
SPACE_AT_END = r"[ \t\r\f\v\n]+$"
# Any run of WORD_SPACE, as an RE2 character class.
WORD_SPACE_RUN = (
    "[" + "".join(f"\\x{{{ord(c):04x}}}" for c in WORD_SPACE) + "]+"
)


class GraphTokenizer:
    """In-graph tokenising and detokenising of one vocabulary.

    Args:
        words: The vocabulary, a token per id; must hold `<unk>`, `<eos>`.
        tokenization: The `Tokenization` the model was trained with.

    Example:

    >>> tokenizer = GraphTokenizer(vocabulary.words, Tokenization("chars"))
    >>> tokenizer.tokenize(tf.constant(["한국어"]), end_with_eos=True)
    """

    def __init__(self, words, tokenization=WORD_TOKENS):
        words = list(words)
        for special in (UNKNOWN, END_OF_SENTENCE):
            if special not in words:
                raise ValueError(f"The vocabulary lacks {special!r}.")
        self.tokenization = tokenization
        self.words = tf.constant(words)
        self.unknown_id = words.index(UNKNOWN)
        self.end_of_sentence_id = words.index(END_OF_SENTENCE)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words), tf.range(len(words), dtype=tf.int32)
            ),
            default_value=self.unknown_id,
        )
        # Ends a word of a character stream: a space or an <eos>.
        self.ends_word = tf.constant(
            [w in WORD_SEPARATORS or w == END_OF_SENTENCE for w in words]
        )

    def tokenize(self, texts, end_with_eos):
        """Strings `(batch,)` -> ragged ids `(batch, tokens)`.

        The ids start with an `<eos>` (the context of the first token).
        The last line ends with `<eos>` only when `end_with_eos`, so that
        a prompt can continue its last line, for characters even after a
        space.
        """
        if self.tokenization.is_chars:
            tokens = self.character_tokens(texts, end_with_eos)
        else:
            tokens = self.word_tokens(texts)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        batch = tf.shape(texts, out_type=tf.int64)[0]
        eos = tf.RaggedTensor.from_tensor(
            tf.fill([batch, 1], self.end_of_sentence_id)
        )
        return tf.concat([eos, ids, eos] if end_with_eos else [eos, ids], 1)

    def word_tokens(self, texts):
        text = tf.strings.regex_replace(texts, WORD_SPACE_RUN, " ")
        text = tf.strings.strip(text)  # spaces and line breaks at the ends
        text = tf.strings.regex_replace(text, r" *\n[ \n]*", " <eos> ")
        return tf.strings.split(text)  # ragged (batch, words)

    def character_tokens(self, texts, end_with_eos):
        text = tf.strings.regex_replace(texts, SPACE_BEFORE_LINE_BREAK, "\n")
        text = tf.strings.regex_replace(text, r"\n+", "\n")  # blank lines
        text = tf.strings.regex_replace(text, r"^\n", "")
        if end_with_eos:  # the last line's end, as any line's
            text = tf.strings.regex_replace(text, SPACE_AT_END, "")
        chars = tf.strings.unicode_split(text, "UTF-8")  # ragged
        return tf.ragged.map_flat_values(
            lambda c: tf.where(c == "\n", END_OF_SENTENCE, c), chars
        )

    def count_words(self, targets, mask):
        """Whitespace words (each `<eos>` one) of `targets` `(batch, time)`.

        For words that is the number of tokens; for characters a word is
        counted at its last character, as `Tokenization.count_words` does.
        """
        real = tf.cast(mask, tf.int32)
        if not self.tokenization.is_chars:
            return tf.reduce_sum(real, axis=1)
        ends = tf.gather(self.ends_word, targets)
        following = tf.concat(  # the padding and the end count as an end
            [ends[:, 1:] | ~mask[:, 1:], tf.ones_like(ends[:, :1])], axis=1
        )
        is_eos = tf.equal(targets, self.end_of_sentence_id)
        counted = is_eos | (~ends & following)
        return tf.reduce_sum(tf.cast(counted, tf.int32) * real, axis=1)

    def detokenize(self, token_ids):
        """Ids `(batch, time)`, dense or ragged -> text `(batch,)`; `<eos>`
        as a line break.

        Words are joined with spaces, characters with nothing between.
        """
        tokens = tf.ragged.map_flat_values(self.token_texts, token_ids)
        if self.tokenization.is_chars:
            return tf.strings.reduce_join(tokens, axis=1, separator="")
        text = tf.strings.reduce_join(tokens, axis=1, separator=" ")
        return tf.strings.regex_replace(text, r" ?<eos> ?", "\n")

    def token_texts(self, token_ids):
        """Each id's text: its token, `<eos>` a line break for characters
        (words turn `<eos>` into one when joined)."""
        tokens = tf.gather(self.words, token_ids)
        if not self.tokenization.is_chars:
            return tokens
        is_eos = tf.equal(token_ids, self.end_of_sentence_id)
        return tf.where(is_eos, "\n", tokens)
