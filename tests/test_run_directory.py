import csv
import errno
import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_lstm_scratch.data import Corpus, Vocabulary
from keras_lstm_scratch.errors import (
    InvalidInputError,
    MissingInputError,
    OutputWriteError,
)
from training.config import resolve_config
from training.run_directory import HISTORY_COLUMNS, RunDirectory


def small_model():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model


def vocabulary():
    return Vocabulary(["<unk>", "<eos>", "the", "market"])


def corpus(key="text-one"):
    ids = np.array([2, 3, 1], dtype=np.uint8)
    return Corpus(
        ids, ids, ids, vocabulary(), {"train": "my/text.txt"}, key=key
    )


def test_open_writes_the_config_and_vocabulary_and_refuses_another_run(
    tmp_path,
):
    run_dir = RunDirectory(tmp_path / "run")
    config = resolve_config("tiny")
    run_dir.open(config, corpus())
    assert run_dir.load_config() == config
    assert Vocabulary.load(run_dir.vocabulary_path).words == vocabulary().words

    run_dir.open(config, corpus())  # the same run: accepted again
    other = resolve_config("tiny", {"seq_len": 7})
    with pytest.raises(InvalidInputError, match=r"differs in \['seq_len'\]"):
        run_dir.open(other, corpus())


def test_a_resume_on_changed_text_is_refused_naming_the_files(tmp_path):
    run_dir = RunDirectory(tmp_path / "run")
    config = resolve_config("tiny")
    run_dir.open(config, corpus("text-one"))
    with pytest.raises(
        InvalidInputError, match=r"changed since the run began \(my/text.txt\)"
    ):
        run_dir.open(config, corpus("text-two"))


def test_a_backup_keeps_the_two_newest_epochs_and_round_trips(tmp_path):
    run_dir = RunDirectory(tmp_path)
    assert run_dir.load_backup() is None
    model = small_model()
    history = []
    for epoch in (1, 2, 3):
        model.layers[-1].kernel.assign(np.full((3, 2), float(epoch)))
        history = [*history, {"epoch": epoch, "val_perplexity": 10.0 - epoch}]
        run_dir.save_backup(model, epoch, 10.0 - epoch, 12.5 * epoch, history)

    state = run_dir.load_backup()
    assert state["epoch"] == 3
    assert state["best_val_perplexity"] == 7.0
    assert state["train_seconds"] == 37.5
    assert state["history"] == history
    assert state["damaged"] == []
    assert sorted(os.listdir(run_dir.backup_dir)) == [
        f"epoch-000{epoch}.{suffix}"
        for epoch in (2, 3)
        for suffix in ("json", "keras", "npz")
    ]
    restored = small_model()
    restored.load_weights(state["weights_path"])
    np.testing.assert_array_equal(
        restored.layers[-1].kernel, np.full((3, 2), 3.0)
    )


def backed_up_twice(tmp_path):
    run_dir = RunDirectory(tmp_path)
    model = small_model()
    for epoch in (1, 2):
        run_dir.save_backup(model, epoch, 9.0, 1.0, [{"epoch": epoch}])
    return run_dir


def test_a_damaged_newest_backup_is_named_and_the_one_before_used(tmp_path):
    run_dir = backed_up_twice(tmp_path)
    weights = run_dir.file("backup", "epoch-0002.keras")
    with open(weights, "r+b") as handle:  # one byte changed, size kept
        handle.seek(os.path.getsize(weights) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    state = run_dir.load_backup()
    assert state["epoch"] == 1
    assert len(state["damaged"]) == 1
    assert "epoch-0002.keras is damaged" in state["damaged"][0]

    with open(run_dir.file("backup", "epoch-0002.json"), "w") as handle:
        handle.write('{"epoch": 2, "weights_fi')  # cut off mid-write
    state = run_dir.load_backup()
    assert state["epoch"] == 1
    assert (
        "epoch-0002.json is unreadable (JSONDecodeError"
        in (state["damaged"][0])
    )


def test_no_intact_backup_is_refused_naming_each_damaged_file(tmp_path):
    run_dir = backed_up_twice(tmp_path)
    os.truncate(run_dir.file("backup", "epoch-0002.keras"), 100)
    os.remove(run_dir.file("backup", "epoch-0001.keras"))
    with pytest.raises(InvalidInputError) as raised:
        run_dir.load_backup()
    message = str(raised.value)
    assert "no intact backup" in message
    assert "epoch-0002.keras is damaged" in message
    assert "epoch-0001.keras is unreadable" in message


def test_a_failed_write_keeps_the_last_backup_and_leaves_no_staging_file(
    tmp_path, monkeypatch
):
    run_dir = backed_up_twice(tmp_path)
    before = sorted(os.listdir(run_dir.backup_dir))
    model = small_model()

    def disk_full(path, *args, **kwargs):
        with open(path, "wb") as handle:  # half written, then the disk is full
            handle.write(b"\x89HDF")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(model, "save", disk_full)
    with pytest.raises(OutputWriteError, match="epoch-0003.keras: No space"):
        run_dir.save_backup(model, 3, 9.0, 1.0, [{"epoch": 3}])
    assert sorted(os.listdir(run_dir.backup_dir)) == before
    assert run_dir.load_backup()["epoch"] == 2

    monkeypatch.setattr(shutil, "copyfile", lambda _, copy: disk_full(copy))
    with pytest.raises(OutputWriteError, match="best.keras: No space"):
        run_dir.save_best_model(2)
    assert not os.path.exists(run_dir.file("best.staging.keras"))


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
    RunDirectory(tmp_path).open(resolve_config("tiny"), corpus())
    with pytest.raises(MissingInputError, match="best.keras not found"):
        RunDirectory(tmp_path).load_finished()


def test_text_without_a_key_is_checked_by_its_vocabulary(tmp_path):
    # A TFDS corpus, read in memory, has no content key.
    run_dir = RunDirectory(tmp_path / "run")
    config = resolve_config("tiny")
    run_dir.open(config, corpus(key=""))
    ids = np.array([2, 3, 1], dtype=np.uint8)
    other = Vocabulary(["<unk>", "<eos>", "the", "stock"])
    with pytest.raises(InvalidInputError, match="first difference at id 3"):
        run_dir.open(config, Corpus(ids, ids, ids, other, key=""))


@pytest.mark.parametrize("newest_is_best", [True, False])
def test_a_best_model_copy_cut_short_is_finished_on_resume(
    tmp_path, newest_is_best
):
    run_dir = RunDirectory(tmp_path)
    model = small_model()
    history = []
    for epoch, perplexity in ((1, 9.0), (2, 8.0 if newest_is_best else 9.5)):
        model.layers[-1].kernel.assign(np.full((3, 2), float(epoch)))
        history = [*history, {"epoch": epoch, "val_perplexity": perplexity}]
        run_dir.save_backup(model, epoch, 9.0, 1.0, history)
        if epoch == 1:
            run_dir.save_best_model(1)
    # Killed after epoch 2's backup, before its copy to best.keras.
    run_dir.complete_best_model()
    best = keras.models.load_model(run_dir.best_model_path)
    expected = 2.0 if newest_is_best else 1.0
    np.testing.assert_array_equal(best.layers[-1].kernel, expected)
