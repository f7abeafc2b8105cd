"""What a finished run reports: its test perplexity and its figures."""

import dataclasses
import math
import os
import platform

import keras
import numpy as np
import tensorflow as tf

import keras_lstm_scratch
from keras_lstm_scratch import evaluate_token_nll
from keras_lstm_scratch.data import count_targets, tbptt_dataset
from training.model import build_model

# Test evaluation reads the test text as one stream in windows of this many
# tokens: every token is predicted from its full left context.
TEST_WINDOW = 1000


def evaluate_single_stream(config, model, ids, vocab_size):
    """Token-weighted mean NLL over `ids` read as one continuous stream.

    A batch-1 twin of `model` (same weights, on one device) carries its
    states across windows of `TEST_WINDOW` tokens, so no token loses
    context to a stream boundary; each token is counted once.

    Returns:
        `(mean_nll, token_count)`.
    """
    single = dataclasses.replace(config, batch_size=1, seq_len=TEST_WINDOW)
    twin = build_model(single, vocab_size, tf.distribute.get_strategy())
    twin.set_weights(model.get_weights())
    windows = tbptt_dataset(ids, 1, TEST_WINDOW, pad=True)
    return evaluate_token_nll(twin, windows)


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
        test: `(mean_nll, token_count)` on the test text.
        recorder: The run's `RunRecorder` (history and training time).
        corpus: The run's corpus.
        tokens_per_epoch: Training tokens one epoch reads.
        tokens_per_step: Training tokens one batch reads.
        wall_seconds: Wall time of this invocation.
    """
    test_nll, test_tokens = test
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
