"""What every command-line tool of the application shares.

- A quiet start: TensorFlow's C++ start-up log (CUDA probing on a machine
  without a GPU, oneDNN and XLA notes) and the Python log warnings of
  TensorFlow and TensorFlow Datasets read as failures to a newcomer, so
  they are hidden unless the user sets `TF_CPP_MIN_LOG_LEVEL` themselves.
- One line per user mistake: `InputError` becomes `error: ...` on stderr
  and exit status 2; any other exception is a bug and keeps its traceback.
"""

import contextlib
import functools
import os
import sys

LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def quiet_tensorflow_start():
    """Imports TensorFlow with its log hidden.

    Does nothing when the user set `TF_CPP_MIN_LOG_LEVEL` (they asked for
    the log) or TensorFlow is already imported. Level 3 hides the C++ info,
    warning and error lines; the few lines TensorFlow writes while loading
    its libraries, before its logging starts, ignore the level, so standard
    error is closed for the import alone. Failures still raise: a Python
    exception is printed after standard error is back. The Python `absl`
    log (TensorFlow's and TensorFlow Datasets' warnings) shows errors only.
    """
    if LOG_LEVEL_ENV in os.environ or "tensorflow" in sys.modules:
        return
    os.environ[LOG_LEVEL_ENV] = "3"
    with stderr_closed():
        import tensorflow  # noqa: F401
    from absl import logging

    logging.set_verbosity(logging.ERROR)


@contextlib.contextmanager
def stderr_closed():
    """Sends file descriptor 2 (C++ writes included) to the null device."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def one_line(error):
    """The error's message on one line: `error: ...`."""
    return "error: " + " ".join(str(error).split("\n")).strip()


def reports_input_errors(main):
    """Decorates a CLI's `main`: a user's mistake is one line and exit 2."""
    # Imported here: the package imports TensorFlow, which must start quietly.
    from keras_lstm_scratch.errors import InputError

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except InputError as error:
            print(one_line(error), file=sys.stderr)
            return 2

    return wrapper
