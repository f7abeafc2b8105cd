"""AR and TAR: penalties on the last LSTM layer's activations (AWD-LSTM)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class ActivationRegularization(keras.layers.Layer):
    """Adds activation (AR) and temporal activation (TAR) regularization.

    In training it adds to the model's loss, as AWD-LSTM does,

        ar * mean(dropped ** 2)
        + tar * mean((hidden[:, t] - hidden[:, t - 1]) ** 2)

    where `hidden` is the last LSTM layer's output and `dropped` the same
    after dropout; each mean runs over every element (batch, time and
    units). AR keeps activations small, TAR keeps them from jumping between
    steps. Nothing is added at inference, and the layer passes `dropped`
    through unchanged. Keras's `activity_regularizer` sums over units and
    averages over the batch, and cannot look at two time steps: hence this
    layer.

    References:
        - [Merity, Keskar, Socher, 2017](https://arxiv.org/abs/1708.02182),
          section 4.6

    Args:
        ar: Non-negative float, the AR coefficient (the paper's alpha).
        tar: Non-negative float, the TAR coefficient (the paper's beta).
        **kwargs: Base layer arguments, such as `name`.

    Call arguments:
        inputs: `[hidden, dropped]`, each `(batch, time, units)`.
        training: Add the losses only when `True`.

    Returns:
        `dropped`, unchanged.

    Example:

    >>> hidden = TimeLSTM(650, return_sequences=True)(vectors)
    >>> dropped = keras.layers.Dropout(0.4)(hidden)
    >>> dropped = ActivationRegularization(2.0, 1.0)([hidden, dropped])
    """

    def __init__(self, ar=0.0, tar=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("ar", ar), ("tar", tar)):
            if not value >= 0:
                raise ValueError(
                    f"`{name}` must be a non-negative coefficient; received "
                    f"{name}={value}."
                )
        self.ar = float(ar)
        self.tar = float(tar)
        self.built = True

    def call(self, inputs, training=False):
        hidden, dropped = inputs
        if training:
            if self.ar:
                dropped_32 = ops.cast(dropped, "float32")
                self.add_loss(self.ar * ops.mean(ops.square(dropped_32)))
            if self.tar:
                hidden_32 = ops.cast(hidden, "float32")
                steps = hidden_32[:, 1:] - hidden_32[:, :-1]
                self.add_loss(self.tar * ops.mean(ops.square(steps)))
        return dropped

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "ar": self.ar, "tar": self.tar}
