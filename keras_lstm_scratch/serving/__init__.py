"""Serving a trained model: in-graph functions and their SavedModel export.

- `server.py`: `LanguageModelServer`, the functions a client calls
  (`score`, `next_words`, `step`, `generate`, `serving_default`).
- `saved_model.py`: `export_for_serving`, the versioned, atomic SavedModel
  in TF Serving's layout, with warmup requests.
"""

from keras_lstm_scratch.serving.saved_model import (
    WARMUP_FILE,
    export_for_serving,
)
from keras_lstm_scratch.serving.server import (
    MAX_GENERATED_TOKENS,
    SIGNATURES,
    LanguageModelServer,
)

__all__ = [
    "MAX_GENERATED_TOKENS",
    "SIGNATURES",
    "WARMUP_FILE",
    "LanguageModelServer",
    "export_for_serving",
]
