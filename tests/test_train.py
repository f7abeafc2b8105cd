import json
import math
import os
import signal
import subprocess
import time
from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import build_language_model
from tests.helpers import (
    REPO_ROOT,
    SMALL,
    read_history,
    small_config,
    train_command,
)
from training.callbacks import TrainingDivergedError
from training.export import export_run
from training.run import run
from training.run_directory import RunDirectory


class StateProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.at_epoch_begin = []

    def on_epoch_begin(self, epoch, logs=None):
        self.at_epoch_begin.append(
            max(
                float(np.abs(keras.ops.convert_to_numpy(s)).max())
                for layer in self.model.layers
                if isinstance(layer, keras.layers.RNN)
                for s in layer.states
            )
        )


def test_a_run_writes_every_artifact(small_corpus_dir, tmp_path):
    output_dir = str(tmp_path / "run")
    probe = StateProbe()
    results = run(
        small_config(small_corpus_dir, epochs=2),
        output_dir,
        verbose=0,
        extra_callbacks=[probe],
    )
    for name in (
        "config.json",
        "vocabulary.json",
        "history.csv",
        "best.keras",
        "results.json",
        "curves.png",
        "tensorboard",
    ):
        assert os.path.exists(os.path.join(output_dir, name)), name
    rows = read_history(output_dir)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"loss", "perplexity", "val_perplexity", "lr"} <= set(rows[0])
    saved = json.loads(open(os.path.join(output_dir, "results.json")).read())
    assert saved["test_perplexity"] == pytest.approx(results["test_perplexity"])
    assert saved["best_val_perplexity"] == min(
        float(row["val_perplexity"]) for row in rows
    )
    assert saved["epochs"] == 2 and saved["tokens_per_second"] > 0
    assert {"tensorflow", "keras"} <= set(saved["versions"])
    # States start from zero at every epoch (reset between train and valid).
    assert probe.at_epoch_begin == [0.0, 0.0]


def test_mixed_bfloat16_trains_with_float32_master_weights(
    small_corpus_dir, tmp_path
):
    output_dir = str(tmp_path / "run")
    results = run(
        small_config(small_corpus_dir, precision="mixed_bfloat16"),
        output_dir,
        verbose=0,
    )
    assert math.isfinite(results["test_perplexity"])
    assert keras.mixed_precision.global_policy().name == "float32"
    model = keras.saving.load_model(os.path.join(output_dir, "best.keras"))
    lstm = model.get_layer("lstm_1")
    assert lstm.dtype_policy.name == "mixed_bfloat16"
    assert {w.dtype for w in model.weights} == {"float32"}
    ids = np.zeros((SMALL["batch_size"], SMALL["seq_len"]), "int32")
    logits = model.predict_on_batch(ids)
    assert logits.dtype == "bfloat16"


def test_the_learning_rate_follows_the_plateau_rule(small_corpus_dir, tmp_path):
    output_dir = str(tmp_path / "run")
    run(
        small_config(small_corpus_dir, epochs=4, learning_rate=40.0),
        output_dir,
        verbose=0,
    )
    rows = read_history(output_dir)
    best = math.inf
    for row, following in zip(rows, rows[1:], strict=False):
        value, rate = float(row["val_perplexity"]), float(row["lr"])
        expected = rate if value < best else rate / 4
        best = min(best, value)
        assert float(following["lr"]) == pytest.approx(expected)


def test_a_rerun_of_a_finished_run_only_evaluates(small_corpus_dir, tmp_path):
    config = small_config(small_corpus_dir, epochs=1)
    first = run(config, str(tmp_path / "run"), verbose=0)
    again = run(config, str(tmp_path / "run"), verbose=0)
    assert again["epochs"] == 1
    assert again["test_perplexity"] == pytest.approx(first["test_perplexity"])


def test_a_different_config_in_the_same_directory_is_refused(
    small_corpus_dir, tmp_path
):
    run(
        small_config(small_corpus_dir, epochs=1),
        str(tmp_path / "run"),
        verbose=0,
    )
    with pytest.raises(ValueError, match=r"different config.*hidden_units"):
        run(
            small_config(small_corpus_dir, epochs=1, hidden_units=8),
            str(tmp_path / "run"),
            verbose=0,
        )


def test_a_time_budget_stops_the_run_and_a_rerun_does_not_overrun_it(
    small_corpus_dir, tmp_path
):
    # A budget of 0.06 s: the first epoch always overruns it.
    config = small_config(small_corpus_dir, epochs=3, time_budget_minutes=0.001)
    first = run(config, str(tmp_path / "run"), verbose=0)
    assert first["epochs"] == 1
    again = run(config, str(tmp_path / "run"), verbose=0)
    assert again["epochs"] == 1
    assert again["test_perplexity"] == pytest.approx(first["test_perplexity"])


def test_a_linear_budget_cuts_the_epoch_it_ends_in_and_a_rerun_stops(
    small_corpus_dir, tmp_path
):
    # A budget of 0.06 s, which the first batch (tracing included) already
    # overruns: the first epoch is cut after it.
    config = small_config(
        small_corpus_dir,
        epochs=3,
        lr_schedule="linear",
        time_budget_minutes=0.001,
    )
    first = run(config, str(tmp_path / "run"), verbose=0)
    (row,) = read_history(str(tmp_path / "run"))
    assert int(row["train_steps"]) == 1
    assert first["tokens_per_second"] == pytest.approx(
        4 * 10 / first["train_seconds"]
    )
    again = run(config, str(tmp_path / "run"), verbose=0)
    assert again["epochs"] == 1
    assert again["test_perplexity"] == pytest.approx(first["test_perplexity"])


