"""Characters per second of an export's `score`, as TF Serving would run it.

    python benchmarks/served_score.py saved_models/NAME/VERSION TEXT_FILE

Loads the SavedModel with TensorFlow alone and times its `score`
signature on 32 texts of 99 characters (100 tokens with `<eos>`), the
first lines of `TEXT_FILE` that long: `--rounds` rounds of `--calls`
calls, median characters per second.
"""

import argparse
import statistics
import time

import tensorflow as tf

BATCH, CHARACTERS = 32, 99


def texts_of(path):
    """The first `BATCH` lines of at least `CHARACTERS`, cut to that."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    long_lines = [
        line[:CHARACTERS] for line in lines if len(line) >= CHARACTERS
    ]
    if len(long_lines) < BATCH:
        raise SystemExit(
            f"error: {path} has {len(long_lines)} lines of {CHARACTERS} "
            f"characters or more; {BATCH} are needed."
        )
    return tf.constant(long_lines[:BATCH])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export", help="a SavedModel version folder")
    parser.add_argument("text", help="a text file to take the requests from")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args(argv)
    score = tf.saved_model.load(args.export).signatures["score"]
    inputs = {"sentences": texts_of(args.text)}
    if "use_cache" in score.structured_input_signature[1]:
        inputs["use_cache"] = tf.constant(False)
    score(**inputs)  # warm up
    rates = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for _ in range(args.calls):
            score(**inputs)
        elapsed = time.perf_counter() - start
        rates.append(BATCH * (CHARACTERS + 1) * args.calls / elapsed)
    print(
        f"served score: {statistics.median(rates):,.0f} characters/s "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()
