"""Train an LSTM language model with `model.fit` and report test perplexity.

    python -m training.train --preset book-rnnlm [--data-dir DIR]

Every run writes into its output directory: `config.json`,
`vocabulary.json`, `history.csv`, `tensorboard/`, `best.keras`,
`results.json`, `curves.png` and `backup/` (for resuming: rerun the same
command after an interruption and it continues from the last finished
epoch).
"""

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import keras_lstm_scratch
from keras_lstm_scratch import (
    ClippedSGD,
    Perplexity,
    PerplexityCallback,
    ResetStatesCallback,
    SparseSoftmaxCrossEntropy,
    build_language_model,
    evaluate_token_nll,
)
from keras_lstm_scratch.data import (
    count_targets,
    load_ptb,
    load_text_corpus,
    load_tfds_corpus,
    tbptt_dataset,
    tbptt_windows,
)
from keras_lstm_scratch.distribution import (
    STRATEGIES,
    can_jit_compile,
    is_chief,
    is_multi_worker,
    make_strategy,
    multi_worker_fit,
    per_replica_batch_size,
    shard_by_batch_slices,
)
from keras_lstm_scratch.errors import InvalidInputError
from keras_lstm_scratch.gate_probe import GateHistograms
from training.callbacks import (
    BestModelCheckpoint,
    DivergenceGuard,
    EpochLine,
    EpochTimer,
    LearningRateSchedule,
    RunRecorder,
    TimeBudget,
    TrainingDivergedError,
)
from training.cli import reports_input_errors
from training.config import (
    PRESETS,
    load_config,
    parse_overrides,
    resolve_config,
    save_config,
)
from training.files import write_atomically
from training.plots import plot_curves


def load_corpus(config, data_dir=None):
    """Loads the corpus that `config.corpus` names."""
    if config.corpus == "ptb":
        return load_ptb(data_dir)
    kind, _, name = config.corpus.partition(":")
    if kind == "text":
        return load_text_corpus(name, max_vocab_size=config.max_vocab_size)
    return load_tfds_corpus(
        name,
        text_key=config.tfds_text_key,
        max_vocab_size=config.max_vocab_size,
        data_dir=data_dir,
    )


def make_optimizer(config):
    """Plain SGD with the configured gradient clipping.

    `clip_mode="global"` rescales all gradients together when their joint
    norm exceeds `clip_norm` (the book's `clip_grads`, PyTorch's
    `clip_grad_norm_`; Keras's `global_clipnorm`). `"per_variable"` clips
    each variable's gradient on its own (Keras's `clipnorm`), which changes
    the direction of the update. Under tf.distribute both clip the
    gradient of the whole global batch (`ClippedSGD`), as on one device.
    """
    if config.clip_mode == "global":
        return ClippedSGD(
            config.learning_rate, global_clipnorm=config.clip_norm
        )
    return ClippedSGD(config.learning_rate, clipnorm=config.clip_norm)


def build_model(config, vocab_size, batch_size=None):
    """The stateful language model that `config` describes, compiled.

    `batch_size`: streams per replica (default `config.batch_size`); build
    under the strategy's scope to distribute.
    """
    initializers = {}
    if config.init_scale > 0:
        uniform = keras.initializers.RandomUniform(
            -config.init_scale, config.init_scale, seed=config.seed
        )
        initializers = dict(
            embeddings_initializer=uniform,
            kernel_initializer=uniform,
            recurrent_initializer=uniform,
        )
    strategy = tf.distribute.get_strategy()
    if config.jit_compile and not can_jit_compile(strategy):
        print(
            "note: jit_compile is off: XLA cannot compile replica steps on "
            f"CPU devices ({strategy.num_replicas_in_sync} replicas)."
        )
    # Layers keep the dtype policy they are built under (and save it);
    # the global policy is restored so that nothing else inherits it.
    global_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.precision)
    try:
        model = build_language_model(
            vocab_size,
            embedding_dim=config.embedding_dim,
            hidden_units=config.hidden_units,
            num_layers=config.num_layers,
            dropout=config.dropout,
            tie_weights=config.tie_weights,
            rnn_cell=config.rnn_cell,
            stateful=True,
            batch_size=batch_size or config.batch_size,
            seq_len=config.seq_len,
            **initializers,
        )
    finally:
        keras.mixed_precision.set_global_policy(global_policy)
    model.compile(
        optimizer=make_optimizer(config),
        loss=SparseSoftmaxCrossEntropy(),
        metrics=[Perplexity()],
        jit_compile=config.jit_compile and can_jit_compile(strategy),
    )
    return model


