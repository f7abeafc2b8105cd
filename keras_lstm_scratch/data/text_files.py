"""Reading UTF-8 text files into token streams (words or characters)."""

import os

from keras_lstm_scratch.data.text_chunks import decode_lines
from keras_lstm_scratch.data.tokenization import WORD_TOKENS
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError


def read_tokens(path, tokenization=WORD_TOKENS, strip_lines=False):
    """Reads a text file as tokens, each line's followed by `<eos>`.

    Args:
        path: A UTF-8 text file, one sentence per line.
        tokenization: A `Tokenization`: words (default) or characters.
        strip_lines: Remove the whitespace around each line first (for
            characters of a file whose lines are padded, as PTB's are).

    Returns:
        A list of tokens.

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
            line = decode_lines([raw_line], path, line_number)
            if strip_lines:
                line = line.strip()
            tokens.extend(tokenization.line_tokens(line))
    if not tokens:
        raise InvalidInputError(
            f"{path} holds no {tokenization.unit} (only blank lines or "
            "whitespace); every split needs some text."
        )
    return tokens
