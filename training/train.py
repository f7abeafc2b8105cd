"""Train an LSTM language model with `model.fit` and report test perplexity.

    python -m training.train --preset book-rnnlm [--data-dir DIR]

Every run writes into its output directory (`runs/PRESET` by default; the
layout is in `training/run_directory.py`). Rerun the same command after an
interruption and it continues where it was. `--init-from RUN` starts
from a finished run's best weights, on another text (fine-tuning).
"""

import argparse
import os
import sys

from keras_lstm_scratch.distribution import (
    STRATEGIES,
    make_strategy,
    per_replica_batch_size,
)
from training.callbacks import TrainingDivergedError
from training.cli import reports_input_errors
from training.config import parse_overrides, resolve_config
from training.presets import PRESETS
from training.run import run


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument(
        "--data-dir",
        default=None,
        help="local corpus directory (PTB files); default: "
        "$KERAS_LSTM_SCRATCH_PTB_DIR, else download into the cache",
    )
    parser.add_argument(
        "--output-dir", default=None, help="run directory (default runs/PRESET)"
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--init-from",
        default=None,
        metavar="RUN",
        help="start from this finished run's best weights (fine-tuning; "
        "the text is read with its vocabulary)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field",
    )
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument(
        "--strategy",
        default="default",
        choices=STRATEGIES,
        help="tf.distribute strategy: mirrored (local GPUs), multi-worker "
        "(cluster from $TF_CONFIG), tpu; the batch size is global",
    )
    parser.add_argument(
        "--tpu", default=None, help="TPU name or address (--strategy tpu)"
    )
    return parser.parse_args(argv)


@reports_input_errors
def main(argv=None):
    args = parse_args(argv)
    overrides = parse_overrides(args.overrides)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.init_from is not None:
        overrides["init_from"] = args.init_from
    config = resolve_config(args.preset, overrides)
    strategy = make_strategy(args.strategy, tpu=args.tpu)
    per_replica_batch_size(config.batch_size, strategy)
    output_dir = args.output_dir or os.path.join("runs", args.preset)
    try:
        run(
            config,
            output_dir,
            data_dir=args.data_dir,
            verbose=args.verbose,
            strategy=strategy,
        )
    except TrainingDivergedError as error:
        print(
            f"error: {error} The last good weights stay in "
            f"{output_dir}/backup and {output_dir}/best.keras.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
