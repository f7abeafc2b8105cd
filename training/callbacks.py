"""The run's callbacks, each owning one side effect of an epoch.

`EpochTimer` (training seconds), `DivergenceGuard` (stop at a NaN),
`BitsPerCharacter` (a character model's measure), `EpochLine` (the
printed table) and `RunRecorder` (`history.csv`, the backup and
`best.keras`). The learning-rate rule is in
`learning_rate.py`, the time budget in `time_budget.py`; the files
themselves are the run directory's.
"""

import math
import time

import keras
import numpy as np

from keras_lstm_scratch import carried_state, restore_carried_state
from training.run_directory import (
    CHARACTER_COLUMNS,
    HISTORY_COLUMNS,
    best_epoch,
)


class TrainingDivergedError(RuntimeError):
    """Raised when the training loss stops being finite."""


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite batch loss.

    It raises at once, from the batch, so that no epoch-end checkpoint or
    backup is written from the diverged weights: the last good ones stay.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            raise TrainingDivergedError(
                f"Training diverged: loss is {loss} at batch {batch}. "
                "Lower learning_rate or clip_norm (e.g. --set "
                "learning_rate=5)."
            )


class EpochTimer(keras.callbacks.Callback):
    """Writes `train_seconds` and `train_steps`, the epoch's training time
    and batches, into the logs.

    Put it first in the callback list, so that its epoch-end time is taken
    before the validation pass of `PerplexityCallback`.

    Args:
        resumed: `(steps, seconds)` of the first epoch done before a
            resume inside it, counted in that epoch's figures.
    """

    def __init__(self, resumed=(0, 0.0)):
        super().__init__()
        self._resumed = resumed
        self._start = None
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._steps, seconds = self._resumed
        self._resumed = (0, 0.0)
        self._start = time.perf_counter() - seconds

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def position(self):
        """`(steps, seconds)`: the running epoch's batches and training
        seconds so far."""
        return self._steps, time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_steps"], logs["train_seconds"] = self.position()


# Names of the running epoch's training metric totals in a backup's
# carried states (beside `carried_state`'s "seed/" and "rnn/").
METRIC_PREFIX = "metric/"


def running_metrics(model):
    """The running epoch's training metric totals (the loss's and the
    perplexity's sums and counts), `{"metric/i": array}`: kept with a
    backup inside an epoch, they make the epoch's train figures count its
    batches from before a resume too."""
    return {
        f"{METRIC_PREFIX}{index}": keras.ops.convert_to_numpy(variable)
        for index, variable in enumerate(model.metrics_variables)
    }


def without_running_metrics(carried):
    """`carried` less the `running_metrics` entries."""
    return {
        name: value
        for name, value in carried.items()
        if not name.startswith(METRIC_PREFIX)
    }


class RestoreCarriedState(keras.callbacks.Callback):
    """Puts the RNN and seed states and the training metric totals of a
    backup made inside an epoch back, once, in the epoch it resumes.

    The states go back at the epoch's start (after they were zeroed for
    it). The metrics' totals and counts are added at the end of its first
    batch: Keras builds the compiled metrics in that batch and zeroes them
    before; every training metric here (the loss's mean, `Perplexity`) is
    a sum and a count, so adding gives what the epoch had counted.

    Args:
        carried: `{name: array}` of `keras_lstm_scratch.carried_state` and
            `running_metrics`.
    """

    def __init__(self, carried):
        super().__init__()
        self.states = without_running_metrics(carried or {})
        self.metrics = {
            int(name[len(METRIC_PREFIX) :]): value
            for name, value in (carried or {}).items()
            if name.startswith(METRIC_PREFIX)
        }

    def on_epoch_begin(self, epoch, logs=None):
        if self.states:
            restore_carried_state(self.model, self.states)
            self.states = None

    def on_train_batch_end(self, batch, logs=None):
        if self.metrics:
            variables = self.model.metrics_variables
            for index, value in self.metrics.items():
                variables[index].assign_add(value)
            self.metrics = None


