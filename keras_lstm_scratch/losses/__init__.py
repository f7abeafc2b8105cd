"""The next-token loss."""

from keras_lstm_scratch.losses.cross_entropy import (
    SparseSoftmaxCrossEntropy,
    sparse_softmax_cross_entropy,
)

__all__ = [
    "SparseSoftmaxCrossEntropy",
    "sparse_softmax_cross_entropy",
]
