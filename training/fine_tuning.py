"""Fine-tuning: a new run that starts from a finished run's best weights.

    python -m training.train --preset char-30min --init-from runs/char-30min \\
        --set corpus=text:my_text.txt [--set add_new_tokens=true]

The new text is read with the starting run's vocabulary and tokens
(`training.data.load_corpus`); with `add_new_tokens` its tokens outside
that vocabulary are appended, and each new row of the embedding and the
output layer starts as a copy of `<unk>`'s: the model first gives the new
tokens what it gave unknown ones, shared among them (their output biases
less `log(n + 1)`), so the starting predictions are unchanged.
"""

import json
import math
import os

import keras
import numpy as np

from keras_lstm_scratch.errors import InvalidInputError
from training.run_directory import RunDirectory, write_atomically

COUNT_BLOCK = 1 << 22  # ids counted at a time


def start_from(model, config, corpus, run_dir):
    """Sets `model`'s weights from the run `config.init_from`.

    Writes `init_from.json` into `run_dir` (where the run started, the
    tokens added, how many training tokens fall outside the starting
    vocabulary) and prints one line of it.

    Raises:
        InvalidInputError: if the starting model's weights do not fit this
            config's model (another architecture).
    """
    start = RunDirectory(config.init_from)
    source, vocabulary = start.load_finished()
    added = len(corpus.vocabulary) - len(vocabulary)
    copy_weights(source, model, vocabulary.unknown_id, added, config)
    report = {
        "init_from": os.path.abspath(config.init_from),
        "best_model": os.path.abspath(start.best_model_path),
        "vocabulary_size": len(vocabulary),
        "added_tokens": added,
        "training_tokens": int(len(corpus.train)),
        "tokens_outside_vocabulary": outside_count(
            corpus.train, len(vocabulary), vocabulary.unknown_id
        ),
    }
    write_atomically(run_dir.file("init_from.json"), json.dumps(report))
    print(
        f"Starting from {report['best_model']}: "
        f"{report['tokens_outside_vocabulary']:,} of "
        f"{report['training_tokens']:,} training tokens are outside its "
        f"vocabulary of {len(vocabulary):,}"
        + (f"; {added:,} tokens added." if added else ".")
    )
    return report


def outside_count(ids, vocab_size, unknown_id):
    """Tokens of `ids` outside the first `vocab_size` ids, or `<unk>`."""
    total = 0
    for start in range(0, len(ids), COUNT_BLOCK):
        block = np.asarray(ids[start : start + COUNT_BLOCK])
        outside = (block >= vocab_size) | (block == unknown_id)
        total += int(np.count_nonzero(outside))
    return total


def copy_weights(source, target, unknown_id, added, config):
    """Every trainable weight of `source` into `target`, in order; a
    weight `added` rows longer along the vocabulary gets `<unk>`'s row
    for each new one (`extended_rows`)."""
    pairs = list(
        zip(source.trainable_weights, target.trainable_weights, strict=False)
    )
    if len(source.trainable_weights) != len(target.trainable_weights):
        refuse_architecture(source, target, config)
    for old, new in pairs:
        value = keras.ops.convert_to_numpy(old)
        if value.shape != tuple(new.shape):
            value = extended_rows(value, tuple(new.shape), unknown_id, added)
            if value is None:
                refuse_architecture(source, target, config)
        new.assign(value)


def extended_rows(value, shape, unknown_id, added):
    """`value` grown by `added` along its one vocabulary axis, or `None`.

    Each new slice copies `<unk>`'s; a vector (an output bias) then takes
    `log(added + 1)` off `<unk>` and the new entries, so that together
    they keep `<unk>`'s old probability.
    """
    axes = [
        axis
        for axis, (old, new) in enumerate(zip(value.shape, shape, strict=True))
        if old != new
    ] if len(shape) == value.ndim else []  # fmt: skip
    if len(axes) != 1 or shape[axes[0]] != value.shape[axes[0]] + added:
        return None
    axis = axes[0]
    unknown = np.take(value, [unknown_id] * added, axis=axis)
    grown = np.concatenate([value, unknown], axis=axis)
    if grown.ndim == 1:
        share = math.log(added + 1)
        grown[unknown_id] -= share
        grown[value.shape[0] :] -= share
    return grown


def refuse_architecture(source, target, config):
    raise InvalidInputError(
        f"--init-from {config.init_from}: its model ({source.count_params():,} "
        f"parameters) is not this preset's ({target.count_params():,}); use "
        "the preset (and --set values) it was trained with."
    )
