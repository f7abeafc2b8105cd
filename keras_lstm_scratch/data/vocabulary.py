"""Word <-> id mapping with `<unk>` and `<eos>`."""

import collections
import json

import numpy as np

from keras_lstm_scratch.staged_write import write_text

UNKNOWN = "<unk>"
END_OF_SENTENCE = "<eos>"


class Vocabulary:
    """An ordered list of words; a word's id is its position.

    Args:
        words: Sequence of distinct words. `<unk>` and `<eos>` must be among
            them: unknown words map to `<unk>`, and every line ends in
            `<eos>`.

    Example:

    >>> vocabulary = Vocabulary.from_tokens("a b a <eos>".split())
    >>> vocabulary.encode(["a", "zzz"]).tolist()
    [2, 0]
    """

    def __init__(self, words):
        words = list(words)
        if len(set(words)) != len(words):
            duplicates = [
                w for w, n in collections.Counter(words).items() if n > 1
            ]
            raise ValueError(
                f"Vocabulary words must be distinct; repeated: {duplicates[:5]}"
            )
        for special in (UNKNOWN, END_OF_SENTENCE):
            if special not in words:
                raise ValueError(
                    f"Vocabulary must contain {special!r}; received "
                    f"{len(words)} words without it."
                )
        self.words = words
        self.word_to_id = {word: index for index, word in enumerate(words)}
        self.unknown_id = self.word_to_id[UNKNOWN]
        self.end_of_sentence_id = self.word_to_id[END_OF_SENTENCE]

    @classmethod
    def from_tokens(cls, tokens, max_size=None, by_frequency=False):
        """Builds a vocabulary from training tokens.

        Args:
            tokens: Iterable of words (with `<eos>` markers).
            max_size: Optional cap on the vocabulary size, specials
                included. When the words do not fit, the most frequent are
                kept (ties in order of first appearance); the rest become
                `<unk>`. A cap they fit under changes nothing, so the same
                text gives the same ids with or without one.
            by_frequency: Order the words by frequency even when not capped
                (a character vocabulary is).

        Returns:
            A `Vocabulary`: `<unk>`, `<eos>`, then words by frequency when
            the cap drops some or `by_frequency`, else in order of first
            appearance.
        """
        return cls.from_counts(
            collections.Counter(tokens), max_size, by_frequency
        )

    @classmethod
    def from_counts(cls, counts, max_size=None, by_frequency=False):
        """Builds a vocabulary from `{token: count}` in first-appearance
        order (a `collections.Counter` of the tokens is one); the rules of
        `from_tokens`."""
        specials = [UNKNOWN, END_OF_SENTENCE]
        words = [w for w in counts if w not in specials]
        if max_size is not None:
            if max_size < len(specials) + 1:
                raise ValueError(
                    f"max_size must leave room for at least one word besides "
                    f"{specials}; received max_size={max_size}."
                )
            room = max_size - len(specials)
            if len(words) > room:
                # sorted is stable: ties stay in order of first appearance.
                words = sorted(words, key=lambda w: -counts[w])[:room]
        if by_frequency:
            words = sorted(words, key=lambda w: -counts[w])
        return cls(specials + words)

    def extended(self, counts, max_size=None):
        """This vocabulary and then the tokens of `counts` it lacks.

        Every id keeps its token; the new tokens follow, most frequent
        first (ties in order of first appearance), while the vocabulary
        stays within `max_size` (if given). Fine-tuning uses it to learn a
        new text's letters.

        Args:
            counts: `{token: count}` of the new text, in first-appearance
                order.
            max_size: Optional cap on the extended vocabulary's size.

        Returns:
            A `Vocabulary` whose first `len(self)` words are this one's.
        """
        new = [word for word in counts if word not in self.word_to_id]
        new = sorted(new, key=lambda word: -counts[word])
        if max_size is not None:
            new = new[: max(max_size - len(self), 0)]
        return Vocabulary(self.words + new)

    def __len__(self):
        return len(self.words)

    def encode(self, tokens):
        """Maps words to int32 ids; unknown words to `<unk>`."""
        lookup = self.word_to_id.get
        return np.fromiter(
            (lookup(token, self.unknown_id) for token in tokens), dtype=np.int32
        )

    def decode(self, ids):
        """Maps ids back to words."""
        return [self.words[int(index)] for index in ids]

    def to_json(self):
        """The words as a JSON list (what `save` writes)."""
        return json.dumps(self.words, ensure_ascii=False)

    def save(self, path):
        """Writes the words as a JSON list, whole (staged, then renamed)."""
        write_text(path, self.to_json(), f"{path} is as it was.")

    @classmethod
    def load(cls, path):
        """Reads a vocabulary written by `save`."""
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle))
