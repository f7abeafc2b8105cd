"""oneDNN's fused LSTM as a TensorFlow op: `TimeLSTM`'s loop on CPUs.

TensorFlow has no fused LSTM for CPUs: a `tf.while_loop` calls a
plain-layout matrix product and separate elementwise kernels at every time
step. oneDNN, which TensorFlow and PyTorch both carry, has an LSTM
primitive that runs a whole sequence in one call (PyTorch's CPU `nn.LSTM`
is that primitive): the input products of all steps merged, the weights
reordered once per sequence into the layout its kernels want, the gates
fused, and in bfloat16 the AMX tiles of recent Xeons. `onednn_lstm.cc`
wraps it as two ops, `OnednnLstm` and `OnednnLstmGrad`.

The op is built from source at its first use, once per machine, with the
C++ compiler on the `PATH` (`$CXX` to choose another), TensorFlow's
headers (from its wheel) and oneDNN's (the `onednn-devel-cpu-gomp`
wheel), into `<cache>/onednn_lstm/` (`data/cache.py`); a later process
loads it. Where it cannot be built or loaded (no compiler, another
platform), `fused_lstm_library()` returns `None` after one line on
stderr that says why, and `TimeLSTM` runs its own loop.
`KERAS_LSTM_SCRATCH_ONEDNN=0` turns the op off.
"""

import hashlib
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

from keras_lstm_scratch.data.cache import default_cache_dir

SOURCE = pathlib.Path(__file__).with_name("onednn_lstm.cc")
# "0" keeps TimeLSTM on its own loop everywhere.
ONEDNN_ENV = "KERAS_LSTM_SCRATCH_ONEDNN"
ONEDNN_HEADERS = "onednn-devel-cpu-gomp"
ONEDNN_LIBRARY = "onednn-cpu-gomp"

# The loaded op library, or the reason there is none; filled once.
_loaded = {}


class OpUnavailableError(RuntimeError):
    """Why the fused op cannot be built or loaded here."""


def fused_lstm_library():
    """The op library (`onednn_lstm`, `onednn_lstm_grad`), or `None`.

    Built on the first call of the machine, loaded on the first call of
    the process; where it cannot be, `None` and one line on stderr.
    """
    if "library" not in _loaded:
        try:
            _loaded["library"] = load_library()
        except OpUnavailableError as error:
            _loaded["library"] = None
            _loaded["reason"] = str(error)
            if os.environ.get(ONEDNN_ENV) != "0":
                print(
                    "note: TimeLSTM runs its own loop: the fused oneDNN LSTM "
                    f"is unavailable ({error}).",
                    file=sys.stderr,
                )
    return _loaded["library"]


def unavailable_reason():
    """Why `fused_lstm_library()` is `None` (`None` when it is not)."""
    fused_lstm_library()
    return _loaded.get("reason")


def load_library():
    """Builds the op if it is not built yet, loads it, registers its
    gradient; raises `OpUnavailableError` saying why it cannot."""
    if os.environ.get(ONEDNN_ENV) == "0":
        raise OpUnavailableError(f"{ONEDNN_ENV}=0")
    if sys.platform != "linux":
        raise OpUnavailableError(f"built on Linux only, not {sys.platform}")
    path = built_library_path()
    if not path.exists():
        build(path)
    try:
        library = tf.load_op_library(str(path))
    except (tf.errors.NotFoundError, OSError) as error:
        raise OpUnavailableError(f"{path} does not load: {error}") from None
    tf.RegisterGradient("OnednnLstm")(fused_lstm_gradient(library))
    return library


def onednn_directories():
    """oneDNN's include and library folders, from its installed wheels."""

    def located(distribution, name):
        try:
            files = importlib.metadata.distribution(distribution).files or []
        except importlib.metadata.PackageNotFoundError:
            raise OpUnavailableError(
                f"the {distribution} package is not installed"
            ) from None
        for file in files:
            if str(file).endswith(name):
                return pathlib.Path(file.locate()).resolve()
        raise OpUnavailableError(f"{distribution} has no {name}")

    header = located(ONEDNN_HEADERS, "oneapi/dnnl/dnnl.hpp")
    library = located(ONEDNN_LIBRARY, "libdnnl.so.3")
    return header.parents[2], library.parent


