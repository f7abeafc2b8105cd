"""One training run, as named steps that read top to bottom.

    run(config, output_dir)
      1. load_data         the corpus and its windows, checked before any
                           file is written
      2. RunDirectory.open config.json (a rerun must match it) and
                           vocabulary.json
      3. build_or_resume   the compiled model; the last backup's weights
                           and progress when there is one
      4. fit               model.fit with the run's callbacks
      5. evaluate_on_test  the best weights on the test text, one stream
                           (or several, for a long text)
      6. write_results     results.json, curves.png and the summary line

`run_directory.py` owns the files, `data.py` the windows, `model.py` the
model, `callbacks.py` and `learning_rate.py` what happens at epoch ends,
`results.py` the test score and figures.
"""

import dataclasses
import math
import os
import time

import keras
import tensorflow as tf

from keras_lstm_scratch import (
    PerplexityCallback,
    ResetStatesCallback,
    restore_carried_state,
)
from keras_lstm_scratch.callbacks import NonMonotoneAveraging
from keras_lstm_scratch.distribution import (
    multi_worker_fit,
    shard_by_batch_slices,
)
from keras_lstm_scratch.inspection import GateHistograms
from keras_lstm_scratch.staged_write import staged_file
from training.callbacks import (
    BitsPerCharacter,
    DivergenceGuard,
    EpochLine,
    EpochTimer,
    RestoreCarriedState,
    RunRecorder,
    without_running_metrics,
)
from training.data import (
    load_corpus,
    training_windows,
    validation_windows,
)
from training.fine_tuning import start_from
from training.learning_rate import EpochLearningRateDecay
from training.model import build_model
from training.plots import plot_curves
from training.results import evaluate_test_text, run_results, summary_line
from training.run_directory import (
    KEPT_ON_FAILURE,
    RunDirectory,
    process_run_directory,
)
from training.time_budget import budget_callback, check_time_budget


