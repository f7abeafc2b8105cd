"""Serving a trained model: in-graph functions and their SavedModel export.

- `server.py`: `LanguageModelServer`, the functions a client calls
  (`serving_default`, `score`, `next_words`, `start`, `step`,
  `generate`, `complete`).
- `signatures.py`: each signature's inputs, their defaults and warmup
  values, declared once.
- `sampling.py`: choosing a token (temperature, top-k, top-p, the
  repetition penalty, a draw independent of the row).
- `generation.py`: `generate`'s loop and where rows stop.
- `request_limits.py`: the memory and id bounds of a request.
- `served_cache.py`: the neural cache over a request's own text.
- `graph_tokenizer.py`: `GraphTokenizer`, the run's tokenisation (words
  or characters) as TensorFlow ops.
- `saved_model.py`: `export_for_serving`, the versioned, atomic SavedModel
  in TF Serving's layout, with warmup requests.
"""

from keras_lstm_scratch.serving.generation import (
    MAX_GENERATED_ROW_TOKENS,
    MAX_GENERATED_TOKENS,
)
from keras_lstm_scratch.serving.saved_model import (
    NEURAL_CACHE_FILE,
    STATES_FILE,
    TOKENIZATION_FILE,
    VOCABULARY_FILE,
    WARMUP_FILE,
    export_for_serving,
    read_neural_cache,
    read_stepping_files,
    read_tokenization,
)
from keras_lstm_scratch.serving.server import LanguageModelServer
from keras_lstm_scratch.serving.signatures import SIGNATURES

__all__ = [
    "MAX_GENERATED_ROW_TOKENS",
    "MAX_GENERATED_TOKENS",
    "NEURAL_CACHE_FILE",
    "SIGNATURES",
    "STATES_FILE",
    "TOKENIZATION_FILE",
    "VOCABULARY_FILE",
    "WARMUP_FILE",
    "LanguageModelServer",
    "export_for_serving",
    "read_neural_cache",
    "read_stepping_files",
    "read_tokenization",
]
