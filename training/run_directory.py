"""The run directory: where one training run keeps its files.

Layout (each file is written whole: to a temporary name, then renamed, so
that a kill never leaves one half-written):

    RUN/
      config.json          the resolved `TrainConfig`; a rerun must match it
      vocabulary.json      a word per id
      history.csv          one row per finished epoch
      best.keras           the model of the best validation perplexity
      backup/state.json    the last finished epoch: its weights file, the
                           best validation perplexity, training seconds
                           and the history rows
      backup/epoch-NNNN.weights.h5   model and optimizer weights after it
      tensorboard/         Keras's TensorBoard logs; gates/: gate histograms
      results.json         test perplexity and the run's figures (at the end)
      curves.png           train and validation perplexity per epoch

An interrupted run resumes from `backup/` (`load_backup`); export,
generation and inspection read a finished run with `load_finished`.
"""

import contextlib
import csv
import dataclasses
import io
import json
import os
import shutil
import tempfile

import keras

from keras_lstm_scratch.data import Vocabulary
from keras_lstm_scratch.distribution import is_chief
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from training.config import config_from_dict

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "perplexity",
    "val_loss",
    "val_perplexity",
    "lr",
    "train_seconds",
)


def write_atomically(path, text):
    """Writes `text` to `path` (str or path-like) via a temporary file."""
    staging = os.fspath(path) + ".tmp"
    with open(staging, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


def save_config(config, path):
    """Writes the resolved config as JSON (atomically)."""
    text = json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True)
    write_atomically(path, text + "\n")


def load_config(path):
    """Reads a run's `config.json` back into a `TrainConfig`.

    Fields added after the run was made take their defaults.
    """
    with open(path, encoding="utf-8") as handle:
        values = json.load(handle)
    return config_from_dict(values, path)


class RunDirectory:
    """One training run's files; the module docstring shows the layout.

    Args:
        path: The run directory; `open` creates it.

    Example:

    >>> run_dir = RunDirectory("runs/book-rnnlm")
    >>> model, vocabulary = run_dir.load_finished()
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.config_path = self.file("config.json")
        self.vocabulary_path = self.file("vocabulary.json")
        self.history_path = self.file("history.csv")
        self.best_model_path = self.file("best.keras")
        self.backup_dir = self.file("backup")
        self.state_path = self.file("backup", "state.json")
        self.tensorboard_dir = self.file("tensorboard")
        self.gate_log_dir = self.file("tensorboard", "gates")
        self.results_path = self.file("results.json")
        self.curves_path = self.file("curves.png")

    def file(self, *names):
        return os.path.join(self.path, *names)

    # --- starting or continuing a run ---------------------------------

    def open(self, config, vocabulary):
        """Creates the directory, or checks that it holds this run.

        Writes `config.json` and `vocabulary.json`.

        Raises:
            InvalidInputError: if the directory holds a run of another
                config.
        """
        os.makedirs(self.path, exist_ok=True)
        resolved = dataclasses.asdict(config)
        if os.path.isfile(self.config_path):
            # Fields added since that run was made count with their defaults.
            previous = dataclasses.asdict(load_config(self.config_path))
            if previous != resolved:
                changed = sorted(
                    k for k in resolved if previous.get(k) != resolved[k]
                )
                raise InvalidInputError(
                    f"{self.path} holds a run with a different config "
                    f"(differs in {changed}). Use another --output-dir, or "
                    "delete it to start over."
                )
        save_config(config, self.config_path)
        vocabulary.save(self.vocabulary_path)

    def load_backup(self):
        """The last finished epoch's backup state, or `None` if none.

        Returns:
            The `backup/state.json` dict (`epoch`, `weights_file`,
            `best_val_perplexity`, `train_seconds`, `history`) with
            `weights_path`, the weights file's full path.
        """
        if not os.path.isfile(self.state_path):
            return None
        with open(self.state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        state["weights_path"] = os.path.join(
            self.backup_dir, state["weights_file"]
        )
        return state

    # --- during a run -------------------------------------------------

    def save_best_model(self, model):
        """Saves the whole model as `best.keras` (staged, then renamed)."""
        staging = self.file("best.staging.keras")
        model.save(staging)
        os.replace(staging, self.best_model_path)

    def save_backup(
        self, model, epoch, best_val_perplexity, train_seconds, history
    ):
        """Backs up epoch `epoch`: its weights, then `state.json`.

        `state.json` names only a complete weights file and replaces the
        old one in one rename; the older weights files go after it. A kill
        at any moment leaves a consistent backup of a finished epoch.
        """
        os.makedirs(self.backup_dir, exist_ok=True)
        weights_file = f"epoch-{epoch:04d}.weights.h5"
        model.save_weights(os.path.join(self.backup_dir, weights_file))
        state = {
            "epoch": epoch,
            "weights_file": weights_file,
            "best_val_perplexity": best_val_perplexity,
            "train_seconds": train_seconds,
            "history": history,
        }
        write_atomically(self.state_path, json.dumps(state, indent=2))
        for name in os.listdir(self.backup_dir):
            if name.endswith(".weights.h5") and name != weights_file:
                os.remove(os.path.join(self.backup_dir, name))

    def write_history(self, rows):
        """Rewrites `history.csv` from the rows of every finished epoch."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(self.history_path, text.getvalue())

    # --- at the end ---------------------------------------------------

    def write_results(self, results):
        write_atomically(self.results_path, json.dumps(results, indent=2))

    # --- a finished run -----------------------------------------------

    def load_config(self):
        return load_config(self.config_path)

    def load_finished(self):
        """Returns `(model, vocabulary)` of a finished training run.

        Raises:
            MissingInputError: if the directory lacks `best.keras` or
                `vocabulary.json`.
        """
        for path in (self.best_model_path, self.vocabulary_path):
            if not os.path.isfile(path):
                raise MissingInputError(
                    f"{path} not found: --run must be a training run "
                    "directory (python -m training.train --output-dir ...)."
                )
        model = keras.models.load_model(self.best_model_path)
        return model, Vocabulary.load(self.vocabulary_path)


@contextlib.contextmanager
def process_run_directory(output_dir, strategy):
    """The `RunDirectory` this process writes.

    `output_dir` for the chief (and for every single-process run); a
    temporary directory, deleted afterwards, for the other workers of a
    multi-worker run: they save too (saving reads variables collectively),
    but their files are not kept.
    """
    if is_chief(strategy):
        yield RunDirectory(output_dir)
        return
    write_dir = tempfile.mkdtemp(prefix="keras-lstm-scratch-worker-")
    try:
        yield RunDirectory(write_dir)
    finally:
        shutil.rmtree(write_dir, ignore_errors=True)
