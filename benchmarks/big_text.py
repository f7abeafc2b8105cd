"""Text of any size: make a big mixed-script text, prepare it, train on it.

    python -m benchmarks.big_text make --megabytes 1000 --out /data/big.txt
    python -m benchmarks.big_text idle
    python -m benchmarks.big_text prepare --text /data/big.txt --tokens chars
    python -m benchmarks.big_text run --text /data/big.txt \\
        --preset char-30min --output-dir /runs/big-chars

`make` writes a deterministic UTF-8 text (seeded): lines of Latin words
with accents, Korean (Hangul syllables), Chinese and Japanese (ideographs
and kana, phrases separated by ideographic spaces), emoji, and Python-like
code, in the proportions of `LINE_KINDS`. `idle` is the reference: the
peak resident memory of a process that has imported TensorFlow and done
nothing else. `prepare` prepares the text (words or characters) into a
fresh cache folder and reports MB/s and the peak resident memory. `run`
trains a preset on the text with a time budget (1 minute unless
`--set time_budget_minutes=...`) and reports the seconds to the first
training step, the wall time to `results.json` and the peak resident
memory (`--first-step-only`: stops at the first step). The prepared ids
go to `$KERAS_LSTM_SCRATCH_PREPARED_DIR` as for any run, so a second `run`
on the same text starts from them. Each prints one JSON line;
docs/training.md holds the figures.
"""

import time

STARTED = time.perf_counter()  # before TensorFlow is imported

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

# Share of lines of each kind.
LINE_KINDS = {"latin": 0.4, "hangul": 0.25, "cjk": 0.15, "code": 0.1}
LINE_KINDS["emoji"] = 1.0 - sum(LINE_KINDS.values())
LINES_PER_BLOCK = 20_000
LATIN_SYLLABLES = [
    c + v for c in "bcdfghjklmnprstvz" for v in ["a", "e", "i", "o", "u", "é",
                                                 "ü", "ñ" + "a", "à", "ö"]
]  # fmt: skip
EMOJI = [chr(c) for c in range(0x1F600, 0x1F640)] + ["👍🏽", "🇰🇷", "❤️"]
CODE_WORDS = (
    "def return if else for in while x y i n self None True False import "
    "print len range = == + - * ( ) : [ ] { } , . # -> lambda".split()
)


