"""A run killed inside an epoch resumes there, as if never stopped."""

import json
import os

import keras
import numpy as np
import pytest

from tests.helpers import read_history, small_config
from training.run import run
from training.run_directory import RunDirectory

pytestmark = pytest.mark.slow

# Dropout between two layers, word dropout and weight drop: the random
# states a resume must carry on, with the RNN states and the position.
RANDOM = {
    "num_layers": 2,
    "dropout": 0.3,
    "word_dropout": 0.1,
    "weight_dropout": 0.2,
    "epochs": 2,
    "backup_minutes": 1e-9,  # a backup after every batch
}


class KilledError(Exception):
    """Stands for kill -9: the process stops; what is on disk stays."""


class KillAt(keras.callbacks.Callback):
    """Stops the run as batch `batch` of epoch `epoch` (1-based) begins."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise KilledError()


def final_weights(run_dir):
    model = keras.models.load_model(
        os.path.join(run_dir, "backup", "epoch-0002.keras")
    )
    return model.get_weights()


@pytest.mark.parametrize(
    "backup_minutes, steps, said",
    [
        (1e-9, 5, "in epoch 2 after 5 batches"),  # inside the epoch
        (0.0, 0, "after epoch 1"),  # at the epoch's end: the seeds go on
    ],
)
def test_a_run_killed_after_a_backup_ends_as_if_never_stopped(
    small_corpus_dir, tmp_path, capsys, backup_minutes, steps, said
):
    settings = {**RANDOM, "backup_minutes": backup_minutes}
    config = small_config(small_corpus_dir, **settings)
    whole = str(tmp_path / "whole")
    run(config, whole, verbose=0)

    stopped = str(tmp_path / "stopped")
    with pytest.raises(KilledError):
        run(config, stopped, verbose=0, extra_callbacks=[KillAt(2, 5)])
    state = RunDirectory(stopped).load_backup()
    assert (state["epoch"], state["steps"]) == (1, steps)
    capsys.readouterr()
    run(config, stopped, verbose=0)
    assert said in capsys.readouterr().out

    for resumed, uninterrupted in zip(
        final_weights(stopped), final_weights(whole), strict=True
    ):
        np.testing.assert_array_equal(resumed, uninterrupted)
    resumed_rows, whole_rows = read_history(stopped), read_history(whole)
    for key in ("loss", "perplexity", "val_perplexity", "train_steps"):
        assert [r[key] for r in resumed_rows] == [r[key] for r in whole_rows]
    with open(os.path.join(stopped, "results.json")) as handle:
        resumed_test = json.load(handle)["test_perplexity"]
    with open(os.path.join(whole, "results.json")) as handle:
        assert resumed_test == json.load(handle)["test_perplexity"]


def test_backups_inside_an_epoch_keep_the_two_newest(
    small_corpus_dir, tmp_path
):
    config = small_config(small_corpus_dir, **RANDOM)
    run_dir = str(tmp_path / "run")
    with pytest.raises(KilledError):
        run(config, run_dir, verbose=0, extra_callbacks=[KillAt(2, 3)])
    names = sorted(os.listdir(os.path.join(run_dir, "backup")))
    assert names == [
        f"epoch-0001-step-{steps:08d}.{suffix}"
        for steps in (2, 3)
        for suffix in ("json", "keras", "npz")
    ]
