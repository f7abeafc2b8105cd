"""Reading whitespace-tokenised text files into word streams."""

import os

from keras_lstm_scratch.data.vocabulary import END_OF_SENTENCE


def line_tokens(line):
    """A line's words followed by `<eos>`; `[]` for a blank line."""
    words = line.split()
    return [*words, END_OF_SENTENCE] if words else []


def read_tokens(path):
    """Reads a text file as words, each line's words followed by `<eos>`.

    Args:
        path: A UTF-8 text file, one sentence per line.

    Returns:
        A list of words.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not valid UTF-8 (the error names the file
            and line) or holds no words.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Text file not found: {path}")
    tokens = []
    with open(path, "rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {line_number}: invalid UTF-8 "
                    f"({error.reason} at byte {error.start} of the line). "
                    "Re-encode the file as UTF-8."
                ) from None
            tokens.extend(line_tokens(line))
    if not tokens:
        raise ValueError(f"{path} holds no words; every split needs some text.")
    return tokens
