"""Callbacks of a language model's `fit`: each owns one side effect."""

from keras_lstm_scratch.callbacks.non_monotone_averaging import (
    NonMonotoneAveraging,
    nonmonotone_trigger,
)
from keras_lstm_scratch.callbacks.perplexity_callback import (
    PerplexityCallback,
)
from keras_lstm_scratch.callbacks.state_reset import ResetStatesCallback

__all__ = [
    "NonMonotoneAveraging",
    "PerplexityCallback",
    "ResetStatesCallback",
    "nonmonotone_trigger",
]
