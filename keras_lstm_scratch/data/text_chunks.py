"""Text files read as chunks of whole lines, each routed to its split.

Memory is one chunk (about `CHUNK_BYTES`), whatever the size of the text:
the lines are read with `readlines(hint)`, decoded as UTF-8 a chunk at a
time, and a chunk that crosses a split boundary is cut there.
"""

import dataclasses
import gzip

import numpy as np

from keras_lstm_scratch.errors import InvalidInputError

CHUNK_BYTES = 4 << 20


@dataclasses.dataclass(frozen=True)
class TextChunk:
    """Whole lines of one file that belong to one split.

    Args:
        split: `train`, `valid` or `test`.
        text: The lines, decoded, each ending in `\\n` but perhaps the
            file's last.
        num_bytes: Their size in the file (uncompressed).
    """

    split: str
    text: str
    num_bytes: int


def open_text(path):
    """Opens `path` for reading bytes; through gzip if it ends in `.gz`."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def text_chunks(files, split_ranges, chunk_bytes=None):
    """Yields `TextChunk`s of `files`, read one after another, in order.

    `split_ranges` (`{split: (start, end)}` byte offsets into the files
    read as one) says where each line goes: to the split whose range holds
    its last byte. `chunk_bytes` (default `CHUNK_BYTES`) is about the size
    of a chunk.

    Raises:
        InvalidInputError: (a `ValueError`) at the first line that is not
            UTF-8, naming its file and line.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    offset = 0
    boundaries = sorted(
        ((split, end) for split, (_, end) in split_ranges.items()),
        key=lambda boundary: boundary[1],
    )
    for path in files:
        line_number = 1
        with open_text(path) as handle:
            while lines := handle.readlines(chunk_bytes):
                for split, part in cut_at_boundaries(lines, offset, boundaries):
                    yield TextChunk(
                        split,
                        decode_lines(part, path, line_number),
                        sum(map(len, part)),
                    )
                    line_number += len(part)
                offset += sum(map(len, lines))


def cut_at_boundaries(lines, offset, boundaries):
    """`[(split, lines)]`: `lines` (starting at byte `offset`) cut where a
    line's last byte passes a split's end."""
    last_bytes = offset + np.cumsum([len(line) for line in lines]) - 1
    parts, first = [], 0
    for split, end in boundaries:
        stop = int(np.searchsorted(last_bytes, end, side="left"))
        if stop > first:
            parts.append((split, lines[first:stop]))
            first = stop
    return parts


def decode_lines(lines, path, first_line_number):
    """The lines decoded as one string; a bad byte names its file and line."""
    try:
        return b"".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        pass
    for index, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInputError(
                f"{path}, line {first_line_number + index}: invalid UTF-8 "
                f"({error.reason} at byte {error.start} of the line). "
                "Re-encode the file as UTF-8."
            ) from None
    raise AssertionError("a chunk failed to decode but none of its lines did")