# Test evaluation reads the test text as one stream in windows of this many
# tokens: every token is predicted from its full left context.
TEST_WINDOW = 1000


def evaluate_single_stream(config, model, ids, vocab_size):
    """Token-weighted mean NLL over `ids` read as one continuous stream.

    A batch-1 twin of `model` (same weights) carries its states across
    windows of `TEST_WINDOW` tokens, so no token loses context to a stream
    boundary; each token is counted once.

    Returns:
        `(mean_nll, token_count)`.
    """
    single = dataclasses.replace(config, batch_size=1, seq_len=TEST_WINDOW)
    twin = build_model(single, vocab_size)
    twin.set_weights(model.get_weights())
    windows = tbptt_dataset(ids, 1, TEST_WINDOW, pad=True)
    return evaluate_token_nll(twin, windows)


def training_windows(corpus, batch_size, seq_len):
    """The training split's TBPTT dataset; a too-short text names its file."""
    try:
        return tbptt_dataset(corpus.train, batch_size, seq_len)
    except InvalidInputError as error:
        source = corpus.sources.get("train", "The training text")
        raise InvalidInputError(f"{source}: {error}") from None


def gate_histograms(config, corpus, run_dir):
    """`[GateHistograms]` on the first validation window (LSTM models)."""
    if config.rnn_cell != "lstm":
        return []
    inputs, _, _ = tbptt_windows(
        corpus.valid, config.batch_size, config.seq_len, pad=True
    )
    log_dir = os.path.join(run_dir, "tensorboard", "gates")
    return [GateHistograms(inputs[0], log_dir)]


