"""Embedding (word) dropout: whole words dropped for a batch window."""

import keras
from keras import ops

from keras_lstm_scratch.argument_checks import check_positive_int, check_rate


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class WordDropout(keras.layers.Layer):
    """Drops whole vocabulary words from the embedded inputs of a batch.

    In training, each word of the vocabulary is dropped with probability
    `rate` for the whole batch window: every occurrence of a dropped word
    embeds to the zero vector, the other words' vectors are scaled by
    `1 / (1 - rate)`, so the expected vector is unchanged. A fresh draw
    per call gives each TBPTT window its own mask. This equals dropping
    rows of the embedding matrix before the lookup (`(E * m)[ids] ==
    E[ids] * m[ids]`) without touching the matrix, so a tied output
    projection still reads every row. Nothing is dropped at inference.

    Keras has no such layer: `Dropout` and `SpatialDropout1D` drop vector
    entries, not words.

    References:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1512.05287),
          section 4.1
        - [Merity et al., 2017](https://arxiv.org/abs/1708.02182)
          (AWD-LSTM's `dropoute`)

    Args:
        vocab_size: Positive integer, number of token ids.
        rate: Float in [0, 1), the probability of dropping a word.
        seed: Optional integer seed of the masks.
        **kwargs: Base layer arguments, such as `name`.

    Call arguments:
        inputs: `[token_ids, vectors]`: int ids `(batch, time)` and their
            embeddings `(batch, time, embedding_dim)`.
        training: Drop words only when `True`.

    Returns:
        The vectors `(batch, time, embedding_dim)`, words dropped.

    Example:

    >>> ids = keras.Input((35,), dtype="int32")
    >>> vectors = keras.layers.Embedding(10000, 400)(ids)
    >>> vectors = WordDropout(10000, 0.1)([ids, vectors])
    """

    def __init__(self, vocab_size, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.rate = check_rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        token_ids, vectors = inputs
        if not training or self.rate == 0:
            return vectors
        draw = keras.random.uniform(
            (self.vocab_size,), seed=self.seed_generator
        )
        keep = ops.cast(draw >= self.rate, vectors.dtype)
        scale = keep / ops.cast(1.0 - self.rate, vectors.dtype)  # (vocab,)
        word_scale = ops.take(scale, ops.cast(token_ids, "int32"))
        return vectors * ops.expand_dims(word_scale, -1)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        config = {
            "vocab_size": self.vocab_size,
            "rate": self.rate,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
