"""Optimizers: global-batch gradient clipping and weight averaging."""

from keras_lstm_scratch.optimizers.global_batch_clipping import (
    ClippedSGD,
    GlobalBatchClippedAdam,
    GlobalBatchClippedSGD,
)
from keras_lstm_scratch.optimizers.weight_averaging import (
    AveragedSGD,
)

__all__ = [
    "AveragedSGD",
    "ClippedSGD",
    "GlobalBatchClippedAdam",
    "GlobalBatchClippedSGD",
]
