"""SavedModel export in TF Serving's layout, with warmup requests."""

import contextlib
import json
import os
import re

import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_tensorflow_backend
from keras_lstm_scratch.data.tokenization import WORD_TOKENS, Tokenization
from keras_lstm_scratch.errors import ExistingOutputError, InvalidInputError
from keras_lstm_scratch.evaluation import NeuralCache
from keras_lstm_scratch.serving.server import LanguageModelServer
from keras_lstm_scratch.serving.signatures import SIGNATURES, warmup_inputs
from keras_lstm_scratch.staged_write import staged_folder

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# `{"tokens": "words"}` or `{"tokens": "chars"}`: how the export reads text.
TOKENIZATION_FILE = os.path.join("assets.extra", "tokenization.json")
# The vocabulary, a token per id (a client that streams with `step` turns
# ids into text with it), and the states `step` takes: `{"num_layers": L,
# "units": U}` for `(L, batch, U)` zeros.
VOCABULARY_FILE = os.path.join("assets.extra", "vocabulary.json")
STATES_FILE = os.path.join("assets.extra", "states.json")
# The neural cache settings of `use_cache=true` (absent: no cache).
NEURAL_CACHE_FILE = os.path.join("assets.extra", "neural_cache.json")
# What TensorFlow's file system answers for a full disk (RESOURCE_EXHAUSTED,
# OUT_OF_RANGE for a file over RLIMIT_FSIZE), a read-only one
# (FAILED_PRECONDITION) or a missing permission.
FAILED_WRITE_CODES = {
    tf.errors.RESOURCE_EXHAUSTED,
    tf.errors.OUT_OF_RANGE,
    tf.errors.FAILED_PRECONDITION,
    tf.errors.PERMISSION_DENIED,
}


def tensorflow_write_reason(error):
    """The system's reason in a TensorFlow file error: `File too large`."""
    # "...{{function_node ...}} PATH; File too large [Op:SaveV2]"
    reason = error.message.rsplit("; ", 1)[-1]
    return re.sub(r"\s*\[Op:\w+\]$", "", reason).strip()


def write_warmup_requests(path, model_name, num_layers, units, use_cache):
    """Writes a TFRecord of `PredictionLog`s, one per signature."""
    from tensorflow_serving.apis import (
        model_pb2,
        predict_pb2,
        prediction_log_pb2,
    )

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        requests = warmup_inputs(num_layers, units, use_cache)
        for signature, inputs in requests.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(
                    name=model_name, signature_name=signature
                )
            )
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def write_saved_model(model, words, path, tokenization=WORD_TOKENS, cache=None):
    """Writes the serving SavedModel of `model` and `words` to `path`.

    Signatures: `serving_default`, `score`, `next_words`, `step`,
    `generate` (see `server.py` and `docs/serving.md` for their inputs),
    reading text as `tokenization` does, with the `NeuralCache` `cache`
    (or none) for `use_cache=true`.
    """
    server = LanguageModelServer(model, words, tokenization, cache)
    # tf.saved_model.save, not keras.export.ExportArchive: the archive
    # saves concrete functions, which drop the inputs' defaults that keep
    # earlier clients working (`signatures.py`).
    root = tf.Module()
    # The variables the functions read: the model's, or those of its
    # float32 copy (`computing_in_float32`).
    root.model_variables = [
        variable.value for variable in server.model.variables
    ]
    root.word_table = server.word_table
    functions = {name: server.function(name) for name in SIGNATURES}
    for name, function in functions.items():
        setattr(root, name, function)
    tf.saved_model.save(root, path, signatures=functions)
    return server


def write_cache_settings(saved_model_dir, cache):
    """Records `cache`'s settings in `assets.extra/neural_cache.json`."""
    with open(
        os.path.join(saved_model_dir, NEURAL_CACHE_FILE), "w", encoding="utf-8"
    ) as handle:
        json.dump(cache.get_config(), handle, indent=2)


