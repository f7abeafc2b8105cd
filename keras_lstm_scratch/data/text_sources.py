"""Where a corpus's text is: its files, in order, and each line's split.

The text may be given four ways (`text_source`):

- a folder with `train.txt`, `valid.txt` and `test.txt`: each file is its
  split;
- one file, `FILE`: its last lines are held out (below);
- a folder of text files (without `train.txt`): every file below it, in
  the sorted order of their paths, read as one text, its last lines held
  out;
- a glob pattern (`data/*.txt`, `books/**/*.txt`): the files it matches, in
  sorted order, as for a folder.

A name that ends in `.gz` is read through gzip. Held-out lines: the lines
that end in the last `H` bytes of the text are the test text, those that
end in the `H` bytes before them the validation text, the rest the
training text; `H` is 5% of the text, at most 2 MiB (`HELD_OUT_SHARE`,
`MAX_HELD_OUT_BYTES`), so that validation and test stay useful on a small
file and cheap on a large one.

Example:

>>> source = text_source("novel.txt")
>>> source.split_ranges["test"]
(9437184, 10485760)
"""

import dataclasses
import glob
import gzip
import os

from keras_lstm_scratch.data.text_chunks import text_chunks
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError

SPLITS = ("train", "valid", "test")
HELD_OUT_SHARE = 0.05
MAX_HELD_OUT_BYTES = 2 << 20
READ_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class TextSource:
    """The files of a corpus and the byte ranges of its splits.

    Args:
        files: Paths, in reading order.
        sizes: Each file's size in bytes, uncompressed.
        split_ranges: `{split: (start, end)}`, byte offsets into the files
            read one after another; a line belongs to the split whose
            range holds its last byte.
        description: What was given, for messages (`DIR`, `FILE`, a glob).
    """

    files: tuple
    sizes: tuple
    split_ranges: dict
    description: str

    @property
    def total_bytes(self):
        return sum(self.sizes)

    def chunks(self):
        """The text as `TextChunk`s of whole lines, in reading order."""
        return text_chunks(self.files, self.split_ranges)

    def update_digest(self, digest):
        """Adds the files' bytes, in order, and the split ranges to a
        `hashlib` digest: what the prepared ids depend on."""
        digest.update(repr(sorted(self.split_ranges.items())).encode())
        for path in self.files:
            with open(path, "rb") as handle:
                for block in iter(lambda h=handle: h.read(READ_BLOCK), b""):
                    digest.update(block)
            digest.update(b"\0")

    def split_files(self):
        """`{split: files}`: the files whose lines reach each split."""
        found = {split: [] for split in SPLITS}
        start = 0
        for path, size in zip(self.files, self.sizes, strict=True):
            for split, (first, end) in self.split_ranges.items():
                if start < end and start + size > first:
                    found[split].append(path)
            start += size
        return found


def text_size(path):
    """A file's size in bytes; a gzip file's uncompressed size (read once:
    gzip's own size field holds it modulo 4 GiB only)."""
    if not path.endswith(".gz"):
        return os.path.getsize(path)
    size = 0
    try:
        with gzip.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(READ_BLOCK), b""):
                size += len(block)
    except (OSError, EOFError) as error:
        raise InvalidInputError(
            f"{path}: not a readable gzip file ({error}). Give the text "
            "uncompressed, or compress it again with gzip."
        ) from None
    return size


def text_source(name):
    """The `TextSource` of `text:NAME`; see the module docstring.

    Raises:
        MissingInputError: (a `FileNotFoundError`) if nothing is at `name`
            or a glob matches no file.
        InvalidInputError: (a `ValueError`) if the text is empty or too
            small to hold out validation and test lines.
    """
    if os.path.isdir(name):
        if os.path.isfile(os.path.join(name, "train.txt")):
            return split_files_source(name)
        return held_out_source(folder_files(name), name)
    if os.path.isfile(name):
        return held_out_source([name], name)
    if glob.has_magic(name):
        files = sorted(
            path for path in glob.glob(name, recursive=True)
            if os.path.isfile(path)
        )  # fmt: skip
        if not files:
            raise MissingInputError(
                f"text:{name} matches no file; check the pattern (quote it "
                "so that the shell does not expand it)."
            )
        return held_out_source(files, name)
    raise MissingInputError(
        f"text:{name}: no such file or folder. Give a UTF-8 text file, a "
        "folder of text files, a folder with train.txt, valid.txt and "
        "test.txt, or a glob pattern."
    )


def split_files_source(directory, pattern="{split}.txt"):
    """A folder's `train.txt`, `valid.txt` and `test.txt` (names of
    `pattern`), each its split."""
    paths = [
        os.path.join(directory, pattern.format(split=split)) for split in SPLITS
    ]
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise MissingInputError(
            f"Missing corpus split file(s) in {directory}: {missing}. "
            f"Expected {sorted(os.path.basename(p) for p in paths)}."
        )
    sizes = [text_size(path) for path in paths]
    ranges, start = {}, 0
    for split, path, size in zip(SPLITS, paths, sizes, strict=True):
        if size == 0:
            raise InvalidInputError(
                f"{path} is empty: it holds no words or characters; every "
                "split needs some text."
            )
        ranges[split] = (start, start + size)
        start += size
    return TextSource(tuple(paths), tuple(sizes), ranges, directory)


def folder_files(directory):
    """Every file below `directory` (hidden ones left out), sorted by path."""
    files = []
    for root, folders, names in os.walk(directory):
        folders[:] = [f for f in folders if not f.startswith(".")]
        files += [os.path.join(root, n) for n in names if not n.startswith(".")]
    if not files:
        raise MissingInputError(
            f"{directory} holds no text file; put UTF-8 text files in it."
        )
    return sorted(files)


def held_out_source(files, description):
    """`files` read as one text, its last lines held out."""
    sizes = [text_size(path) for path in files]
    total = sum(sizes)
    if total == 0:
        raise InvalidInputError(
            f"{description} is empty; give some UTF-8 text."
        )
    held_out = max(1, min(int(total * HELD_OUT_SHARE), MAX_HELD_OUT_BYTES))
    ranges = {
        "train": (0, total - 2 * held_out),
        "valid": (total - 2 * held_out, total - held_out),
        "test": (total - held_out, total),
    }
    return TextSource(tuple(files), tuple(sizes), ranges, description)
