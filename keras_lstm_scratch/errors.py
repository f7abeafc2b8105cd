"""Errors that mean "what you gave cannot be used", not "there is a bug".

Each one is also the built-in error a Keras user expects (`ValueError`,
`FileNotFoundError`, `FileExistsError`, `OSError`, `RuntimeError`), so
code that catches those keeps working. The command-line tools catch
`InputError` alone and print it as one line, `error: ...`, with exit
status 2; any other exception is a bug and keeps its traceback.
"""


class InputError(Exception):
    """A file, folder or value given by the user that cannot be used.

    The message names the file or value and says what to do about it.
    """


class InvalidInputError(InputError, ValueError):
    """A value, file content or folder content that cannot be used."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder that is needed and not there."""


class ExistingOutputError(InputError, FileExistsError):
    """An output that exists and is never overwritten."""


class OutputWriteError(InputError, OSError):
    """An output that cannot be written: a full disk, a read-only file
    system, a folder without write permission.

    The message names the file, the system's reason and what was kept
    (`staged_write.reported_write_failure` writes it).
    """


class BackendError(InputError, RuntimeError):
    """A TensorFlow-only part (the SavedModel export, `tf.distribute`)
    called under another Keras backend; the message says where to run it."""
