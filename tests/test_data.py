import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from keras_lstm_scratch.data import (
    Vocabulary,
    load_ptb,
    load_text_corpus,
    load_tfds_corpus,
    read_tokens,
)
from keras_lstm_scratch.data import ptb as ptb_module
from tests.helpers import REPO_ROOT


def write(path, text, mode="w"):
    with open(path, mode) as handle:
        handle.write(text)
    return str(path)


# --- text files and vocabulary ---------------------------------------------


def test_each_line_ends_with_eos_and_blank_lines_are_skipped(tmp_path):
    path = write(tmp_path / "a.txt", " the cat \n\n sat down\n")
    assert read_tokens(path) == ["the", "cat", "<eos>", "sat", "down", "<eos>"]


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    path = write(tmp_path / "bad.txt", b"fine line\nbad \xff byte\n", "wb")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: invalid UTF-8"):
        read_tokens(path)


def test_empty_file_is_rejected(tmp_path):
    path = write(tmp_path / "empty.txt", "  \n\n")
    with pytest.raises(ValueError, match="empty.txt holds no words"):
        read_tokens(path)


def test_missing_split_is_named(tmp_path):
    write(tmp_path / "train.txt", "a b\n")
    write(tmp_path / "valid.txt", "a b\n")
    with pytest.raises(FileNotFoundError, match="test.txt"):
        load_text_corpus(str(tmp_path))


def test_user_corpus_caps_the_vocabulary_and_maps_rare_words_to_unk(tmp_path):
    write(tmp_path / "train.txt", "a a a b b c\n" * 2)
    write(tmp_path / "valid.txt", "a c z\n")
    write(tmp_path / "test.txt", "b\n")
    corpus = load_text_corpus(str(tmp_path), max_vocab_size=4)
    assert corpus.vocabulary.words == ["<unk>", "<eos>", "a", "b"]
    assert corpus.vocabulary.decode(corpus.valid) == [
        "a",
        "<unk>",
        "<unk>",
        "<eos>",
    ]
    assert corpus.test.dtype == np.uint8  # the narrowest that holds 4 ids


def test_vocabulary_round_trips_through_json(tmp_path):
    vocabulary = Vocabulary.from_tokens("x y x <eos>".split())
    vocabulary.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").words == vocabulary.words
    with pytest.raises(ValueError, match="'<unk>'"):
        Vocabulary(["<eos>", "a"])


def test_a_cap_the_words_fit_under_keeps_their_order():
    tokens = "b a c a c c <eos>".split()
    uncapped = Vocabulary.from_tokens(tokens)
    assert uncapped.words == ["<unk>", "<eos>", "b", "a", "c"]
    assert Vocabulary.from_tokens(tokens, max_size=5).words == uncapped.words
    # A cap that drops words keeps the most frequent.
    assert Vocabulary.from_tokens(tokens, max_size=4).words == [
        "<unk>",
        "<eos>",
        "c",
        "a",
    ]


# --- Penn Treebank ---------------------------------------------------------


def test_ptb_has_the_mikolov_sizes(ptb_corpus):
    assert len(ptb_corpus.vocabulary) == 10000
    assert (
        len(ptb_corpus.train),
        len(ptb_corpus.valid),
        len(ptb_corpus.test),
    ) == (929589, 73760, 82430)
    words = ptb_corpus.vocabulary.decode(ptb_corpus.train[:4])
    assert words == ["aer", "banknote", "berlitz", "calloway"]


def test_ptb_directory_from_the_environment(ptb_dir, monkeypatch):
    monkeypatch.setenv(ptb_module.DATA_DIR_ENV, ptb_dir)
    assert ptb_module.resolve_ptb_directory() == ptb_dir


def test_ptb_hash_mismatch_is_reported(ptb_dir, tmp_path):
    for name in ptb_module.PTB_SHA256:
        shutil.copy(os.path.join(ptb_dir, name), tmp_path / name)
    write(tmp_path / "ptb.valid.txt", " an altered line\n", "a")
    with pytest.raises(ValueError, match=r"SHA-256 mismatch for .*ptb.valid"):
        load_ptb(str(tmp_path))


