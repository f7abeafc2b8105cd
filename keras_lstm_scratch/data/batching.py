"""Truncated-BPTT batching: one token stream into parallel windows.

As in the book's `train_rnnlm` and PyTorch's `batchify`, the stream is
split into `batch_size` contiguous streams (rows), read left to right in
windows of `seq_len` columns; targets are the inputs shifted by one token.
The RNN states carry from window k to window k+1 of the same row. With 13
tokens `0 .. 12`, `batch_size=3`, `seq_len=2`:

```
12 (input, target) pairs -> 3 streams of 4:

             inputs          targets
  stream 0:  0  1 | 2  3     1  2 | 3  4
  stream 1:  4  5 | 6  7     5  6 | 7  8
  stream 2:  8  9 |10 11     9 10 |11 12
            window0 window1

window 0: x = [[0, 1], [4, 5], [8, 9]]     y = [[1, 2], [5, 6], [9, 10]]
window 1: x = [[2, 3], [6, 7], [10, 11]]   y = [[3, 4], [7, 8], [11, 12]]
```

Training drops the tail that does not fill a whole window in every row
(fewer than `batch_size * seq_len` tokens, as the book does). Evaluation
(`pad=True`) keeps every target: the streams are padded at the end and
the padded positions get weight 0, so each token is counted exactly once.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_positive_int
from keras_lstm_scratch.errors import InvalidInputError

# Windows read ahead of the training step. A fixed few: with
# tf.data.AUTOTUNE each epoch's first step waited 7-8 s on 2 cores.
PREFETCHED_WINDOWS = 2
# Windows read from the stream in one Python call (a window per call cost
# book-rnnlm 10-17 % of its training speed); 32 windows of 32 x 100 tokens
# are 1.2 MB.
WINDOWS_PER_READ = 32


@dataclasses.dataclass(frozen=True)
class TBPTTLayout:
    """Where each window of a stream lies; reads any window on demand.

    The stream is never copied: a window is gathered from `ids` (a NumPy
    array or a memory map of a prepared corpus) when it is asked for, so
    the memory is a window's, not the stream's.

    Args:
        ids: 1-D int token stream.
        batch_size: Number of parallel streams (rows).
        seq_len: Time steps per window.
        pad: If `False` (training), drop the tail that does not fill whole
            windows. If `True` (evaluation), pad the end and weight the
            padding 0, so that every target is counted once.
        pad_id: Token id written into padded positions.

    Raises:
        InvalidInputError: (a `ValueError`) if the stream cannot fill one
            window (training) or has fewer than 2 tokens (evaluation).
    """

    ids: np.ndarray
    batch_size: int
    seq_len: int
    pad: bool = False
    pad_id: int = 0

    def __post_init__(self):
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("seq_len", self.seq_len)
        if np.ndim(self.ids) != 1:
            raise ValueError(
                "ids must be a 1-D token stream; got shape "
                f"{np.shape(self.ids)}."
            )
        num_pairs = len(self.ids) - 1  # the first token is never a target
        window_tokens = self.batch_size * self.seq_len
        if self.pad and num_pairs < 1:
            raise InvalidInputError(
                f"A corpus of {len(self.ids)} tokens has nothing to predict; "
                "evaluation needs at least 2 tokens."
            )
        if not self.pad and num_pairs < window_tokens:
            raise InvalidInputError(
                f"{len(self.ids)} tokens (words and <eos>) cannot fill one "
                f"training window of batch_size * seq_len + 1 = "
                f"{window_tokens + 1} tokens. Use more text, or a smaller "
                "batch_size or seq_len."
            )

    @property
    def row_length(self):
        """Tokens per row: whole windows, padded (evaluation) or cut."""
        num_pairs = len(self.ids) - 1
        if self.pad:
            row_length = -(-num_pairs // self.batch_size)  # ceil
            return -(-row_length // self.seq_len) * self.seq_len
        window_tokens = self.batch_size * self.seq_len
        return (num_pairs // window_tokens) * self.seq_len

    @property
    def num_windows(self):
        return self.row_length // self.seq_len

    def window(self, index):
        """Window `index`: `(inputs, targets, weights)`, each `(batch_size,
        seq_len)`. A training window is read as one strided view of the
        stream, the cheap path that runs once per training step."""
        if self.pad:
            inputs, targets, weights = self.windows(index, index + 1)
            return inputs[0], targets[0], weights[0]
        ids = np.asarray(self.ids)
        columns = np.lib.stride_tricks.as_strided(
            ids[index * self.seq_len :],
            shape=(self.batch_size, self.seq_len + 1),
            strides=(self.row_length * ids.itemsize, ids.itemsize),
            writeable=False,
        )  # (batch, seq_len + 1): each row's window and the token after it
        weights = np.ones((self.batch_size, self.seq_len), np.float32)
        return (
            columns[:, :-1].astype(np.int32),
            columns[:, 1:].astype(np.int32),
            weights,
        )

    def windows(self, first, stop):
        """Windows `first .. stop - 1`: `(inputs, targets, weights)`, each
        `(stop - first, batch_size, seq_len)`."""
        used = min(len(self.ids) - 1, self.row_length * self.batch_size)
        rows = np.arange(self.batch_size) * self.row_length
        columns = np.arange(first * self.seq_len, stop * self.seq_len)
        where = rows[:, None] + columns[None, :]  # (batch, columns)
        real = where < used
        where = np.where(real, where, 0)
        inputs = np.where(real, self.ids[where], self.pad_id)
        targets = np.where(real, self.ids[where + 1], self.pad_id)

        def to_windows(stream):
            # (batch, columns) -> (windows, batch, seq_len)
            return stream.reshape(self.batch_size, -1, self.seq_len).transpose(
                1, 0, 2
            )

        return (
            to_windows(inputs.astype(np.int32)),
            to_windows(targets.astype(np.int32)),
            to_windows(real.astype(np.float32)),
        )


def tbptt_windows(ids, batch_size, seq_len, pad=False, pad_id=0):
    """Cuts a token stream into truncated-BPTT windows, all in memory.

    For a short stream (validation, tests); `tbptt_dataset` reads a long
    one block of windows at a time.

    Args:
        ids, batch_size, seq_len, pad, pad_id: As for `TBPTTLayout`.

    Returns:
        `(inputs, targets, weights)`, each `(num_windows, batch_size,
        seq_len)`; inputs and targets int32, weights float32 (1 for real
        targets, 0 for padding).

    Raises:
        InvalidInputError: (a `ValueError`) if the stream cannot fill one
            window (training) or has fewer than 2 tokens (evaluation).
    """
    layout = TBPTTLayout(np.asarray(ids), batch_size, seq_len, pad, pad_id)
    return layout.windows(0, layout.num_windows)


def tbptt_dataset(ids, batch_size, seq_len, pad=False, first_window=0):
    """A `tf.data.Dataset` of `(x, y)` (training) or `(x, y, weight)` windows.

    The windows come in order (never shuffle: the states carry across
    them), read from `ids` `WINDOWS_PER_READ` at a time when the pipeline
    reaches them, so a memory map is never loaded whole. With `pad=True`
    the sample weights mask the padding. `first_window` starts the
    sequence later (a run resumed inside an epoch).
    """
    layout = TBPTTLayout(ids, batch_size, seq_len, pad)

    def read(first):
        return layout.windows(
            first, min(first + WINDOWS_PER_READ, layout.num_windows)
        )

    def read_block(first):
        block = tf.numpy_function(
            read, [first], (tf.int32, tf.int32, tf.float32), stateful=False
        )
        for part in block:
            part.set_shape((None, batch_size, seq_len))
        return tuple(block[: 3 if pad else 2])

    starts = tf.data.Dataset.range(
        first_window, layout.num_windows, WINDOWS_PER_READ
    )
    windows = starts.map(read_block).unbatch()
    windows = windows.apply(
        tf.data.experimental.assert_cardinality(
            layout.num_windows - first_window
        )
    )
    return windows.prefetch(PREFETCHED_WINDOWS)


def count_targets(ids):
    """Number of predicted tokens in a stream: every token but the first."""
    return max(len(ids) - 1, 0)
