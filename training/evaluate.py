"""Adaptive evaluation of a run: the neural cache and dynamic evaluation.

    python -m training.evaluate --run runs/cpu-30min [--data-dir DIR]

Reads the run's best model over its validation and test text (the first
`--max-tokens` of each) as single streams and reports test perplexity four
ways: static (the model as trained), with the neural cache, with dynamic
evaluation, and with both (the cache over the adapting model). Every
setting is chosen on the validation text by the small searches below; the
test text is read only once per method, with the chosen settings. The
figures, the settings and the seconds each took go into the run's
`evaluation.json`, which `python -m training.export` reads to give the
export its cache.

The searches (what `SEARCH` holds, and why):
- cache: window 100 / 500 / 1,000 / 2,000 (Grave et al.'s range), theta
  over a log grid 0.05-3, lambda 0.05-0.4. One pass over the validation
  vectors per window scores every theta and lambda, so the grid is cheap.
- dynamic: the RMS rule with a pull back to the trained weights (Krause et
  al.'s best), segments of `SEGMENT_LENGTH` (10) tokens: the learning rate
  over a log grid 1e-5-1e-2 at decay 0.01, from the middle toward the
  better side until validation stops improving, then the decay (0-0.3)
  the same way at that rate. Each point is a full validation pass with
  gradient steps, the expensive part, so the search walks rather than
  tries every point.
- both: the cache grid again, over the hidden vectors of the chosen
  dynamic pass on the validation text.
"""

import argparse
import dataclasses
import math
import os
import platform
import sys
import time

import numpy as np

from keras_lstm_scratch.argument_checks import check_positive_int
from keras_lstm_scratch.errors import InvalidInputError
from keras_lstm_scratch.evaluation import (
    DynamicEvaluation,
    NeuralCache,
    StreamModel,
    gradient_rms,
    score_stream,
)
from keras_lstm_scratch.evaluation.neural_cache import (
    mix_log_probs,
    stream_cache_probs,
)
from training.cli import reports_input_errors
from training.data import load_corpus
from training.results import versions
from training.run_directory import RunDirectory

SEARCH = {
    "cache_window": (100, 500, 1000, 2000),
    "cache_theta": (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0),
    "cache_interpolation": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4),
    "dynamic_learning_rate": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
    "dynamic_decay": (0.0, 0.01, 0.03, 0.1, 0.3),
}
SEGMENT_LENGTH = 10  # tokens between two steps; 20 halves the time
# Tokens read of the validation and of the test text, the first ones: every
# method keeps each token's score and hidden vector (PTB's, 82,430 words
# and 442,423 characters, are read whole).
MAX_TOKENS = 500_000
FIRST_DECAY = 0.01  # the decay of the learning-rate search


@dataclasses.dataclass
class Texts:
    """The run's model, the streams it is evaluated on, and how."""

    model: object
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    segment_length: int = SEGMENT_LENGTH
    search_tokens: int = None  # of validation for the dynamic search

    @property
    def dynamic_search_text(self):
        """The validation stream, or its first `search_tokens` targets."""
        if self.search_tokens is None:
            return self.valid
        return self.valid[: self.search_tokens + 1]


