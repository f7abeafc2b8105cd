"""The run directory: where one training run keeps its files.

Layout (each file is written whole: to a temporary name, then renamed, so
that a kill never leaves one half-written):

    RUN/
      config.json          the resolved `TrainConfig`; a rerun must match it
      vocabulary.json      a token (word or character) per id
      corpus.json          the text's content key and files: a resume on
                           changed text is refused
      history.csv          one row per finished epoch
      best.keras           the model of the best validation perplexity
      backup/epoch-NNNN.json         a finished epoch: its weights file and
                                     that file's SHA-256, the best validation
                                     perplexity, training seconds, history
      backup/epoch-NNNN.keras        the model with its optimizer state after
                                     it (the two newest backups are kept)
      backup/epoch-NNNN.npz          its RNN and random seed states
      backup/epoch-NNNN-step-SSSSSSSS.*   the same, SSSSSSSS batches into
                                     epoch NNNN + 1 (every backup_minutes)
      tensorboard/         Keras's TensorBoard logs; gates/: gate histograms
      results.json         test perplexity and the run's figures (at the end)
      curves.png           train and validation perplexity per epoch
      evaluation.json      adaptive evaluation (`python -m training.evaluate`):
                           test perplexity static / cache / dynamic / both,
                           the settings chosen on validation, the seconds

An interrupted run resumes from `backup/` (`load_backup`), from the newer
of its two backups that is intact, inside an epoch if that is where it
was; export, generation and inspection read a
finished run with `load_finished`. A write that fails (a full disk, a
read-only folder) raises `OutputWriteError` and leaves every file written
before it as it was.
"""

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import shutil
import tempfile

import keras
import numpy as np

from keras_lstm_scratch import carried_state
from keras_lstm_scratch.data import Tokenization, Vocabulary
from keras_lstm_scratch.distribution import is_chief
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from keras_lstm_scratch.evaluation import NeuralCache
from keras_lstm_scratch.staged_write import (
    reported_write_failure,
    sha256_of,
    staged_file,
    write_text,
)
from training.config import config_from_dict

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "perplexity",
    "val_loss",
    "val_perplexity",
    "lr",
    "train_seconds",
    "train_steps",
)
# Written by a character model's run only (a word run's history.csv keeps
# the columns above).
CHARACTER_COLUMNS = ("bits_per_char", "val_bits_per_char")


BACKUP_STATE = re.compile(r"epoch-(\d{4,})(?:-step-(\d+))?\.json")
BACKUP_FILE = re.compile(r"epoch-(\d{4,})(?:-step-(\d+))?\.")
BACKUPS_KEPT = 2  # the newest, and one to fall back on if it is damaged


KEPT_ON_FAILURE = (
    "The files written before it are kept; free some space or make the "
    "folder writable, then run the same command again to continue from "
    "the last backup."
)


def write_atomically(path, text):
    """Writes `text` to `path` whole (staged, then renamed).

    Raises:
        OutputWriteError: if it cannot be written; `path` is unchanged.
    """
    write_text(path, text, KEPT_ON_FAILURE)


def save_model(model, path):
    """Saves the whole model to `path` whole (staged, then renamed).

    Raises:
        OutputWriteError: if it cannot be written; `path` is unchanged.
    """
    with staged_file(path, KEPT_ON_FAILURE) as staging:
        model.save(staging)


def best_epoch(history):
    """The epoch of the lowest validation perplexity in `history` (the
    first, on a tie), or `None`."""
    rows = [row for row in history if "val_perplexity" in row]
    if not rows:
        return None
    return min(rows, key=lambda row: row["val_perplexity"])["epoch"]


def backup_position(name):
    """`(epochs finished, steps into the next)` of a backup file's name
    (`epoch-0003.json` -> `(3, 0)`, `epoch-0003-step-00000120.keras` ->
    `(3, 120)`), or `None`."""
    match = BACKUP_FILE.match(name)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def backup_stem(epoch, steps=0):
    """`epoch-0003`, or `epoch-0003-step-00000120` inside epoch 4."""
    return f"epoch-{epoch:04d}" + (f"-step-{steps:08d}" if steps else "")


