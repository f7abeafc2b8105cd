"""Token-weighted perplexity."""

from keras_lstm_scratch.metrics.perplexity import (
    Perplexity,
)

__all__ = [
    "Perplexity",
]