@dataclasses.dataclass(frozen=True)
class RunData:
    """The corpus and the windows a run trains and validates on."""

    corpus: object  # keras_lstm_scratch.data.Corpus
    train: tf.data.Dataset
    valid_windows: tuple  # (inputs, targets, weights), (windows, batch, time)
    valid: tf.data.Dataset  # valid_windows, one window per element
    tokens_per_step: int  # one batch: batch_size * seq_len
    tokens_per_epoch: int


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a run stands: nothing done yet, or its last backup."""

    epoch: int = 0  # epochs finished
    best_val_perplexity: float = math.inf
    history: tuple = ()
    train_seconds: float = 0.0  # the finished epochs'
    steps: int = 0  # batches of epoch `epoch + 1` done (a backup inside it)
    epoch_seconds: float = 0.0  # their training seconds
    carried: dict = dataclasses.field(default_factory=dict)  # RNN, seeds


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
            `keras_lstm_scratch.make_strategy`); `None`: the current one
            (one device outside any scope). `config.batch_size` is the
            global number of streams, shared evenly by the replicas. In a
            multi-worker run every worker calls `run` with the same
            arguments; the chief writes `output_dir` (which all workers
            must reach, e.g. a shared file system) and the others write
            into a temporary directory that is deleted at the end.

    Returns:
        The results dict also written to `results.json`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    check_time_budget(config, strategy)
    with process_run_directory(output_dir, strategy) as run_dir:
        started = time.perf_counter()
        data = load_data(config, data_dir, verbose)
        run_dir.open(config, data.corpus)
        # Every worker resumes from the chief's backup in output_dir.
        model, progress = build_or_resume(
            config, data, RunDirectory(output_dir), strategy
        )
        if config.init_from and progress.epoch == progress.steps == 0:
            start_from(model, config, data.corpus, run_dir)
        run_dir.complete_best_model()
        recorder = fit(
            config,
            model,
            data,
            progress,
            run_dir,
            strategy,
            verbose,
            extra_callbacks,
        )
        test = evaluate_on_test(config, model, data.corpus, run_dir, verbose)
        results = run_results(
            test,
            recorder,
            data.corpus,
            data.tokens_per_epoch,
            data.tokens_per_step,
            time.perf_counter() - started,
        )
        write_results(run_dir, results, recorder.history, output_dir)
        return results


def load_data(config, data_dir, verbose=0):
    """Step 1: the corpus and its training and validation windows."""
    corpus = load_corpus(config, data_dir, verbose)
    batch_size, seq_len = config.batch_size, config.seq_len
    train = training_windows(corpus, batch_size, seq_len)
    windows = validation_windows(
        corpus, batch_size, seq_len, config.valid_max_tokens
    )
    valid = tf.data.Dataset.from_tensor_slices(windows)
    return RunData(
        corpus=corpus,
        train=train,
        valid_windows=windows,
        valid=shard_by_batch_slices(valid),
        tokens_per_step=batch_size * seq_len,
        tokens_per_epoch=int(train.cardinality()) * batch_size * seq_len,
    )


def build_or_resume(config, data, resume_from, strategy):
    """Step 3: the compiled model and the run's progress.

    The model starts from `config.seed`, set after loading the corpus (a
    TFDS corpus draws random numbers while it loads), so it starts the
    same whatever the source. If the `RunDirectory` `resume_from` holds a
    backup, the model and optimizer weights and the progress come from its
    newest intact epoch; a damaged newer one is named and passed over.
    """
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, len(data.corpus.vocabulary), strategy)
    backup = resume_from.load_backup()
    if backup is None:
        return model, Progress()
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    model.load_weights(backup["weights_path"])
    restore_carried_state(model, without_running_metrics(backup["carried"]))
    progress = Progress(
        epoch=backup["epoch"],
        best_val_perplexity=backup["best_val_perplexity"],
        history=tuple(backup["history"]),
        train_seconds=backup["train_seconds"],
        steps=backup["steps"],
        epoch_seconds=backup["epoch_seconds"],
        carried=backup["carried"],
    )
    for problem in backup["damaged"]:
        print(f"Passing over a damaged backup: {problem}.")
    where = f"after epoch {progress.epoch}"
    if progress.steps:
        where = f"in epoch {progress.epoch + 1} after {progress.steps} batches"
    print(
        f"Resuming {resume_from.path} {where} "
        f"(best valid perplexity {progress.best_val_perplexity:.2f})."
    )
    return model, progress


def fit(config, model, data, progress, run_dir, strategy, verbose, extra):
    """Step 4: `model.fit` from the progress on; returns the `RunRecorder`.

    A run resumed inside an epoch first trains that epoch's remaining
    windows, with the RNN states where they were, then the epochs after.
    """
    timer = EpochTimer(resumed=(progress.steps, progress.epoch_seconds))
    recorder = RunRecorder(
        run_dir,
        progress.history,
        progress.train_seconds,
        timer,
        backup_seconds=backup_seconds(config, strategy),
    )
    budget = budget_callback(config, progress)
    callbacks = epoch_callbacks(
        config, data, progress, run_dir, budget, verbose
    )
    callbacks = [timer, *callbacks, *extra, recorder]
    if budget is not None and budget.finished():
        return recorder  # a resumed run whose budget was spent
    first = progress.epoch
    with multi_worker_fit(model, strategy):
        if progress.steps:
            rest = training_windows(
                data.corpus, config.batch_size, config.seq_len, progress.steps
            )
            train_epochs(model, rest, first, first + 1, callbacks, verbose)
            first += 1
            if model.stop_training:
                return recorder  # the budget ran out in that epoch
        if first < config.epochs:
            train_epochs(
                model, data.train, first, config.epochs, callbacks, verbose
            )
    return recorder


def train_epochs(model, windows, first, stop, callbacks, verbose):
    """`model.fit` on `windows` for epochs `first + 1 .. stop`."""
    model.fit(
        shard_by_batch_slices(windows),
        epochs=stop,
        initial_epoch=first,
        shuffle=False,
        verbose=verbose,
        callbacks=callbacks,
    )


def backup_seconds(config, strategy):
    """Seconds between backups inside an epoch; 0 (epoch ends only) under
    several replicas, whose RNN states one backup does not hold apart."""
    if strategy.num_replicas_in_sync > 1:
        return 0.0
    return config.backup_minutes * 60


def epoch_callbacks(config, data, progress, run_dir, budget=None, verbose=0):
    """The run's callbacks, in the order each epoch's logs pass them.

    `budget` is `time_budget`'s callback, or `None`; with `verbose` 1 the
    validation pass shows a progress bar.
    """
    best = progress.best_val_perplexity
    chars = data.corpus.tokenization.is_chars
    # After an `EpochTimer`, first: the time excludes the validation pass.
    callbacks = [
        ResetStatesCallback(),
        *([RestoreCarriedState(progress.carried)] if progress.steps else []),
        *weight_averaging(config, progress),  # before the validation
        PerplexityCallback(data.valid, verbose=int(verbose == 1)),
        *([BitsPerCharacter()] if chars else []),
        *epoch_rate_decay(config, best),
        *([budget] if budget is not None else []),
        DivergenceGuard(),
        keras.callbacks.TensorBoard(run_dir.tensorboard_dir),
    ]
    if config.rnn_cell == "lstm":  # gates of the first validation window
        inputs = data.valid_windows[0][0]  # (batch, time)
        callbacks.append(GateHistograms(inputs, run_dir.gate_log_dir))
    return callbacks + [
        keras.callbacks.ProgbarLogger(),
        EpochLine(data.tokens_per_step, bits_per_char=chars),
    ]


def weight_averaging(config, progress):
    """NT-ASGD's trigger and weight swap, if the run averages weights."""
    if config.averaging_nonmono <= 0:
        return []
    history = [row["val_perplexity"] for row in progress.history]
    return [NonMonotoneAveraging(config.averaging_nonmono, history)]


def epoch_rate_decay(config, best):
    """The rule that divides the rate between epochs, if the run has one."""
    if config.lr_schedule == "linear":  # set per batch by budget_callback
        return []
    return [
        EpochLearningRateDecay(
            config.lr_schedule,
            config.lr_decay,
            config.decay_start_epoch,
            best=best,
        )
    ]


def evaluate_on_test(config, model, corpus, run_dir, verbose=0):
    """Step 5: the best weights' `(mean_nll, tokens, streams)` on the test
    text."""
    if os.path.isfile(run_dir.best_model_path):
        model.load_weights(run_dir.best_model_path)
    return evaluate_test_text(config, model, corpus.test, verbose)


def write_results(run_dir, results, history, output_dir):
    """Step 6: `results.json`, `curves.png` and the summary line."""
    run_dir.write_results(results)
    with staged_file(run_dir.curves_path, KEPT_ON_FAILURE) as staging:
        plot_curves(
            history,
            staging,
            title=os.path.basename(os.path.normpath(output_dir)),
        )
    print(summary_line(results))