class DamagedBackupError(ValueError):
    """One backup epoch that cannot be resumed from; says which file."""


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
        self.corpus_path = self.file("corpus.json")
        self.history_path = self.file("history.csv")
        self.best_model_path = self.file("best.keras")
        self.backup_dir = self.file("backup")
        self.tensorboard_dir = self.file("tensorboard")
        self.gate_log_dir = self.file("tensorboard", "gates")
        self.results_path = self.file("results.json")
        self.curves_path = self.file("curves.png")
        self.evaluation_path = self.file("evaluation.json")

    def file(self, *names):
        return os.path.join(self.path, *names)

    # --- starting or continuing a run ---------------------------------

    def open(self, config, corpus):
        """Creates the directory, or checks that it holds this run.

        Writes `config.json`, `vocabulary.json` and `corpus.json`.

        Raises:
            InvalidInputError: if the directory holds a run of another
                config, or of other text.
        """
        with reported_write_failure(self.path, KEPT_ON_FAILURE):
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
        self.check_text(corpus)
        self.check_vocabulary(corpus.vocabulary)
        save_config(config, self.config_path)
        write_atomically(self.vocabulary_path, corpus.vocabulary.to_json())
        text = {"key": corpus.key, "sources": corpus.sources}
        write_atomically(self.corpus_path, json.dumps(text, indent=2))

    def check_text(self, corpus):
        """Refuses text that changed since the run began: its ids would
        not be the ones the run's weights and position were made on.

        Raises:
            InvalidInputError: naming the run's files.
        """
        try:
            with open(self.corpus_path, encoding="utf-8") as handle:
                saved = json.load(handle)
        except (OSError, ValueError):
            return  # a run from before corpus.json: the vocabulary check
        if not saved.get("key") or not corpus.key or saved["key"] == corpus.key:
            return
        files = "; ".join(sorted(set(saved.get("sources", {}).values())))
        raise InvalidInputError(
            f"The text of {self.path} changed since the run began ({files}): "
            "resuming would train on other token ids. Put the text back as "
            "it was, or use another --output-dir to start a run on the new "
            "text."
        )

    def check_vocabulary(self, vocabulary):
        """Refuses text whose vocabulary differs from the run's.

        The same config read from other files (another `--data-dir`, or
        changed files) gives other ids, which the run's weights do not
        mean.

        Raises:
            InvalidInputError: naming the first token that differs.
        """
        if not os.path.isfile(self.vocabulary_path):
            return
        try:
            saved = Vocabulary.load(self.vocabulary_path).words
        except (OSError, ValueError):
            return  # rewritten below; the backup's weights still load
        if saved == vocabulary.words:
            return
        index = next(
            (
                i
                for i, (a, b) in enumerate(
                    zip(saved, vocabulary.words, strict=False)
                )
                if a != b
            ),
            min(len(saved), len(vocabulary.words)),
        )
        raise InvalidInputError(
            f"{self.path} was trained on text whose vocabulary differs from "
            f"this text's ({len(saved)} tokens in {self.vocabulary_path}, "
            f"{len(vocabulary.words)} now; first difference at id {index}). "
            "Pass the --data-dir and files the run was trained on, or use "
            "another --output-dir."
        )

    def load_backup(self):
        """The newest intact backup's state, or `None` if there is none.

        Each epoch's `backup/epoch-NNNN.json` names its weights file and
        that file's SHA-256. A state that cannot be read, or whose weights
        file is missing or differs from its SHA-256, is passed over for
        the one before it, and the problem is reported in `damaged`.

        Returns:
            The state dict (`epoch`, `weights_file`, `best_val_perplexity`,
            `train_seconds`, `history`) with `weights_path`, the weights
            file's full path, and `damaged`, a line per newer backup passed
            over (empty if none).

        Raises:
            InvalidInputError: if backups exist and none is intact.
        """
        damaged = []
        for path in self.backup_states():
            try:
                state = self.read_backup(path)
            except DamagedBackupError as error:
                damaged.append(str(error))
                continue
            state["damaged"] = damaged
            return state
        if damaged:
            raise InvalidInputError(
                f"{self.backup_dir} holds no intact backup to resume from: "
                f"{'; '.join(damaged)}. Move {self.backup_dir} away to train "
                "this run again from the start."
            )
        return None

    def backup_states(self):
        """The backups' state files, newest first."""
        if not os.path.isdir(self.backup_dir):
            return []
        positions = sorted(
            (backup_position(name), name)
            for name in os.listdir(self.backup_dir)
            if BACKUP_STATE.fullmatch(name)
        )
        return [self.file("backup", name) for _, name in reversed(positions)]

    def read_backup(self, path):
        """One backup's state, its weights file checked against its SHA-256.

        Raises:
            DamagedBackupError: naming the damaged file and what is wrong.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
            weights_file = state["weights_file"]
            for key in ("epoch", "best_val_perplexity", "train_seconds"):
                state[key]  # noqa: B018 (every key must be there)
            expected = state["weights_sha256"]
            history = state["history"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DamagedBackupError(
                f"{path} is unreadable ({type(error).__name__}: {error})"
            ) from error
        if not isinstance(history, list):
            raise DamagedBackupError(f"{path} holds no list of history rows")
        state.setdefault("steps", 0)  # backups from before mid-epoch ones
        state.setdefault("epoch_seconds", 0.0)
        state["weights_path"] = self.file("backup", weights_file)
        try:
            actual = sha256_of(state["weights_path"])
        except OSError as error:
            raise DamagedBackupError(
                f"{state['weights_path']} is unreadable ({error.strerror})"
            ) from error
        if actual != expected:
            raise DamagedBackupError(
                f"{state['weights_path']} is damaged (its SHA-256 differs "
                f"from the one in {os.path.basename(path)})"
            )
        state["carried"] = self.read_carried(state, path)
        return state

    def read_carried(self, state, path):
        """The backup's carried states (`{name: array}`; `{}` for a backup
        made before they were kept), checked against their SHA-256."""
        if "carried_file" not in state:
            return {}
        carried_path = self.file("backup", state["carried_file"])
        try:
            intact = sha256_of(carried_path) == state["carried_sha256"]
            with np.load(carried_path) as arrays:
                carried = {name: arrays[name] for name in arrays.files}
        except (OSError, ValueError, KeyError) as error:
            raise DamagedBackupError(
                f"{carried_path} is unreadable ({error})"
            ) from error
        if not intact:
            raise DamagedBackupError(
                f"{carried_path} is damaged (its SHA-256 differs from the "
                f"one in {os.path.basename(path)})"
            )
        return carried

    # --- during a run -------------------------------------------------

    def save_best_model(self, epoch):
        """Copies epoch `epoch`'s backup to `best.keras` (staged, renamed).

        Called after the epoch's backup state names it as the best, so a
        kill at any moment leaves a `best.keras` that the records account
        for, or one that `complete_best_model` finishes on resume.
        """
        source = self.file("backup", f"{backup_stem(epoch)}.keras")
        with staged_file(self.best_model_path, KEPT_ON_FAILURE) as staging:
            shutil.copyfile(source, staging)

    def complete_best_model(self):
        """Finishes the copy of the newest backup to `best.keras` that a
        kill or a failed write interrupted, when its epoch is the best."""
        state = self.load_backup()
        if state is None or state["steps"]:
            return  # none, or one inside an epoch: the best is older
        if best_epoch(state["history"]) != state["epoch"]:
            return
        best = self.best_model_path
        if os.path.isfile(best) and sha256_of(best) == state["weights_sha256"]:
            return
        self.save_best_model(state["epoch"])

    def save_backup(
        self,
        model,
        epoch,
        best_val_perplexity,
        train_seconds,
        history,
        position=None,
        carried=None,
    ):
        """Backs up the run after `epoch` epochs (and `position`'s steps).

        Writes the model with its optimizer state (`STEM.keras`), what the
        model carries besides (`STEM.npz`: its RNN and random seed states,
        `carried_state`), then the state, `STEM.json`, last, in one rename,
        naming both files with their SHA-256. The backups older than the
        two newest go after it. A kill or a failed write at any moment
        leaves the earlier backups as they were.

        Args:
            model: The model.
            epoch: Epochs finished.
            best_val_perplexity, train_seconds, history: The run's state
                after those epochs (`train_seconds`: theirs).
            position: For a backup inside epoch `epoch + 1`,
                `(steps, seconds)`: its batches done and their training
                seconds; `None` at an epoch's end.
            carried: `{name: array}` to keep in `STEM.npz`; default
                `carried_state(model)`.
        """
        steps, epoch_seconds = position or (0, 0.0)
        if carried is None:
            carried = carried_state(model)
        stem = backup_stem(epoch, steps)
        with reported_write_failure(self.backup_dir, KEPT_ON_FAILURE):
            os.makedirs(self.backup_dir, exist_ok=True)
        # A whole-model archive, not `save_weights`'s `.weights.h5`: Keras
        # builds its HDF5 in memory and Python writes the file, so a full
        # disk is an OSError; h5py writing to a full disk can crash.
        weights_path = self.file("backup", f"{stem}.keras")
        save_model(model, weights_path)
        carried_path = self.file("backup", f"{stem}.npz")
        with staged_file(carried_path, KEPT_ON_FAILURE) as staging:
            np.savez(staging, **carried)
        state = {
            "epoch": epoch,
            "steps": steps,
            "epoch_seconds": epoch_seconds,
            "weights_file": f"{stem}.keras",
            "weights_sha256": sha256_of(weights_path),
            "carried_file": f"{stem}.npz",
            "carried_sha256": sha256_of(carried_path),
            "best_val_perplexity": best_val_perplexity,
            "train_seconds": train_seconds,
            "history": history,
        }
        write_atomically(
            self.file("backup", f"{stem}.json"), json.dumps(state, indent=2)
        )
        kept = {
            backup_position(os.path.basename(path))
            for path in self.backup_states()[:BACKUPS_KEPT]
        }
        for name in os.listdir(self.backup_dir):
            if backup_position(name) not in kept:
                with contextlib.suppress(OSError):  # gone at the next backup
                    os.remove(self.file("backup", name))

    def write_history(self, rows):
        """Rewrites `history.csv` from the rows of every finished epoch."""
        text = io.StringIO()
        extra = [c for c in CHARACTER_COLUMNS if any(c in r for r in rows)]
        writer = csv.DictWriter(text, fieldnames=[*HISTORY_COLUMNS, *extra])
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(self.history_path, text.getvalue())

    # --- at the end ---------------------------------------------------

    def write_results(self, results):
        write_atomically(self.results_path, json.dumps(results, indent=2))

    # --- a finished run -----------------------------------------------

    def write_evaluation(self, evaluation):
        """Writes `evaluation.json` (whole, replacing an earlier one)."""
        write_atomically(self.evaluation_path, json.dumps(evaluation, indent=2))

    def load_evaluation(self):
        """The dict `evaluation.json` holds, or `None` before an evaluation.

        Raises:
            InvalidInputError: if the file is there but unreadable.
        """
        if not os.path.isfile(self.evaluation_path):
            return None
        try:
            with open(self.evaluation_path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError) as error:
            raise InvalidInputError(
                f"{self.evaluation_path} is unreadable ({error}); run python "
                "-m training.evaluate --run again to write it anew."
            ) from error

    def load_neural_cache(self):
        """The `NeuralCache` chosen on validation by `training.evaluate`,
        or `None` for a run not evaluated so."""
        evaluation = self.load_evaluation()
        if evaluation is None:
            return None
        return NeuralCache.from_config(evaluation["cache"]["settings"])

    def load_config(self):
        return load_config(self.config_path)

    def load_tokenization(self):
        """The `Tokenization` of the run (its config's `tokens`)."""
        require_run_file(self.config_path)
        return Tokenization(self.load_config().tokens)

    def load_vocabulary(self):
        """The run's `Vocabulary` (`vocabulary.json`)."""
        require_run_file(self.vocabulary_path)
        return Vocabulary.load(self.vocabulary_path)

    def load_finished(self):
        """Returns `(model, vocabulary)` of a finished training run.

        Raises:
            MissingInputError: if the directory lacks `best.keras` or
                `vocabulary.json`.
        """
        require_run_file(self.best_model_path)
        vocabulary = self.load_vocabulary()
        return keras.models.load_model(self.best_model_path), vocabulary


def require_run_file(path):
    """Raises `MissingInputError` unless the run directory has `path`."""
    if not os.path.isfile(path):
        raise MissingInputError(
            f"{path} not found: the run must be a training run directory "
            "(python -m training.train --output-dir ...)."
        )


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
