"""One matrix for both the word lookup and the output projection."""

import keras
from keras import ops

from keras_lstm_scratch.argument_checks import check_positive_int
from keras_lstm_scratch.layers.output_projection import project_with_bias


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class TiedEmbedding(keras.layers.Layer):
    """Word embedding whose transpose is also the output projection.

    One `(vocab_size, embedding_dim)` matrix `E` serves both ends of a
    language model (Press & Wolf, 2017; Inan et al., 2017):

    ```
    forward:  vectors = E[token_ids]             # (..., embedding_dim)
    reverse:  logits  = h @ E^T + output_bias    # (..., vocab_size)
    ```

    The output bias is the book's `affine_b`. Because both uses read the
    same variable, its gradient is the sum of both uses' gradients with no
    extra bookkeeping.

    Not `keras.layers.ReversibleEmbedding`: its reverse call has no output
    bias, which the book's model and PyTorch's tied decoder both have. Nor
    a subclass of `keras.layers.Embedding`: its config (`input_dim`,
    `output_dim`) and its quantized and LoRA variables would change what
    the saved `.keras` files hold, for a lookup this layer does in one line.

    References:
        - [Press & Wolf, 2017](https://arxiv.org/abs/1608.05859)
        - [Inan et al., 2017](https://arxiv.org/abs/1611.01462)

    Args:
        vocab_size: Positive integer, number of token ids.
        embedding_dim: Positive integer, size of each word vector. It must
            equal the size of the hidden vectors passed with `reverse=True`.
        embeddings_initializer: Initializer for `E`.
        embeddings_regularizer: Regularizer for `E`.
        embeddings_constraint: Constraint for `E`.
        use_output_bias: If `True` (default), add a learned
            `(vocab_size,)` bias to the logits.
        output_bias_initializer: Initializer for the output bias.
        **kwargs: Base layer arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: With `reverse=False`, integer token ids of any shape. With
            `reverse=True`, float hidden vectors `(..., embedding_dim)`.
        reverse: `False` to look up embeddings, `True` to project hidden
            vectors to logits.

    Returns:
        `(..., embedding_dim)` vectors, or `(..., vocab_size)` logits when
        `reverse=True`.

    Example:

    >>> tied = TiedEmbedding(vocab_size=10, embedding_dim=4)
    >>> vectors = tied(np.array([[1, 2, 3]]))  # (1, 3, 4)
    >>> tied(vectors, reverse=True).shape
    (1, 3, 10)
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        embeddings_constraint=None,
        use_output_bias=True,
        output_bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        self.embeddings_regularizer = keras.regularizers.get(
            embeddings_regularizer
        )
        self.embeddings_constraint = keras.constraints.get(
            embeddings_constraint
        )
        self.use_output_bias = bool(use_output_bias)
        self.output_bias_initializer = keras.initializers.get(
            output_bias_initializer
        )
        # A time-step mask passes through unchanged in both directions.
        self.supports_masking = True

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.vocab_size, self.embedding_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.output_bias = None
        if self.use_output_bias:
            self.output_bias = self.add_weight(
                shape=(self.vocab_size,),
                initializer=self.output_bias_initializer,
                name="output_bias",
            )

    def call(self, inputs, reverse=False):
        if reverse:
            if inputs.shape[-1] != self.embedding_dim:
                raise ValueError(
                    f"TiedEmbedding(reverse=True) projects vectors of size "
                    f"embedding_dim={self.embedding_dim}; received inputs "
                    f"of shape {inputs.shape}."
                )
            if self.output_bias is not None:
                # The bias inside the product: see output_projection.py.
                return project_with_bias(
                    inputs,
                    self.embeddings,
                    self.output_bias,
                    transpose_kernel=True,
                )
            # (..., embedding_dim) @ (embedding_dim, vocab) -> (..., vocab)
            return ops.matmul(
                inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype))
            )
        if not keras.backend.is_int_dtype(inputs.dtype):
            raise TypeError(
                "TiedEmbedding expects integer token ids when reverse=False; "
                f"received dtype {inputs.dtype}. Cast ids to int32, or pass "
                "reverse=True to project hidden vectors."
            )
        return ops.take(self.embeddings, inputs, axis=0)

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            shape = (*inputs.shape[:-1], self.vocab_size)
        else:
            shape = (*inputs.shape, self.embedding_dim)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = {
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer
            ),
            "embeddings_regularizer": keras.regularizers.serialize(
                self.embeddings_regularizer
            ),
            "embeddings_constraint": keras.constraints.serialize(
                self.embeddings_constraint
            ),
            "use_output_bias": self.use_output_bias,
            "output_bias_initializer": keras.initializers.serialize(
                self.output_bias_initializer
            ),
        }
        return {**super().get_config(), **config}
