"""A small made-up corpus with PTB's form, for tests of the pipeline.

Sentences come from a little grammar (clauses of determiner, adjectives,
noun, verb, object, sometimes a prepositional phrase or a number, joined
by conjunctions), lower case, one per line, so that a model can learn
something in a hundred steps. As in real text, a long tail of rare words
(made-up names, Zipf-distributed) stands beside the common ones: the 300
training lines hold about 4,600 tokens of about 970 different words, as
the first 300 lines of PTB hold 6,650 of 1,618. Seeded: every call writes
the same files.
"""

import itertools

import numpy as np

DETERMINERS = ["the", "a", "this", "every", "no", "some", "its", "their"]
ADJECTIVES = [
    "big", "small", "new", "old", "red", "quiet", "fast", "early", "late",
    "high", "low", "strong", "weak", "local", "foreign", "federal", "major",
    "recent", "annual", "public",
]  # fmt: skip
NOUNS = [
    "company", "market", "stock", "bank", "trader", "price", "share",
    "investor", "fund", "report", "dealer", "analyst", "bond", "index",
    "board", "firm", "chairman", "president", "unit", "group", "plan",
    "loss", "profit", "rate", "sale", "issue", "yield", "debt", "bid",
    "offer", "deal", "quarter", "year", "week", "month", "contract",
    "government", "court", "agency", "industry",
]  # fmt: skip
VERBS = [
    "said", "bought", "sold", "expects", "raised", "cut", "reported",
    "lost", "gained", "held", "made", "took", "gave", "set", "added",
    "posted", "filed", "approved", "rejected", "plans", "owns", "sees",
    "needs", "fell", "rose",
]  # fmt: skip
CONJUNCTIONS = ["and", "but", "while", "because", "as"]
PREPOSITIONS = ["in", "at", "for", "after", "before", "with", "on", "from"]
RARE = ["zyzzyva", "quixotic", "obelus", "kumquat"]  # become <unk> if capped
SPLIT_SENTENCES = {"train": 300, "valid": 40, "test": 40}
SYLLABLES = ["ba", "ko", "ri", "tu", "me", "sa", "lo", "ne", "vi", "da"]
NAMES = ["".join(parts) for parts in itertools.product(SYLLABLES, repeat=4)]
# A flattened Zipf's law: the n-th name has weight n ** -0.3.
NAME_WEIGHTS = np.arange(1, len(NAMES) + 1) ** -0.3
NAME_WEIGHTS /= NAME_WEIGHTS.sum()


def noun_phrase(rng):
    if rng.random() < 0.6:
        return [str(rng.choice(NAMES, p=NAME_WEIGHTS))]
    words = [rng.choice(DETERMINERS)]
    words += list(rng.choice(ADJECTIVES, size=rng.integers(0, 3)))
    return words + [rng.choice(NOUNS)]


def clause(rng):
    words = noun_phrase(rng) + [rng.choice(VERBS)] + noun_phrase(rng)
    if rng.random() < 0.4:
        words += [rng.choice(PREPOSITIONS)] + noun_phrase(rng)
    if rng.random() < 0.2:
        words += ["by", "N", "%"]
    if rng.random() < 0.05:
        words.insert(1, rng.choice(RARE))
    return words


def sentence(rng):
    words = clause(rng)
    for _ in range(rng.integers(0, 3)):
        words += [rng.choice(CONJUNCTIONS)] + clause(rng)
    return " ".join(words)


def write_small_corpus(directory, seed=0):
    """Writes `train.txt` (300 lines), `valid.txt` and `test.txt` (40 each).

    Returns:
        `{split: path}` of the files written.
    """
    rng = np.random.default_rng(seed)
    paths = {}
    for split, count in SPLIT_SENTENCES.items():
        path = directory / f"{split}.txt"
        lines = [sentence(rng) for _ in range(count)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths[split] = str(path)
    return paths
