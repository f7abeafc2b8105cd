"""How far the test figure read as B parallel streams is from one stream.

    python -m benchmarks.test_streams --run runs/book-rnnlm --streams 1 8 32

Loads a finished run's `best.keras` and scores its test text as each
number of streams (`test_streams`), printing one JSON line per reading:
mean NLL, perplexity (bits per character for a character run) and
seconds. One stream predicts every token from its full left context;
B streams lose it at B - 1 stream starts. docs/quality.md holds the
figures; `training/results.py` chooses the default from them.
"""

import argparse
import dataclasses
import json
import math
import time

from training.data import load_corpus
from training.results import evaluate_test_text
from training.run_directory import RunDirectory


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args(argv)
    run_dir = RunDirectory(args.run)
    config = run_dir.load_config()
    corpus = load_corpus(config, args.data_dir)
    model, _ = run_dir.load_finished()
    rows = []
    for streams in args.streams:
        streams_config = dataclasses.replace(config, test_streams=streams)
        started = time.perf_counter()
        mean_nll, tokens, _ = evaluate_test_text(
            streams_config, model, corpus.test
        )
        row = {
            "run": args.run,
            "streams": streams,
            "mean_nll": mean_nll,
            "perplexity": math.exp(mean_nll),
            "bits_per_token": mean_nll / math.log(2),
            "tokens": tokens,
            "seconds": time.perf_counter() - started,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
