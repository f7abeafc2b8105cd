import gzip
import os

import numpy as np
import pytest

from keras_lstm_scratch.data import (
    Corpus,
    Tokenization,
    Vocabulary,
    load_text_corpus,
    prepared_corpus,
    read_tokens,
    tbptt_dataset,
    tbptt_windows,
    text_chunks,
    text_source,
)
from keras_lstm_scratch.data import corpus as corpus_module
from keras_lstm_scratch.data.text_sources import SPLITS
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from tests.helpers import assert_one_error_line, run_tool, train_command

WORDS = Tokenization("words")
CHARS = Tokenization("chars")
# Scripts, spaces and line ends a user's text has.
LINES = [
    "the market fell\tagain \r",
    "한국어 문장입니다 ok",
    "",
    "日本語の\u3000文と中文句子",
    "  def f(x):  return x + 1",
    "café naïve e\u0301 👍🏽 🇰🇷",
    "a\u00a0b c",
    "   ",
    "the market rose",
]


def write_lines(path, lines, repeat=1):
    path.write_text("\n".join(lines * repeat) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def text_dir(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 60), ("valid", 12), ("test", 12)):
        lines = [LINES[i] for i in rng.integers(0, len(LINES), count)]
        write_lines(tmp_path / f"{split}.txt", lines)
    return tmp_path


def read_in_memory(directory, tokenization, max_vocab_size=None):
    """The reading before prepared corpora: every token in a list."""
    tokens = {
        split: read_tokens(str(directory / f"{split}.txt"), tokenization)
        for split in SPLITS
    }
    vocabulary = Vocabulary.from_tokens(
        tokens["train"], max_vocab_size, by_frequency=tokenization.is_chars
    )
    ids = {split: vocabulary.encode(tokens[split]) for split in SPLITS}
    return Corpus(vocabulary=vocabulary, tokenization=tokenization, **ids)


@pytest.mark.parametrize("tokenization", [WORDS, CHARS])
@pytest.mark.parametrize("max_vocab_size", [None, 12])
def test_prepared_ids_equal_reading_the_text_into_lists(
    text_dir, tokenization, max_vocab_size, monkeypatch
):
    monkeypatch.setattr(text_chunks, "CHUNK_BYTES", 50)  # many chunks
    prepared = load_text_corpus(str(text_dir), max_vocab_size, tokenization)
    expected = read_in_memory(text_dir, tokenization, max_vocab_size)
    assert prepared.vocabulary.words == expected.vocabulary.words
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(
            prepared.split(split), expected.split(split)
        )
        assert isinstance(prepared.split(split), np.memmap)
    assert prepared.train.dtype == np.uint8


def test_the_id_type_is_the_narrowest_that_holds_the_vocabulary(tmp_path):
    words = [f"w{i}" for i in range(300)]
    write_lines(tmp_path / "train.txt", [" ".join(words)])
    write_lines(tmp_path / "valid.txt", ["w1"])
    write_lines(tmp_path / "test.txt", ["w299 zzz"])
    corpus = load_text_corpus(str(tmp_path), max_vocab_size=None)
    assert len(corpus.vocabulary) == 302
    assert corpus.train.dtype == np.uint16
    assert corpus.vocabulary.decode(corpus.test) == ["w299", "<unk>", "<eos>"]


def test_a_second_load_reuses_the_prepared_ids_and_a_change_prepares_again(
    text_dir, monkeypatch
):
    first = load_text_corpus(str(text_dir))
    calls = []
    real_write = prepared_corpus.write_prepared
    monkeypatch.setattr(
        prepared_corpus,
        "write_prepared",
        lambda *args: calls.append(1) or real_write(*args),
    )
    again = load_text_corpus(str(text_dir))
    assert calls == [] and again.key == first.key
    with open(text_dir / "train.txt", "a", encoding="utf-8") as handle:
        handle.write("brand new words\n")
    changed = load_text_corpus(str(text_dir))
    assert calls == [1] and changed.key != first.key
    assert "brand" in changed.vocabulary.words