def evaluate_run(
    run_dir,
    data_dir=None,
    verbose=1,
    segment_length=SEGMENT_LENGTH,
    search_tokens=None,
    max_tokens=MAX_TOKENS,
):
    """Evaluates `run_dir` four ways, writes `evaluation.json`, returns it.

    Args:
        run_dir: A finished training run.
        data_dir: Its corpus folder (as for `training.train`).
        verbose: 1 prints the search and progress bars.
        segment_length: Tokens per dynamic-evaluation segment.
        search_tokens: Validation tokens each dynamic-evaluation search
            pass reads (the first ones); `None`: all.
        max_tokens: Tokens read of the validation and of the test text
            (the first ones): the memory every method needs grows with
            them.
    """
    run = RunDirectory(run_dir)
    model, _ = run.load_finished()
    corpus = load_corpus(run.load_config(), data_dir)
    max_tokens = check_positive_int("max_tokens", max_tokens)
    texts = Texts(
        model,
        corpus.train,
        corpus.valid[: max_tokens + 1],
        corpus.test[: max_tokens + 1],
        check_positive_int("segment_length", segment_length),
        search_tokens and check_positive_int("search_tokens", search_tokens),
    )
    report = {
        "run": run_dir,
        "test_tokens": len(texts.test) - 1,
        "test_tokens_in_text": len(corpus.test) - 1,
        "valid_tokens": len(texts.valid) - 1,
        "dynamic_search_tokens": len(texts.dynamic_search_text) - 1,
        "search": SEARCH,
        "machine": machine(),
    }
    static = timed(report, "static", lambda: static_scores(texts, verbose))
    report["static"].update(
        test_perplexity=static["test"].perplexity,
        valid_perplexity=static["valid"].perplexity,
    )
    cache = timed(report, "cache", lambda: choose_cache(static))
    dynamic = timed(report, "dynamic", lambda: choose_dynamic(texts, verbose))
    both = timed(report, "both", lambda: choose_cache(dynamic))
    for name, result in (
        ("cache", cache),
        ("dynamic", dynamic),
        ("both", both),
    ):
        report[name].update(result["report"])
    run.write_evaluation(report)
    print_report(report)
    return report


