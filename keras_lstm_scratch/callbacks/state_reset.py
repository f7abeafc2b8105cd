"""Zeroing the carried states of stateful RNN layers at the right moments."""

import keras

from keras_lstm_scratch.language_model import reset_rnn_states


class ResetStatesCallback(keras.callbacks.Callback):
    """Zeroes stateful RNN states at each epoch, evaluation and prediction.

    Keras carries a stateful RNN's states from the last training batch into
    the next epoch and into validation. For truncated backpropagation
    through time the states must start from zero at the start of every
    epoch, and validation, test and prediction passes must not see the
    training streams' states. This callback resets them at
    `on_epoch_begin`, `on_test_begin`, `on_test_end` and `on_predict_begin`.

    Call arguments:
        Used as a Keras callback: `model.fit(..., callbacks=[...])`,
        `model.evaluate(..., callbacks=[...])`.

    Returns:
        Nothing; it changes the model's state variables.

    Example:

    >>> model.fit(train, validation_data=valid, shuffle=False,
    ...           callbacks=[ResetStatesCallback()])
    """

    def on_epoch_begin(self, epoch, logs=None):
        reset_rnn_states(self.model)

    def on_test_begin(self, logs=None):
        reset_rnn_states(self.model)

    def on_test_end(self, logs=None):
        reset_rnn_states(self.model)

    def on_predict_begin(self, logs=None):
        reset_rnn_states(self.model)
