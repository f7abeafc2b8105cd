"""A language-modelling corpus: three id streams and their vocabulary."""

import dataclasses
import os

import numpy as np

from keras_lstm_scratch.data.text_files import read_tokens
from keras_lstm_scratch.data.tokenization import WORD_TOKENS, Tokenization
from keras_lstm_scratch.data.vocabulary import Vocabulary
from keras_lstm_scratch.errors import MissingInputError

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Token-id streams for training, validation and test.

    Args:
        train: int32 ids `(num_train_tokens,)`.
        valid: int32 ids `(num_valid_tokens,)`.
        test: int32 ids `(num_test_tokens,)`.
        vocabulary: The `Vocabulary` the ids index.
        sources: Optional `{split: where it came from}` (a file path or a
            TFDS split), for messages about a split's text.
        tokenization: The `Tokenization` the text was read with.
    """

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocabulary: Vocabulary
    sources: dict = dataclasses.field(default_factory=dict)
    tokenization: Tokenization = WORD_TOKENS

    def split(self, name):
        """Returns the ids of split `name` (`train`, `valid` or `test`)."""
        if name not in SPLITS:
            raise ValueError(
                f"Unknown split {name!r}; expected one of {SPLITS}."
            )
        return getattr(self, name)

    def count_words(self, ids):
        """Whitespace words (each `<eos>` one) of the text of `ids`."""
        return self.tokenization.count_words(self.vocabulary.decode(ids))


def corpus_from_token_lists(
    token_lists,
    max_vocab_size=None,
    vocabulary=None,
    sources=None,
    tokenization=WORD_TOKENS,
):
    """Encodes `{split: tokens}` with a vocabulary built from `train`.

    `sources` (`{split: file or TFDS split}`) is kept for messages. A
    character vocabulary is ordered by frequency.
    """
    if vocabulary is None:
        vocabulary = Vocabulary.from_tokens(
            token_lists["train"],
            max_size=max_vocab_size,
            by_frequency=tokenization.is_chars,
        )
    ids = {name: vocabulary.encode(token_lists[name]) for name in SPLITS}
    return Corpus(
        vocabulary=vocabulary,
        sources=dict(sources or {}),
        tokenization=tokenization,
        **ids,
    )


def split_paths(directory, pattern="{split}.txt"):
    """Returns `{split: path}` for the three files in `directory`.

    Raises:
        MissingInputError: (a `FileNotFoundError`) naming every missing
            split file.
    """
    paths = {
        name: os.path.join(directory, pattern.format(split=name))
        for name in SPLITS
    }
    missing = [path for path in paths.values() if not os.path.isfile(path)]
    if missing:
        raise MissingInputError(
            f"Missing corpus split file(s) in {directory}: {missing}. "
            f"Expected {sorted(os.path.basename(p) for p in paths.values())}."
        )
    return paths


def load_text_corpus(
    directory,
    max_vocab_size=10000,
    pattern="{split}.txt",
    tokenization=WORD_TOKENS,
):
    """Loads the user's own `train.txt`, `valid.txt`, `test.txt`.

    Each line is a sentence, read as whitespace-separated words or as
    characters (`tokenization`); `<eos>` ends each line. The vocabulary is
    built from the training split only, capped at `max_vocab_size` most
    frequent tokens (specials included); rarer and unseen ones become
    `<unk>`.

    Args:
        directory: Folder holding the three files.
        max_vocab_size: Vocabulary cap, or `None` for every training token.
        pattern: File name pattern with a `{split}` field.
        tokenization: A `Tokenization`, words by default.

    Returns:
        A `Corpus`.
    """
    paths = split_paths(directory, pattern)
    tokens = {
        name: read_tokens(path, tokenization) for name, path in paths.items()
    }
    return corpus_from_token_lists(
        tokens,
        max_vocab_size=max_vocab_size,
        sources=paths,
        tokenization=tokenization,
    )
