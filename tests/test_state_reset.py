import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch import (
    ResetStatesCallback,
    build_language_model,
    reset_rnn_states,
)

VOCAB, STREAMS, WINDOW = 9, 2, 3


class StateProbe(keras.callbacks.Callback):
    """Records the largest |state| seen at the start of each phase."""

    def __init__(self):
        super().__init__()
        self.seen = {"epoch_begin": [], "test_begin": [], "predict_begin": []}

    def _record(self, key):
        largest = max(
            float(np.abs(keras.ops.convert_to_numpy(state)).max())
            for layer in self.model.layers
            if isinstance(layer, keras.layers.RNN)
            for state in layer.states
        )
        self.seen[key].append(largest)

    def on_epoch_begin(self, epoch, logs=None):
        self._record("epoch_begin")

    def on_test_begin(self, logs=None):
        self._record("test_begin")

    def on_predict_begin(self, logs=None):
        self._record("predict_begin")


def windows():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (4, STREAMS, WINDOW)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((ids, ids))


def train_with(callbacks):
    model = build_language_model(
        VOCAB, 4, 4, stateful=True, batch_size=STREAMS, seq_len=WINDOW
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    probe = StateProbe()
    model.fit(
        windows(),
        validation_data=windows(),
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks, probe],
    )
    model.predict(
        windows().map(lambda x, y: x), verbose=0, callbacks=[*callbacks, probe]
    )
    return model, probe.seen


def test_states_start_from_zero_at_each_epoch_validation_and_predict():
    _, seen = train_with([ResetStatesCallback()])
    assert seen["epoch_begin"] == [0.0, 0.0]
    assert seen["test_begin"] == [0.0, 0.0]
    assert seen["predict_begin"] == [0.0]


def test_without_the_callback_keras_carries_training_states_over():
    _, seen = train_with([])
    assert seen["epoch_begin"][1] > 0.0
    assert all(value > 0.0 for value in seen["test_begin"])
    assert seen["predict_begin"][0] > 0.0


def test_repeated_evaluation_gives_the_same_loss():
    model, _ = train_with([ResetStatesCallback()])
    losses = [
        model.evaluate(windows(), verbose=0, callbacks=[ResetStatesCallback()])
        for _ in range(2)
    ]
    assert losses[0] == losses[1]
    drifting = [model.evaluate(windows(), verbose=0) for _ in range(2)]
    assert drifting[0] != drifting[1]


def test_reset_rnn_states_counts_stateful_layers_only():
    stateful = build_language_model(
        VOCAB, 4, 4, num_layers=3, stateful=True, batch_size=2
    )
    assert reset_rnn_states(stateful) == 3
    assert reset_rnn_states(build_language_model(VOCAB, 4, 4)) == 0
