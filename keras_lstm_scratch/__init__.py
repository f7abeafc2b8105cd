"""A from-scratch LSTM language model for Keras 3 / TensorFlow."""

from keras_lstm_scratch.clipped_sgd import ClippedSGD
from keras_lstm_scratch.cross_entropy import (
    SparseSoftmaxCrossEntropy,
    sparse_softmax_cross_entropy,
)
from keras_lstm_scratch.distribution import make_strategy
from keras_lstm_scratch.language_model import build_language_model
from keras_lstm_scratch.lstm_cell import LSTMCell
from keras_lstm_scratch.output_projection import (
    OutputProjection,
    project_with_bias,
)
from keras_lstm_scratch.perplexity import (
    Perplexity,
    PerplexityCallback,
    evaluate_token_nll,
)
from keras_lstm_scratch.state_reset import ResetStatesCallback, reset_rnn_states
from keras_lstm_scratch.tied_embedding import TiedEmbedding
from keras_lstm_scratch.time_lstm import TimeLSTM

__version__ = "0.1.0"

__all__ = [
    "ClippedSGD",
    "LSTMCell",
    "OutputProjection",
    "Perplexity",
    "PerplexityCallback",
    "ResetStatesCallback",
    "SparseSoftmaxCrossEntropy",
    "TiedEmbedding",
    "TimeLSTM",
    "build_language_model",
    "evaluate_token_nll",
    "make_strategy",
    "project_with_bias",
    "reset_rnn_states",
    "sparse_softmax_cross_entropy",
]
