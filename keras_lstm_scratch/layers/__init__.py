"""The layers of the language model, one per module."""

from keras_lstm_scratch.layers.activation_regularization import (
    ActivationRegularization,
)
from keras_lstm_scratch.layers.lstm_cell import (
    LSTMCell,
)
from keras_lstm_scratch.layers.output_projection import (
    OutputProjection,
    project_with_bias,
)
from keras_lstm_scratch.layers.tied_embedding import (
    TiedEmbedding,
)
from keras_lstm_scratch.layers.time_lstm import (
    TimeLSTM,
)
from keras_lstm_scratch.layers.word_dropout import (
    WordDropout,
)

__all__ = [
    "ActivationRegularization",
    "LSTMCell",
    "OutputProjection",
    "TiedEmbedding",
    "TimeLSTM",
    "WordDropout",
    "project_with_bias",
]
