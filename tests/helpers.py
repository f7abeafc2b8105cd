"""Helpers shared by the test modules: small runs and their command lines."""

import csv
import os
import subprocess
import sys

from training.config import resolve_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The `tiny` preset made smaller still, for runs of a few seconds.
SMALL = {
    "embedding_dim": 16,
    "hidden_units": 16,
    "batch_size": 4,
    "seq_len": 10,
    "learning_rate": 5.0,
}


def small_config(corpus_dir, **overrides):
    return resolve_config(
        "tiny", {**SMALL, "corpus": f"text:{corpus_dir}", **overrides}
    )


def read_history(output_dir):
    with open(os.path.join(output_dir, "history.csv")) as handle:
        return list(csv.DictReader(handle))


def train_command(corpus_dir, output_dir, epochs):
    return [
        sys.executable,
        "-m",
        "training.train",
        "--preset",
        "tiny",
        "--output-dir",
        output_dir,
        "--epochs",
        str(epochs),
        "--verbose",
        "0",
        "--set",
        f"corpus=text:{corpus_dir}",
        *[f"--set={key}={value}" for key, value in SMALL.items()],
    ]


def run_tool(*arguments, environment=None):
    """Runs `python -m ARGUMENTS...`; `environment` adds variables."""
    environment = {**os.environ, **(environment or {})}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-m", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_error_line(completed, *fragments):
    assert completed.returncode == 2, completed.stdout + completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