def write_stepping_files(saved_model_dir, words, server):
    """`assets.extra/vocabulary.json` and `states.json`."""
    files = {
        VOCABULARY_FILE: list(words),
        STATES_FILE: {"num_layers": server.num_layers, "units": server.units},
    }
    for name, content in files.items():
        path = os.path.join(saved_model_dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(content, handle, ensure_ascii=False)


def read_stepping_files(saved_model_dir):
    """`(words, states)` of `write_stepping_files`, or `None` for an
    export made before them."""
    contents = []
    for name in (VOCABULARY_FILE, STATES_FILE):
        path = os.path.join(saved_model_dir, name)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            contents.append(json.load(handle))
    return tuple(contents)


def next_version(model_dir):
    """One more than the highest integer version folder (1 if none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(name) for name in os.listdir(model_dir) if name.isdigit()]
    return max(versions, default=0) + 1


def read_tokenization(saved_model_dir):
    """The `Tokenization` an export records (words for one made before)."""
    path = os.path.join(saved_model_dir, TOKENIZATION_FILE)
    if not os.path.isfile(path):
        return WORD_TOKENS
    return Tokenization.load(path)


def read_neural_cache(saved_model_dir):
    """The `NeuralCache` an export carries, or `None`."""
    path = os.path.join(saved_model_dir, NEURAL_CACHE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return NeuralCache.from_config(json.load(handle))


def export_for_serving(
    model,
    words,
    export_root,
    name,
    version=None,
    tokenization=WORD_TOKENS,
    cache=None,
):
    """Exports to `export_root/name/version/`, atomically, never overwriting.

    The SavedModel and its warmup file are written into a temporary folder
    beside the version folders (TF Serving ignores names that are not
    integers) and renamed into place only when complete, so a server that
    polls the folder never sees a half-written version, and an interrupted
    export leaves none.

    Args:
        model: A trained model from `build_language_model`.
        words: Its vocabulary, a word per id.
        export_root: Root folder, e.g. `saved_models`.
        name: Model name (TF Serving's `model_name`).
        version: Positive integer, or `None` for the next free version.
        tokenization: How the model reads text (words by default); the
            export records it in `assets.extra/tokenization.json`.
        cache: Optional `NeuralCache`: what `use_cache=true` reads a
            request's text with (`assets.extra/neural_cache.json`);
            `None`: the export has no cache.

    Returns:
        The path of the new version folder.

    Raises:
        ExistingOutputError: (a `FileExistsError`) if the version exists.
        InvalidInputError: (a `ValueError`) for a version that is not a
            positive integer.
        OutputWriteError: (an `OSError`) if the folder cannot be written
            (full disk, read-only, no permission); no version is left.
        BackendError: (a `RuntimeError`) under a Keras backend other than
            TensorFlow.
    """
    check_tensorflow_backend(
        "export_for_serving writes a TensorFlow SavedModel: save the model "
        "as .keras, load it in a TensorFlow process and export it there"
    )
    model_dir = os.path.join(export_root, name)
    target = os.path.join(model_dir, str(new_version(model_dir, version)))
    kept = "No version was written; the existing versions are unchanged."
    with staged_folder(target, kept) as staging:
        with tensorflow_write_failures():
            server = write_saved_model(
                model, words, staging, tokenization, cache
            )
            write_warmup_requests(
                os.path.join(staging, WARMUP_FILE),
                name,
                server.num_layers,
                server.units,
                use_cache=cache is not None,
            )
        tokenization.save(os.path.join(staging, TOKENIZATION_FILE))
        write_stepping_files(staging, words, server)
        if cache is not None:
            write_cache_settings(staging, cache)
    return target


def new_version(model_dir, version):
    """`version`, checked to be new, or the next free one for `None`."""
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInputError(
            f"version must be a positive integer; received {version!r}."
        )
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target):
        raise ExistingOutputError(
            f"{target} exists; versions are never overwritten. Pick another "
            "--version or leave it out for the next free one."
        )
    return version


@contextlib.contextmanager
def tensorflow_write_failures():
    """Turns TensorFlow's failed file writes (`OpError`s) into `OSError`s."""
    try:
        yield
    except tf.errors.OpError as error:
        if error.error_code not in FAILED_WRITE_CODES:
            raise
        raise OSError(tensorflow_write_reason(error)) from error
