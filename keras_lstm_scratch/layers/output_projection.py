"""The output projection from hidden vectors to vocabulary logits.

`logits = h @ W + b` with a 10,000-word vocabulary writes a
`(tokens, vocab)` matrix, and the bias makes one more full pass over it
(and its gradient `db = sum(d logits)` another). Appending a constant 1 to
every hidden vector and the bias as one more row of the kernel,

```
[h, 1] @ [[W], [b]] = h @ W + b   # (tokens, units+1) @ (units+1, vocab)
```

puts the bias inside the matrix product: one product instead of a product
and two passes, and the weight-gradient product `[h, 1]^T @ d logits`
yields `db` as its last row. The price is a copy of the kernel with the
extra row (and the split of its gradient), `units x vocab` numbers against
the `tokens x vocab` passes saved: it pays when a call holds many more
tokens than units. So the bias is folded in when the token count is known
and at least `FOLD_MIN_TOKENS_PER_UNIT` (4) times the number of units, and
added the usual way otherwise: the book's 1x100 model (7 tokens per unit
of a 700-token batch) folds, a tied 2x200 model (3.5 per unit) and the
2x650 model (about 1) do not (docs/speed.md has the measurements).
"""

import keras
import tensorflow as tf
from keras import ops

FOLD_MIN_TOKENS_PER_UNIT = 4


def folds_bias(tokens, units):
    """Whether a call of `tokens` vectors of size `units` folds the bias
    into the product: the token count is known and at least
    `FOLD_MIN_TOKENS_PER_UNIT` times `units`."""
    return tokens is not None and tokens >= FOLD_MIN_TOKENS_PER_UNIT * units


def project_with_bias(inputs, kernel, bias, transpose_kernel=False):
    """`inputs @ kernel + bias`, the bias folded into the product when that
    pays (`folds_bias`) on the TensorFlow backend.

    On the other backends it is `project_with_bias_ops`, the same product
    in `keras.ops` (their compilers fuse the bias themselves).

    Args:
        inputs: Float `(..., units)`.
        kernel: `(units, vocab)`, or `(vocab, units)` with
            `transpose_kernel=True` (a tied embedding matrix).
        bias: `(vocab,)`.
        transpose_kernel: Whether `kernel` is stored as `(vocab, units)`.

    Returns:
        `(..., vocab)` logits in `inputs.dtype`.
    """
    if keras.backend.backend() != "tensorflow":
        return project_with_bias_ops(inputs, kernel, bias, transpose_kernel)
    units = inputs.shape[-1]
    kernel = tf.cast(kernel, inputs.dtype)
    bias = tf.cast(bias, inputs.dtype)
    flat = tf.reshape(inputs, [-1, units])  # (tokens, units)
    tokens = flat.shape[0]
    if not folds_bias(tokens, units):
        logits = tf.matmul(flat, kernel, transpose_b=transpose_kernel) + bias
    else:
        ones = tf.ones_like(flat[:, :1])
        flat = tf.concat([flat, ones], axis=1)  # (tokens, units + 1)
        if transpose_kernel:
            kernel = tf.concat([kernel, bias[:, None]], axis=1)  # (vocab, u+1)
        else:
            kernel = tf.concat([kernel, bias[None, :]], axis=0)  # (u+1, vocab)
        logits = tf.matmul(flat, kernel, transpose_b=transpose_kernel)
    return tf.reshape(
        logits, tf.concat([tf.shape(inputs)[:-1], tf.shape(bias)], 0)
    )


def project_with_bias_ops(inputs, kernel, bias, transpose_kernel=False):
    """`inputs @ kernel + bias` in `keras.ops`, on any backend."""
    kernel = ops.cast(kernel, inputs.dtype)
    if transpose_kernel:
        kernel = ops.transpose(kernel)  # (units, vocab)
    return ops.matmul(inputs, kernel) + ops.cast(bias, inputs.dtype)


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class OutputProjection(keras.layers.Dense):
    """`keras.layers.Dense` whose bias rides inside the matrix product.

    The same layer as `Dense(vocab_size)`: same weights (`kernel`
    `(units, vocab_size)`, `bias`), same config, same results within
    float32 rounding; with a bias and no activation its call is
    `project_with_bias`, which for calls of many tokens folds the bias
    into the product: one product instead of a product plus a bias pass
    (and a bias-gradient pass) over the large logits matrix. Other
    settings (no bias, an activation, LoRA, quantization) run `Dense`'s
    own call.

    Args:
        units: Positive integer, the vocabulary size.
        **kwargs: Other `keras.layers.Dense` arguments.

    Call arguments:
        inputs: Float `(..., hidden_units)`.

    Returns:
        Logits `(..., units)`.

    Example:

    >>> layer = OutputProjection(50)
    >>> layer(np.zeros((2, 5, 8), "float32")).shape
    (2, 5, 50)
    """

    def call(self, inputs, training=None):
        if (
            not self.use_bias
            or self.activation is not keras.activations.linear
            or self.lora_enabled
            or self.quantization_mode is not None
        ):
            return super().call(inputs, training=training)
        return project_with_bias(inputs, self.kernel, self.bias)
