import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import (
    Perplexity,
    PerplexityCallback,
    ResetStatesCallback,
    TokenNLLEvaluator,
    build_language_model,
    evaluate_token_nll,
)

VOCAB = 7


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def token_nll(targets, logits):
    log_probs = log_softmax(logits.astype("float64"))
    return -np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


def random_batch(batch, time, seed):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, VOCAB, (batch, time)).astype("int32")
    logits = rng.normal(scale=2.0, size=(batch, time, VOCAB)).astype("float32")
    return targets, logits


def test_uniform_logits_give_the_vocabulary_size():
    metric = Perplexity()
    metric.update_state(np.zeros((2, 3), "int32"), np.zeros((2, 3, VOCAB)))
    assert float(metric.result()) == pytest.approx(VOCAB, rel=1e-6)


def test_is_token_weighted_across_an_uneven_last_batch():
    full = random_batch(4, 5, seed=0)
    last = random_batch(1, 5, seed=1)  # uneven last batch
    metric = Perplexity()
    for targets, logits in (full, last):
        metric.update_state(targets, logits)

    total = token_nll(*full).sum() + token_nll(*last).sum()
    expected = math.exp(total / (4 * 5 + 1 * 5))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    # The mean of per-batch perplexities is a different (wrong) number.
    per_batch_mean = np.mean(
        [np.exp(token_nll(*full).mean()), np.exp(token_nll(*last).mean())]
    )
    assert abs(per_batch_mean - expected) > 1e-3 * expected


def test_sample_weights_mask_tokens_out():
    targets, logits = random_batch(3, 4, seed=2)
    mask = np.random.default_rng(3).random((3, 4)) > 0.4
    metric = Perplexity()
    metric.update_state(targets, logits, sample_weight=mask)
    expected = math.exp(token_nll(targets, logits)[mask].mean())
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_per_sequence_sample_weights_broadcast_over_time():
    targets, logits = random_batch(3, 4, seed=4)
    metric = Perplexity()
    metric.update_state(targets, logits, sample_weight=np.array([1, 0, 1]))
    expected = math.exp(token_nll(targets, logits)[[0, 2]].mean())
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_mask_token_id_skips_padding_targets():
    targets, logits = random_batch(2, 6, seed=5)
    targets[:, -2:] = 0
    metric = Perplexity(mask_token_id=0)
    metric.update_state(targets, logits)
    keep = targets != 0
    expected = math.exp(token_nll(targets, logits)[keep].mean())
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_probabilities_input_and_reset():
    targets, logits = random_batch(2, 3, seed=6)
    probabilities = np.exp(log_softmax(logits.astype("float64")))
    metric = Perplexity(from_logits=False)
    metric.update_state(targets, probabilities.astype("float32"))
    expected = math.exp(token_nll(targets, logits).mean())
    assert float(metric.result()) == pytest.approx(expected, rel=1e-4)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_config_round_trip():
    metric = Perplexity(mask_token_id=3, name="ppl")
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(revived, Perplexity)
    assert revived.get_config() == metric.get_config()


def test_compiled_metric_in_evaluate_is_token_weighted():
    model = build_language_model(VOCAB, 4, 4)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity()],
    )
    inputs, _ = random_batch(5, 6, seed=7)
    targets, _ = random_batch(5, 6, seed=8)
    # Batches of 2, 2 and 1 sequences: an uneven last batch.
    result = model.evaluate(
        inputs, targets, batch_size=2, verbose=0, return_dict=True
    )
    logits = model.predict(inputs, verbose=0)
    expected = math.exp(token_nll(targets, logits).mean())
    assert result["perplexity"] == pytest.approx(expected, rel=1e-5)


def test_float_ids_count_as_integer_ids():
    targets, logits = random_batch(2, 3, seed=9)
    metrics = Perplexity(), Perplexity()
    metrics[0].update_state(targets, logits)
    metrics[1].update_state(targets.astype("float32"), logits)
    assert float(metrics[1].result()) == float(metrics[0].result())


@pytest.mark.parametrize(
    "y_true, y_pred, error, message",
    [
        (
            np.zeros((2, 3), "int32"),
            np.zeros((2, 3)),
            ValueError,
            r"y_pred.shape=\(2, 3\)",
        ),
    ],
)
def test_bad_inputs_name_the_value(y_true, y_pred, error, message):
    with pytest.raises(error, match=message):
        Perplexity().update_state(y_true, y_pred)


# --- PerplexityCallback -----------------------------------------------------

