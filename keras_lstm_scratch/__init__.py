"""A from-scratch LSTM language model for Keras 3 / TensorFlow.

The layers read like the book's chapter 6: `LSTMCell` (one step) ->
`TimeLSTM` (the loop over time) -> `build_language_model` (the model).
The folders are grouped as Keras groups its own: `layers`, `losses`,
`metrics`, `optimizers`, `callbacks`; `data` makes the corpus and its
windows, `evaluation` scores a trained model (and adapts it to the text
as it reads), `serving` serves and exports it, and `inspection` looks
inside it. Every public name is importable from here.
"""

from keras_lstm_scratch.callbacks import (
    NonMonotoneAveraging,
    PerplexityCallback,
    ResetStatesCallback,
)
from keras_lstm_scratch.distribution import make_strategy
from keras_lstm_scratch.evaluation.token_nll import (
    TokenNLLEvaluator,
    evaluate_token_nll,
)
from keras_lstm_scratch.language_model import (
    build_language_model,
    carried_state,
    model_parts,
    reset_rnn_states,
    restore_carried_state,
)
from keras_lstm_scratch.layers import (
    ActivationRegularization,
    LSTMCell,
    OutputProjection,
    TiedEmbedding,
    TimeLSTM,
    WordDropout,
    project_with_bias,
)
from keras_lstm_scratch.losses import (
    SparseSoftmaxCrossEntropy,
    sparse_softmax_cross_entropy,
)
from keras_lstm_scratch.metrics import Perplexity
from keras_lstm_scratch.optimizers import (
    AveragedSGD,
    ClippedSGD,
    GlobalBatchClippedAdam,
    GlobalBatchClippedSGD,
)

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
    "restore_carried_state",
    "carried_state",
    "sparse_softmax_cross_entropy",
]
