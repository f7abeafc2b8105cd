"""Evaluating a trained model, and lowering its perplexity from the text.

- `token_nll.py`: `TokenNLLEvaluator` and `evaluate_token_nll`, a model's
  token-weighted negative log-likelihood over a dataset (static
  evaluation: the figure perplexity is taken from).

Adaptive evaluation, no retraining:

- `stream_model.py`: `StreamModel` (a model's layers with explicit states),
  `score_stream`, one pass over a long stream (or B parallel ones) keeping
  each token's log-probability and the top layer's hidden vector, and
  `stream_nll`, the same pass keeping only the total.
- `neural_cache.py`: `NeuralCache`, the continuous cache of Grave et al.
  (2016) over those hidden vectors.
- `dynamic_evaluation.py`: `DynamicEvaluation`, the gradient steps of
  Krause et al. (2018) on a copy of the model as it reads, and
  `gradient_rms`, the training-text statistics of its RMS rule.

Both combine: a `NeuralCache` reads the hidden vectors of a
`DynamicEvaluation` pass as readily as those of `score_stream`.
"""

from keras_lstm_scratch.evaluation.dynamic_evaluation import (
    DynamicEvaluation,
    gradient_rms,
)
from keras_lstm_scratch.evaluation.neural_cache import NeuralCache
from keras_lstm_scratch.evaluation.stream_model import (
    StreamModel,
    StreamScores,
    score_stream,
    stream_nll,
)
from keras_lstm_scratch.evaluation.token_nll import (
    TokenNLLEvaluator,
    evaluate_token_nll,
)

__all__ = [
    "DynamicEvaluation",
    "NeuralCache",
    "StreamModel",
    "StreamScores",
    "TokenNLLEvaluator",
    "evaluate_token_nll",
    "gradient_rms",
    "score_stream",
    "stream_nll",
]
