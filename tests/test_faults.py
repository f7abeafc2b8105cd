"""Faults during a run or an export, through the command line.

Each case runs the tool in a fresh process under `tests/fault_injection.py`,
which starts a real fault at a chosen write: the disk fills
(`RLIMIT_FSIZE`, the write fails half done) or the folder becomes
read-only. The run must stop with one line, `error: ...`, exit status 2,
keep its last complete backup, `best.keras` and `history.csv`, and resume
with the same command once the fault is gone.
"""

import csv
import json
import os
import shutil
import sys

import keras
import pytest

from tests.helpers import (
    assert_one_error_line,
    run_tool,
    small_config,
    train_command,
)
from training.run import run
from training.run_directory import RunDirectory

pytestmark = pytest.mark.slow

EPOCHS = 3
RUN_DIRECTORY = "training.run_directory:RunDirectory."
# Where each write happens, and at which of its calls the fault starts.
WRITES = {
    "backup": (RUN_DIRECTORY + "save_backup", 2),
    "best.keras": (RUN_DIRECTORY + "save_best_model", 2),
    "results.json": (RUN_DIRECTORY + "write_results", 1),
}
# Fewer bytes than the file being written holds: it fails half done.
DISK_FULL = {"backup": 4096, "best.keras": 4096, "results.json": 64}


def run_command(command):
    """Runs `[python, -m, MODULE, ARGS...]` as a user does, quietly started."""
    return run_tool(*command[2:])


def with_fault(fault, target, call, tool_command):
    """`tool_command` ([python, -m, MODULE, ARGS...]) under a fault."""
    return [
        sys.executable,
        "-m",
        "tests.fault_injection",
        fault,
        target,
        str(call),
        "--",
        *tool_command[2:],
    ]


def history_epochs(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def leftovers(run_dir):
    """Half-written files: staging names anywhere in the run directory."""
    return [
        name
        for _, _, names in os.walk(run_dir)
        for name in names
        if "staging" in name or name.endswith(".tmp")
    ]


@pytest.mark.parametrize("write", list(WRITES))
@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_a_failed_write_stops_the_run_with_one_line_and_it_resumes(
    small_corpus_dir, tmp_path, fault, write
):
    run_dir = str(tmp_path / "run")
    command = train_command(small_corpus_dir, run_dir, epochs=EPOCHS)
    target, call = WRITES[write]
    argument = DISK_FULL[write] if fault == "disk-full" else run_dir
    stopped = run_command(
        with_fault(f"{fault}:{argument}", target, call, command)
    )
    reason = "File too large" if fault == "disk-full" else "Read-only"
    line = assert_one_error_line(stopped, "cannot write", reason)
    assert write in line
    assert leftovers(run_dir) == []

    # What was written before the fault is whole. best.keras is copied
    # after the backup and history of its epoch (the second, each epoch
    # improving here), and the resume finishes the copy.
    done = {"backup": 1, "best.keras": 2, "results.json": EPOCHS}[write]
    state = RunDirectory(run_dir).load_backup()
    assert (state["epoch"], state["damaged"]) == (done, [])
    assert history_epochs(run_dir) == list(range(1, done + 1))
    keras.models.load_model(os.path.join(run_dir, "best.keras"))
    assert not os.path.exists(os.path.join(run_dir, "results.json"))

    resumed = run_command(command)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"after epoch {done}" in resumed.stdout
    assert history_epochs(run_dir) == list(range(1, EPOCHS + 1))
    with open(os.path.join(run_dir, "results.json")) as handle:
        assert json.load(handle)["epochs"] == EPOCHS


@pytest.fixture(scope="module")
def finished_run(small_corpus_dir, tmp_path_factory):
    """A run of two epochs, so that its backup holds both."""
    run_dir = str(tmp_path_factory.mktemp("finished") / "run")
    run(small_config(small_corpus_dir, epochs=2), run_dir, verbose=0)
    return run_dir


def copy_of(finished_run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished_run, run_dir)
    return run_dir


def damage(path, how):
    if how == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)
    elif how == "one byte changed":
        with open(path, "r+b") as handle:
            handle.seek(os.path.getsize(path) // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0xFF]))
    else:  # a state file cut off while it was written
        with open(path, "w") as handle:
            handle.write('{"epoch": 2, "weights_fi')


@pytest.mark.parametrize(
    "name, how, said",
    [
        ("epoch-0002.keras", "truncated", "is damaged"),
        ("epoch-0002.json", "cut off", "is unreadable (JSONDecodeError"),
    ],
)
def test_a_damaged_newest_backup_is_named_and_the_run_resumes_before_it(
    small_corpus_dir, finished_run, tmp_path, name, how, said
):
    run_dir = copy_of(finished_run, tmp_path)
    damage(os.path.join(run_dir, "backup", name), how)
    resumed = run_command(train_command(small_corpus_dir, run_dir, epochs=2))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stderr == ""
    assert f"Passing over a damaged backup: {run_dir}/backup/{name} {said}" in (
        resumed.stdout
    )
    assert "after epoch 1 " in resumed.stdout  # epoch 2 is trained again
    assert history_epochs(run_dir) == [1, 2]
    assert RunDirectory(run_dir).load_backup()["damaged"] == []


def test_a_run_without_an_intact_backup_is_refused_with_one_line(
    small_corpus_dir, finished_run, tmp_path
):
    run_dir = copy_of(finished_run, tmp_path)
    damage(os.path.join(run_dir, "backup", "epoch-0002.keras"), "truncated")
    damage(
        os.path.join(run_dir, "backup", "epoch-0001.keras"),
        "one byte changed",
    )
    with open(os.path.join(run_dir, "history.csv")) as handle:
        history = handle.read()
    refused = run_command(train_command(small_corpus_dir, run_dir, epochs=2))
    assert_one_error_line(
        refused,
        "holds no intact backup",
        "epoch-0002.keras is damaged",
        "epoch-0001.keras is damaged",
        "Move",
    )
    with open(os.path.join(run_dir, "history.csv")) as handle:
        assert handle.read() == history  # nothing was trained


def export_command(run_dir, export_root):
    return [
        sys.executable,
        "-m",
        "training.export",
        "--run",
        run_dir,
        "--export-root",
        export_root,
        "--name",
        "lm",
    ]


@pytest.mark.parametrize(
    "fault, target, reason",
    [
        # The folder cannot be written from the start.
        ("read-only:{root}", "training.export:export_for_serving", "Read-only"),
        # The disk fills while TensorFlow writes the SavedModel's files.
        (
            "disk-full:4096",
            "keras_lstm_scratch.serving.saved_model:write_saved_model",
            "lm/1: File too large.",
        ),
    ],
)
def test_an_export_that_cannot_be_written_leaves_no_version(
    finished_run, tmp_path, fault, target, reason
):
    root = str(tmp_path / "saved_models")
    os.makedirs(os.path.join(root, "lm"))
    command = export_command(finished_run, root)
    failed = run_command(
        with_fault(fault.format(root=root), target, 1, command)
    )
    assert_one_error_line(failed, reason, "No version was written")
    assert os.listdir(os.path.join(root, "lm")) == []

    exported = run_command(command)
    assert exported.returncode == 0, exported.stderr
    assert os.listdir(os.path.join(root, "lm")) == ["1"]
