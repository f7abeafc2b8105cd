"""Text chunks to provisional ids, counting the training text's tokens.

The first of the two stages of preparing a corpus (`prepared_corpus.py`):
one pass over the text gives every token a provisional id and counts the
training text's tokens; the vocabulary, which needs all the counts, then
maps provisional ids to final ones in a pass over the ids alone.

- Characters: the provisional id is the code point; a line's end
  (`<eos>`) is `\\n`'s, 10, which is never a character token (lines are
  cut there). Vectorised with NumPy: no Python object per character.
- Words: ids in order of first appearance, from a dict of the distinct
  words (it grows with the number of word types, not with the text).

Both read each line as `Tokenization.line_tokens` does, and the same
text gives the same vocabulary as `Vocabulary.from_tokens`.
"""

import itertools

import numpy as np

from keras_lstm_scratch.data.tokenization import LINE_END_SPACE
from keras_lstm_scratch.data.vocabulary import END_OF_SENTENCE, UNKNOWN

CODE_POINTS = 0x110000
LINE_END = ord("\n")
NEVER = np.iinfo(np.int64).max  # first_seen of a code point not yet seen


def token_counter(tokenization, strip_lines=False):
    """The counter for `tokenization` (a `Tokenization`).

    Args:
        tokenization: Words or characters.
        strip_lines: Remove the Unicode whitespace around each line first
            (PTB's padded lines).
    """
    if tokenization.is_chars:
        return CharacterCounter(strip_lines)
    return WordCounter()


class CharacterCounter:
    """Code points as provisional ids; counts and first appearances."""

    def __init__(self, strip_lines=False):
        self.strip_lines = strip_lines
        self.counts = np.zeros(CODE_POINTS, dtype=np.int64)
        self.first_seen = np.full(CODE_POINTS, NEVER)
        self.position = 0  # training tokens counted so far

    def ids(self, text, count=False):
        """The provisional ids (uint32) of whole lines `text`."""
        if self.strip_lines:
            lines = (line.strip() for line in text.split("\n"))
        else:
            lines = (line.rstrip(LINE_END_SPACE) for line in text.split("\n"))
        kept = "\n".join(line for line in lines if line)
        if not kept:
            return np.zeros(0, dtype=np.uint32)
        ids = np.frombuffer((kept + "\n").encode("utf-32-le"), np.uint32)
        if count:
            self.count(ids)
        return ids

    def count(self, ids):
        self.counts += np.bincount(ids, minlength=CODE_POINTS)
        new = self.first_seen[ids] == NEVER
        if new.any():
            where = np.flatnonzero(new)
            values, first = np.unique(ids[where], return_index=True)
            self.first_seen[values] = self.position + where[first]
        self.position += len(ids)

    def training_counts(self):
        """`{token: count}` of the training text, in first-appearance order."""
        seen = np.flatnonzero(self.counts)
        order = seen[np.argsort(self.first_seen[seen], kind="stable")]
        return {
            (END_OF_SENTENCE if code == LINE_END else chr(code)): int(
                self.counts[code]
            )
            for code in order
        }

    def id_table(self, vocabulary):
        """Final id of every provisional id: `(CODE_POINTS,)` int64."""
        table = np.full(CODE_POINTS, vocabulary.unknown_id, dtype=np.int64)
        for index, token in enumerate(vocabulary.words):
            if len(token) == 1:
                table[ord(token)] = index
        table[LINE_END] = vocabulary.end_of_sentence_id
        return table


class WordCounter:
    """Provisional ids in order of first appearance; counts of training."""

    def __init__(self):
        self.index = {UNKNOWN: 0, END_OF_SENTENCE: 1}
        self.counts = np.zeros(0, dtype=np.int64)

    def ids(self, text, count=False):
        """The provisional ids (uint32) of whole lines `text`."""
        end = [END_OF_SENTENCE]
        lines = map(str.split, text.split("\n"))
        tokens = list(itertools.chain.from_iterable(
            words + end for words in lines if words
        ))  # fmt: skip
        index = self.index
        # dict.fromkeys keeps first appearances in order, at C speed.
        new = [token for token in dict.fromkeys(tokens) if token not in index]
        first_id = len(index)
        index.update((token, first_id + i) for i, token in enumerate(new))
        ids = np.fromiter(
            map(index.__getitem__, tokens), dtype=np.uint32, count=len(tokens)
        )
        if count and len(ids):
            counts = np.bincount(ids, minlength=len(index))
            counts[: len(self.counts)] += self.counts
            self.counts = counts
        return ids

    def training_counts(self):
        """`{token: count}` of the training text, in first-appearance order."""
        words = list(self.index)
        return {words[i]: int(n) for i, n in enumerate(self.counts) if n > 0}

    def id_table(self, vocabulary):
        """Final id of every provisional id: `(num_types,)` int64."""
        lookup = vocabulary.word_to_id.get
        return np.array(
            [lookup(word, vocabulary.unknown_id) for word in self.index],
            dtype=np.int64,
        )
