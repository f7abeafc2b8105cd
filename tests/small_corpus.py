"""A small made-up corpus with PTB's form, for tests of the pipeline.

Sentences come from a little grammar (determiner, adjectives, noun, verb,
object, sometimes a prepositional phrase or a number), lower case, one per
line, so that a model can learn something in a few hundred steps. Seeded:
every call writes the same files.
"""

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
PREPOSITIONS = ["in", "at", "for", "after", "before", "with", "on", "from"]
RARE = ["zyzzyva", "quixotic", "obelus", "kumquat"]  # become <unk> if capped
SPLIT_SENTENCES = {"train": 700, "valid": 60, "test": 60}


def noun_phrase(rng):
    words = [rng.choice(DETERMINERS)]
    words += list(rng.choice(ADJECTIVES, size=rng.integers(0, 3)))
    return words + [rng.choice(NOUNS)]


def sentence(rng):
    words = noun_phrase(rng) + [rng.choice(VERBS)] + noun_phrase(rng)
    if rng.random() < 0.4:
        words += [rng.choice(PREPOSITIONS)] + noun_phrase(rng)
    if rng.random() < 0.2:
        words += ["by", "N", "%"]
    if rng.random() < 0.05:
        words.insert(1, rng.choice(RARE))
    return " ".join(words)


def write_small_corpus(directory, seed=0):
    """Writes `train.txt` (700 lines), `valid.txt` and `test.txt` (60 each).

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
