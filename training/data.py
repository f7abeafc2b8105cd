"""The run's data: the corpus its config names, cut into TBPTT windows.

Every entry point reads its windows here: training (`train` split,
`batch_size` streams of `seq_len` steps), validation (the `valid` split,
padded so that every token counts once), and the probes of
`training.inspect_model` (the first validation window, the first
validation sentence).
"""

import numpy as np

from keras_lstm_scratch.data import (
    Tokenization,
    load_ptb,
    load_text_corpus,
    load_tfds_corpus,
    tbptt_dataset,
    tbptt_windows,
)
from keras_lstm_scratch.errors import InvalidInputError
from training.run_directory import RunDirectory


def load_corpus(config, data_dir=None, verbose=0):
    """Loads the corpus that `config.corpus` names.

    Every corpus is prepared once into token ids and memory-mapped
    (`keras_lstm_scratch.data.prepared_corpus`).

    Args:
        config: A `TrainConfig`; `corpus` is `"ptb"`, `"text:NAME"` or
            `"tfds:NAME"`, read as `config.tokens` (words or characters).
        data_dir: The PTB files' folder, or TFDS's data dir; `None`: the
            default (`$KERAS_LSTM_SCRATCH_PTB_DIR`, else the download
            cache).
        verbose: 1: a progress bar while a text is prepared.

    A fine-tuning run (`config.init_from`) reads the text with the
    vocabulary of the run it starts from (and `config.add_new_tokens`).

    Returns:
        A `keras_lstm_scratch.data.Corpus`.
    """
    tokenization = Tokenization(config.tokens)
    reading = {}
    if config.init_from:
        reading = {
            "base_vocabulary": starting_vocabulary(config),
            "add_new_tokens": config.add_new_tokens,
        }
    if config.corpus == "ptb":
        return load_ptb(data_dir, tokenization=tokenization, **reading)
    kind, _, name = config.corpus.partition(":")
    if kind == "text":
        return load_text_corpus(
            name,
            max_vocab_size=config.max_vocab_size,
            tokenization=tokenization,
            verbose=verbose,
            **reading,
        )
    return load_tfds_corpus(
        name,
        text_key=config.tfds_text_key,
        max_vocab_size=config.max_vocab_size,
        data_dir=data_dir,
        tokenization=tokenization,
        verbose=verbose,
        **reading,
    )


def starting_vocabulary(config):
    """The vocabulary of the run `config.init_from`, checked to read text
    as `config.tokens` does."""
    start = RunDirectory(config.init_from)
    tokens = start.load_tokenization().kind
    if tokens != config.tokens:
        raise InvalidInputError(
            f"--init-from {config.init_from} reads text as {tokens}, this "
            f"run as {config.tokens}: give --set tokens={tokens} (a model "
            "keeps its tokenisation)."
        )
    return start.load_vocabulary()


def training_windows(corpus, batch_size, seq_len, first_window=0):
    """The training split's TBPTT dataset, from window `first_window` on; a
    too-short text names its file."""
    try:
        return tbptt_dataset(
            corpus.train, batch_size, seq_len, first_window=first_window
        )
    except InvalidInputError as error:
        source = corpus.sources.get("train", "The training text")
        raise InvalidInputError(f"{source}: {error}") from None


def validation_windows(corpus, batch_size, seq_len, max_tokens=0):
    """The validation split's windows `(inputs, targets, weights)`.

    Each `(num_windows, batch_size, seq_len)`; the end is padded with
    weight 0, so that every validation token is counted once.
    `max_tokens > 0` reads only the validation text's first `max_tokens`
    tokens (`valid_max_tokens`: a bounded pass on a large text).
    """
    ids = corpus.valid[:max_tokens] if max_tokens > 0 else corpus.valid
    return tbptt_windows(ids, batch_size, seq_len, pad=True)


def first_validation_window(corpus, batch_size, seq_len):
    """The first validation window: `(inputs, targets)`, `(batch, time)`."""
    inputs, targets, _ = validation_windows(corpus, batch_size, seq_len)
    return inputs[0], targets[0]


def first_validation_sentence(corpus, max_words=30):
    """Ids of the validation text's first sentence (at most `max_words`)."""
    end = corpus.vocabulary.end_of_sentence_id
    ids = corpus.valid[:max_words]
    stops = np.flatnonzero(ids == end)
    return ids[: stops[0] + 1] if len(stops) else ids
