"""Corpora and truncated-BPTT batching for language modelling."""

from keras_lstm_scratch.data.batching import (
    count_targets,
    tbptt_dataset,
    tbptt_windows,
)
from keras_lstm_scratch.data.corpus import Corpus
from keras_lstm_scratch.data.prepared_corpus import (
    load_text_corpus,
    prepare_corpus,
)
from keras_lstm_scratch.data.ptb import load_ptb
from keras_lstm_scratch.data.text_files import read_tokens
from keras_lstm_scratch.data.text_sources import text_source
from keras_lstm_scratch.data.tfds import load_tfds_corpus
from keras_lstm_scratch.data.tokenization import Tokenization
from keras_lstm_scratch.data.vocabulary import Vocabulary

__all__ = [
    "Corpus",
    "Tokenization",
    "Vocabulary",
    "count_targets",
    "load_ptb",
    "load_text_corpus",
    "load_tfds_corpus",
    "prepare_corpus",
    "read_tokens",
    "tbptt_dataset",
    "tbptt_windows",
    "text_source",
]
