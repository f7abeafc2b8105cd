"""Generate text from a trained model, as in the book's chapter 7.

    python -m training.generate --run runs/book-rnnlm --prompt "the market"
    python -m training.generate --saved-model saved_models/book-rnnlm/1 \\
        --prompt "the market" --top-p 0.9 --stop "." --num-samples 3

Tokens are printed as they are drawn: the prompt runs through `start` and
each token through `step` (the export's signatures, or the same functions
built from the run), and each token is chosen as the export's `complete`
chooses it (`keras_lstm_scratch/serving/sampling.py`), so the same
`--seed` gives the same text. With `--cache` (the neural cache reads the
whole text) and from an export made before `start` existed, the text is
written in-graph and printed when done.
"""

import argparse
import dataclasses
import math
import os
import sys

import tensorflow as tf

from keras_lstm_scratch.data import Tokenization
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from keras_lstm_scratch.serving import (
    MAX_GENERATED_TOKENS,
    LanguageModelServer,
    read_neural_cache,
    read_stepping_files,
    read_tokenization,
)
from keras_lstm_scratch.serving.sampling import SamplingOptions, choose
from training.cli import reports_input_errors
from training.run_directory import RunDirectory

STREAMING = ("start", "step")


@dataclasses.dataclass(frozen=True)
class Source:
    """What generation reads from a run or an export.

    Args:
        functions: `{signature: callable(**inputs) -> outputs}`.
        tokenization: How the model reads text.
        words: The vocabulary (for streaming), or `None`.
        has_cache: Whether `use_cache` may be asked for.
        where: The run or export, for messages.
    """

    functions: dict
    tokenization: Tokenization
    words: list
    has_cache: bool
    where: str

    @property
    def streams(self):
        return self.words is not None and all(
            name in self.functions for name in STREAMING
        )


def load_source(run_dir=None, saved_model_dir=None):
    """The `Source` of a training run or of an exported version folder.

    Raises:
        MissingInputError: if the folder holds no SavedModel.
    """
    if saved_model_dir:
        return saved_model_source(saved_model_dir)
    run = RunDirectory(run_dir)
    model, vocabulary = run.load_finished()
    cache = run.load_neural_cache()
    server = LanguageModelServer(
        model, vocabulary.words, run.load_tokenization(), cache
    )
    names = ("start", "step", "complete")
    return Source(
        functions={name: server.function(name) for name in names},
        tokenization=server.tokenization,
        words=vocabulary.words,
        has_cache=cache is not None,
        where=run_dir,
    )


def saved_model_source(saved_model_dir):
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise MissingInputError(
            f"{saved_model_dir} holds no saved_model.pb: --saved-model must "
            "be an exported version folder, e.g. saved_models/NAME/1 "
            "(python -m training.export)."
        )
    signatures = tf.saved_model.load(saved_model_dir).signatures
    stepping = read_stepping_files(saved_model_dir)
    return Source(
        functions=dict(signatures),
        tokenization=read_tokenization(saved_model_dir),
        words=stepping[0] if stepping else None,
        has_cache=read_neural_cache(saved_model_dir) is not None,
        where=saved_model_dir,
    )


class TextStream:
    """Writes generated text as it comes, holding back the characters
    that may begin a stop text, and ends it before the first stop text."""

    def __init__(self, write, stops):
        self.write = write
        self.stops = stops
        self.held = max(map(len, stops), default=1) - 1
        self.text = ""
        self.written = 0

    def add(self, piece):
        """Adds `piece`; returns `True` once the text holds a stop text."""
        start = max(len(self.text) - self.held, 0)
        self.text += piece
        found = [
            at
            for stop in self.stops
            if (at := self.text.find(stop, start)) >= 0
        ]
        if found:
            self.text = self.text[: min(found)]
            self.close()
            return True
        safe = len(self.text) - self.held
        if safe > self.written:
            self.write(self.text[self.written : safe])
            self.written = safe
        return False

    def close(self):
        self.write(self.text[self.written :])
        self.written = len(self.text)


