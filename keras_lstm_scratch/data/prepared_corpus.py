"""Text prepared once into token ids on disk, memory-mapped from then on.

As nanoGPT's `prepare.py` writes `train.bin`, `prepare_corpus` reads a
`TextSource` in one streaming pass (`text_chunks.py`): every token gets a
provisional id and the training text's tokens are counted
(`token_counter.py`); the vocabulary is built from those counts by
`Vocabulary.from_counts`, the rules and ids of `Vocabulary.from_tokens`;
a second pass over the ids alone maps them to final ids in the narrowest
unsigned type that holds the vocabulary. Memory is a chunk of text and
the table of distinct tokens, never the text.

The result is a folder in the cache, named by a key of the text's content
and the reading's settings, so a changed file is prepared again and a
second run on the same text starts at once:

```
PREPARED_DIR/<key>/
  train.ids, valid.ids, test.ids   the ids, one array each (dtype below)
  vocabulary.json                  a token per id
  prepared.json                    dtype, token counts, tokenization
```

The folder is staged and renamed into place, so a kill or a full disk
never leaves a prepared corpus that a later run could trust.
"""

import hashlib
import json
import os
import time

import keras
import numpy as np

from keras_lstm_scratch.data.cache import prepared_cache_dir
from keras_lstm_scratch.data.corpus import Corpus
from keras_lstm_scratch.data.text_sources import SPLITS, text_source
from keras_lstm_scratch.data.token_counter import token_counter
from keras_lstm_scratch.data.tokenization import WORD_TOKENS, Tokenization
from keras_lstm_scratch.data.vocabulary import Vocabulary
from keras_lstm_scratch.errors import ExistingOutputError, InvalidInputError
from keras_lstm_scratch.staged_write import staged_folder, write_text

FORMAT_VERSION = 1
REMAP_BLOCK = 1 << 22  # ids mapped to their final values per block


def load_text_corpus(
    name,
    max_vocab_size=10000,
    tokenization=WORD_TOKENS,
    verbose=0,
    **reading,
):
    """Loads the user's own text: `text:NAME` of the training CLI.

    `name` is a folder with `train.txt`, `valid.txt` and `test.txt`, one
    text file, a folder of text files or a glob (`text_sources.py` says
    how each splits). Each line is read as whitespace-separated words or
    as characters (`tokenization`); `<eos>` ends each line. The
    vocabulary is built from the training text only, capped at
    `max_vocab_size` most frequent tokens (specials included); rarer and
    unseen ones become `<unk>`.

    Args:
        name: Where the text is (see above).
        max_vocab_size: Vocabulary cap, or `None` for every training token.
        tokenization: A `Tokenization`, words by default.
        verbose: 1: a progress bar while the text is prepared.
        **reading: `base_vocabulary` and `add_new_tokens` of
            `prepare_corpus` (fine-tuning).

    Returns:
        A `Corpus` of memory-mapped ids (`prepare_corpus`).
    """
    return prepare_corpus(
        text_source(name),
        tokenization,
        max_vocab_size,
        verbose=verbose,
        **reading,
    )


def prepare_corpus(
    source,
    tokenization=WORD_TOKENS,
    max_vocab_size=None,
    strip_lines=False,
    cache_dir=None,
    verbose=0,
    base_vocabulary=None,
    add_new_tokens=False,
):
    """The `Corpus` of `source`, prepared now or found in the cache.

    Args:
        source: Where the text is: a `TextSource`
            (`text_sources.text_source`) or a `TfdsSource`; it gives the
            text as `chunks()` of whole lines, `update_digest` adds its
            content to the key, and `description`, `total_bytes` (or
            `None`) and `split_files()` name it in messages.
        tokenization: A `Tokenization`, words by default.
        max_vocab_size: Vocabulary cap (specials included), or `None`.
        strip_lines: Remove the whitespace around each line first (PTB).
        cache_dir: Where prepared corpora are kept; default
            `prepared_cache_dir()`.
        verbose: 1: a progress bar while the text is read.
        base_vocabulary: Optional `Vocabulary` (a trained model's) that
            the ids index instead of one built from the text: its other
            tokens become `<unk>`. `max_vocab_size` then only caps
            `add_new_tokens`.
        add_new_tokens: With `base_vocabulary`: append the training
            text's tokens it lacks, most frequent first
            (`Vocabulary.extended`).

    Returns:
        A `Corpus` whose splits are read-only memory maps.

    Raises:
        InvalidInputError: (a `ValueError`) for text that is not UTF-8
            (naming the file and line) or a split with no tokens.
        OutputWriteError: if the cache cannot be written.
    """
    settings = {
        "format": FORMAT_VERSION,
        "tokens": tokenization.kind,
        "max_vocab_size": max_vocab_size,
        "strip_lines": strip_lines,
    }
    if base_vocabulary is not None:
        words = base_vocabulary.to_json().encode("utf-8")
        settings["base_vocabulary"] = hashlib.sha256(words).hexdigest()
        settings["add_new_tokens"] = bool(add_new_tokens)
    key = content_key(source, settings)
    folder = os.path.join(cache_dir or prepared_cache_dir(), key)
    if not os.path.isfile(os.path.join(folder, "prepared.json")):
        kept = "Nothing was left in the cache; free some space or set "
        kept += "KERAS_LSTM_SCRATCH_PREPARED_DIR to a writable folder."
        try:
            with staged_folder(folder, kept) as staging:
                write_prepared(
                    source, settings, staging, verbose, base_vocabulary
                )
        except ExistingOutputError:
            pass  # another process prepared the same text meanwhile
    return open_prepared(folder, source, key)


