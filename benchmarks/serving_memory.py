"""Peak memory of one `score` request on an exported model.

    python -m benchmarks.serving_memory \
        --saved-model saved_models/book-rnnlm/1

For each request size (tokens, `<eos>` included, as texts of 1,000
tokens; a smaller size is one text) a fresh process loads the SavedModel,
warms `score` up with one sentence, reads its peak resident memory
(`VmHWM` in `/proc/self/status`), sends the request and reads the peak
again. The table gives both peaks,
their difference and the request's seconds; a refused request shows the
error instead. Linux only (`/proc`).
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap

TOKENS_PER_TEXT = 1000
# Common PTB words; what they are does not change the memory a request takes.
WORDS = (
    "the company said it expects higher sales in the new year as the "
    "market for its stock rose while prices fell and traders sold shares"
).split()

CHILD = textwrap.dedent("""
    import json, re, sys, time
    import numpy as np
    import tensorflow as tf

    def peak_mib():
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024

    path, tokens, tokens_per_text, words = sys.argv[1:5]
    tokens, tokens_per_text = int(tokens), int(tokens_per_text)
    words = words.split()
    score = tf.saved_model.load(path).signatures["score"]
    score(
        sentences=tf.constant(["the company said"]),
        use_cache=tf.constant(False),
    )  # traced and warm
    rows = max(1, tokens // tokens_per_text)
    length = tokens // rows - 1  # words; each text ends with an <eos>
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, length)) for _ in range(rows)]
    before = peak_mib()
    start = time.perf_counter()
    try:
        result = score(
            sentences=tf.constant(texts), use_cache=tf.constant(False)
        )
        outcome = "ok: %d tokens" % int(result["token_count"].numpy().sum())
    except tf.errors.InvalidArgumentError as error:
        said = re.search(r"\\w+: at most .*? per request", error.message)
        outcome = "refused: " + (said.group(0) if said else error.message)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "tokens": tokens, "texts": rows, "peak_before_mib": before,
        "peak_after_mib": peak_mib(), "seconds": seconds, "outcome": outcome,
    }))
""")


def measure(saved_model, tokens):
    """One fresh process, one request of `tokens` tokens: its figures."""
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            saved_model,
            str(tokens),
            str(TOKENS_PER_TEXT),
            " ".join(WORDS),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    )
    row = json.loads(completed.stdout.strip().splitlines()[-1])
    row["increase_mib"] = row["peak_after_mib"] - row["peak_before_mib"]
    return row


def markdown(rows):
    lines = [
        "| tokens | texts | peak before (MiB) | peak after (MiB) | increase "
        "(MiB) | seconds | outcome |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['tokens']:,} | {row['texts']} | "
            f"{row['peak_before_mib']:,.0f} | {row['peak_after_mib']:,.0f} | "
            f"{row['increase_mib']:,.0f} | {row['seconds']:.2f} | "
            f"{row['outcome']} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saved-model", required=True)
    parser.add_argument(
        "--tokens",
        default="1000,20000,200000",
        help="request sizes, comma-separated",
    )
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.tokens.split(",")]
    rows = [measure(args.saved_model, size) for size in sizes]
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"saved_model": args.saved_model, "rows": rows}, handle)
    return rows


if __name__ == "__main__":
    main()
