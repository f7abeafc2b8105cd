"""Reading whitespace-tokenised text files into word streams."""

import os

from keras_lstm_scratch.data.vocabulary import END_OF_SENTENCE
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError


def line_tokens(line):
    """A line's words followed by `<eos>`; `[]` for a blank line.

    A blank (or whitespace-only) line adds nothing. The book's and
    PyTorch's readers turn it into a lone `<eos>`; here the layout of a
    file (double spacing, blank lines between paragraphs) does not change
    what the model learns or its perplexity. On PTB, which has no blank
    lines, both readings give the same stream.
    """
    words = line.split()
    return [*words, END_OF_SENTENCE] if words else []


def read_tokens(path):
    """Reads a text file as words, each line's words followed by `<eos>`.

    Args:
        path: A UTF-8 text file, one sentence per line.

    Returns:
        A list of words.

    Raises:
        MissingInputError: (a `FileNotFoundError`) if `path` does not exist.
        InvalidInputError: (a `ValueError`) if the file is not valid UTF-8
            (the error names the file and line) or holds no words.
    """
    if not os.path.isfile(path):
        raise MissingInputError(
            f"{path} not found; it must be a UTF-8 text file, one sentence "
            "per line."
        )
    tokens = []
    with open(path, "rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidInputError(
                    f"{path}, line {line_number}: invalid UTF-8 "
                    f"({error.reason} at byte {error.start} of the line). "
                    "Re-encode the file as UTF-8."
                ) from None
            tokens.extend(line_tokens(line))
    if not tokens:
        raise InvalidInputError(
            f"{path} holds no words; every split needs some text."
        )
    return tokens
