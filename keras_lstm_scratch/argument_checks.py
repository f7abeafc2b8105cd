"""Argument checks shared by the package's layers and builders."""

import math
import numbers

import keras

from keras_lstm_scratch.errors import BackendError


def check_positive_int(name, value):
    """Returns `value` if it is a positive integer, else raises.

    Args:
        name: Argument name, quoted in the error.
        value: The value received.

    Returns:
        `value` as a Python `int`.

    Raises:
        TypeError: if `value` is not an integer (booleans included).
        ValueError: if `value` is not positive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be a positive integer; received {value!r} "
            f"of type {type(value).__name__}."
        )
    if value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer; received {name}={value}."
        )
    return int(value)


def check_rate(name, value):
    """Returns `value` if it is a float in [0, 1), else raises.

    Args:
        name: Argument name, quoted in the error.
        value: The value received.

    Returns:
        `value` as a Python `float`.

    Raises:
        TypeError: if `value` is not a real number.
        ValueError: if `value` is outside [0, 1).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a float in [0, 1); received {value!r} "
            f"of type {type(value).__name__}."
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"`{name}` must be in [0, 1); received {name}={value}."
        )
    return float(value)


def check_non_negative(name, value):
    """Returns `value` if it is a finite real number >= 0, else raises.

    Args:
        name: Argument name, quoted in the error.
        value: The value received.

    Returns:
        `value` as a Python `float`.

    Raises:
        TypeError: if `value` is not a real number.
        ValueError: if `value` is negative, NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a finite number >= 0; received {value!r} "
            f"of type {type(value).__name__}."
        )
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"`{name}` must be a finite number >= 0; received {name}={value}."
        )
    return float(value)


def check_float_inputs(layer_name, inputs):
    """Raises `TypeError` unless `inputs` has a floating-point dtype."""
    if not keras.backend.is_float_dtype(inputs.dtype):
        raise TypeError(
            f"{layer_name} expects floating-point inputs; received dtype "
            f"{inputs.dtype}. Embed integer token ids first (e.g. with "
            "TiedEmbedding or keras.layers.Embedding)."
        )


def check_tensorflow_backend(what):
    """Raises `BackendError` unless Keras runs on TensorFlow.

    Args:
        what: The part that needs it and the way out, e.g. "the SavedModel
            export: load the .keras file in a TensorFlow process".
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(
            f"{what} (this process runs Keras on {backend!r}; set "
            "KERAS_BACKEND=tensorflow)."
        )
