"""Export a training run as a SavedModel for TensorFlow Serving.

    python -m training.export --run runs/book-rnnlm [--name NAME] [--version N]

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


@reports_input_errors
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.export", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--run", required=True, help="training run directory")
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
    print(export_run(args.run, args.export_root, args.name, args.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