def peak_rss_gib():
    """This process's peak resident memory (`ru_maxrss`, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def made_up_words(rng, letters, count, shortest, longest):
    """`count` words of `shortest`..`longest` letters drawn from `letters`."""
    picks = rng.integers(0, len(letters), size=(count, longest))
    lengths = rng.integers(shortest, longest + 1, size=count)
    return [
        "".join(letters[i] for i in row[:length])
        for row, length in zip(picks, lengths, strict=True)
    ]


def word_pools(rng):
    """The made-up words of each script, Zipf-weighted when drawn."""
    hangul = [chr(0xAC00 + int(i)) for i in rng.choice(11172, 1500)]
    ideographs = [chr(0x4E00 + int(i)) for i in rng.choice(20000, 2500)]
    kana = [chr(c) for c in range(0x3041, 0x3097)]
    return {
        "latin": made_up_words(rng, LATIN_SYLLABLES, 40_000, 1, 3),
        "hangul": made_up_words(rng, hangul, 30_000, 1, 4),
        "cjk": made_up_words(rng, ideographs + kana, 30_000, 2, 6),
        "code": CODE_WORDS,
        "emoji": EMOJI,
    }


def zipf_weights(size):
    weights = np.arange(1, size + 1) ** -1.0
    return weights / weights.sum()


class WordDraws:
    """Zipf-weighted words of each script, drawn a block at a time."""

    def __init__(self, rng):
        self.rng = rng
        self.pools = word_pools(rng)
        self.weights = {k: zipf_weights(len(p)) for k, p in self.pools.items()}
        self.drawn = {kind: ([], 0) for kind in self.pools}

    def take(self, kind, count):
        drawn, used = self.drawn[kind]
        if used + count > len(drawn):
            pool = self.pools[kind]
            picks = self.rng.choice(len(pool), 200_000, p=self.weights[kind])
            drawn, used = [pool[i] for i in picks], 0
        self.drawn[kind] = (drawn, used + count)
        return drawn[used : used + count]


def make_line(kind, count, words):
    if kind == "code":
        picks = words.take("code", count)
        return "    " * (count % 3) + " ".join(picks)
    if kind == "emoji":
        picks = words.take("latin", count)
        picks.insert(count // 2, words.take("emoji", 1)[0])
        return " ".join(picks)
    return ("\u3000" if kind == "cjk" else " ").join(words.take(kind, count))


def make_text(path, megabytes, seed=0):
    """Writes about `megabytes` MB of mixed-script text to `path`."""
    rng = np.random.default_rng(seed)
    words = WordDraws(rng)
    kinds, shares = list(LINE_KINDS), list(LINE_KINDS.values())
    target, written = megabytes * 1_000_000, 0
    with open(path, "wb") as handle:
        while written < target:
            lines = [
                make_line(kind, int(count), words)
                for kind, count in zip(
                    rng.choice(kinds, LINES_PER_BLOCK, p=shares),
                    rng.integers(4, 16, LINES_PER_BLOCK),
                    strict=True,
                )
            ]
            data = ("\n".join(lines) + "\n").encode("utf-8")
            if written + len(data) > target:  # end at the line that reaches it
                data = data[: data.find(b"\n", target - written) + 1]
            handle.write(data)
            written += len(data)
    return {"path": path, "megabytes": written / 1e6}


def prepare(text, tokens):
    """Prepares `text` into a fresh cache folder; MB/s and peak memory."""
    from keras_lstm_scratch.data import Tokenization, load_text_corpus

    with tempfile.TemporaryDirectory() as cache:
        os.environ["KERAS_LSTM_SCRATCH_PREPARED_DIR"] = cache
        started = time.perf_counter()
        corpus = load_text_corpus(text, tokenization=Tokenization(tokens))
        seconds = time.perf_counter() - started
        size = sum(os.path.getsize(p) for p in [text])
        return {
            "tokens": tokens,
            "megabytes": size / 1e6,
            "seconds": seconds,
            "megabytes_per_second": size / 1e6 / seconds,
            "train_tokens": len(corpus.train),
            "vocabulary": len(corpus.vocabulary),
            "dtype": corpus.train.dtype.name,
            "peak_rss_gib": peak_rss_gib(),
        }


def train(text, preset, output_dir, overrides, first_step_only=False):
    """Trains `preset` on `text`: first step, wall time, peak memory.

    `first_step_only`: print the first step's figures and exit there.
    """
    import keras

    from training.config import resolve_config
    from training.run import run

    first_step = {}

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            first_step.setdefault("seconds", time.perf_counter() - STARTED)
            if first_step_only:
                row = {"first_step_seconds": first_step["seconds"]}
                row["peak_rss_gib"] = peak_rss_gib()
                print(json.dumps({"preset": preset, **row}), flush=True)
                os._exit(0)  # a benchmark's shortcut: nothing to clean up

    settings = {"corpus": f"text:{text}", "time_budget_minutes": 1.0}
    for assignment in overrides:
        key, _, value = assignment.partition("=")
        settings[key] = type(getattr(resolve_config(preset), key))(value)
    results = run(
        resolve_config(preset, settings),
        output_dir,
        verbose=2,
        extra_callbacks=[FirstStep()],
    )
    return {
        "preset": preset,
        "first_step_seconds": first_step.get("seconds"),
        "wall_seconds": time.perf_counter() - STARTED,
        "peak_rss_gib": peak_rss_gib(),
        "test_perplexity": results["test_perplexity"],
        "test_tokens": results["test_tokens"],
        "test_streams": results["test_streams"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make")
    make.add_argument("--megabytes", type=int, required=True)
    make.add_argument("--out", required=True)
    make.add_argument("--seed", type=int, default=0)
    commands.add_parser("idle")
    prep = commands.add_parser("prepare")
    prep.add_argument("--text", required=True)
    prep.add_argument("--tokens", choices=("words", "chars"), default="chars")
    runner = commands.add_parser("run")
    runner.add_argument("--text", required=True)
    runner.add_argument("--preset", required=True)
    runner.add_argument("--output-dir", required=True)
    runner.add_argument("--set", action="append", default=[])
    runner.add_argument("--first-step-only", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "make":
        row = make_text(args.out, args.megabytes, args.seed)
    elif args.command == "idle":
        import tensorflow  # noqa: F401

        row = {"idle_tensorflow_peak_rss_gib": peak_rss_gib()}
    elif args.command == "prepare":
        row = prepare(args.text, args.tokens)
    else:
        row = train(
            args.text,
            args.preset,
            args.output_dir,
            args.set,
            args.first_step_only,
        )
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
