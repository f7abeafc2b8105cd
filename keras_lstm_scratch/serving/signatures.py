"""The serving signatures, each declared once: inputs, defaults, warmup.

`LanguageModelServer.function` builds each signature's `tf.function`
from its declaration, the export writes them and their warmup requests
from it, and `training.generate` calls `generate` by it.

The rule that keeps every client working (docs/serving.md, "Clients of
earlier exports"): a signature's inputs never change once exported. An
input added later (only `use_cache` ever was) has a default, written into
the SavedModel's `SignatureDef.defaults`, so TF Serving runs a request
that leaves it out (one written for an earlier export) as before; new
options come as a new signature (`complete`), whose inputs all have
defaults but `prompts`. Outputs are only ever added.
"""

import dataclasses
import inspect

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Input:
    """One input of a signature.

    Args:
        name: The input's name in requests.
        dtype: Its `tf.DType`.
        shape: Its shape, `None` for any length.
        example: The value of the warmup request; a callable
            `(num_layers, units) -> value` for the LSTM states.
        default: The value a request may leave out, or `None`: required
            (an input of the first export).
    """

    name: str
    dtype: tf.DType
    shape: tuple
    example: object
    default: object = None

    @property
    def spec(self):
        return tf.TensorSpec(self.shape, self.dtype, name=self.name)

    @property
    def required(self):
        return self.default is None

    def default_tensor(self):
        return tf.constant(
            self.default, self.dtype, shape=self.shape_of_default
        )

    @property
    def shape_of_default(self):
        return [0] if self.shape == (None,) else self.shape

    def example_value(self, num_layers, units):
        if callable(self.example):
            return self.example(num_layers, units)
        return np.array(self.example, self.dtype.as_numpy_dtype)


def zero_states(num_layers, units):
    return np.zeros((num_layers, 1, units), np.float32)


USE_CACHE = Input("use_cache", tf.bool, (), False, default=False)

SIGNATURES = {
    "serving_default": (
        Input("token_ids", tf.int32, (None, None), [[1, 2, 3]]),
    ),
    "score": (
        Input("sentences", tf.string, (None,), [b"the company said"]),
        USE_CACHE,
    ),
    "next_words": (
        Input("prompts", tf.string, (None,), [b"the company"]),
        Input("k", tf.int32, (), 3),
        USE_CACHE,
    ),
    # New with complete: where step continues after each prompt.
    "start": (Input("prompts", tf.string, (None,), [b"the company"]),),
    "step": (
        Input("token_ids", tf.int32, (None,), [1]),
        # h and c of every layer: (num_layers, batch, units).
        Input("h", tf.float32, (None, None, None), zero_states),
        Input("c", tf.float32, (None, None, None), zero_states),
    ),
    "generate": (
        Input("prompts", tf.string, (None,), [b"the company"]),
        Input("max_tokens", tf.int32, (), 3),
        Input("temperature", tf.float32, (), 1.0),
        Input("top_k", tf.int32, (), 10),
        Input("seed", tf.int64, (), 0),
        USE_CACHE,
    ),
    # New in the export that added top-p, stopping and several samples:
    # every option but the prompts has a default.
    "complete": (
        Input("prompts", tf.string, (None,), [b"the company"]),
        Input("max_tokens", tf.int32, (), 3, default=50),
        Input("temperature", tf.float32, (), 1.0, default=1.0),
        Input("top_k", tf.int32, (), 10, default=0),
        Input("top_p", tf.float32, (), 0.9, default=1.0),
        Input("repetition_penalty", tf.float32, (), 1.2, default=1.0),
        Input("seed", tf.int64, (), 0, default=0),
        Input("num_samples", tf.int32, (), 2, default=1),
        Input("stop_at_eos", tf.bool, (), True, default=False),
        Input("stop_texts", tf.string, (None,), [b"."], default=[]),
        USE_CACHE,
    ),
}


def signature_function(name, method):
    """`method` as the `tf.function` of signature `name`: its inputs'
    specs, and each added input's default as a default argument (a
    tensor, so that the SavedModel records it)."""
    parameters = [
        inspect.Parameter(
            declared.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            **(
                {}
                if declared.required
                else {"default": declared.default_tensor()}
            ),
        )
        for declared in SIGNATURES[name]
    ]

    def call(*args, **kwargs):
        return method(*args, **kwargs)

    call.__signature__ = inspect.Signature(parameters)
    call.__name__ = name
    return tf.function(
        call, input_signature=input_signature(name), autograph=False
    )


def input_signature(name):
    """The `tf.TensorSpec`s of signature `name`, in order."""
    return [declared.spec for declared in SIGNATURES[name]]


def warmup_inputs(num_layers, units, use_cache=False):
    """One small, valid request per signature: `{signature: {input:
    value}}`, every input given; `use_cache` for those that take it."""
    return {
        name: {
            declared.name: (
                np.array(use_cache)
                if declared is USE_CACHE
                else declared.example_value(num_layers, units)
            )
            for declared in inputs
        }
        for name, inputs in SIGNATURES.items()
    }
