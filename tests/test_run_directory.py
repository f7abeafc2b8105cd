import csv
import json
import os

import keras
import numpy as np
import pytest

from keras_lstm_scratch.data import Vocabulary
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from training.config import resolve_config
from training.run_directory import HISTORY_COLUMNS, RunDirectory


def small_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def vocabulary():
    return Vocabulary(["<unk>", "<eos>", "the", "market"])


def test_open_writes_the_config_and_vocabulary_and_refuses_another_run(
    tmp_path,
):
    run_dir = RunDirectory(tmp_path / "run")
    config = resolve_config("tiny")
    run_dir.open(config, vocabulary())
    assert run_dir.load_config() == config
    assert Vocabulary.load(run_dir.vocabulary_path).words == vocabulary().words

    run_dir.open(config, vocabulary())  # the same run: accepted again
    other = resolve_config("tiny", {"seq_len": 7})
    with pytest.raises(InvalidInputError, match=r"differs in \['seq_len'\]"):
        run_dir.open(other, vocabulary())


def test_a_backup_keeps_only_the_newest_weights_and_round_trips(tmp_path):
    run_dir = RunDirectory(tmp_path)
    assert run_dir.load_backup() is None
    model = small_model()
    history = [{"epoch": 1, "val_perplexity": 9.0}]
    run_dir.save_backup(model, 1, 9.0, 12.5, history)
    model.layers[-1].kernel.assign(np.ones((3, 2)))
    history = [*history, {"epoch": 2, "val_perplexity": 8.0}]
    run_dir.save_backup(model, 2, 8.0, 25.0, history)

    state = run_dir.load_backup()
    assert state["epoch"] == 2
    assert state["best_val_perplexity"] == 8.0
    assert state["train_seconds"] == 25.0
    assert state["history"] == history
    assert sorted(os.listdir(run_dir.backup_dir)) == [
        "epoch-0002.weights.h5",
        "state.json",
    ]
    restored = small_model()
    restored.load_weights(state["weights_path"])
    np.testing.assert_array_equal(restored.layers[-1].kernel, np.ones((3, 2)))


def test_history_and_results_are_written_whole(tmp_path):
    run_dir = RunDirectory(tmp_path)
    rows = [{"epoch": 1, "loss": 5.0, "lr": 20.0}, {"epoch": 2, "loss": 4.0}]
    run_dir.write_history(rows)
    with open(run_dir.history_path, newline="") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == list(HISTORY_COLUMNS)
    assert [row["loss"] for row in read] == ["5.0", "4.0"]
    run_dir.write_results({"test_perplexity": 128.5})
    with open(run_dir.results_path) as handle:
        assert json.load(handle) == {"test_perplexity": 128.5}
    assert sorted(os.listdir(tmp_path)) == ["history.csv", "results.json"]


def test_a_folder_without_a_finished_run_names_the_missing_file(tmp_path):
    RunDirectory(tmp_path).open(resolve_config("tiny"), vocabulary())
    with pytest.raises(MissingInputError, match="best.keras not found"):
        RunDirectory(tmp_path).load_finished()
