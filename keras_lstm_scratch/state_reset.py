"""Resetting the carried states of stateful RNN layers at the right moments."""

import keras


def reset_rnn_states(model):
    """Sets the carried `h`, `c` states of every stateful RNN layer to zero.

    Args:
        model: A `keras.Model` (or layer); nested models are searched too.

    Returns:
        The number of stateful RNN layers that were reset.
    """
    count = 0
    for layer in _walk_layers(model):
        if isinstance(layer, keras.layers.RNN) and layer.stateful:
            layer.reset_state()
            count += 1
    return count


def _walk_layers(layer):
    yield layer
    for sublayer in getattr(layer, "layers", []):
        if sublayer is not layer:
            yield from _walk_layers(sublayer)


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
