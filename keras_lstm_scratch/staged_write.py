"""Writing a file or a folder whole: staged beside its place, then renamed.

A reader (TF Serving polling a model folder, a resumed run, the next
download) sees the old state or the complete new one, never half of it. A
write that fails removes what it staged and raises one `OutputWriteError`
that names the path, the system's reason and what was kept. `sha256_of`
is the hash a written file is checked against when it is read back.

Example:

>>> with staged_file("run/best.keras", kept) as staging:
...     model.save(staging)  # run/best.staging.keras, then renamed
"""

import contextlib
import hashlib
import os
import shutil
import tempfile

from keras_lstm_scratch.errors import (
    ExistingOutputError,
    InputError,
    OutputWriteError,
)


def sha256_of(path):
    """Returns the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def reported_write_failure(path, kept):
    """Turns an `OSError` while writing `path` into an `OutputWriteError`.

    An `InputError` (already a message for the user) passes unchanged.

    Args:
        path: The file or folder being written.
        kept: A sentence saying what is left as it was and what to do.
    """
    try:
        yield
    except InputError:
        raise
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputWriteError(
            f"cannot write {os.fspath(path)}: {reason}. {kept}"
        ) from error


def staging_path(path):
    """`run/best.keras` -> `run/best.staging.keras`: beside it, same suffix.

    The suffix stays because writers choose the format by it (`model.save`
    wants `.keras`, Matplotlib's `savefig` reads `.png`).
    """
    stem, suffix = os.path.splitext(os.fspath(path))
    return f"{stem}.staging{suffix}"


@contextlib.contextmanager
def staged_file(path, kept):
    """Yields a staging name to write `path` to; renames it into place.

    Args:
        path: The file to write (str or path-like).
        kept: What a failure leaves as it was (see `reported_write_failure`).

    Raises:
        OutputWriteError: if the file cannot be written; `path` is as it
            was and the staging file is gone.
    """
    staging = staging_path(path)
    with reported_write_failure(path, kept):
        try:
            yield staging
            os.replace(staging, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(staging)
            raise


def write_text(path, text, kept):
    """Writes `text` to `path` whole (UTF-8, flushed to disk, renamed)."""
    with staged_file(path, kept) as staging:
        with open(staging, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def staged_folder(path, kept):
    """Yields a new staging folder beside `path`; renames it to `path`.

    The staging folder's name starts with a dot, so folder watchers that
    take integer names only (TF Serving's versions) never see it.

    Args:
        path: The folder to create; it must not exist when the writing ends.
        kept: What a failure leaves as it was (see `reported_write_failure`).

    Raises:
        ExistingOutputError: if `path` appeared while the folder was staged.
        OutputWriteError: if the folder cannot be written; nothing is left.
    """
    path = os.fspath(path)
    parent = os.path.dirname(path) or "."
    with reported_write_failure(parent, kept):
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(
            prefix=f".{os.path.basename(path)}.staging-", dir=parent
        )
    try:
        with reported_write_failure(path, kept):
            yield staging
            if os.path.exists(path):
                raise ExistingOutputError(
                    f"{path} appeared while it was being written; {kept}"
                )
            os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
