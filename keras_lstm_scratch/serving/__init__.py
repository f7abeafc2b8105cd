"""Serving a trained model: in-graph functions and their SavedModel export.

- `server.py`: `LanguageModelServer`, the functions a client calls
  (`score`, `next_words`, `step`, `generate`, `serving_default`).
- `graph_tokenizer.py`: `GraphTokenizer`, the run's tokenisation (words
  or characters) as TensorFlow ops.
- `saved_model.py`: `export_for_serving`, the versioned, atomic SavedModel
  in TF Serving's layout, with warmup requests.
"""

from keras_lstm_scratch.serving.saved_model import (
    NEURAL_CACHE_FILE,
    TOKENIZATION_FILE,
    WARMUP_FILE,
    export_for_serving,
    read_neural_cache,
    read_tokenization,
)
from keras_lstm_scratch.serving.server import (
    MAX_GENERATED_TOKENS,
    SIGNATURES,
    LanguageModelServer,
)

__all__ = [
    "MAX_GENERATED_TOKENS",
    "NEURAL_CACHE_FILE",
    "SIGNATURES",
    "TOKENIZATION_FILE",
    "WARMUP_FILE",
    "LanguageModelServer",
    "export_for_serving",
    "read_neural_cache",
    "read_tokenization",
]