def content_key(source, settings):
    """SHA-256 of the text (`source.update_digest`) and the reading's
    settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    source.update_digest(digest)
    return digest.hexdigest()[:32]


def write_prepared(source, settings, folder, verbose, base_vocabulary=None):
    """Prepares `source` into `folder` (see the module docstring)."""
    tokenization = Tokenization(settings["tokens"])
    counter = token_counter(tokenization, settings["strip_lines"])
    sizes = read_provisional_ids(source, counter, folder, verbose)
    check_splits(source, sizes, tokenization)
    vocabulary = base_vocabulary
    if vocabulary is None:
        vocabulary = Vocabulary.from_counts(
            counter.training_counts(),
            settings["max_vocab_size"],
            by_frequency=tokenization.is_chars,
        )
    elif settings["add_new_tokens"]:
        vocabulary = vocabulary.extended(
            counter.training_counts(), settings["max_vocab_size"]
        )
    dtype = narrowest_dtype(len(vocabulary))
    table = counter.id_table(vocabulary)
    for split in SPLITS:
        remap_ids(os.path.join(folder, split), table, dtype)
    vocabulary.save(os.path.join(folder, "vocabulary.json"))
    meta = {**settings, "dtype": dtype.name, "sizes": sizes}
    write_text(os.path.join(folder, "prepared.json"), json.dumps(meta), "")


def read_provisional_ids(source, counter, folder, verbose):
    """The text's provisional ids into `folder/<split>.provisional`;
    returns `{split: number of tokens}`."""
    sizes = dict.fromkeys(SPLITS, 0)
    progress = PreparationProgress(source, verbose)
    handles = {
        split: open(os.path.join(folder, f"{split}.provisional"), "wb")
        for split in SPLITS
    }
    try:
        for chunk in source.chunks():
            ids = counter.ids(chunk.text, count=chunk.split == "train")
            ids.tofile(handles[chunk.split])
            sizes[chunk.split] += len(ids)
            progress.update(chunk.num_bytes, len(ids))
    finally:
        for handle in handles.values():
            handle.close()
    progress.done()
    return sizes


def check_splits(source, sizes, tokenization):
    """Refuses a split without tokens, naming its files."""
    files = source.split_files()
    for split in SPLITS:
        if sizes[split] == 0:
            where = ", ".join(files[split]) or source.description
            raise InvalidInputError(
                f"{where} holds no {tokenization.unit} for the {split} text "
                "(only blank lines or whitespace, or too little text to "
                "hold out validation and test lines); every split needs "
                "some text."
            )


def narrowest_dtype(vocab_size):
    """The narrowest unsigned integer type that holds ids below
    `vocab_size`."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise InvalidInputError(f"A vocabulary of {vocab_size} is too large.")


def remap_ids(stem, table, dtype):
    """`stem.provisional` (uint32) -> `stem.ids` (`dtype`), block by block."""
    with open(f"{stem}.provisional", "rb") as source:
        with open(f"{stem}.ids", "wb") as target:
            while len(ids := np.fromfile(source, np.uint32, REMAP_BLOCK)):
                table[ids].astype(dtype).tofile(target)
    os.remove(f"{stem}.provisional")


def open_prepared(folder, source, key):
    """The `Corpus` of a prepared folder, its splits memory-mapped."""
    with open(os.path.join(folder, "prepared.json"), encoding="utf-8") as f:
        meta = json.load(f)
    splits = {
        split: np.memmap(
            os.path.join(folder, f"{split}.ids"),
            dtype=meta["dtype"],
            mode="r",
            shape=(meta["sizes"][split],),
        )
        for split in SPLITS
    }
    files = source.split_files()
    return Corpus(
        vocabulary=Vocabulary.load(os.path.join(folder, "vocabulary.json")),
        sources={split: ", ".join(files[split]) for split in SPLITS},
        tokenization=Tokenization(meta["tokens"]),
        key=key,
        **splits,
    )


class PreparationProgress:
    """A progress bar in MB of text, with MB/s and tokens so far."""

    def __init__(self, source, verbose):
        self.verbose = verbose
        self.started = time.perf_counter()
        self.bytes_read, self.tokens = 0, 0
        if verbose:
            size = source.total_bytes
            told = f" ({size / 1e6:,.1f} MB)" if size else ""
            print(
                f"Preparing {source.description}{told}, once: its token ids "
                "are cached for later runs."
            )
            self.bar = keras.utils.Progbar(
                max(int(size / 1e6), 1) if size else None,
                unit_name="MB",
                stateful_metrics=("MB/s", "Mtokens"),
            )

    def update(self, num_bytes, num_tokens):
        self.bytes_read += num_bytes
        self.tokens += num_tokens
        if self.verbose:
            seconds = max(time.perf_counter() - self.started, 1e-9)
            self.bar.update(
                int(self.bytes_read / 1e6),
                [
                    ("MB/s", self.bytes_read / 1e6 / seconds),
                    ("Mtokens", self.tokens / 1e6),
                ],
            )

    def done(self):
        if self.verbose:
            target = self.bar.target or int(self.bytes_read / 1e6)
            self.bar.update(target, finalize=True)