def prepare_output_dir(output_dir, config):
    """Creates the run directory; refuses one that holds another config."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "config.json")
    resolved = dataclasses.asdict(config)
    if os.path.isfile(path):
        # Fields added since that run was made count with their defaults.
        previous = dataclasses.asdict(load_config(path))
        if previous != resolved:
            changed = sorted(
                k for k in resolved if previous.get(k) != resolved[k]
            )
            raise InvalidInputError(
                f"{output_dir} holds a run with a different config "
                f"(differs in {changed}). Use another --output-dir, or delete "
                "it to start over."
            )
    save_config(config, path)


def versions():
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "keras_lstm_scratch": keras_lstm_scratch.__version__,
    }


@contextlib.contextmanager
def files_directory(output_dir, strategy):
    """Where this process writes the run's files.

    The run directory for the chief (and for every single-process run); a
    temporary directory, deleted afterwards, for the other workers of a
    multi-worker run: they save too (saving reads variables collectively),
    but their files are not kept.
    """
    if is_chief(strategy):
        yield output_dir
        return
    write_dir = tempfile.mkdtemp(prefix="keras-lstm-scratch-worker-")
    try:
        yield write_dir
    finally:
        shutil.rmtree(write_dir, ignore_errors=True)


def run(
    config,
    output_dir,
    data_dir=None,
    verbose=1,
    extra_callbacks=(),
    strategy=None,
):
    """Trains, restores the best weights, evaluates on test, writes results.

    Args:
        config: A resolved `TrainConfig`.
        output_dir: Run directory (created; resumed if it holds a backup).
        data_dir: Local corpus directory (PTB files) or TFDS data dir.
        verbose: Keras progress-bar verbosity.
        extra_callbacks: More callbacks, run after the built-in ones.
        strategy: Optional `tf.distribute.Strategy` (see
            `keras_lstm_scratch.make_strategy`); `config.batch_size` is the
            global number of streams, shared evenly by the replicas. In a
            multi-worker run every worker calls `run` with the same
            arguments; the chief writes `output_dir` (which all workers
            must reach, e.g. a shared file system) and the others write
            into a temporary directory that is deleted at the end.

    Returns:
        The results dict also written to `results.json`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if is_multi_worker(strategy) and config.time_budget_minutes > 0:
        raise InvalidInputError(
            "time_budget_minutes needs every worker to stop after the same "
            "epoch, which their own clocks cannot promise; set "
            "time_budget_minutes=0 or --epochs for a multi-worker run."
        )
    per_replica = per_replica_batch_size(config.batch_size, strategy)
    with files_directory(output_dir, strategy) as write_dir:
        wall_start = time.perf_counter()
        # The data is checked before the run directory is made, so that a
        # mistake in it leaves no run behind to clash with the fixed command.
        corpus = load_corpus(config, data_dir)
        batch_size, seq_len = config.batch_size, config.seq_len
        train_data = training_windows(corpus, batch_size, seq_len)
        prepare_output_dir(write_dir, config)
        corpus.vocabulary.save(os.path.join(write_dir, "vocabulary.json"))
        valid_data = tbptt_dataset(corpus.valid, batch_size, seq_len, pad=True)
        tokens_per_epoch = int(train_data.cardinality()) * batch_size * seq_len
        train_data = shard_by_batch_slices(train_data)
        valid_data = shard_by_batch_slices(valid_data)

        # Seeded after loading: a TFDS corpus draws random numbers while it
        # loads, and the model must start the same whatever the source.
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            model = build_model(config, len(corpus.vocabulary), per_replica)
        state = RunRecorder.load_state(output_dir)
        initial_epoch, best, history, spent = 0, math.inf, [], 0.0
        if state is not None:
            with strategy.scope():
                model.optimizer.build(model.trainable_variables)
            model.load_weights(state["weights_path"])
            initial_epoch = state["epoch"]
            best = state["best_val_perplexity"]
            history = state["history"]
            spent = state["train_seconds"]
            print(
                f"Resuming {output_dir} after epoch {initial_epoch} "
                f"(best valid perplexity {best:.2f})."
            )

        best_path = os.path.join(write_dir, "best.keras")
        recorder = RunRecorder(write_dir, history=history, train_seconds=spent)
        callbacks = [
            EpochTimer(),
            ResetStatesCallback(),
            PerplexityCallback(valid_data),
            LearningRateSchedule(
                config.lr_schedule,
                config.lr_decay,
                config.decay_start_epoch,
                best=best,
            ),
            DivergenceGuard(),
            BestModelCheckpoint(best_path, best=best),
            keras.callbacks.TensorBoard(os.path.join(write_dir, "tensorboard")),
            *gate_histograms(config, corpus, write_dir),
            keras.callbacks.ProgbarLogger(),
            EpochLine(tokens_per_epoch),
        ]
        more_epochs = initial_epoch < config.epochs
        if config.time_budget_minutes > 0:
            budget = TimeBudget(config.time_budget_minutes * 60, spent)
            callbacks.append(budget)
            # A resumed run whose budget was spent does not train again.
            if history and budget.would_overrun(history[-1]["train_seconds"]):
                more_epochs = False
        callbacks += [*extra_callbacks, recorder]
        if more_epochs:
            with multi_worker_fit(model, strategy):
                model.fit(
                    train_data,
                    epochs=config.epochs,
                    initial_epoch=initial_epoch,
                    shuffle=False,
                    verbose=verbose,
                    callbacks=callbacks,
                )

        if os.path.isfile(best_path):
            model.load_weights(best_path)
        test_nll, test_tokens = evaluate_single_stream(
            config, model, corpus.test, len(corpus.vocabulary)
        )
        results = {
            "test_perplexity": math.exp(test_nll),
            "test_loss": test_nll,
            "test_tokens": int(test_tokens),
            "best_val_perplexity": recorder.best_val_perplexity(),
            "epochs": len(recorder.history),
            "train_seconds": recorder.train_seconds,
            "tokens_per_second": (
                tokens_per_epoch
                * len(recorder.history)
                / recorder.train_seconds
                if recorder.train_seconds
                else None
            ),
            "train_tokens": count_targets(corpus.train),
            "tokens_per_epoch": tokens_per_epoch,
            "wall_seconds_this_invocation": time.perf_counter() - wall_start,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "versions": versions(),
        }
        write_atomically(
            os.path.join(write_dir, "results.json"),
            json.dumps(results, indent=2),
        )
        plot_curves(
            recorder.history,
            os.path.join(write_dir, "curves.png"),
            title=os.path.basename(os.path.normpath(output_dir)),
        )
        print(
            f"test perplexity {results['test_perplexity']:.2f} "
            f"({results['test_tokens']:,} tokens); best valid perplexity "
            f"{results['best_val_perplexity']:.2f} after "
            f"{results['epochs']} epochs, {results['train_seconds'] / 60:.1f} "
            "min of training"
        )
        return results


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
