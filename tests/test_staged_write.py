"""Writing whole: a file or folder appears complete or not at all."""

import errno
import os

import pytest

from keras_lstm_scratch.errors import (
    ExistingOutputError,
    InvalidInputError,
    OutputWriteError,
)
from keras_lstm_scratch.staged_write import (
    sha256_of,
    staged_file,
    staged_folder,
    staging_path,
    write_text,
)

KEPT = "The old file is kept."


def test_the_staging_name_sits_beside_the_file_with_its_suffix(tmp_path):
    assert staging_path(tmp_path / "best.keras") == str(
        tmp_path / "best.staging.keras"
    )


def test_a_file_is_written_whole_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old")
    write_text(path, "new", KEPT)
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["history.csv"]


def test_a_failed_write_keeps_the_old_file_and_names_path_and_reason(
    tmp_path,
):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(OutputWriteError) as raised:
        with staged_file(path, KEPT) as staging:
            with open(staging, "w") as handle:
                handle.write("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    message = str(raised.value)
    assert str(path) in message and "No space left on device" in message
    assert message.endswith(KEPT)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["results.json"]  # no staging file


def test_a_user_error_inside_passes_unchanged(tmp_path):
    with pytest.raises(InvalidInputError, match="bad value"):
        with staged_file(tmp_path / "config.json", KEPT):
            raise InvalidInputError("bad value")


def test_a_folder_appears_only_when_complete(tmp_path):
    target = tmp_path / "model" / "3"
    with staged_folder(target, KEPT) as staging:
        with open(os.path.join(staging, "saved_model.pb"), "w") as handle:
            handle.write("graph")
        assert not target.exists()
        assert os.path.basename(staging).startswith(".3.staging-")
    assert (target / "saved_model.pb").read_text() == "graph"
    assert os.listdir(tmp_path / "model") == ["3"]


def test_a_failed_folder_leaves_nothing(tmp_path):
    target = tmp_path / "ptb"
    with pytest.raises(OutputWriteError, match="Read-only file system"):
        with staged_folder(target, KEPT):
            raise OSError(errno.EROFS, "Read-only file system")
    assert os.listdir(tmp_path) == []


def test_a_folder_that_appears_meanwhile_is_not_overwritten(tmp_path):
    target = tmp_path / "model" / "1"
    with pytest.raises(ExistingOutputError, match="appeared"):
        with staged_folder(target, KEPT) as staging:
            with open(os.path.join(staging, "new"), "w") as handle:
                handle.write("new")
            target.mkdir()
            (target / "old").write_text("old")
    assert os.listdir(target) == ["old"]
    assert os.listdir(tmp_path / "model") == ["1"]


def test_sha256_of_a_file_is_its_hex_digest(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256_of(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
