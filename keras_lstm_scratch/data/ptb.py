"""Penn Treebank (Mikolov's 10k-word split): find, download, verify, load."""

import os
import shutil
import urllib.error
import urllib.request

from keras_lstm_scratch.data.cache import default_cache_dir
from keras_lstm_scratch.data.prepared_corpus import prepare_corpus
from keras_lstm_scratch.data.text_sources import SPLITS, split_files_source
from keras_lstm_scratch.data.tokenization import WORD_TOKENS
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from keras_lstm_scratch.staged_write import sha256_of, staged_folder

# Where the book ("Deep Learning from Scratch 2", dataset/ptb.py) fetches it.
PTB_URL = "https://raw.githubusercontent.com/tomsercu/lstm/master/data/"
PTB_FILE_PATTERN = "ptb.{split}.txt"
PTB_FILES = {split: PTB_FILE_PATTERN.format(split=split) for split in SPLITS}
PTB_SHA256 = {  # the SHA256SUMS published with Mikolov's split
    "ptb.train.txt": (
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"
    ),
    "ptb.valid.txt": (
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"
    ),
    "ptb.test.txt": (
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"
    ),
}
# A local copy of the three files, used instead of the download.
DATA_DIR_ENV = "KERAS_LSTM_SCRATCH_PTB_DIR"


def verify_ptb_file(path, want):
    """Checks that the file at `path` has the SHA-256 `want`.

    Raises:
        InvalidInputError: (a `ValueError`) naming the file and both hashes.
    """
    got = sha256_of(path)
    if got != want:
        raise InvalidInputError(
            f"SHA-256 mismatch for {path}: expected {want}, got {got}. The "
            "file is corrupt or not Mikolov's PTB split; put the original "
            "files there, or remove them to download PTB."
        )


def verify_ptb_directory(directory, expected=None):
    """Checks that `directory` holds the three PTB files with the known hashes.

    Raises:
        MissingInputError: (a `FileNotFoundError`) naming the missing files.
        InvalidInputError: (a `ValueError`) naming a file whose SHA-256
            differs from the expected.
    """
    expected = expected or PTB_SHA256
    missing = [
        name
        for name in expected
        if not os.path.isfile(os.path.join(directory, name))
    ]
    if missing:
        raise MissingInputError(
            f"PTB directory {directory} lacks {missing}; it must hold "
            f"{sorted(expected)}."
        )
    for name, want in expected.items():
        verify_ptb_file(os.path.join(directory, name), want)


def download_ptb(cache_dir=None, base_url=PTB_URL, expected=None, timeout=60):
    """Downloads PTB into `cache_dir/ptb`, verified, or reuses the cache.

    The files are fetched into a temporary folder beside the cache and
    verified there; only a complete, verified set is renamed into place, so
    a failed or interrupted download leaves no partial cache.
    (`keras.utils.get_file` writes each file in place, where a kill leaves
    a partial one.)

    Returns:
        The directory holding the verified files.

    Raises:
        MissingInputError: if a file cannot be downloaded (no connection,
            or the server refused it).
        OutputWriteError: if the cache cannot be written (a full disk, no
            permission).
    """
    expected = expected or PTB_SHA256
    cache_root = cache_dir or default_cache_dir()
    target = os.path.join(cache_root, "ptb")
    if os.path.isdir(target):
        try:
            verify_ptb_directory(target, expected)
            return target
        except (FileNotFoundError, ValueError):
            shutil.rmtree(target)
    kept = "No partial download is left; free some space or pass --data-dir."
    with staged_folder(target, kept) as staging:
        for name in expected:
            fetch(base_url + name, os.path.join(staging, name), timeout)
        verify_ptb_directory(staging, expected)
    return target


def fetch(url, path, timeout):
    """Downloads `url` to `path`; a failure names the URL and the way out."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            with open(path, "wb") as handle:
                shutil.copyfileobj(response, handle)
    except (urllib.error.URLError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise MissingInputError(
            f"Could not download {url} ({reason}). Check the connection, or "
            f"pass --data-dir (or set {DATA_DIR_ENV}) to a folder that holds "
            f"{', '.join(PTB_FILES.values())}."
        ) from None


def resolve_ptb_directory(data_dir=None, download=True, cache_dir=None):
    """Finds verified PTB files.

    Order: `data_dir`, then `$KERAS_LSTM_SCRATCH_PTB_DIR`, then the download
    cache (downloading into it when `download=True`).
    """
    local = data_dir or os.environ.get(DATA_DIR_ENV)
    if local:
        verify_ptb_directory(local)
        return local
    cached = os.path.join(cache_dir or default_cache_dir(), "ptb")
    if not download:
        verify_ptb_directory(cached)
        return cached
    return download_ptb(cache_dir)


def load_ptb(
    data_dir=None,
    download=True,
    cache_dir=None,
    tokenization=WORD_TOKENS,
    **reading,
):
    """Loads PTB as a `Corpus` of words (default) or characters.

    Words: each line's words are followed by `<eos>`; the vocabulary is
    exactly the words of `ptb.train.txt` (with `<unk>` and `<eos>`),
    10,000 in all.

    Characters (`Tokenization("chars")`), the character-level PTB task
    read from the same files: each line without the space that PTB puts
    before and after it, its words joined by single spaces as they are, so
    a line is its characters (a space between words, `<unk>` as the five
    characters `<`, `u`, `n`, `k`, `>`) and then `<eos>`. 50 tokens;
    `docs/training.md` compares the stream with Mikolov's `ptb.char.*`
    files.

    Args:
        data_dir: Local folder with `ptb.{train,valid,test}.txt`.
        download: Download into the cache when no local copy is given.
        cache_dir: Cache root (default `default_cache_dir()`).
        tokenization: A `Tokenization`, words by default.
        **reading: `base_vocabulary` and `add_new_tokens` of
            `prepare_corpus` (fine-tuning on PTB).

    The ids are prepared once into the cache (`prepared_corpus.py`).

    Returns:
        A `Corpus` of memory-mapped id streams: as words, train 929,589, valid
        73,760 and test 82,430 tokens.
    """
    directory = resolve_ptb_directory(data_dir, download, cache_dir)
    source = split_files_source(directory, PTB_FILE_PATTERN)
    return prepare_corpus(source, tokenization, strip_lines=True, **reading)