def built_library_path():
    """Where this source, TensorFlow and oneDNN's build of the op goes."""
    include, library = onednn_directories()
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), tf.__version__, str(include)):
        key.update(part if isinstance(part, bytes) else part.encode())
    folder = pathlib.Path(default_cache_dir(), "onednn_lstm")
    return folder / key.hexdigest()[:16] / "onednn_lstm.so"


def build(path):
    """Compiles `onednn_lstm.cc` into `path` (written whole, then renamed)."""
    compiler = os.environ.get("CXX") or shutil.which("c++")
    if not compiler:
        raise OpUnavailableError("no C++ compiler: c++ is not on the PATH")
    include, library = onednn_directories()
    path.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"note: building the fused oneDNN LSTM into {path} (once).",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(dir=path.parent) as staging:
        staged = os.path.join(staging, path.name)
        command = [
            compiler, "-O2", "-w", "-shared", "-fPIC", str(SOURCE),
            "-o", staged, *tf.sysconfig.get_compile_flags(),
            f"-I{include}", f"-L{library}", "-l:libdnnl.so.3",
            f"-Wl,-rpath,{library}", *tf.sysconfig.get_link_flags(),
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:
            raise OpUnavailableError(f"{compiler}: {error}") from None
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["no message"]
            raise OpUnavailableError(f"{compiler} failed: {lines[-1].strip()}")
        os.replace(staged, path)


def fused_lstm_gradient(library):
    """The gradient of `OnednnLstm`: `OnednnLstmGrad`, cast to the inputs'.

    A call made with `training=False` kept no workspace: its gradient runs
    the forward again, keeping one.
    """

    def gradient(op, d_hs, d_h, d_c, _):
        outputs = op.outputs
        if not op.get_attr("training"):
            outputs = library.onednn_lstm(*op.inputs, training=True)
        upstream = [
            tf.cast(tf.zeros_like(out) if grad is None else grad, "float32")
            for grad, out in zip((d_hs, d_h, d_c), outputs, strict=False)
        ]
        grads = library.onednn_lstm_grad(*op.inputs, *outputs, *upstream)
        return [
            tf.cast(grad, x.dtype)
            for grad, x in zip(grads, op.inputs, strict=True)
        ]

    return gradient


def onednn_lstm(
    sequences, h0, c0, kernel, recurrent_kernel, bias, training=True
):
    """One LSTM layer over a time-major sequence, by oneDNN's primitive.

    The arithmetic of `LSTMCell` (gates i, f, g, o; sigmoid and tanh) in
    float32, or in bfloat16 with the cell state and the bias in float32.

    Args:
        sequences: `(time, batch, features)`, float32 or bfloat16.
        h0, c0: `(batch, units)`.
        kernel: `W`, `(features, 4*units)`.
        recurrent_kernel: `U`, `(units, 4*units)`.
        bias: `(4*units,)`.
        training: Keep what the backward pass reads (`False`: a faster
            forward; a gradient, if one is asked for, runs it again).

    Returns:
        `(hs, h, c)`: every step's `h` `(time, batch, units)` in the
        sequences' dtype, and the final states in `h0`'s and `c0`'s.
    """
    dtype = sequences.dtype
    hs, h, c, _ = fused_lstm_library().onednn_lstm(
        sequences,
        tf.cast(h0, dtype),
        tf.cast(c0, "float32"),
        tf.cast(kernel, dtype),
        tf.cast(recurrent_kernel, dtype),
        tf.cast(bias, "float32"),
        training=training,
    )
    return hs, tf.cast(h, h0.dtype), tf.cast(c, c0.dtype)
