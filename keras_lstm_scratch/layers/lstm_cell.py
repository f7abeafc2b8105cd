"""One step of a long short-term memory cell, written out gate by gate."""

import keras
from keras import ops

from keras_lstm_scratch.argument_checks import (
    check_float_inputs,
    check_positive_int,
)


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class LSTMCell(keras.layers.Layer):
    """Long short-term memory cell with explicit gates, for `keras.layers.RNN`.

    One time step of the LSTM of "Deep Learning from Scratch 2", chapter 6
    (Hochreiter & Schmidhuber, 1997, with the forget gate of Gers et al.,
    2000). With `x` the input and `h_prev`, `c_prev` the previous hidden and
    cell states:

    ```
    i = sigmoid(x @ W_i + h_prev @ U_i + b_i)   # input gate
    f = sigmoid(x @ W_f + h_prev @ U_f + b_f)   # forget gate
    g = tanh(x @ W_g + h_prev @ U_g + b_g)      # candidate information
    o = sigmoid(x @ W_o + h_prev @ U_o + b_o)   # output gate
    c = f * c_prev + i * g
    h = o * tanh(c)
    ```

    The four gates share one fused kernel. Its columns are four blocks of
    `units` each in the order **i, f, g, o** (input, forget, candidate,
    output), the order `keras.layers.LSTMCell` uses, so weights copy
    one-to-one between the two. (The book packs `f, g, i, o`.)

    The cell has no dropout: as the book argues, dropout belongs between
    layers (the depth direction), not on the recurrent connection.

    References:
        - [Hochreiter & Schmidhuber, 1997](
          https://www.bioinf.jku.at/publications/older/2604.pdf)
        - [Gers et al., 2000](https://doi.org/10.1162/089976600300015015)
        - [Jozefowicz et al., 2015](
          https://proceedings.mlr.press/v37/jozefowicz15.html), on a forget
          bias of 1.

    Args:
        units: Positive integer, size of the hidden and cell states.
        kernel_initializer: Initializer for the input kernel
            `(input_dim, 4 * units)`.
        recurrent_initializer: Initializer for the recurrent kernel
            `(units, 4 * units)`.
        bias_initializer: Initializer for the bias `(4 * units,)`.
        unit_forget_bias: If `True`, add 1 to the forget-gate block of the
            bias at initialization and use zeros for the other blocks, as
            `keras.layers.LSTMCell` does.
        kernel_regularizer: Regularizer for the input kernel.
        recurrent_regularizer: Regularizer for the recurrent kernel.
        bias_regularizer: Regularizer for the bias.
        kernel_constraint: Constraint for the input kernel.
        recurrent_constraint: Constraint for the recurrent kernel.
        bias_constraint: Constraint for the bias.
        **kwargs: Base layer arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Float tensor `(batch, input_dim)`, the input at one step.
        states: List `[h_prev, c_prev]`, each `(batch, units)`.
        training: Unused (the cell has no dropout); kept for the `RNN`
            contract.

    Returns:
        Tuple `(h, [h, c])`: the output `(batch, units)` and the new states.

    Example:

    >>> layer = keras.layers.RNN(LSTMCell(8), return_sequences=True)
    >>> layer(np.zeros((2, 5, 3), dtype="float32")).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(
            recurrent_regularizer
        )
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                "LSTMCell takes one time step of shape (batch, features), so "
                "keras.layers.RNN(LSTMCell(...)) takes (batch, time, "
                f"features); received a step of shape {tuple(input_shape)}. "
                "Embed token ids first, or add a feature axis."
            )
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "LSTMCell needs a known last input dimension; received "
                f"input_shape={input_shape}. Give the input a static feature "
                "size, e.g. keras.Input(shape=(time, features))."
            )
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = self.add_weight(
            shape=(4 * self.units,),
            initializer=self._initialize_bias,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
            name="bias",
        )

    def _initialize_bias(self, shape, dtype=None):
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype)
        # Blocks i, f, g, o: only the forget gate starts at 1, so that the
        # cell remembers by default (Jozefowicz et al., 2015).
        input_bias = self.bias_initializer((self.units,), dtype=dtype)
        forget_bias = ops.ones((self.units,), dtype=dtype)
        rest_bias = self.bias_initializer((2 * self.units,), dtype=dtype)
        return ops.concatenate([input_bias, forget_bias, rest_bias])

    def call(self, inputs, states, training=False):
        h, c, _ = self.step(inputs, states)
        return h, [h, c]

    def step(self, inputs, states):
        """One step that also returns the gate values (what `call` runs).

        Args:
            inputs: `(batch, input_dim)`.
            states: `[h_prev, c_prev]`, each `(batch, units)`.

        Returns:
            `(h, c, (i, f, g, o))`, each `(batch, units)`: the new states
            and the input gate, forget gate, candidate and output gate.
        """
        check_float_inputs("LSTMCell", inputs)
        h_prev, c_prev = states  # (batch, units) each
        # All four gates in one fused product: (batch, 4 * units).
        z = (
            ops.matmul(inputs, self.kernel)
            + ops.matmul(h_prev, self.recurrent_kernel)
            + self.bias
        )
        return self.apply_gates(z, c_prev)

    def apply_gates(self, z, c_prev):
        """The gate equations, from the fused pre-activations `z`.

        Args:
            z: `x @ W + h_prev @ U + b`, `(batch, 4 * units)`, blocks
                i, f, g, o.
            c_prev: Previous cell state `(batch, units)`.

        Returns:
            `(h, c, (i, f, g, o))`, each `(batch, units)`.
        """
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = ops.sigmoid(z_i)  # input gate, (batch, units)
        f = ops.sigmoid(z_f)  # forget gate
        g = ops.tanh(z_g)  # candidate information
        o = ops.sigmoid(z_o)  # output gate
        c = f * c_prev + i * g  # (batch, units)
        h = o * ops.tanh(c)  # (batch, units)
        return h, c, (i, f, g, o)

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "recurrent_regularizer": keras.regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint
            ),
            "recurrent_constraint": keras.constraints.serialize(
                self.recurrent_constraint
            ),
            "bias_constraint": keras.constraints.serialize(
                self.bias_constraint
            ),
        }
        return {**super().get_config(), **config}