def test_invalid_utf8_deep_in_a_file_names_it_and_leaves_nothing_cached(
    tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("KERAS_LSTM_SCRATCH_PREPARED_DIR", str(cache))
    monkeypatch.setattr(text_chunks, "CHUNK_BYTES", 64)
    lines = [f"fine line number {i}" for i in range(500)]
    data = ("\n".join(lines) + "\n").encode() + b"bad \xff byte\nmore\n"
    (tmp_path / "big.txt").write_bytes(data)
    with pytest.raises(InvalidInputError, match=r"big.txt, line 501: invalid"):
        load_text_corpus(str(tmp_path / "big.txt"))
    assert os.listdir(cache) == []  # not even a staging folder


def prepared_folders(cache):
    return [name for name in os.listdir(cache) if not name.startswith(".")]


@pytest.mark.parametrize("fault", ["read-only:CACHE", "disk-full:64"])
def test_a_cache_that_cannot_be_written_is_one_line_and_leaves_nothing(
    text_dir, tmp_path, fault
):
    cache = tmp_path / "cache"
    cache.mkdir()
    command = train_command(str(text_dir), str(tmp_path / "run"), 1)
    faulty = [
        "tests.fault_injection",
        fault.replace("CACHE", str(cache)),
        "keras_lstm_scratch.data.prepared_corpus:write_prepared",
        "1",
        "--",
        *command[2:],
    ]
    environment = {"KERAS_LSTM_SCRATCH_PREPARED_DIR": str(cache)}
    completed = run_tool(*faulty, environment=environment)
    assert_one_error_line(completed, f"cannot write {cache}")
    # No prepared folder (a staging folder, dot-named, is never read).
    assert prepared_folders(cache) == []
    assert run_tool(*command[2:], environment=environment).returncode == 0
    assert len(prepared_folders(cache)) == 1


def test_gzip_text_reads_as_the_plain_text(text_dir, tmp_path):
    plain = text_dir / "all.txt"
    plain.write_bytes(
        b"".join((text_dir / f"{s}.txt").read_bytes() for s in SPLITS)
    )
    with gzip.open(tmp_path / "all.txt.gz", "wb") as handle:
        handle.write(plain.read_bytes())
    expected = load_text_corpus(str(plain), tokenization=CHARS)
    packed = load_text_corpus(str(tmp_path / "all.txt.gz"), None, CHARS)
    assert packed.vocabulary.words == expected.vocabulary.words
    for split in SPLITS:
        np.testing.assert_array_equal(
            packed.split(split), expected.split(split)
        )


def test_one_file_holds_out_its_last_lines_for_validation_and_test(tmp_path):
    lines = [f"line {i} of the text" for i in range(1000)]
    path = write_lines(tmp_path / "one.txt", lines)
    corpus = load_text_corpus(path, tokenization=CHARS)

    def text_lines(ids):
        tokens = corpus.vocabulary.decode(ids)
        return "".join("\n" if t == "<eos>" else t for t in tokens).split("\n")

    train, valid, test = (text_lines(corpus.split(s))[:-1] for s in
                          ("train", "valid", "test"))  # fmt: skip
    assert train + valid + test == lines  # whole lines, in order
    held_out = int(os.path.getsize(path) * 0.05)  # 5% of a small file
    for part in (valid, test):
        size = sum(len(line) + 1 for line in part)
        assert held_out <= size < held_out + len(lines[-1]) + 1


def test_a_folder_of_files_is_read_in_sorted_order(tmp_path):
    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    write_lines(folder / "b" / "2.txt", ["second"] * 200)
    write_lines(folder / "a.txt", ["first"] * 200)
    write_lines(folder / "c.txt", ["first"] * 40)
    (folder / ".hidden.txt").write_text("never\n")
    source = text_source(str(folder))
    assert [os.path.relpath(p, folder) for p in source.files] == [
        "a.txt",
        os.path.join("b", "2.txt"),
        "c.txt",
    ]
    corpus = load_text_corpus(str(folder), max_vocab_size=None)
    train = corpus.vocabulary.decode(corpus.train)
    assert train[398:402] == ["first", "<eos>", "second", "<eos>"]
    assert corpus.vocabulary.decode(corpus.test[-2:]) == ["first", "<eos>"]
    assert "never" not in corpus.vocabulary.words


def test_inputs_that_cannot_be_used_are_named(tmp_path):
    with pytest.raises(MissingInputError, match=r"\*.txt matches no file"):
        text_source(str(tmp_path / "*.txt"))
    with pytest.raises(MissingInputError, match="no such file or folder"):
        text_source(str(tmp_path / "absent.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InvalidInputError, match="empty.txt is empty"):
        text_source(str(tmp_path / "empty.txt"))
    blank = write_lines(tmp_path / "blank.txt", ["  ", ""] * 100)
    with pytest.raises(InvalidInputError, match="blank.txt holds no words"):
        load_text_corpus(blank)


@pytest.mark.parametrize("block", [1, 2, 5, 1 << 22])
def test_counting_words_of_ids_matches_counting_them_in_text(
    text_dir, block, monkeypatch
):
    monkeypatch.setattr(corpus_module, "COUNT_BLOCK", block)
    corpus = load_text_corpus(str(text_dir), tokenization=CHARS)
    for ids in (corpus.test, corpus.test[1:], corpus.train[:-1]):
        tokens = corpus.vocabulary.decode(ids)
        assert corpus.count_words(ids) == CHARS.count_words(tokens)


@pytest.mark.parametrize("pad", [False, True])
def test_the_window_dataset_reads_the_windows_of_the_stream(pad):
    ids = np.random.default_rng(0).integers(0, 60000, 1001).astype(np.uint16)
    expected = tbptt_windows(ids, 4, 7, pad=pad)
    read = list(tbptt_dataset(ids, 4, 7, pad=pad).as_numpy_iterator())
    assert len(read) == len(expected[0])
    for k, window in enumerate(read):
        for part, whole in zip(window, expected, strict=False):
            np.testing.assert_array_equal(part, whole[k])
    later = tbptt_dataset(ids, 4, 7, pad=pad, first_window=3)
    later = list(later.as_numpy_iterator())
    np.testing.assert_array_equal(later[0][0], expected[0][3])