STREAMS, WINDOW, WINDOWS = 3, 4, 5


def stream_windows(seed):
    """(x, y) windows of contiguous token streams, as for truncated BPTT."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, (STREAMS, WINDOW * WINDOWS + 1))
    tokens = tokens.astype("int32")
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    batches = [
        (
            inputs[:, k * WINDOW : (k + 1) * WINDOW],
            targets[:, k * WINDOW : (k + 1) * WINDOW],
        )
        for k in range(WINDOWS)
    ]
    return inputs, targets, batches


def dataset_of(batches):
    return tf.data.Dataset.from_tensor_slices(
        (np.stack([x for x, _ in batches]), np.stack([y for _, y in batches]))
    )


def stateful_model():
    model = build_language_model(
        VOCAB,
        5,
        5,
        num_layers=2,
        stateful=True,
        batch_size=STREAMS,
        seq_len=WINDOW,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity()],
    )
    return model


def test_callback_val_perplexity_equals_independent_token_weighted_nll(
    tmp_path,
):
    _, _, train_batches = stream_windows(seed=10)
    valid_inputs, valid_targets, valid_batches = stream_windows(seed=11)
    model = stateful_model()
    csv_path = tmp_path / "history.csv"
    callbacks = [
        ResetStatesCallback(),
        PerplexityCallback(dataset_of(valid_batches)),
        keras.callbacks.ModelCheckpoint(
            tmp_path / "best.keras",
            monitor="val_perplexity",
            save_best_only=True,
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_perplexity"),
        keras.callbacks.CSVLogger(csv_path),
    ]
    history = model.fit(
        dataset_of(train_batches),
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )

    # Independently: the same weights without state carrying, run over
    # each whole stream at once, is what truncated BPTT evaluation equals.
    whole_stream = build_language_model(VOCAB, 5, 5, num_layers=2)
    whole_stream.set_weights(model.get_weights())
    logits = whole_stream.predict(valid_inputs, verbose=0)
    expected = math.exp(token_nll(valid_targets, logits).mean())

    assert history.history["val_perplexity"][-1] == pytest.approx(
        expected, rel=1e-5
    )
    assert history.history["perplexity"][-1] > 1.0
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[-1]["val_perplexity"]) == pytest.approx(
        expected, rel=1e-5
    )
    assert (tmp_path / "best.keras").exists()


def test_an_evaluator_traces_once_and_scores_each_pass_afresh():
    valid_inputs, valid_targets, valid_batches = stream_windows(seed=12)
    model = stateful_model()
    evaluate = TokenNLLEvaluator(model)
    passes = [evaluate(dataset_of(valid_batches)) for _ in range(3)]

    whole_stream = build_language_model(VOCAB, 5, 5, num_layers=2)
    whole_stream.set_weights(model.get_weights())
    logits = whole_stream.predict(valid_inputs, verbose=0)
    expected = token_nll(valid_targets, logits).mean()
    for mean_nll, count in passes:
        # The metric starts from zero at every pass: no sums carried over.
        assert mean_nll == pytest.approx(expected, rel=1e-5)
        assert count == valid_targets.size
    assert evaluate._distributed_score.experimental_get_tracing_count() == 1
    assert evaluate_token_nll(model, dataset_of(valid_batches))[
        0
    ] == pytest.approx(expected, rel=1e-5)


def test_callback_derives_perplexity_from_losses_without_the_metric():
    model = build_language_model(VOCAB, 4, 4)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    inputs, _ = random_batch(4, 5, seed=12)
    targets, _ = random_batch(4, 5, seed=13)
    history = model.fit(
        inputs,
        targets,
        validation_data=(inputs, targets),
        verbose=0,
        callbacks=[PerplexityCallback()],
    )
    logs = history.history
    assert logs["perplexity"][0] == pytest.approx(math.exp(logs["loss"][0]))
    assert logs["val_perplexity"][0] == pytest.approx(
        math.exp(logs["val_loss"][0])
    )


def test_callback_rejects_empty_validation_data():
    model = build_language_model(VOCAB, 4, 4)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    inputs, _ = random_batch(2, 3, seed=14)
    targets, _ = random_batch(2, 3, seed=15)
    empty = tf.data.Dataset.from_tensor_slices((inputs, targets)).take(0)
    with pytest.raises(ValueError, match="no tokens"):
        model.fit(
            inputs,
            targets,
            verbose=0,
            callbacks=[PerplexityCallback(empty.batch(2))],
        )
