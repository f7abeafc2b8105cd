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

import numpy as np
import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_positive_int
from keras_lstm_scratch.errors import InvalidInputError


def tbptt_windows(ids, batch_size, seq_len, pad=False, pad_id=0):
    """Cuts a token stream into truncated-BPTT windows.

    Args:
        ids: 1-D int token stream.
        batch_size: Number of parallel streams (rows).
        seq_len: Time steps per window.
        pad: If `False` (training), drop the tail that does not fill whole
            windows. If `True` (evaluation), pad the end and weight the
            padding 0, so that every target is counted once.
        pad_id: Token id written into padded positions.

    Returns:
        `(inputs, targets, weights)`, each `(num_windows, batch_size,
        seq_len)`; inputs and targets int32, weights float32 (1 for real
        targets, 0 for padding).

    Raises:
        InvalidInputError: (a `ValueError`) if the stream cannot fill one
            window (training) or has fewer than 2 tokens (evaluation).
    """
    batch_size = check_positive_int("batch_size", batch_size)
    seq_len = check_positive_int("seq_len", seq_len)
    ids = np.asarray(ids, dtype=np.int32)
    if ids.ndim != 1:
        raise ValueError(
            f"ids must be a 1-D token stream; got shape {ids.shape}."
        )
    num_pairs = len(ids) - 1  # the first token is never a target
    window_tokens = batch_size * seq_len
    if pad:
        if num_pairs < 1:
            raise InvalidInputError(
                f"A corpus of {len(ids)} tokens has nothing to predict; "
                "evaluation needs at least 2 tokens."
            )
        row_length = -(-num_pairs // batch_size)  # ceil
        row_length = -(-row_length // seq_len) * seq_len
    else:
        if num_pairs < window_tokens:
            raise InvalidInputError(
                f"{len(ids)} tokens (words and <eos>) cannot fill one "
                f"training window of batch_size * seq_len + 1 = "
                f"{window_tokens + 1} tokens. Use more text, or a smaller "
                "batch_size or seq_len."
            )
        row_length = (num_pairs // window_tokens) * seq_len
    used = min(num_pairs, row_length * batch_size)
    inputs = np.full(row_length * batch_size, pad_id, dtype=np.int32)
    targets = np.full(row_length * batch_size, pad_id, dtype=np.int32)
    weights = np.zeros(row_length * batch_size, dtype=np.float32)
    inputs[:used] = ids[:used]
    targets[:used] = ids[1 : used + 1]
    weights[:used] = 1.0

    def to_windows(stream):
        # (batch, row_length) -> (num_windows, batch, seq_len)
        rows = stream.reshape(batch_size, row_length)
        return rows.reshape(batch_size, -1, seq_len).transpose(1, 0, 2)

    return to_windows(inputs), to_windows(targets), to_windows(weights)


def tbptt_dataset(ids, batch_size, seq_len, pad=False):
    """A `tf.data.Dataset` of `(x, y)` (training) or `(x, y, weight)` windows.

    The windows come in order (never shuffle: the states carry across
    them). With `pad=True` the sample weights mask the padding.
    """
    inputs, targets, weights = tbptt_windows(ids, batch_size, seq_len, pad)
    if pad:
        return tf.data.Dataset.from_tensor_slices((inputs, targets, weights))
    return tf.data.Dataset.from_tensor_slices((inputs, targets))


def count_targets(ids):
    """Number of predicted tokens in a stream: every token but the first."""
    return max(len(ids) - 1, 0)
