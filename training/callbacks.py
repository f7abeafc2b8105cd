"""Callbacks of the training application: schedule, guard, log, backup."""

import csv
import json
import math
import os
import time

import keras
import numpy as np

from training.files import write_atomically


class TrainingDivergedError(RuntimeError):
    """Raised when the training loss stops being finite."""


class LearningRateSchedule(keras.callbacks.Callback):
    """The book's and Zaremba's learning-rate rules; logs `lr` each epoch.

    - `"plateau"` (the book, PyTorch's example): after an epoch whose
      `val_perplexity` is not below the best so far, divide the rate by
      `decay`.
    - `"step"` (Zaremba et al.): epochs `1 .. decay_start_epoch` run at the
      full rate; from the end of epoch `decay_start_epoch` on, divide the
      rate by `decay` after every epoch.

    Args:
        mode: `"plateau"` or `"step"`.
        decay: Divisor, > 1.
        decay_start_epoch: For `"step"`, epochs at the full rate.
        best: Best validation perplexity so far (to resume a run).

    Call arguments:
        Used as a Keras callback; place it after `PerplexityCallback`.

    Returns:
        Nothing; sets the optimizer's rate and writes `logs["lr"]` (the rate
        used during the epoch).
    """

    def __init__(
        self, mode="plateau", decay=4.0, decay_start_epoch=0, best=math.inf
    ):
        super().__init__()
        if mode not in ("plateau", "step"):
            raise ValueError(f"mode={mode!r}; allowed: 'plateau', 'step'.")
        self.mode = mode
        self.decay = decay
        self.decay_start_epoch = decay_start_epoch
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        rate = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
        logs["lr"] = rate
        if self.mode == "plateau":
            value = logs.get("val_perplexity")
            if value is None:
                raise ValueError(
                    "LearningRateSchedule('plateau') needs val_perplexity in "
                    "the logs; put PerplexityCallback before it."
                )
            if value < self.best:
                self.best = value
                return
        elif epoch + 1 < self.decay_start_epoch:
            return
        self.model.optimizer.learning_rate.assign(rate / self.decay)


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
    """Writes `train_seconds`, the epoch's training time, into the logs.

    Put it first in the callback list, so that its epoch-end time is taken
    before the validation pass of `PerplexityCallback`.
    """

    def __init__(self):
        super().__init__()
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["train_seconds"] = time.perf_counter() - self._start


class EpochLine(keras.callbacks.Callback):
    """Prints one fixed-width line per epoch beside Keras's progress bar."""

    HEADER = (
        "| epoch |    lr     | train ppl | valid ppl | train s | tokens/s |"
    )

    def __init__(self, tokens_per_epoch, print_fn=print):
        super().__init__()
        self.tokens_per_epoch = tokens_per_epoch
        self.print_fn = print_fn

    def on_train_begin(self, logs=None):
        self.print_fn(self.HEADER)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = logs.get("train_seconds", math.nan)
        self.print_fn(
            f"| {epoch + 1:5d} | {logs.get('lr', math.nan):9.4g} | "
            f"{logs.get('perplexity', math.nan):9.2f} | "
            f"{logs.get('val_perplexity', math.nan):9.2f} | "
            f"{seconds:7.1f} | {self.tokens_per_epoch / seconds:8.0f} |"
        )


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the whole model as `.keras` when `val_perplexity` improves.

    The file is written under a staging name and renamed, so a kill never
    leaves a half-written best model.

    Args:
        path: Target `.keras` path.
        best: Best validation perplexity so far (to resume a run).
    """

    def __init__(self, path, best=math.inf):
        super().__init__()
        self.path = path
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_perplexity")
        if value is None or not value < self.best:
            return
        self.best = value
        staging = self.path[: -len(".keras")] + ".staging.keras"
        self.model.save(staging)
        os.replace(staging, self.path)


class TimeBudget(keras.callbacks.Callback):
    """Stops before an epoch that would overrun a training-time budget.

    After each epoch it adds the epoch's `train_seconds` to the time spent
    and stops training if one more epoch of the same length would exceed
    the budget.

    Args:
        budget_seconds: Training seconds allowed in all (validation passes
            excluded).
        spent_seconds: Seconds already spent (when resuming).
    """

    def __init__(self, budget_seconds, spent_seconds=0.0):
        super().__init__()
        self.budget_seconds = budget_seconds
        self.spent_seconds = spent_seconds

    def on_epoch_end(self, epoch, logs=None):
        seconds = (logs or {}).get("train_seconds", 0.0)
        self.spent_seconds += seconds
        if self.would_overrun(seconds):
            self.model.stop_training = True

    def would_overrun(self, epoch_seconds):
        """Whether one more epoch of `epoch_seconds` exceeds the budget."""
        return self.spent_seconds + epoch_seconds > self.budget_seconds


class RunRecorder(keras.callbacks.Callback):
    """Keeps `history.csv` and a resumable backup, both written atomically.

    At every epoch end (after every other callback has written its logs) it
    saves the model and optimizer weights to `backup/epoch-NNNN.weights.h5`,
    then `backup/state.json` (epoch, weights file, best validation
    perplexity, history rows, training seconds), then deletes older weight
    files and rewrites `history.csv`. `state.json` is written to a
    temporary name and renamed, and names only complete weight files, so a
    kill at any moment leaves a consistent backup of the last finished
    epoch. `load_state` reads it back.

    Args:
        output_dir: The run directory.
        history: Rows of epochs already done (when resuming).
        train_seconds: Training seconds already spent (when resuming).
    """

    COLUMNS = (
        "epoch",
        "loss",
        "perplexity",
        "val_loss",
        "val_perplexity",
        "lr",
        "train_seconds",
    )

    def __init__(self, output_dir, history=(), train_seconds=0.0):
        super().__init__()
        self.output_dir = output_dir
        self.backup_dir = os.path.join(output_dir, "backup")
        self.history = list(history)
        self.train_seconds = train_seconds

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1}
        row.update(
            {key: float(logs[key]) for key in self.COLUMNS[1:] if key in logs}
        )
        self.history.append(row)
        self.train_seconds += row.get("train_seconds", 0.0)
        os.makedirs(self.backup_dir, exist_ok=True)
        weights_file = f"epoch-{epoch + 1:04d}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, weights_file))
        state = {
            "epoch": epoch + 1,
            "weights_file": weights_file,
            "best_val_perplexity": self.best_val_perplexity(),
            "train_seconds": self.train_seconds,
            "history": self.history,
        }
        write_atomically(
            os.path.join(self.backup_dir, "state.json"),
            json.dumps(state, indent=2),
        )
        for name in os.listdir(self.backup_dir):
            if name.endswith(".weights.h5") and name != weights_file:
                os.remove(os.path.join(self.backup_dir, name))
        self.write_history_csv()

    def best_val_perplexity(self):
        values = [
            row["val_perplexity"]
            for row in self.history
            if "val_perplexity" in row
        ]
        return min(values) if values else math.inf

    def write_history_csv(self):
        path = os.path.join(self.output_dir, "history.csv")
        staging = path + ".tmp"
        with open(staging, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.COLUMNS)
            writer.writeheader()
            writer.writerows(self.history)
        os.replace(staging, path)

    @staticmethod
    def load_state(output_dir):
        """Returns the saved state dict, or `None` when there is no backup."""
        path = os.path.join(output_dir, "backup", "state.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        state["weights_path"] = os.path.join(
            output_dir, "backup", state["weights_file"]
        )
        return state
