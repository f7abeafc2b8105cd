import glob

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.inspection import GateHistograms, trace_gates

VOCAB, UNITS = 11, 4


def hand_set_model(input_bias, forget_bias, candidate_bias, output_bias):
    """One LSTM layer whose gates are set by their biases alone."""
    model = build_language_model(VOCAB, UNITS, UNITS)
    cell = model.get_layer("lstm_1").cell
    cell.kernel.assign(np.zeros(cell.kernel.shape))
    cell.recurrent_kernel.assign(np.zeros(cell.recurrent_kernel.shape))
    cell.bias.assign(
        np.repeat(
            [input_bias, forget_bias, candidate_bias, output_bias], UNITS
        ).astype("float32")
    )
    return model


def ids(batch=3, time=6, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, time))


def test_forget_bias_of_ten_keeps_the_forget_gate_open():
    (trace,) = trace_gates(hand_set_model(-10.0, 10.0, 0.0, 0.0), ids())
    assert trace["forget"].min() > 0.99
    assert trace["input"].max() < 0.01
    assert trace["forget"].shape == (3, 6, UNITS)
    # Nothing written, nothing forgotten: the cell stays at its zero start.
    assert np.abs(trace["cell"]).max() < 1e-3


def test_an_open_input_gate_adds_the_candidate_every_step():
    # i = 1, g = 1, f = 0: c = 1 after every step; h = o * tanh(1).
    (trace,) = trace_gates(hand_set_model(10.0, -10.0, 10.0, 0.0), ids())
    np.testing.assert_allclose(trace["cell"], 1.0, atol=1e-3)
    np.testing.assert_allclose(trace["output"], 0.5, atol=1e-6)
    np.testing.assert_allclose(trace["hidden"], 0.5 * np.tanh(1.0), atol=1e-3)


def test_traces_are_the_model_layers_own_outputs():
    model = build_language_model(VOCAB, 5, 6, num_layers=2)
    token_ids = ids(batch=2, time=7, seed=1)
    traces = trace_gates(model, token_ids)
    assert len(traces) == 2
    for layer_name, trace in zip(("lstm_1", "lstm_2"), traces, strict=True):
        probe = keras.Model(model.input, model.get_layer(layer_name).output)
        np.testing.assert_allclose(
            trace["hidden"], probe(token_ids.astype("int32")), atol=1e-5
        )
        for gate in ("input", "forget", "output"):
            assert 0.0 <= trace[gate].min() and trace[gate].max() <= 1.0


def test_models_without_lstm_layers_are_rejected():
    model = build_language_model(VOCAB, 4, 4, rnn_cell="simple_rnn")
    with pytest.raises(ValueError, match="SimpleRNNCell"):
        trace_gates(model, ids())


def test_callback_logs_a_histogram_per_layer_and_gate(tmp_path):
    model = build_language_model(VOCAB, 4, 4, num_layers=2)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    token_ids = ids(batch=4, time=5).astype("int32")
    log_dir = str(tmp_path / "gates")
    model.fit(
        token_ids,
        token_ids,
        epochs=2,
        verbose=0,
        callbacks=[GateHistograms(token_ids, log_dir)],
    )
    tags, steps = set(), set()
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
                steps.add(event.step)
    assert tags == {
        f"gates/lstm_{layer}/{gate}"
        for layer in (1, 2)
        for gate in ("input", "forget", "candidate", "output")
    }
    assert steps == {1, 2}
