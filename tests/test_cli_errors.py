"""A user's mistake on the command line: one line, `error: ...`, status 2.

Each case runs the tool as a user does, in a fresh process, without
`TF_CPP_MIN_LOG_LEVEL`, so the tool's quiet start is part of what is
checked: standard error must hold the one line and nothing else.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, assert_one_error_line, run_tool
from tests.small_corpus import write_small_corpus
from training.config import resolve_config
from training.run_directory import save_config

pytestmark = pytest.mark.slow


def train_tiny(*arguments):
    return run_tool("training.train", "--preset", "tiny", *arguments)


def train_on(corpus_dir, output_dir, *more):
    return train_tiny(
        "--output-dir",
        str(output_dir),
        "--set",
        f"corpus=text:{corpus_dir}",
        "--set",
        "batch_size=4",
        "--set",
        "seq_len=10",
        *more,
    )


@pytest.fixture
def corpus(tmp_path):
    directory = tmp_path / "corpus"
    directory.mkdir()
    return directory, write_small_corpus(directory)


def test_a_missing_split_file(corpus, tmp_path):
    directory, paths = corpus
    os.remove(paths["valid"])
    completed = train_on(directory, tmp_path / "run")
    assert_one_error_line(completed, paths["valid"], "Missing corpus split")
    assert not os.path.exists(tmp_path / "run")


def test_an_empty_split_file(corpus, tmp_path):
    directory, paths = corpus
    open(paths["test"], "w").close()
    completed = train_on(directory, tmp_path / "run")
    assert_one_error_line(completed, paths["test"], "holds no words")


def test_a_file_that_is_not_utf8(corpus, tmp_path):
    directory, paths = corpus
    with open(paths["train"], "rb") as handle:
        bad_line = len(handle.readlines()) + 1
    with open(paths["train"], "ab") as handle:
        handle.write(b"caf\xe9 au lait\n")
    completed = train_on(directory, tmp_path / "run")
    assert_one_error_line(
        completed,
        paths["train"],
        f"line {bad_line}: invalid UTF-8",
        "Re-encode",
    )


def test_an_unknown_tokens_value(corpus, tmp_path):
    directory, _ = corpus
    completed = train_on(directory, tmp_path / "run", "--set", "tokens=bytes")
    assert_one_error_line(completed, "tokens", "'bytes'", "chars")
    assert not os.path.exists(tmp_path / "run")


def test_a_character_text_with_no_characters(corpus, tmp_path):
    directory, paths = corpus
    with open(paths["valid"], "w") as handle:
        handle.write("\n   \n\t\n")
    completed = train_on(directory, tmp_path / "run", "--set", "tokens=chars")
    assert_one_error_line(completed, paths["valid"], "holds no characters")
    assert not os.path.exists(tmp_path / "run")


def test_resuming_on_changed_text_is_refused(corpus, tmp_path):
    directory, paths = corpus
    run_dir = tmp_path / "run"
    chars = ("--set", "tokens=chars", "--verbose", "0")
    assert train_on(directory, run_dir, *chars).returncode == 0
    history = (run_dir / "history.csv").read_text()
    with open(paths["train"], "a") as handle:
        handle.write("한국어 문장\n" * 50)
    completed = train_on(directory, run_dir, *chars)
    assert_one_error_line(
        completed, str(run_dir), "changed since the run began", paths["train"]
    )
    # The finished run is left as it was.
    assert (run_dir / "history.csv").read_text() == history


def test_a_training_text_shorter_than_one_window(corpus, tmp_path):
    directory, paths = corpus
    with open(paths["train"], "w") as handle:
        handle.write("too short a text\n")
    completed = train_on(directory, tmp_path / "run")
    assert_one_error_line(
        completed,
        paths["train"],
        "5 tokens",
        "batch_size * seq_len + 1 = 41",
        "smaller batch_size or seq_len",
    )
    # Nothing was written, so the corrected command starts cleanly.
    assert not os.path.exists(tmp_path / "run")


def test_an_output_dir_that_holds_another_run(corpus, tmp_path):
    directory, _ = corpus
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    other = resolve_config("tiny", {"corpus": f"text:{directory}"})
    save_config(other, str(output_dir / "config.json"))
    completed = train_on(directory, output_dir)
    assert_one_error_line(
        completed, str(output_dir), "different config", "batch_size"
    )


def test_a_data_dir_whose_files_are_not_ptb(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text("not the treebank\n")
    completed = train_tiny("--data-dir", str(tmp_path))
    assert_one_error_line(
        completed,
        "SHA-256 mismatch for " + str(tmp_path / "ptb.train.txt"),
        "not Mikolov's PTB split",
    )


def test_tfds_ptb_reads_the_manual_directory_and_verifies_it(tmp_path):
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (manual / f"ptb.{split}.txt").write_text("a tiny stand-in\n")
    completed = train_tiny(
        "--data-dir",
        str(tmp_path),
        "--output-dir",
        str(tmp_path / "run"),
        "--set",
        "corpus=tfds:ptb_mikolov",
    )
    # The builder is found from the CLI and checks the manual files.
    assert_one_error_line(
        completed, "SHA-256 mismatch for " + str(manual / "ptb.train.txt")
    )


def test_an_unknown_tfds_dataset(tmp_path):
    completed = train_tiny(
        "--data-dir", str(tmp_path), "--set", "corpus=tfds:no_such_corpus"
    )
    assert_one_error_line(completed, "no_such_corpus", "list_builders")


def test_generate_from_a_missing_run(tmp_path):
    missing = str(tmp_path / "nowhere")
    completed = run_tool("training.generate", "--run", missing)
    assert_one_error_line(completed, missing, "best.keras not found")


def test_generate_from_a_folder_that_is_no_saved_model(tmp_path):
    completed = run_tool("training.generate", "--saved-model", str(tmp_path))
    assert_one_error_line(completed, str(tmp_path), "saved_model.pb")


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("--top-k", "-3", "--top-k -3"),
        ("--max-tokens", "-1", "0 to 10000"),
        ("--temperature", "nan", "--temperature nan"),
        ("--top-p", "0", "--top-p 0"),
        ("--top-p", "1.5", "--top-p 1.5"),
        ("--repetition-penalty", "-1", "--repetition-penalty -1"),
        ("--num-samples", "0", "--num-samples 0"),
        ("--stop", "", "--stop ''"),
    ],
)
def test_generate_with_a_bad_number(tmp_path, option, value, fragment):
    completed = run_tool(
        "training.generate", "--run", str(tmp_path), option, value
    )
    assert_one_error_line(completed, fragment)


def test_export_of_a_missing_run(tmp_path):
    missing = str(tmp_path / "nowhere")
    completed = run_tool(
        "training.export", "--run", missing, "--export-root", str(tmp_path)
    )
    assert_one_error_line(completed, missing, "best.keras not found")


def test_evaluate_a_missing_run(tmp_path):
    missing = str(tmp_path / "nowhere")
    completed = run_tool("training.evaluate", "--run", missing)
    assert_one_error_line(completed, missing, "best.keras not found")


@pytest.mark.parametrize("option", ["--segment-length", "--max-tokens"])
def test_evaluate_with_a_bad_count(tmp_path, option):
    completed = run_tool(
        "training.evaluate", "--run", str(tmp_path), option, "0"
    )
    assert_one_error_line(completed, f"{option} 0", "positive")


def test_generate_with_the_cache_from_a_run_not_evaluated(corpus, tmp_path):
    directory, _ = corpus
    trained = train_on(directory, tmp_path / "run", "--verbose", "0")
    assert trained.returncode == 0, trained.stderr
    completed = run_tool(
        "training.generate", "--run", str(tmp_path / "run"), "--cache"
    )
    assert_one_error_line(completed, "--cache", "training.evaluate")


def test_a_run_starts_quietly(corpus, tmp_path):
    directory, _ = corpus
    completed = train_on(directory, tmp_path / "run", "--verbose", "0")
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.splitlines()[0].startswith("| epoch |")


IMPORT_EVERYTHING = """
import json, os, sys
import keras, matplotlib
IMPORT_APPLICATION
print(json.dumps({
    "log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
    "backend": matplotlib.get_backend(),
    "policy": keras.mixed_precision.global_policy().name,
}))
"""
APPLICATION = (
    "import training, training.train, training.run, training.plots, "
    "training.export, training.generate, training.inspect_model"
)


def import_effects(application):
    """What a process sees after importing Keras, Matplotlib and, with
    `application`, every module of the application."""
    environment = {
        k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"
    }
    environment["MPLBACKEND"] = "svg"  # the user's choice, not ours
    code = IMPORT_EVERYTHING.replace(
        "IMPORT_APPLICATION", APPLICATION if application else ""
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=True,
    )
    return json.loads(completed.stdout.splitlines()[-1])


def test_importing_the_application_changes_nothing():
    # Against Keras's own import: with JAX installed, importing Keras sets
    # TF_CPP_MIN_LOG_LEVEL=1 by itself (jax/__init__.py's setdefault).
    # The quiet start is for the python -m tools only.
    effects = import_effects(application=True)
    assert effects == import_effects(application=False)
    assert effects["backend"] == "svg"
    assert effects["policy"] == "float32"
