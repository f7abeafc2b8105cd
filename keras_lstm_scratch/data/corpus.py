"""A language-modelling corpus: three id streams and their vocabulary."""

import dataclasses

import numpy as np

from keras_lstm_scratch.data.text_sources import SPLITS
from keras_lstm_scratch.data.tokenization import (
    WORD_SEPARATORS,
    WORD_TOKENS,
    Tokenization,
)
from keras_lstm_scratch.data.vocabulary import Vocabulary

COUNT_BLOCK = 1 << 22  # ids whose words are counted at a time


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Token-id streams for training, validation and test.

    Args:
        train: ids `(num_train_tokens,)`: an unsigned integer array, a
            read-only memory map for a prepared corpus
            (`prepared_corpus.py`).
        valid: ids `(num_valid_tokens,)`.
        test: ids `(num_test_tokens,)`.
        vocabulary: The `Vocabulary` the ids index.
        sources: Optional `{split: where it came from}` (a file path or a
            TFDS split), for messages about a split's text.
        tokenization: The `Tokenization` the text was read with.
        key: The prepared text's content key (`""` for a corpus made in
            memory): a run records it, and a resume on other text is
            refused.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocabulary: Vocabulary
    sources: dict = dataclasses.field(default_factory=dict)
    tokenization: Tokenization = WORD_TOKENS
    key: str = ""

    def split(self, name):
        """Returns the ids of split `name` (`train`, `valid` or `test`)."""
        if name not in SPLITS:
            raise ValueError(
                f"Unknown split {name!r}; expected one of {SPLITS}."
            )
        return getattr(self, name)

    def count_words(self, ids):
        """Whitespace words (each `<eos>` one) of the text of `ids`.

        `Tokenization.count_words`'s rule, counted over the ids in blocks:
        for characters a word ends at a character followed by a separator,
        `<eos>` or the end.
        """
        if not self.tokenization.is_chars:
            return len(ids)
        words = self.vocabulary.words
        is_end = np.array([w in WORD_SEPARATORS for w in words])
        is_end[self.vocabulary.end_of_sentence_id] = True
        is_eos = np.zeros(len(words), dtype=bool)
        is_eos[self.vocabulary.end_of_sentence_id] = True
        count = 0
        for start in range(0, len(ids), COUNT_BLOCK):
            block = np.asarray(ids[start : start + COUNT_BLOCK + 1])
            ends = is_end[block]
            following = ends[1:] if start + COUNT_BLOCK < len(ids) else (
                np.append(ends[1:], True)
            )  # fmt: skip
            current = block[: len(following)]
            count += int(is_eos[current].sum())
            count += int((~is_end[current] & following).sum())
        return count
