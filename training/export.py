"""Export a training run as a SavedModel for TensorFlow Serving.

    python -m training.export --run runs/book-rnnlm [--name NAME] [--version N]
    python -m training.export --model model.keras --vocabulary vocab.json \
        [--tokens chars] --name NAME

The second form exports a model saved by your own code, on any Keras
backend (a model trained on JAX or PyTorch, loaded here by TensorFlow),
with the vocabulary `Vocabulary.save` wrote.

Writes `saved_models/NAME/VERSION/` (the next free version by default):
the best model of the run, its vocabulary and tokenisation, the
signatures `serving_default`, `score`, `next_words`, `step` and
`generate`, and `assets.extra/tf_serving_warmup_requests`. A run that
`python -m training.evaluate` has evaluated also gives the export the
neural cache settings it chose on validation (`use_cache=true`).
"""

import argparse
import os
import sys

import keras

from keras_lstm_scratch.data import Tokenization, Vocabulary
from keras_lstm_scratch.data.tokenization import TOKENIZATIONS
from keras_lstm_scratch.errors import InvalidInputError, MissingInputError
from keras_lstm_scratch.serving import export_for_serving
from training.cli import reports_input_errors
from training.run_directory import RunDirectory


def export_run(run_dir, export_root="saved_models", name=None, version=None):
    """Exports the best model of `run_dir`; returns the version folder."""
    run = RunDirectory(run_dir)
    model, vocabulary = run.load_finished()
    name = name or os.path.basename(os.path.normpath(run_dir))
    return export_for_serving(
        model,
        vocabulary.words,
        export_root,
        name,
        version,
        tokenization=run.load_tokenization(),
        cache=run.load_neural_cache(),
    )


def export_model_file(
    model_path,
    vocabulary_path,
    tokens="words",
    export_root="saved_models",
    name=None,
    version=None,
):
    """Exports a `.keras` model and its vocabulary; returns the version
    folder."""
    for path in (model_path, vocabulary_path):
        if not os.path.isfile(path):
            raise MissingInputError(f"{path} not found.")
    model = keras.models.load_model(model_path)
    name = name or os.path.splitext(os.path.basename(model_path))[0]
    return export_for_serving(
        model,
        Vocabulary.load(vocabulary_path).words,
        export_root,
        name,
        version,
        tokenization=Tokenization(tokens),
    )


@reports_input_errors
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.export", description=__doc__.split("\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="training run directory")
    source.add_argument(
        "--model", help="a .keras model file (with --vocabulary)"
    )
    parser.add_argument(
        "--vocabulary", help="the model's vocabulary.json (with --model)"
    )
    parser.add_argument(
        "--tokens",
        default="words",
        choices=TOKENIZATIONS,
        help="how the model reads text (with --model)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="model name (default: the run folder's name)",
    )
    parser.add_argument(
        "--version",
        type=int,
        default=None,
        help="version number (default: the next free one)",
    )
    parser.add_argument("--export-root", default="saved_models")
    args = parser.parse_args(argv)
    if args.run is not None:
        print(export_run(args.run, args.export_root, args.name, args.version))
        return 0
    if args.vocabulary is None:
        raise InvalidInputError(
            "--model needs --vocabulary: the vocabulary.json of the model's "
            "training text (Vocabulary.save)."
        )
    print(
        export_model_file(
            args.model,
            args.vocabulary,
            args.tokens,
            args.export_root,
            args.name,
            args.version,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
