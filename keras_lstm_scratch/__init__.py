"""A from-scratch LSTM language model for Keras 3 / TensorFlow.

The layers read like the book's chapter 6: `LSTMCell` (one step) ->
`TimeLSTM` (the loop over time) -> `build_language_model` (the model).
`keras_lstm_scratch.data` makes the corpus and its windows,
`keras_lstm_scratch.serving` serves and exports a trained model, and
`keras_lstm_scratch.inspection` looks inside it.
"""

from keras_lstm_scratch.activation_regularization import (
    ActivationRegularization,
)
from keras_lstm_scratch.cross_entropy import (
    SparseSoftmaxCrossEntropy,
    sparse_softmax_cross_entropy,
)
from keras_lstm_scratch.distribution import make_strategy
from keras_lstm_scratch.global_batch_clipping import (
    ClippedSGD,
    GlobalBatchClippedAdam,
    GlobalBatchClippedSGD,
)
from keras_lstm_scratch.language_model import build_language_model, model_parts
from keras_lstm_scratch.lstm_cell import LSTMCell
from keras_lstm_scratch.output_projection import (
    OutputProjection,
    project_with_bias,
)
from keras_lstm_scratch.perplexity import (
    Perplexity,
    PerplexityCallback,
    TokenNLLEvaluator,
    evaluate_token_nll,
)
from keras_lstm_scratch.state_reset import ResetStatesCallback, reset_rnn_states
from keras_lstm_scratch.tied_embedding import TiedEmbedding
from keras_lstm_scratch.time_lstm import TimeLSTM
from keras_lstm_scratch.weight_averaging import (
    AveragedSGD,
    NonMonotoneAveraging,
)
from keras_lstm_scratch.word_dropout import WordDropout

__version__ = "0.2.0"

__all__ = [
    "ActivationRegularization",
    "AveragedSGD",
    "ClippedSGD",
    "GlobalBatchClippedAdam",
    "GlobalBatchClippedSGD",
    "LSTMCell",
    "NonMonotoneAveraging",
    "OutputProjection",
    "Perplexity",
    "PerplexityCallback",
    "ResetStatesCallback",
    "SparseSoftmaxCrossEntropy",
    "TiedEmbedding",
    "TimeLSTM",
    "TokenNLLEvaluator",
    "WordDropout",
    "build_language_model",
    "evaluate_token_nll",
    "make_strategy",
    "model_parts",
    "project_with_bias",
    "reset_rnn_states",
    "sparse_softmax_cross_entropy",
]