def token_piece(source, token, previous, eos):
    """The text token `token` adds after `previous` (`None` first);
    `eos`: the id of `<eos>`."""
    if token == eos:
        return "\n"
    word = source.words[token]
    if source.tokenization.is_chars or previous in (None, eos):
        return word
    return " " + word


def stream_sample(source, prompt, sample, args, write):
    """Draws one sample after `prompt`, writing its text as it comes."""
    options = sampling_options(args)
    pick = tf.function(  # the prompt keys the draw, as in `complete`
        lambda logits, seen, index: choose(
            logits,
            seen,
            index,
            tf.constant([sample]),
            options,
            tf.constant([prompt]),
        ),
        autograph=False,
    )
    outputs = source.functions["start"](prompts=tf.constant([prompt]))
    seen = tf.zeros(tf.shape(outputs["log_probs"]), tf.bool)
    eos = source.words.index("<eos>")
    stream, previous = TextStream(write, args.stop), None
    if not source.tokenization.is_chars and prompt.strip():
        previous = -1  # a word after the prompt's last word: a space
    for index in range(args.max_tokens):
        token = pick(outputs["log_probs"], seen, tf.constant(index))
        value = int(token[0])
        if args.stop_at_eos and value == eos:
            break
        if stream.add(token_piece(source, value, previous, eos)):
            return
        previous = value
        seen = tf.logical_or(
            seen, tf.one_hot(token, tf.shape(seen)[1], True, False)
        )
        h, c = outputs["h"], outputs["c"]
        outputs = source.functions["step"](token_ids=token, h=h, c=c)
    stream.close()


def sampling_options(args):
    return SamplingOptions(
        temperature=tf.constant(args.temperature, tf.float32),
        top_k=tf.constant(args.top_k, tf.int32),
        top_p=tf.constant(args.top_p, tf.float32),
        repetition_penalty=tf.constant(args.repetition_penalty, tf.float32),
        seed=tf.constant(args.seed, tf.int64),
    )


def whole_texts(source, args):
    """The samples' texts written in-graph: `complete`, or `generate` of
    an export made before `complete`."""
    inputs = {
        "prompts": tf.constant([args.prompt]),
        "max_tokens": tf.constant(args.max_tokens, tf.int32),
        "temperature": tf.constant(args.temperature, tf.float32),
        "top_k": tf.constant(args.top_k, tf.int32),
        "seed": tf.constant(args.seed, tf.int64),
        "use_cache": tf.constant(args.cache),
    }
    if "complete" in source.functions:
        outputs = source.functions["complete"](
            **inputs,
            top_p=tf.constant(args.top_p, tf.float32),
            repetition_penalty=tf.constant(args.repetition_penalty),
            num_samples=tf.constant(args.num_samples, tf.int32),
            stop_at_eos=tf.constant(args.stop_at_eos),
            stop_texts=tf.constant(
                args.stop, tf.string, shape=[len(args.stop)]
            ),
        )
    else:
        check_old_export(source, args)
        outputs = call_with_its_inputs(source.functions["generate"], inputs)
    return [text.decode("utf-8") for text in outputs["text"].numpy()]


def call_with_its_inputs(function, inputs):
    """Calls a loaded signature with the `inputs` it has (the first
    exports' `generate` has no `use_cache`)."""
    names = function.structured_input_signature[1]
    return function(**{k: v for k, v in inputs.items() if k in names})


def check_old_export(source, args):
    """Refuses options an export made before `complete` cannot honour."""
    asked = [
        flag
        for flag, used in (
            ("--top-p", args.top_p != 1.0),
            ("--repetition-penalty", args.repetition_penalty != 1.0),
            ("--num-samples", args.num_samples != 1),
            ("--stop", bool(args.stop)),
            ("--stop-at-eos", args.stop_at_eos),
        )
        if used
    ]
    if asked:
        raise InvalidInputError(
            f"{asked[0]}: {source.where} was exported before that option "
            "existed (it has no 'complete' signature); export the run again "
            "with python -m training.export, or leave it out."
        )