class PoisonWeights(keras.callbacks.Callback):
    """Turns the weights into NaN in the middle of epoch `at_epoch`."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.at_epoch and batch == 3:
            weight = self.model.trainable_weights[0]
            weight.assign(np.full(weight.shape, np.nan, "float32"))


def test_divergence_stops_with_a_clear_error_and_keeps_good_weights(
    small_corpus_dir, tmp_path
):
    output_dir = str(tmp_path / "run")
    with pytest.raises(TrainingDivergedError, match="loss is nan"):
        run(
            small_config(small_corpus_dir, epochs=3),
            output_dir,
            verbose=0,
            extra_callbacks=[PoisonWeights(at_epoch=1)],
        )
    state = RunDirectory(output_dir).load_backup()
    assert state["epoch"] == 1
    model = keras.models.load_model(os.path.join(output_dir, "best.keras"))
    assert all(
        np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights
    )


@pytest.mark.slow
def test_a_killed_run_resumes_losing_at_most_the_current_epoch(
    small_corpus_dir, tmp_path
):
    output_dir = str(tmp_path / "run")
    command = train_command(small_corpus_dir, output_dir, epochs=5)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    state = None
    while time.monotonic() < deadline and process.poll() is None:
        state = RunDirectory(output_dir).load_backup()
        if state is not None and state["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert state is not None and state["epoch"] >= 2, process.poll()
    time.sleep(0.5)  # into the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before_kill = RunDirectory(output_dir).load_backup()["epoch"]
    assert 2 <= done_before_kill < 5

    resumed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"after epoch {done_before_kill}" in resumed.stdout
    epochs = [row["epoch"] for row in read_history(output_dir)]
    assert epochs == ["1", "2", "3", "4", "5"]
    assert (
        json.loads(open(os.path.join(output_dir, "results.json")).read())[
            "epochs"
        ]
        == 5
    )


def unigram_test_perplexity(corpus):
    counts = Counter(corpus.train.tolist())
    total = sum(counts.values())
    log_probs = [math.log(counts[token] / total) for token in corpus.test[1:]]
    return math.exp(-sum(log_probs) / len(log_probs))


@pytest.mark.slow
def test_tiny_preset_on_ptb_beats_a_unigram_model(ptb_corpus, tiny_ptb_run):
    _, results = tiny_ptb_run
    unigram = unigram_test_perplexity(ptb_corpus)
    print(
        f"tiny test perplexity {results['test_perplexity']:.1f}, "
        f"unigram {unigram:.1f}"
    )
    assert unigram > 600
    assert results["test_perplexity"] < unigram
    assert results["test_tokens"] == len(ptb_corpus.test) - 1


class EpochEndWeights(keras.callbacks.Callback):
    """The weights the epoch's validation and checkpoint saw (it runs after
    them) and the raw weights after the epoch's last step."""

    def __init__(self):
        super().__init__()
        self.validated, self.raw = [], []

    def on_train_batch_end(self, batch, logs=None):
        self._last_step = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        self.validated.append(self.model.get_weights())
        self.raw.append(self._last_step)


def test_nt_asgd_validates_saves_and_tests_the_averaged_weights(
    small_corpus_dir, tmp_path, monkeypatch
):
    # The trigger's own rule is tested on hand-made histories; here it
    # fires after the first epoch, so epochs 2 and 3 average.
    monkeypatch.setattr(
        "keras_lstm_scratch.callbacks.non_monotone_averaging.nonmonotone_trigger",
        lambda history, nonmono: True,
    )
    output_dir = str(tmp_path / "run")
    weights = EpochEndWeights()
    results = run(
        small_config(small_corpus_dir, epochs=3, averaging_nonmono=1),
        output_dir,
        verbose=0,
        extra_callbacks=[weights],
    )
    history = read_history(output_dir)
    best = min(range(3), key=lambda e: float(history[e]["val_perplexity"]))
    assert best > 0, "the small corpus improves every epoch"
    saved = keras.models.load_model(os.path.join(output_dir, "best.keras"))
    for got, averaged in zip(
        saved.get_weights(), weights.validated[best], strict=True
    ):
        np.testing.assert_allclose(got, averaged, atol=1e-6)
    assert any(
        not np.allclose(a, r)
        for a, r in zip(weights.validated[best], weights.raw[best], strict=True)
    )
    assert results["best_val_perplexity"] == pytest.approx(
        float(history[best]["val_perplexity"])
    )
    # The export serves the averaged weights too.
    path = export_run(output_dir, str(tmp_path / "saved"), name="averaged")
    serve = tf.saved_model.load(path).signatures["serving_default"]
    vocab_size = saved.output_shape[-1]
    twin = build_language_model(vocab_size, 16, 16)  # stateless, averaged
    twin.set_weights(weights.validated[best])
    ids = np.array([[1, 5, 9, 2, 7]], np.int32)
    expected = keras.ops.log_softmax(twin(ids), axis=-1)
    np.testing.assert_allclose(
        serve(token_ids=tf.constant(ids))["log_probs"], expected, atol=1e-5
    )


def test_the_linear_schedule_decays_over_the_budget(small_corpus_dir, tmp_path):
    output_dir = str(tmp_path / "run")
    config = small_config(
        small_corpus_dir,
        epochs=3,
        lr_schedule="linear",
        time_budget_minutes=10.0,
    )
    run(config, output_dir, verbose=0)
    rates = [float(row["lr"]) for row in read_history(output_dir)]
    assert len(rates) == 3
    assert rates[0] == pytest.approx(config.learning_rate, rel=1e-3)
    # Epochs of seconds in a 10-minute budget: still near the full rate,
    # falling.
    assert rates[0] > rates[1] > rates[2] > 0.9 * config.learning_rate
