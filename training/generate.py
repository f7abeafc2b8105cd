"""Generate text from a trained model, as in the book's chapter 7.

    python -m training.generate --run runs/book-rnnlm --prompt "the market"
    python -m training.generate --saved-model saved_models/book-rnnlm/1 \\
        --prompt "the market" --seed 3

Sampling happens in-graph (the SavedModel's `generate` signature, or the
same function built from the run); the same `--seed` gives the same text.
"""

import argparse
import math
import os
import sys

import tensorflow as tf

from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from keras_lstm_scratch.serving import (
    MAX_GENERATED_TOKENS,
    LanguageModelServer,
    read_neural_cache,
    read_tokenization,
)
from training.cli import reports_input_errors
from training.run_directory import RunDirectory


def load_generate_signature(saved_model_dir):
    """The `generate` signature of an exported version folder.

    Raises:
        MissingInputError: if the folder holds no SavedModel.
        InvalidInputError: if the SavedModel has no `generate` signature.
    """
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise MissingInputError(
            f"{saved_model_dir} holds no saved_model.pb: --saved-model must "
            "be an exported version folder, e.g. saved_models/NAME/1 "
            "(python -m training.export)."
        )
    signatures = tf.saved_model.load(saved_model_dir).signatures
    if "generate" not in signatures:
        raise InvalidInputError(
            f"{saved_model_dir} has no 'generate' signature (it has "
            f"{sorted(signatures)}); export it with python -m training.export."
        )
    return signatures["generate"]


def generate_function(run_dir=None, saved_model_dir=None, use_cache=False):
    """The `generate` function of a run or of an exported SavedModel, and
    the `Tokenization` it reads text with.

    Raises:
        InvalidInputError: for `use_cache` where the run (or export) has
            no neural cache settings.
    """
    if saved_model_dir:
        signature = load_generate_signature(saved_model_dir)
        has_cache = read_neural_cache(saved_model_dir) is not None
        check_cache(use_cache, has_cache, saved_model_dir)
        return signature, read_tokenization(saved_model_dir)
    run = RunDirectory(run_dir)
    model, vocabulary = run.load_finished()
    tokenization = run.load_tokenization()
    cache = run.load_neural_cache()
    check_cache(use_cache, cache is not None, run_dir)
    server = LanguageModelServer(model, vocabulary.words, tokenization, cache)
    function = server.function("generate")
    return (lambda **inputs: function(**inputs)), tokenization


def check_cache(use_cache, has_cache, source):
    """Refuses `--cache` for a run or export without cache settings."""
    if use_cache and not has_cache:
        raise InvalidInputError(
            f"--cache: {source} has no neural cache settings; run python -m "
            "training.evaluate --run RUN first (and export the run again for "
            "--saved-model), or leave out --cache."
        )


def check_arguments(args):
    """Rejects values the signature would silently clip or reinterpret."""
    if not 0 <= args.max_tokens <= MAX_GENERATED_TOKENS:
        raise InvalidInputError(
            f"--max-tokens {args.max_tokens}: give 0 to {MAX_GENERATED_TOKENS}."
        )
    if not math.isfinite(args.temperature):
        raise InvalidInputError(
            f"--temperature {args.temperature}: give a finite number (> 0 "
            "samples, <= 0 picks the most likely token)."
        )
    if args.top_k < 0:
        raise InvalidInputError(
            f"--top-k {args.top_k}: give 0 (sample from every word) or a "
            "positive number of most likely words."
        )


@reports_input_errors
def main(argv=None):
    args = argument_parser().parse_args(argv)
    check_arguments(args)
    generate, tokenization = generate_function(
        args.run, args.saved_model, use_cache=args.cache
    )
    outputs = generate(
        prompts=tf.constant([args.prompt]),
        max_tokens=tf.constant(args.max_tokens, tf.int32),
        temperature=tf.constant(args.temperature, tf.float32),
        top_k=tf.constant(args.top_k, tf.int32),
        seed=tf.constant(args.seed, tf.int64),
        use_cache=tf.constant(args.cache),
    )
    text = outputs["text"].numpy()[0].decode("utf-8")
    if tokenization.is_chars:  # the characters go on where the prompt ends
        print(args.prompt + text)
    else:
        print(f"{args.prompt} {text}".strip())
    return 0


def argument_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.generate", description=__doc__.split("\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="training run directory")
    source.add_argument("--saved-model", help="exported version folder")
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=50,
        help=f"tokens (words or characters) to generate, 0 to "
        f"{MAX_GENERATED_TOKENS}",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="<= 0 picks the most likely word",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=0,
        help="sample from the k most likely words; 0: all",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache",
        action="store_true",
        help="draw from the model mixed with the neural cache over the "
        "prompt and the text so far (a run evaluated by training.evaluate)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
