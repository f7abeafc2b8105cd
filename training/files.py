"""Writing run files so that a kill never leaves one half-written."""

import os


def write_atomically(path, text):
    """Writes `text` to `path` (str or path-like) via a temporary file."""
    staging = os.fspath(path) + ".tmp"
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
