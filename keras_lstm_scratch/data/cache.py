"""Where the package keeps what it downloads and what it prepares.

- `default_cache_dir()`: `$KERAS_LSTM_SCRATCH_CACHE`, else
  `~/.cache/keras_lstm_scratch`; the PTB download goes to `ptb/` in it.
- `prepared_cache_dir()`: `$KERAS_LSTM_SCRATCH_PREPARED_DIR`, else
  `prepared/` in the cache: corpora prepared into token ids
  (`prepared_corpus.py`), one folder per text.
"""

import os

# Root of the download cache; default ~/.cache/keras_lstm_scratch.
CACHE_DIR_ENV = "KERAS_LSTM_SCRATCH_CACHE"
# Where prepared corpora go; default <cache>/prepared.
PREPARED_DIR_ENV = "KERAS_LSTM_SCRATCH_PREPARED_DIR"


def default_cache_dir():
    """The download cache root: `$KERAS_LSTM_SCRATCH_CACHE` or ~/.cache/..."""
    return os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_lstm_scratch"
    )


def prepared_cache_dir():
    """The folder of prepared corpora (see the module docstring)."""
    return os.environ.get(PREPARED_DIR_ENV) or os.path.join(
        default_cache_dir(), "prepared"
    )
