"""A language-modelling corpus: three id streams and their vocabulary."""

import dataclasses
import os

import numpy as np

from keras_lstm_scratch.data.text_files import read_tokens
from keras_lstm_scratch.data.tokenization import WORD_TOKENS, Tokenization
from keras_lstm_scratch.data.vocabulary import Vocabulary
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError

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


def load_tfds_corpus(
    name,
    text_key="text",
    max_vocab_size=10000,
    data_dir=None,
    split_names=None,
    download=True,
    tokenization=WORD_TOKENS,
):
    """Loads any TensorFlow Datasets text dataset as a corpus.

    Every example's `text_key` field is split into lines and tokens
    (`tokenization`); each line ends with `<eos>`, as for text files.
    `ptb_mikolov`, this package's Penn Treebank builder (`tfds_ptb.py`),
    is registered first.

    Args:
        name: TFDS dataset name, e.g. `"tiny_shakespeare"` or `"ptb_mikolov"`.
        text_key: Name of the string feature holding the text.
        max_vocab_size: Vocabulary cap, built from the training split.
        data_dir: TFDS data directory.
        split_names: Optional `{split: tfds_split}`; default
            `train`, `validation`, `test`.
        download: Passed to `tfds.load`.
        tokenization: A `Tokenization`, words by default.

    Returns:
        A `Corpus`.

    Raises:
        MissingInputError: for a dataset name TFDS does not know.
        InvalidInputError: for a missing text feature or an empty split.
    """
    import tensorflow_datasets as tfds

    from keras_lstm_scratch.data import tfds_ptb  # noqa: F401 (registers it)

    split_names = split_names or {
        "train": "train",
        "valid": "validation",
        "test": "test",
    }
    tokens, sources = {}, {}
    for split, tfds_split in split_names.items():
        try:
            dataset = tfds.load(
                name, split=tfds_split, data_dir=data_dir, download=download
            )
        except tfds.core.DatasetNotFoundError:
            raise MissingInputError(
                f"TFDS has no dataset {name!r}; tfds.list_builders() names "
                "those it has."
            ) from None
        sources[split] = f"TFDS {name} split {tfds_split!r}"
        words = []
        for example in tfds.as_numpy(dataset):
            if text_key not in example:
                raise InvalidInputError(
                    f"TFDS dataset {name!r} has no feature {text_key!r}; "
                    f"its features are {sorted(example)}. Pass text_key=..."
                )
            text = example[text_key].decode("utf-8")
            words.extend(tokenization.text_tokens(text))
        if not words:
            raise InvalidInputError(
                f"TFDS dataset {name!r} split {tfds_split!r} holds no "
                f"{tokenization.unit}."
            )
        tokens[split] = words
    return corpus_from_token_lists(
        tokens,
        max_vocab_size=max_vocab_size,
        sources=sources,
        tokenization=tokenization,
    )
