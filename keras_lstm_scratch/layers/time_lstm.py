"""The LSTM over a whole sequence, with the book's hand-written backward pass.

`keras.layers.RNN(LSTMCell(...))` runs Keras's generic loop: one small
matrix product per step for the input, one for the recurrence, and, in the
backward pass, weight gradients accumulated step by step. `TimeLSTM` (the
book's name for the loop over time) is that same `RNN` of the same
`LSTMCell`, computing the same numbers with larger products:

- forward: `x @ W + b` for all steps at once, one `(batch*time, input_dim)`
  by `(input_dim, 4*units)` product; only `h_prev @ U` stays in the loop,
  and the gates are the cell's own `apply_gates`;
- backward (`tf.custom_gradient`, as the book's `TimeLSTM.backward`): the
  loop only carries `dh` and `dc` back through time and stores each step's
  pre-activation gradient `dz`; then `dU = h_prev^T dz` is one product over
  all steps, and `dW = x^T dz`, `db = sum(dz)` follow from the hoisted
  projection by ordinary autodiff.

On a CPU, outside XLA and where that op can be built, the TensorFlow path
can run the whole loop, forward and backward, as oneDNN's fused LSTM
primitive instead (`onednn_lstm.py`: the kernel of PyTorch's CPU
`nn.LSTM`; `use_onednn`: by default in bfloat16 outside training).

docs/speed.md measures what this gains over the generic loop and over
`keras.layers.LSTM`. Calls with a mask or with `go_backwards=True` take
Keras's generic loop, unchanged. On the other Keras backends (JAX,
PyTorch) the loop is `ops_loop`: the same hoisted projection and gates in
`keras.ops`, scanned over time, differentiated by the backend.

`weight_dropout` is AWD-LSTM's weight drop (DropConnect on the recurrent
weights, Merity et al., 2017): in training, each call multiplies `U` by
one random mask and runs the loop, forward and backward, with the masked
`U`; every step of the call shares that mask, and the next call (the next
batch window) draws a new one.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_lstm_scratch.argument_checks import check_float_inputs, check_rate
from keras_lstm_scratch.layers import onednn_lstm
from keras_lstm_scratch.layers.lstm_cell import LSTMCell

CELL_ARGUMENTS = (
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
)


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class TimeLSTM(keras.layers.RNN):
    """`keras.layers.RNN(LSTMCell(units))` with a fast loop over time.

    Same weights (`self.cell`, gate order i, f, g, o), same results, same
    options as `keras.layers.RNN` (`return_sequences`, `return_state`,
    `stateful`, `go_backwards`, masking); unmasked forward calls use the
    hoisted projection and the hand-written backward pass.

    Args:
        units: Positive integer, size of the hidden and cell states.
        return_sequences: Return every step's `h` or only the last.
        return_state: Also return the final `h` and `c`.
        stateful: Carry the final states into the next batch (needs a
            fixed batch size); `reset_state()` zeroes them.
        go_backwards: Read the sequence backwards (generic loop).
        weight_dropout: Float in [0, 1): in training, the share of the
            recurrent kernel's entries zeroed for a call (the rest scaled
            by `1 / (1 - weight_dropout)`), one mask for all its steps.
            Needs the fast path: no mask, no `go_backwards`.
        seed: Optional integer seed of the weight-drop masks.
        use_onednn: Whether unmasked calls on the TensorFlow backend run
            as oneDNN's fused LSTM (CPU, float32 or bfloat16, outside
            XLA, where the op can be built). `"auto"` (default): where it
            was measured faster than the own loop, bfloat16 calls outside
            training (scoring, validation); `True`: every call, training
            too, or an error saying why not; `False`: never.
        **kwargs: `LSTMCell` arguments (initializers, regularizers,
            constraints, `unit_forget_bias`), other `keras.layers.RNN`
            arguments and base layer arguments.

    Call arguments:
        sequences: Float tensor `(batch, time, features)`.
        initial_state: Optional `[h0, c0]`, each `(batch, units)`.
        mask: Optional boolean `(batch, time)`.
        training: Passed to the cell; weight drop acts only in training.

    Returns:
        `(batch, time, units)` (or `(batch, units)`), followed by `h` and
        `c` when `return_state=True`.

    Example:

    >>> layer = TimeLSTM(8, return_sequences=True)
    >>> layer(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        weight_dropout=0.0,
        seed=None,
        use_onednn="auto",
        **kwargs,
    ):
        if use_onednn not in ("auto", True, False):
            raise ValueError(
                f"TimeLSTM: use_onednn={use_onednn!r}; expected 'auto', "
                "True or False."
            )
        cell_kwargs = {
            key: kwargs.pop(key) for key in CELL_ARGUMENTS if key in kwargs
        }
        cell = LSTMCell(
            units, name="lstm_cell", dtype=kwargs.get("dtype"), **cell_kwargs
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            **kwargs,
        )
        self.units = cell.units
        self.weight_dropout = check_rate("weight_dropout", weight_dropout)
        self.seed = seed
        self.use_onednn = use_onednn
        if self.weight_dropout > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def _create_state_variables(self, batch_size):
        # Stateful h, c are one per replica under tf.distribute: each
        # replica owns its slice of the token streams (see distribution.py).
        # On-read synchronised variables keep a copy per replica that its
        # own steps read and assign; a reset (a cross-replica assign of
        # zeros) reaches every copy. With one device they are ordinary.
        if keras.backend.backend() != "tensorflow":
            return super()._create_state_variables(batch_size)

        def per_replica(next_creator, **kwargs):
            kwargs["synchronization"] = tf.VariableSynchronization.ON_READ
            kwargs["aggregation"] = tf.VariableAggregation.MEAN
            return next_creator(**kwargs)

        with tf.variable_creator_scope(per_replica):
            super()._create_state_variables(batch_size)

    def recurrent_kernel_mask(self, dtype="float32"):
        """A weight-drop mask for `recurrent_kernel`, `(units, 4*units)`.

        Each entry is 0 with probability `weight_dropout`, else
        `1 / (1 - weight_dropout)`, so the masked kernel keeps the expected
        value of `U`. A fresh draw every call.
        """
        ones = keras.ops.ones((self.units, 4 * self.units), dtype=dtype)
        return keras.random.dropout(
            ones, self.weight_dropout, seed=self.seed_generator
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        check_float_inputs("TimeLSTM", sequences)
        drop_weights = bool(training) and self.weight_dropout > 0
        if mask is not None or self.go_backwards or self.unroll:
            if drop_weights:
                raise ValueError(
                    f"TimeLSTM {self.name!r}: weight_dropout="
                    f"{self.weight_dropout} runs only in TimeLSTM's own "
                    "loop, which takes no mask, no go_backwards and no "
                    "unroll. Drop the mask (or these options), or set "
                    "weight_dropout=0."
                )
            return super().inner_loop(sequences, initial_state, mask, training)
        if keras.backend.backend() != "tensorflow":
            return self.ops_loop(sequences, initial_state, drop_weights)
        # Snapshots: for a stateful layer these are the state variables,
        # which RNN.call overwrites before the backward pass reads them.
        h0, c0 = (tf.identity(state) for state in initial_state)
        recurrent_kernel = tf.convert_to_tensor(self.cell.recurrent_kernel)
        if drop_weights:  # one mask for every step of this call
            recurrent_kernel *= self.recurrent_kernel_mask(
                recurrent_kernel.dtype
            )
        # Time-major before the product: the inputs are 4x narrower than
        # the projection, so transposing them moves 4x less memory.
        sequences = tf.transpose(sequences, [1, 0, 2])  # (time, batch, ...)
        if self.runs_onednn(sequences.dtype, bool(training)):
            hs, h, c = onednn_lstm.onednn_lstm(
                sequences,
                h0,
                c0,
                self.cell.kernel,
                recurrent_kernel,
                self.cell.bias,
                training=bool(training),
            )
        else:
            hs, h, c = self.recurrence(
                self.input_projection(sequences), h0, c0, recurrent_kernel
            )
        return h, tf.transpose(hs, [1, 0, 2]), [h, c]

    def input_projection(self, sequences):
        """`x @ W + b` for every step in one product, `(time, batch, 4u)`."""
        features = tf.shape(sequences)[2]
        batch = tf.shape(sequences)[1]
        projection = tf.matmul(
            tf.reshape(sequences, [-1, features]), self.cell.kernel
        )
        return tf.reshape(
            projection + self.cell.bias, tf.stack([-1, batch, 4 * self.units])
        )

    def runs_onednn(self, dtype, training=False):
        """Whether this call runs oneDNN's fused LSTM (see `use_onednn`).

        `"auto"` takes it where it was measured faster than the own loop
        (docs/speed.md): bfloat16 calls outside training.
        """
        if self.use_onednn is False:
            return False
        if self.use_onednn == "auto" and (training or dtype != tf.bfloat16):
            return False
        reason = None
        if dtype not in (tf.float32, tf.bfloat16):
            reason = f"its dtype is {dtype.name}, not float32 or bfloat16"
        elif tf.__internal__.get_enclosing_xla_context() is not None:
            reason = "XLA compiles this call (jit_compile)"
        elif tf.config.list_logical_devices("GPU"):
            reason = "a GPU is present"
        elif onednn_lstm.fused_lstm_library() is None:
            reason = onednn_lstm.unavailable_reason()
        if reason and self.use_onednn is True:
            raise ValueError(
                f"TimeLSTM {self.name!r}: use_onednn=True, but the fused "
                f"oneDNN LSTM cannot run: {reason}. Use use_onednn='auto'."
            )
        return reason is None

    def ops_loop(self, sequences, initial_state, drop_weights):
        """The loop of the backends other than TensorFlow, in `keras.ops`.

        The same hoisted `x @ W + b` and the same gates, scanned over time
        with `keras.ops.scan` (`lax.scan` on JAX); the backward pass is the
        backend's automatic differentiation. The twin of the TensorFlow
        path, tested against it.
        """
        # Copies: a stateful layer's states are variables that RNN.call
        # assigns in place, which PyTorch's autograd must not see.
        h0, c0 = (ops.copy(state) for state in initial_state)
        projection = ops.matmul(sequences, self.cell.kernel) + self.cell.bias
        recurrent_kernel = ops.convert_to_tensor(self.cell.recurrent_kernel)
        if drop_weights:  # one mask for every step of this call
            recurrent_kernel = recurrent_kernel * self.recurrent_kernel_mask(
                recurrent_kernel.dtype
            )
        apply_gates = self.cell.apply_gates

        def step(states, step_projection):
            h, c = states
            z = step_projection + ops.matmul(h, recurrent_kernel)
            h, c, _ = apply_gates(z, c)
            # Outputs shaped as the carry, as TensorFlow's ops.scan wants.
            return (h, c), (h, c)

        (h, c), (hs, _) = ops.scan(
            step, (h0, c0), ops.transpose(projection, [1, 0, 2])
        )
        return h, ops.transpose(hs, [1, 0, 2]), [h, c]

    def recurrence(self, input_projection, h0, c0, recurrent_kernel):
        """Runs the cell over time from precomputed `x @ W + b`.

        Args:
            input_projection: Time-major `(time, batch, 4*units)`.
            h0, c0: Initial states `(batch, units)`.
            recurrent_kernel: `U`, `(units, 4*units)`.

        Returns:
            `(hs, h, c)`: every step's `h` `(time, batch, units)` and the
            final states.
        """
        apply_gates = self.cell.apply_gates

        @tf.custom_gradient
        def run(input_projection, h0, c0, recurrent_kernel):
            hs, cs, gates, h, c = forward_over_time(
                input_projection, h0, c0, recurrent_kernel, apply_gates
            )

            def backward(d_hs, d_h, d_c):
                d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
                d_h = tf.zeros_like(h0) if d_h is None else d_h
                d_c = tf.zeros_like(c0) if d_c is None else d_c
                return backward_over_time(
                    (d_hs, d_h, d_c),
                    (h0, c0),
                    (hs, cs, gates),
                    recurrent_kernel,
                )

            return (hs, h, c), backward

        hs, h, c = run(input_projection, h0, c0, recurrent_kernel)
        # The loop's TensorArray forgets a static sequence length; keep it,
        # so that later layers see (batch, time, units) with time known.
        hs.set_shape(input_projection.shape[:2].concatenate([self.units]))
        return hs, h, c

    def get_config(self):
        config = super().get_config()
        cell_config = config.pop("cell")["config"]
        config.update({key: cell_config[key] for key in CELL_ARGUMENTS})
        config["units"] = self.units
        config["weight_dropout"] = self.weight_dropout
        config["seed"] = self.seed
        config["use_onednn"] = self.use_onednn
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def forward_over_time(input_projection, h0, c0, recurrent_kernel, apply_gates):
    """The forward loop, keeping what the backward pass reads.

    Returns:
        `(hs, cs, gates, h, c)`: every step's `h`, `c` (each `(time, batch,
        units)`), the gates `(i, f, g, o)`, each `(time, batch, units)`
        (four arrays: no concatenation per step), and the final states.
    """
    steps = tf.shape(input_projection)[0]

    def step(t, h, c, hs, cs, gates):
        z = input_projection[t] + tf.matmul(h, recurrent_kernel)
        h, c, activations = apply_gates(z, c)
        gates = tuple(
            array.write(t, gate)
            for array, gate in zip(gates, activations, strict=True)
        )
        return t + 1, h, c, hs.write(t, h), cs.write(t, c), gates

    def array():
        return tf.TensorArray(input_projection.dtype, size=steps)

    def four_arrays():  # i, f, g, o
        return array(), array(), array(), array()

    _, h, c, hs, cs, gates = tf.while_loop(
        lambda t, *_: t < steps,
        step,
        (tf.constant(0), h0, c0, array(), array(), four_arrays()),
    )
    gates = tuple(array.stack() for array in gates)
    return hs.stack(), cs.stack(), gates, h, c


def backward_over_time(upstream, initial_states, forward, recurrent_kernel):
    """Backpropagation through time, as the book's `TimeLSTM.backward`.

    Args:
        upstream: `(d_hs, d_h, d_c)`, the gradients of every step's `h` and
            of the final states.
        initial_states: `(h0, c0)`.
        forward: `(hs, cs, gates)` from `forward_over_time` (`gates`:
            `(i, f, g, o)`).
        recurrent_kernel: `U`, `(units, 4*units)`.

    Returns:
        The gradients of the input projection `(time, batch, 4*units)`, of
        `h0`, `c0` and of `U`.
    """
    d_hs, d_h, d_c = upstream
    h0, c0 = initial_states
    hs, cs, gates = forward
    steps = tf.shape(hs)[0]
    c_prev = tf.concat([c0[None], cs[:-1]], axis=0)
    transposed_kernel = tf.transpose(recurrent_kernel)

    def step(t, dh_next, dc_next, dzs):
        dh = d_hs[t] + dh_next  # (batch, units)
        step_gates = tuple(gate[t] for gate in gates)
        dz, dc_prev = gate_gradients(step_gates, cs[t], c_prev[t], dh, dc_next)
        return (
            t - 1,
            tf.matmul(dz, transposed_kernel),
            dc_prev,
            dzs.write(t, dz),
        )

    _, dh0, dc0, dzs = tf.while_loop(
        lambda t, *_: t >= 0,
        step,
        (steps - 1, d_h, d_c, tf.TensorArray(hs.dtype, size=steps)),
    )
    dz = dzs.stack()  # (time, batch, 4 * units)
    h_prev = tf.concat([h0[None], hs[:-1]], axis=0)
    units = tf.shape(h0)[1]
    # All steps' recurrent-weight gradients in one product.
    d_kernel = tf.matmul(
        tf.reshape(h_prev, [-1, units]),
        tf.reshape(dz, [-1, 4 * units]),
        transpose_a=True,
    )
    return dz, dh0, dc0, d_kernel


def gate_gradients(gates, c, c_prev, dh, dc_next):
    """One step back through the gates: `d z` and the gradient of `c_prev`.

    Args:
        gates: The step's `(i, f, g, o)`, each `(batch, units)`.
        c, c_prev: The step's cell state and the one before it.
        dh: Gradient of the step's `h` (from above and from the next step).
        dc_next: Gradient of `c` from the next step.
    """
    i, f, g, o = gates
    tanh_c = tf.tanh(c)
    dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
    dz = tf.concat(
        [
            dc * g * i * (1.0 - i),  # input gate
            dc * c_prev * f * (1.0 - f),  # forget gate
            dc * i * (1.0 - g * g),  # candidate
            dh * tanh_c * o * (1.0 - o),  # output gate
        ],
        axis=-1,
    )  # (batch, 4 * units)
    return dz, dc * f