def machine():
    """The processor, its cores and the versions the figures came from."""
    return {
        "processor": processor_name(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions(),
    }


def processor_name():
    """The CPU's model name (Linux's /proc/cpuinfo), else `platform`'s."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(report, name, work):
    """Runs `work()`, recording its seconds as `report[name]["seconds"]`."""
    started = time.perf_counter()
    result = work()
    report[name] = {"seconds": round(time.perf_counter() - started, 1)}
    return result


def static_scores(texts, verbose=0):
    """The model as trained, over the validation and the test stream."""
    stream = StreamModel(texts.model)
    return {
        "valid": score_stream(stream, texts.valid, verbose=verbose),
        "test": score_stream(stream, texts.test, verbose=verbose),
    }


def choose_cache(scores):
    """The cache settings best on `scores["valid"]`, applied to the test.

    Args:
        scores: `{"valid": StreamScores, "test": StreamScores}` with
            hidden vectors (of a static or of a dynamic pass).
    """
    valid = scores["valid"]
    best = (math.inf, None)
    for window in SEARCH["cache_window"]:
        probs, has_pairs = stream_cache_probs(
            valid.hidden, valid.targets, window, SEARCH["cache_theta"]
        )
        for theta, theta_probs in zip(
            SEARCH["cache_theta"], probs, strict=True
        ):
            for interpolation in SEARCH["cache_interpolation"]:
                mixed = mix_log_probs(
                    valid.log_probs, theta_probs[0], has_pairs[0], interpolation
                )
                perplexity = math.exp(-np.mean(mixed))
                if perplexity < best[0]:
                    best = (
                        perplexity,
                        NeuralCache(window, theta, interpolation),
                    )
    valid_perplexity, cache = best
    test = scores["test"]
    mixed = cache(test.log_probs, test.hidden, test.targets)
    return {
        "report": {
            "test_perplexity": math.exp(-np.mean(mixed)),
            "valid_perplexity": valid_perplexity,
            "settings": cache.get_config(),
        }
    }


def choose_dynamic(texts, verbose):
    """The RMS rule's learning rate and decay best on the validation text,
    then one pass over the test text with them."""
    rms = gradient_rms(texts.model, texts.train, texts.segment_length)

    def valid_pass(learning_rate, decay):
        dynamic = DynamicEvaluation(
            texts.segment_length, learning_rate, decay, method="rms"
        )
        scores = dynamic(
            texts.model, texts.dynamic_search_text, rms, verbose=verbose
        )
        if verbose:
            print(
                f"dynamic evaluation, learning rate {learning_rate:g}, decay "
                f"{decay:g}: valid perplexity {scores.perplexity:.2f}"
            )
        return scores.perplexity, dynamic, scores

    tried = climb(
        SEARCH["dynamic_learning_rate"],
        lambda rate: valid_pass(rate, FIRST_DECAY),
    )
    rate = min(tried, key=lambda point: point[0])[1].learning_rate
    decays = SEARCH["dynamic_decay"]
    tried += climb(
        decays,
        lambda decay: valid_pass(rate, decay),
        start=decays.index(FIRST_DECAY),
        known=min(tried, key=lambda point: point[0]),
    )
    valid_perplexity, dynamic, valid = min(tried, key=lambda point: point[0])
    test = dynamic(texts.model, texts.test, rms, verbose=verbose)
    return {
        "valid": valid,
        "test": test,
        "report": {
            "test_perplexity": test.perplexity,
            "valid_perplexity": valid_perplexity,
            "settings": dynamic.get_config(),
            "tried": [
                {
                    "learning_rate": point[1].learning_rate,
                    "decay": point[1].decay,
                    "valid_perplexity": point[0],
                }
                for point in tried
            ],
        },
    }


def climb(grid, evaluate, start=None, known=None):
    """Evaluates points of `grid` from `start` toward lower scores.

    `evaluate(value)` returns a tuple whose first item is the score.
    Steps up the grid from `start` (default: the middle) while the score
    falls; if the first step up did not help, steps down instead. `known`
    is the tuple of `start` when it was already evaluated. Returns every
    tuple newly evaluated.
    """
    start = len(grid) // 2 if start is None else start
    tried = [] if known is not None else [evaluate(grid[start])]
    known = known or tried[0]
    for direction in (1, -1):
        index, score, improved = start + direction, known[0], False
        while 0 <= index < len(grid):
            point = evaluate(grid[index])
            tried.append(point)
            if point[0] >= score:
                break
            index, score, improved = index + direction, point[0], True
        if improved:
            break
    return tried


def print_report(report):
    """The table the command prints: a row per method."""
    print(
        f"{'method':<8} {'test ppl':>9} {'valid ppl':>10} {'seconds':>8}"
        "  settings"
    )
    for name in ("static", "cache", "dynamic", "both"):
        row = report[name]
        valid = row.get("valid_perplexity")
        settings = row.get("settings", {})
        print(
            f"{name:<8} {row['test_perplexity']:>9.2f} "
            f"{'' if valid is None else f'{valid:.2f}':>10} "
            f"{row['seconds']:>8.1f}  "
            + ", ".join(
                f"{key}={value:g}"
                if isinstance(value, float)
                else f"{key}={value}"
                for key, value in settings.items()
            )
        )


@reports_input_errors
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run", required=True, help="finished training run")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="the run's corpus directory (PTB files); default: "
        "$KERAS_LSTM_SCRATCH_PTB_DIR, else the download cache",
    )
    parser.add_argument(
        "--segment-length",
        type=int,
        default=SEGMENT_LENGTH,
        help="tokens scored between two dynamic-evaluation steps",
    )
    parser.add_argument(
        "--search-tokens",
        type=int,
        default=None,
        help="validation tokens each dynamic-evaluation search pass reads "
        "(the first ones; default: all)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=MAX_TOKENS,
        help="tokens read of the validation and of the test text (the "
        f"first ones; default {MAX_TOKENS:,})",
    )
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1))
    args = parser.parse_args(argv)
    for option in ("segment_length", "search_tokens", "max_tokens"):
        value = getattr(args, option)
        if value is not None and value < 1:
            flag = "--" + option.replace("_", "-")
            raise InvalidInputError(f"{flag} {value}: give a positive number.")
    evaluate_run(
        args.run,
        args.data_dir,
        args.verbose,
        args.segment_length,
        args.search_tokens,
        args.max_tokens,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
