"""Generate text from a trained model, as in the book's chapter 7.

    python -m training.generate --run runs/book-rnnlm --prompt "the market"
    python -m training.generate --saved-model saved_models/book-rnnlm/1 \\
        --prompt "the market" --seed 3

Sampling happens in-graph (the SavedModel's `generate` signature, or the
same function built from the run); the same `--seed` gives the same text.
"""

import argparse
import sys

import tensorflow as tf


def generate_function(run_dir=None, saved_model_dir=None):
    """The `generate` function of a run or of an exported SavedModel."""
    if saved_model_dir:
        return tf.saved_model.load(saved_model_dir).signatures["generate"]
    from keras_lstm_scratch.serving import LanguageModelServer
    from training.export import load_run

    model, vocabulary = load_run(run_dir)
    function = LanguageModelServer(model, vocabulary.words).function("generate")
    return lambda **inputs: function(**inputs)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.generate", description=__doc__.split("\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="training run directory")
    source.add_argument("--saved-model", help="exported version folder")
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--max-tokens", type=int, default=50)
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
    args = parser.parse_args(argv)
    generate = generate_function(args.run, args.saved_model)
    outputs = generate(
        prompts=tf.constant([args.prompt]),
        max_tokens=tf.constant(args.max_tokens, tf.int32),
        temperature=tf.constant(args.temperature, tf.float32),
        top_k=tf.constant(args.top_k, tf.int32),
        seed=tf.constant(args.seed, tf.int64),
    )
    text = outputs["text"].numpy()[0].decode("utf-8")
    print(f"{args.prompt} {text}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
