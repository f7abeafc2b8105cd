"""A from-scratch LSTM language model for Keras 3 / TensorFlow."""

from keras_lstm_scratch.language_model import build_language_model
from keras_lstm_scratch.lstm_cell import LSTMCell
from keras_lstm_scratch.perplexity import (
    Perplexity,
    PerplexityCallback,
    evaluate_token_nll,
)
from keras_lstm_scratch.state_reset import ResetStatesCallback, reset_rnn_states
from keras_lstm_scratch.tied_embedding import TiedEmbedding

__version__ = "0.1.0"

__all__ = [
    "LSTMCell",
    "Perplexity",
    "PerplexityCallback",
    "ResetStatesCallback",
    "TiedEmbedding",
    "build_language_model",
    "evaluate_token_nll",
    "reset_rnn_states",
]
