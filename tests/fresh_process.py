"""Runs code in a fresh Python process that has TensorFlow but not this
package on its path, as TF Serving or a client would load an export."""

import os
import subprocess
import sys


def run_tensorflow_only(code, *arguments):
    """Runs `code` with `arguments` as `sys.argv[1:]`; returns the
    completed process, asserting that it exited with status 0."""
    completed = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        cwd="/",
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed
