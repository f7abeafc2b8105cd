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
    epochs, seconds = len(recorder.history), recorder.train_seconds
    # An epoch cut by a time budget reads only its steps' tokens.
    tokens_read = sum(
        row["train_steps"] * tokens_per_step
        if "train_steps" in row
        else tokens_per_epoch
        for row in recorder.history
    )
    return {
        "test_perplexity": math.exp(test_nll),
        "test_loss": test_nll,
        "test_tokens": int(test_tokens),
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


def summary_line(results):
    """The run's last line: test perplexity, best validation, time."""
    return (
        f"test perplexity {results['test_perplexity']:.2f} "
        f"({results['test_tokens']:,} tokens); best valid perplexity "
        f"{results['best_val_perplexity']:.2f} after "
        f"{results['epochs']} epochs, {results['train_seconds'] / 60:.1f} "
        "min of training"
    )
