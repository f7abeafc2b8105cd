"""How text becomes tokens: whitespace-separated words or Unicode characters.

One `Tokenization` says it for a run: training, evaluation and the export
read text through it (`serving/server.py` repeats its rules in-graph, and
the tests check that both give the same ids), and it is saved with the run
(`config.json`'s `tokens`) and with the export (`tokenization.json`).

- `"words"`: a line's whitespace-separated words, then `<eos>`; a blank
  line adds nothing. The book's and PyTorch's reading, and Penn
  Treebank's. Whitespace is every character of `WORD_SPACE` (Python's
  `str.split()`): a no-break or ideographic space separates two words.
- `"chars"`: a line's Unicode code points (a space is a token too), then
  `<eos>`. The line's end is cut off: its line break and the ASCII
  whitespace before it (`LINE_END_SPACE`); whitespace at the start of a
  line (indentation) is kept. A line that is blank after that adds
  nothing, as for words.

Example:

>>> Tokenization("chars").line_tokens("한국어 ok\\n")
['한', '국', '어', ' ', 'o', 'k', '<eos>']
>>> Tokenization("words").line_tokens("the market\\n")
['the', 'market', '<eos>']
"""

import dataclasses
import json

from keras_lstm_scratch.data.vocabulary import END_OF_SENTENCE

WORDS = "words"
CHARS = "chars"
TOKENIZATIONS = (WORDS, CHARS)
# Cut from the end of a line of characters. ASCII only: the in-graph
# tokeniser's regular expressions (RE2) see the same characters, so a
# no-break or ideographic space stays a token in both.
LINE_END_SPACE = " \t\r\f\v"
# What separates two words, in every reader and in the export: the
# characters at which Python's `str.split()` splits (`str.isspace`), less
# the line break, which ends a line. Lines end at `\n` only, so U+2028,
# U+0085 and the others separate words but never end a line.
WORD_SPACE = (
    "\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
# Separate the words of a character stream when counting them.
WORD_SEPARATORS = frozenset(WORD_SPACE)


@dataclasses.dataclass(frozen=True)
class Tokenization:
    """How text becomes tokens; see the module docstring for the rules.

    Args:
        kind: `"words"` or `"chars"`.

    Example:

    >>> chars = Tokenization("chars")
    >>> chars.text_tokens("ab\\n\\n c")
    ['a', 'b', '<eos>', ' ', 'c', '<eos>']
    >>> chars.count_words(chars.text_tokens("ab\\n\\n c"))
    3
    """

    kind: str = WORDS

    def __post_init__(self):
        if self.kind not in TOKENIZATIONS:
            raise ValueError(
                f"Unknown tokenization {self.kind!r}; expected one of "
                f"{TOKENIZATIONS} (e.g. --set tokens=chars)."
            )

    @property
    def is_chars(self):
        return self.kind == CHARS

    @property
    def unit(self):
        """What one token is, for messages: `"words"` or `"characters"`."""
        return "characters" if self.is_chars else "words"

    def line_tokens(self, line):
        """One line's tokens followed by `<eos>`; `[]` for a blank line."""
        if self.is_chars:
            tokens = list(line.rstrip(LINE_END_SPACE + "\n"))
        else:
            tokens = line.split()
        return [*tokens, END_OF_SENTENCE] if tokens else []

    def text_tokens(self, text):
        """The tokens of a text of several lines, each ending at `\\n` (as
        in a file read line by line, and in the export)."""
        lines = text.split("\n")
        return [token for line in lines for token in self.line_tokens(line)]

    def count_words(self, tokens):
        """Whitespace-separated words in `tokens`, each `<eos>` as one.

        For words that is every token. For characters a word is counted at
        its last character (one followed by a space, `<eos>` or the end),
        so a stream's count is that of its text, and the perplexity per
        word of a character model compares with a word model's. (Counted
        over ids, as `Corpus.count_words` and the export do, a space
        outside the vocabulary is an `<unk>` and separates nothing.)
        """
        if not self.is_chars:
            return len(tokens)
        tokens = list(tokens)
        words = 0
        following_tokens = [*tokens[1:], " "][: len(tokens)]
        for token, following in zip(tokens, following_tokens, strict=True):
            if token == END_OF_SENTENCE:
                words += 1
            elif token not in WORD_SEPARATORS and (
                following == END_OF_SENTENCE or following in WORD_SEPARATORS
            ):
                words += 1
        return words

    def save(self, path):
        """Writes `{"tokens": kind}` as JSON."""
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"tokens": self.kind}, handle)

    @classmethod
    def load(cls, path):
        """Reads a file written by `save`."""
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle)["tokens"])


# The default: every reader reads words unless told otherwise.
WORD_TOKENS = Tokenization(WORDS)
