"""What a finished run reports: its test perplexity and its figures."""

import math
import os
import platform

import keras
import numpy as np
import tensorflow as tf

import keras_lstm_scratch
from keras_lstm_scratch.data import count_targets
from keras_lstm_scratch.evaluation import StreamModel
from keras_lstm_scratch.evaluation.stream_model import (
    stream_nll,
    window_length,
)

# A test text up to this long is read as one stream, every token predicted
# from its full left context (PTB: 82,430 words, 442,423 characters); a
# longer one as TEST_STREAMS streams (docs/quality.md measures the cost).
SINGLE_STREAM_MAX_TOKENS = 500_000
TEST_STREAMS = 32


def number_of_test_streams(config, num_tokens):
    """How many parallel streams read a test text of `num_tokens`."""
    if config.test_streams > 0:
        return config.test_streams
    return 1 if num_tokens <= SINGLE_STREAM_MAX_TOKENS else TEST_STREAMS


def evaluate_test_text(config, model, ids, verbose=0):
    """Token-weighted mean NLL over `ids` read as parallel streams.

    The model's layers in float32 (`StreamModel`, as `training.evaluate`
    reads them) carry their states across windows of up to
    `STREAM_WINDOW` tokens per stream, `number_of_test_streams` streams,
    each token counted once (`stream_nll`). With one stream no token loses
    context to a stream boundary; with B streams, the first tokens of B - 1
    of them do.

    Returns:
        `(mean_nll, token_count, streams)`.
    """
    streams = number_of_test_streams(config, len(ids))
    stream_model = StreamModel(model)
    if verbose:
        window = window_length(streams, stream_model.vocab_size)
        print(
            f"Test text: {count_targets(ids):,} tokens as {streams} "
            f"stream(s) of {window}-token windows."
        )
    return (*stream_nll(stream_model, ids, streams, verbose=verbose), streams)


def versions():
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "keras_lstm_scratch": keras_lstm_scratch.__version__,
    }


def run_results(
    test, recorder, corpus, tokens_per_epoch, tokens_per_step, wall_seconds
):
    """The dict that `results.json` holds.

    Args:
        test: `(mean_nll, token_count, streams)` on the test text.
        recorder: The run's `RunRecorder` (history and training time).
        corpus: The run's corpus.
        tokens_per_epoch: Training tokens one epoch reads.
        tokens_per_step: Training tokens one batch reads.
        wall_seconds: Wall time of this invocation.
    """
    test_nll, test_tokens, streams = test
    test_words = corpus.count_words(corpus.test[1:])  # the predicted text
    epochs, seconds = len(recorder.history), recorder.train_seconds
    # An epoch cut by a time budget reads only its steps' tokens.
    tokens_read = sum(
        row["train_steps"] * tokens_per_step
        if "train_steps" in row
        else tokens_per_epoch
        for row in recorder.history
    )
    results = {
        "tokens": corpus.tokenization.kind,
        "test_perplexity": math.exp(test_nll),
        "test_loss": test_nll,
        "test_tokens": int(test_tokens),
        "test_streams": streams,
        "test_words": test_words,
        "test_perplexity_per_word": per_word_perplexity(
            test_nll, test_tokens, test_words
        ),
        "best_val_perplexity": recorder.best_val_perplexity(),
        "epochs": epochs,
        "train_seconds": seconds,
        "tokens_per_second": tokens_read / seconds if seconds else None,
        "train_tokens": count_targets(corpus.train),
        "tokens_per_epoch": tokens_per_epoch,
        "wall_seconds_this_invocation": wall_seconds,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "versions": versions(),
    }
    if corpus.tokenization.is_chars:
        results["test_bits_per_char"] = test_nll / math.log(2)
        results["best_val_bits_per_char"] = math.log2(
            results["best_val_perplexity"]
        )
    return results


def per_word_perplexity(mean_nll, tokens, words):
    """`exp(total NLL / words)`: a text's perplexity per whitespace word
    (each `<eos>` one), comparable across tokenisations of the text."""
    return math.exp(mean_nll * tokens / max(words, 1))


def summary_line(results):
    """The run's last line: test perplexity (or bits per character), best
    validation, time."""
    if "test_bits_per_char" in results:
        return (
            f"test {results['test_bits_per_char']:.4f} bits per character "
            f"({results['test_tokens']:,} characters), perplexity per word "
            f"{results['test_perplexity_per_word']:.2f}; best valid "
            f"{results['best_val_bits_per_char']:.4f} bits per character "
            f"after {results['epochs']} epochs, "
            f"{results['train_seconds'] / 60:.1f} min of training"
        )
    return (
        f"test perplexity {results['test_perplexity']:.2f} "
        f"({results['test_tokens']:,} tokens); best valid perplexity "
        f"{results['best_val_perplexity']:.2f} after "
        f"{results['epochs']} epochs, {results['train_seconds'] / 60:.1f} "
        "min of training"
    )