class BitsPerCharacter(keras.callbacks.Callback):
    """Writes `bits_per_char` and `val_bits_per_char` into the epoch logs.

    A character model's measure: the mean NLL per character in bits,
    `log2` of the token-weighted perplexity. Place it after
    `PerplexityCallback` and before `TensorBoard`, which then plots it.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            perplexity = logs.get(f"{prefix}perplexity")
            if perplexity is not None:
                logs[f"{prefix}bits_per_char"] = math.log2(float(perplexity))


class EpochLine(keras.callbacks.Callback):
    """Prints one fixed-width line per epoch beside Keras's progress bar.

    Args:
        tokens_per_step: Training tokens in one batch.
        print_fn: Where the lines go.
        bits_per_char: Show bits per character (`BitsPerCharacter`'s
            logs) in place of perplexity, for a character model.
    """

    HEADER = (
        "| epoch |    lr     | train ppl | valid ppl | train s | tokens/s |"
    )
    CHARACTER_HEADER = (
        "| epoch |    lr     | train bpc | valid bpc | train s | tokens/s |"
    )

    def __init__(self, tokens_per_step, print_fn=print, bits_per_char=False):
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.print_fn = print_fn
        self.keys = ("perplexity", "val_perplexity")
        self.header, self.digits = self.HEADER, 2
        if bits_per_char:
            self.keys = ("bits_per_char", "val_bits_per_char")
            self.header, self.digits = self.CHARACTER_HEADER, 4

    def on_train_begin(self, logs=None):
        if self.header:  # once, though a resumed run calls fit twice
            self.print_fn(self.header)
            self.header = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = logs.get("train_seconds", math.nan)
        tokens = logs.get("train_steps", math.nan) * self.tokens_per_step
        train, valid = (logs.get(key, math.nan) for key in self.keys)
        self.print_fn(
            f"| {epoch + 1:5d} | {logs.get('lr', math.nan):9.4g} | "
            f"{train:9.{self.digits}f} | {valid:9.{self.digits}f} | "
            f"{seconds:7.1f} | {tokens / seconds:8.0f} |"
        )


class RunRecorder(keras.callbacks.Callback):
    """Keeps `history.csv`, the resumable backups and `best.keras`.

    At every epoch end (after every other callback has written its logs)
    it adds the epoch's row to the history, has the run directory back up
    the model and optimizer weights with the run's state (epoch, best
    validation perplexity, training seconds, history rows), rewrites
    `history.csv` and, when the validation perplexity improved, copies the
    backup to `best.keras`. In that order, so a kill never leaves a best
    model that the records do not know (the run directory finishes an
    interrupted copy on resume). Keras's `BackupAndRestore` keeps no
    history and no training time, which a resumed run's budget and curves
    need, nor the RNN and random seed states that make a resume exact;
    its `ModelCheckpoint(save_best_only=True)` writes the file in place.

    Inside an epoch it backs up too, every `backup_seconds` of wall time
    (at the end of the first batch past it), with the epoch's position
    (`timer`'s steps and seconds), so that a run killed at any moment
    loses at most that much training.

    Args:
        run_dir: The `RunDirectory`.
        history: Rows of epochs already done (when resuming).
        train_seconds: Training seconds of those epochs (when resuming).
        timer: The run's `EpochTimer`, for backups inside an epoch.
        backup_seconds: Wall seconds between backups inside an epoch; 0:
            at epoch ends only.
        clock: Seconds as a float (a test passes a fake clock).
    """

    def __init__(
        self,
        run_dir,
        history=(),
        train_seconds=0.0,
        timer=None,
        backup_seconds=0.0,
        clock=time.perf_counter,
    ):
        super().__init__()
        self.run_dir = run_dir
        self.history = list(history)
        self.train_seconds = train_seconds
        self.timer = timer
        self.backup_seconds = backup_seconds
        self.clock = clock
        self._last_backup = None

    def on_train_begin(self, logs=None):
        self._last_backup = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.timer is None or self.backup_seconds <= 0:
            return
        if self.clock() - self._last_backup < self.backup_seconds:
            return
        self.run_dir.save_backup(
            self.model,
            len(self.history),
            self.best_val_perplexity(),
            self.train_seconds,
            self.history,
            position=self.timer.position(),
            carried={
                **carried_state(self.model),
                **running_metrics(self.model),
            },
        )
        self._last_backup = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1}
        row.update(
            {
                key: (int if key == "train_steps" else float)(logs[key])
                for key in (*HISTORY_COLUMNS[1:], *CHARACTER_COLUMNS)
                if key in logs
            }
        )
        self.history.append(row)
        self.train_seconds += row.get("train_seconds", 0.0)
        self._last_backup = self.clock()
        self.run_dir.save_backup(
            self.model,
            epoch + 1,
            self.best_val_perplexity(),
            self.train_seconds,
            self.history,
        )
        self.run_dir.write_history(self.history)
        if best_epoch(self.history) == epoch + 1:
            self.run_dir.save_best_model(epoch + 1)

    def best_val_perplexity(self):
        values = [
            row["val_perplexity"]
            for row in self.history
            if "val_perplexity" in row
        ]
        return min(values) if values else math.inf