def test_ptb_missing_split_is_reported(ptb_dir, tmp_path):
    shutil.copy(os.path.join(ptb_dir, "ptb.train.txt"), tmp_path)
    with pytest.raises(FileNotFoundError, match="ptb.test.txt"):
        load_ptb(str(tmp_path))


@contextlib.contextmanager
def serve_directory(directory):
    """An HTTP server on loopback for `directory`; yields its base URL."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(directory)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def small_ptb_files(directory):
    """Three tiny 'PTB' files and their hashes."""
    directory.mkdir()
    hashes = {}
    for split in ("train", "valid", "test"):
        text = f" a b c {split}\n b c a\n"
        name = f"ptb.{split}.txt"
        write(directory / name, text)
        hashes[name] = hashlib.sha256(text.encode()).hexdigest()
    return hashes


def test_download_verifies_and_caches(tmp_path):
    hashes = small_ptb_files(tmp_path / "remote")
    cache = tmp_path / "cache"
    with serve_directory(tmp_path / "remote") as url:
        first = ptb_module.download_ptb(str(cache), url, expected=hashes)
    assert sorted(os.listdir(first)) == sorted(hashes)
    # The server is gone: a second call must come from the cache.
    again = ptb_module.download_ptb(
        str(cache), "http://127.0.0.1:9/", expected=hashes
    )
    assert again == first


def test_download_with_a_wrong_hash_leaves_no_cache(tmp_path):
    hashes = small_ptb_files(tmp_path / "remote")
    hashes["ptb.test.txt"] = "0" * 64
    cache = tmp_path / "cache"
    with serve_directory(tmp_path / "remote") as url:
        with pytest.raises(ValueError, match="SHA-256 mismatch"):
            ptb_module.download_ptb(str(cache), url, expected=hashes)
    assert os.listdir(cache) == []


def test_download_of_a_missing_file_leaves_no_cache(tmp_path):
    hashes = small_ptb_files(tmp_path / "remote")
    os.remove(tmp_path / "remote" / "ptb.valid.txt")
    cache = tmp_path / "cache"
    with serve_directory(tmp_path / "remote") as url:
        with pytest.raises(OSError):
            ptb_module.download_ptb(str(cache), url, expected=hashes)
    assert os.listdir(cache) == []


# --- TensorFlow Datasets ---------------------------------------------------


@pytest.mark.slow
def test_tfds_builder_gives_the_same_token_streams(
    ptb_dir, ptb_corpus, tmp_path
):
    import tensorflow_datasets as tfds

    import keras_lstm_scratch.data.tfds  # noqa: F401 (registers it)

    builder = tfds.builder("ptb_mikolov", data_dir=str(tmp_path))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=ptb_dir)
    )
    assert builder.info.splits["train"].num_examples == 42068
    corpus = load_tfds_corpus("ptb_mikolov", data_dir=str(tmp_path))
    for split in ("train", "valid", "test"):
        ours = ptb_corpus.vocabulary.decode(ptb_corpus.split(split))
        theirs = corpus.vocabulary.decode(corpus.split(split))
        assert ours == theirs
        np.testing.assert_array_equal(
            corpus.split(split), ptb_corpus.split(split)
        )
    assert corpus.vocabulary.words == ptb_corpus.vocabulary.words


@pytest.mark.slow
def test_tfds_ptb_from_the_command_line_trains_as_ptb_does(
    ptb_dir, tiny_ptb_run, tmp_path
):
    # PTB's files in TFDS's manual directory, DATA_DIR/downloads/manual/.
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        name = f"ptb.{split}.txt"
        os.symlink(os.path.join(ptb_dir, name), manual / name)
    output_dir = tmp_path / "run"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.train",
            "--preset",
            "tiny",
            "--set",
            "corpus=tfds:ptb_mikolov",
            "--data-dir",
            str(tmp_path),
            "--output-dir",
            str(output_dir),
            "--verbose",
            "0",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(output_dir / "results.json") as handle:
        results = json.load(handle)
    expected = tiny_ptb_run[1]
    assert results["test_tokens"] == expected["test_tokens"] == 82429
    assert results["test_perplexity"] == pytest.approx(
        expected["test_perplexity"], rel=1e-3
    )