def check_arguments(args):
    """Rejects values the signatures would refuse or silently clip."""
    problems = [
        (
            not 0 <= args.max_tokens <= MAX_GENERATED_TOKENS,
            f"--max-tokens {args.max_tokens}: give 0 to "
            f"{MAX_GENERATED_TOKENS}.",
        ),
        (
            not math.isfinite(args.temperature),
            f"--temperature {args.temperature}: give a finite number (> 0 "
            "samples, <= 0 picks the most likely token).",
        ),
        (
            args.top_k < 0,
            f"--top-k {args.top_k}: give 0 (sample from every token) or a "
            "positive number of most likely tokens.",
        ),
        (
            not 0 < args.top_p <= 1,
            f"--top-p {args.top_p}: give a number in (0, 1]; 1 keeps every "
            "token.",
        ),
        (
            not (
                math.isfinite(args.repetition_penalty)
                and args.repetition_penalty > 0
            ),
            f"--repetition-penalty {args.repetition_penalty}: give a "
            "positive number (1: off; 1.2 is common).",
        ),  # fmt: skip
        (
            args.num_samples < 1,
            f"--num-samples {args.num_samples}: give 1 or more.",
        ),
        (
            "" in args.stop,
            "--stop '': give a text of at least one character.",
        ),
    ]
    for failed, message in problems:
        if failed:
            raise InvalidInputError(message)


def check_cache(args, source):
    """Refuses `--cache` for a run or export without cache settings."""
    if args.cache and not source.has_cache:
        raise InvalidInputError(
            f"--cache: {source.where} has no neural cache settings; run "
            "python -m training.evaluate --run RUN first (and export the "
            "run again for --saved-model), or leave out --cache."
        )


def print_samples(source, args, out=None):
    """Prints each sample after the prompt, as it comes when it can."""
    out = out or sys.stdout

    def write(text):
        out.write(text)
        out.flush()

    streaming = source.streams and not args.cache
    texts = None if streaming else whole_texts(source, args)
    for sample in range(args.num_samples if streaming else len(texts)):
        if sample:
            write("\n")
        write(args.prompt)
        if streaming:
            stream_sample(source, args.prompt, sample, args, write)
        else:
            text = texts[sample]
            joint = "" if source.tokenization.is_chars else " "
            write(joint + text if args.prompt.strip() and text else text)
        write("\n")


@reports_input_errors
def main(argv=None):
    args = argument_parser().parse_args(argv)
    check_arguments(args)
    source = load_source(args.run, args.saved_model)
    check_cache(args, source)
    print_samples(source, args)
    return 0


def argument_parser():
    parser = argparse.ArgumentParser(
        prog="python -m training.generate", description=__doc__.split("\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="training run directory")
    source.add_argument("--saved-model", help="exported version folder")
    parser.add_argument("--prompt", default="", help="text to continue")
    add_sampling_arguments(parser)
    parser.add_argument(
        "--num-samples", type=int, default=1, help="samples of the prompt"
    )
    parser.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="end a sample before this text (repeatable)",
    )
    parser.add_argument(
        "--stop-at-eos",
        action="store_true",
        help="end a sample at the end of its sentence (words) or line "
        "(characters)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache",
        action="store_true",
        help="draw from the model mixed with the neural cache over the "
        "prompt and the text so far (a run evaluated by training.evaluate)",
    )
    return parser


def add_sampling_arguments(parser):
    """--max-tokens, --temperature, --top-k, --top-p, --repetition-penalty."""
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=50,
        help=f"most tokens (words or characters) to write, 0 to "
        f"{MAX_GENERATED_TOKENS}",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="<= 0 picks the most likely token",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=0,
        help="sample from the k most likely tokens; 0: all",
    )
    parser.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        help="sample from the most likely tokens whose probabilities first "
        "reach P (nucleus sampling); 1: all",
    )
    parser.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        help="above 1 makes tokens already written less likely (CTRL); 1: off",
    )


if __name__ == "__main__":
    sys.exit(main())
