"""What one request may ask of the export: memory and id bounds.

Each bound is an in-graph check that refuses the request with
`INVALID_ARGUMENT`, naming the signature, the limit and what to do
(docs/serving.md, "Memory per request"); `generation.py` bounds the
compute of `generate` and `complete`.
"""

import tensorflow as tf

# Token positions a request may read (its texts times the longest one's
# tokens, `<eos>`s included), log-probabilities a request may hold or
# return at once, and log-probabilities computed at once while `score`
# and the prompts run in time chunks that carry the LSTM states.
MAX_REQUEST_TOKENS = 200_000
MAX_LOG_PROBS = 2**25  # 128 MiB of float32
CHUNK_LOG_PROBS = 2**22  # 16 MiB of float32


def check_ids(signature, token_ids, vocab_size):
    """Refuses ids outside `[0, vocab_size)`."""
    message = (
        f"{signature}: token_ids must be in [0, {vocab_size}), the "
        "ids of this model's vocabulary"
    )
    return [
        tf.debugging.assert_non_negative(token_ids, message=message),
        tf.debugging.assert_less(token_ids, vocab_size, message),
    ]


def check_rows(signature, rows, vocab_size):
    """Refuses `rows` x vocabulary log-probabilities above the budget."""
    most = MAX_LOG_PROBS // vocab_size
    return tf.debugging.assert_less_equal(
        tf.cast(rows, tf.int64),
        tf.constant(most, tf.int64),
        message=f"{signature}: at most {most} rows per request "
        f"({MAX_LOG_PROBS} log-probabilities over a vocabulary of "
        f"{vocab_size}); split the request",
    )


def check_positions(signature, positions, vocab_size):
    """Refuses `serving_default` `positions` (batch x time) whose
    log-probabilities it would return above the budget."""
    most = MAX_LOG_PROBS // vocab_size
    return tf.debugging.assert_less_equal(
        positions,
        tf.constant(most, tf.int64),
        message=f"{signature}: at most {most} token positions "
        f"(batch x time) per request, {MAX_LOG_PROBS} log-probabilities "
        f"over a vocabulary of {vocab_size}; use score, or step for long "
        "streams",
    )


def dense_request(signature, ids, vocab_size):
    """Ragged ids -> `(dense, mask, lengths)`, within the request limits.

    Refuses a request of more than `MAX_REQUEST_TOKENS` token positions
    (texts x longest) or of more rows than `MAX_LOG_PROBS` allows.
    """
    lengths = ids.row_lengths()
    rows = ids.nrows()
    longest = tf.reduce_max(
        tf.concat([lengths, tf.zeros([1], lengths.dtype)], axis=0)
    )
    checks = [
        check_rows(signature, rows, vocab_size),
        tf.debugging.assert_less_equal(
            rows * longest,
            tf.constant(MAX_REQUEST_TOKENS, tf.int64),
            message=f"{signature}: at most {MAX_REQUEST_TOKENS} token "
            "positions per request (texts x the longest text's tokens, "
            "<eos> included); split the request",
        ),
    ]
    with tf.control_dependencies(checks):
        dense = ids.to_tensor(default_value=0)
    mask = tf.sequence_mask(lengths, tf.shape(dense)[1])
    return dense, mask, lengths


def chunk_length(rows, values_per_step):
    """Time steps per chunk: `CHUNK_LOG_PROBS` numbers, at least one
    step; `values_per_step` numbers per row and step."""
    values = tf.cast(rows, tf.int32) * values_per_step
    return tf.maximum(CHUNK_LOG_PROBS // tf.maximum(values, 1), 1)
