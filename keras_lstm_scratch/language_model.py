"""The stacked LSTM language model: token ids in, next-token logits out.

`build_language_model` puts the parts together; `model_parts` takes a built
model apart again into its embedding, RNN layers and output projection.
"""

import typing

import keras

from keras_lstm_scratch.argument_checks import check_positive_int, check_rate
from keras_lstm_scratch.layers.activation_regularization import (
    ActivationRegularization,
)
from keras_lstm_scratch.layers.output_projection import OutputProjection
from keras_lstm_scratch.layers.tied_embedding import TiedEmbedding
from keras_lstm_scratch.layers.time_lstm import TimeLSTM
from keras_lstm_scratch.layers.word_dropout import WordDropout

RNN_CELLS = ("lstm", "keras_lstm", "simple_rnn")


def build_language_model(
    vocab_size,
    embedding_dim=100,
    hidden_units=100,
    num_layers=1,
    dropout=0.0,
    tie_weights=False,
    stateful=False,
    batch_size=None,
    seq_len=None,
    embeddings_initializer="uniform",
    kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal",
    unit_forget_bias=True,
    rnn_cell="lstm",
    locked_dropout=False,
    input_dropout=None,
    output_dropout=None,
    word_dropout=0.0,
    weight_dropout=0.0,
    activation_regularization=0.0,
    temporal_activation_regularization=0.0,
    seed=None,
    use_onednn="auto",
    name="lstm_language_model",
):
    """Builds a word-level LSTM language model as a functional `keras.Model`.

    The graph is the book's `Rnnlm` / `BetterRnnlm`:

    ```
    token ids (batch, time)
      -> embedding (batch, time, embedding_dim)  -> Dropout
      -> num_layers x [TimeLSTM(hidden_units) -> Dropout]
      -> output projection -> logits (batch, time, vocab_size)
    ```

    Each `TimeLSTM` is a `keras.layers.RNN` of an `LSTMCell` with a faster
    loop over time (same weights, same results). Dropout acts only between
    layers (the depth direction), never on the recurrent connection
    (Zaremba et al., 2014). With `tie_weights=True` the
    embedding matrix, transposed, is also the output projection (one
    `(vocab_size, embedding_dim)` variable plus an output bias).

    The book's two models:

    ```
    Rnnlm:       build_language_model(10000, 100, 100, num_layers=1)
    BetterRnnlm: build_language_model(10000, 650, 650, num_layers=2,
                                      dropout=0.5, tie_weights=True)
    ```

    Args:
        vocab_size: Positive integer, number of token ids.
        embedding_dim: Positive integer, size of the word vectors.
        hidden_units: Positive integer, size of every LSTM layer's state.
        num_layers: Positive integer, number of stacked LSTM layers.
        dropout: Float in [0, 1), dropout rate after the embedding and
            after every LSTM layer. 0 adds no Dropout layers.
        tie_weights: If `True`, share the embedding matrix with the output
            projection. Needs `embedding_dim == hidden_units`.
        stateful: If `True`, every LSTM layer carries its final states into
            the next batch (truncated backpropagation through time). Needs a
            fixed `batch_size`; reset the states with
            `reset_rnn_states(model)` or `ResetStatesCallback`.
        batch_size: Fixed batch size; required when `stateful=True`.
        seq_len: Optional fixed number of time steps per window.
        embeddings_initializer: Initializer for the embedding matrix.
        kernel_initializer: Initializer for the LSTM input kernels.
        recurrent_initializer: Initializer for the LSTM recurrent kernels.
        unit_forget_bias: Start each LSTM forget-gate bias at 1.
        rnn_cell: `"lstm"` (`TimeLSTM` layers), `"keras_lstm"`
            (`keras.layers.LSTM`: Keras's own layer, the baseline for
            speed and quality comparisons) or `"simple_rnn"`
            (`keras.layers.SimpleRNN`: the plain RNN of the book's chapter
            5, for comparisons such as `gradient_flow`).
        locked_dropout: If `True`, every dropout draws one mask per
            sequence and feature and keeps it at every time step (locked,
            or variational, dropout: Gal & Ghahramani, 2016), with
            `keras.layers.SpatialDropout1D`; a fresh mask per batch window.
        input_dropout: Dropout rate after the embedding; `None`: `dropout`.
        output_dropout: Dropout rate after the last LSTM layer, before the
            projection; `None`: `dropout`.
        word_dropout: Float in [0, 1): the rate of `WordDropout`, which
            drops whole words of the vocabulary for a batch window.
        weight_dropout: Float in [0, 1): weight drop (DropConnect) on
            every `TimeLSTM`'s recurrent kernel, one mask per batch window
            (`TimeLSTM(weight_dropout=...)`). `rnn_cell="lstm"` only.
        activation_regularization: AR coefficient (`alpha`): adds
            `alpha * mean(h**2)` of the last LSTM layer's dropped outputs
            to the training loss (`ActivationRegularization`).
        temporal_activation_regularization: TAR coefficient (`beta`): adds
            `beta * mean((h[t] - h[t-1])**2)` of its undropped outputs.
        seed: Optional integer seed of the weight-drop masks.
        use_onednn: Each `TimeLSTM`'s `use_onednn` (`"auto"`, `True`,
            `False`): when it runs oneDNN's fused LSTM.
        name: Model name.

    Returns:
        A `keras.Model` from int32 token ids `(batch, time)` to float logits
        `(batch, time, vocab_size)`.

    Example:

    >>> model = build_language_model(vocab_size=50, embedding_dim=8,
    ...                              hidden_units=8, tie_weights=True)
    >>> model(np.zeros((2, 5), dtype="int32")).shape
    (2, 5, 50)
    """
    vocab_size = check_positive_int("vocab_size", vocab_size)
    embedding_dim = check_positive_int("embedding_dim", embedding_dim)
    hidden_units = check_positive_int("hidden_units", hidden_units)
    num_layers = check_positive_int("num_layers", num_layers)
    rates = DropoutRates.checked(
        dropout, input_dropout, output_dropout, word_dropout, weight_dropout
    )
    if seq_len is not None:
        seq_len = check_positive_int("seq_len", seq_len)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    check_model_options(
        rnn_cell, rates, stateful, batch_size, tie_weights,
        embedding_dim, hidden_units,
    )  # fmt: skip

    token_ids = keras.Input(
        shape=(seq_len,), batch_size=batch_size, dtype="int32", name="token_ids"
    )
    embedding = make_embedding(
        vocab_size, embedding_dim, tie_weights, embeddings_initializer
    )
    x = embedded_inputs(token_ids, embedding, vocab_size, rates, locked_dropout)
    layer_options = dict(
        kernel_initializer=kernel_initializer,
        recurrent_initializer=recurrent_initializer,
        unit_forget_bias=unit_forget_bias,
        stateful=stateful,
        weight_dropout=rates.weight,
        seed=seed,
        use_onednn=use_onednn,
    )
    hidden, x = recurrent_stack(
        x, rnn_cell, hidden_units, num_layers, rates, locked_dropout,
        layer_options,
    )  # fmt: skip
    if activation_regularization or temporal_activation_regularization:
        x = ActivationRegularization(
            activation_regularization,
            temporal_activation_regularization,
            name="activation_regularization",
        )([hidden, x])
    if tie_weights:
        logits = embedding(x, reverse=True)
    else:
        logits = OutputProjection(vocab_size, name="output_projection")(x)
    return keras.Model(token_ids, logits, name=name)


class DropoutRates(typing.NamedTuple):
    """The dropout rates of `build_language_model`, each checked."""

    between: float  # after every LSTM layer but the last
    input: float  # after the embedding
    output: float  # after the last LSTM layer
    word: float  # `WordDropout`
    weight: float  # weight drop on the recurrent kernels

    @classmethod
    def checked(cls, dropout, input_dropout, output_dropout, word, weight):
        dropout = check_rate("dropout", dropout)
        input_rate = dropout if input_dropout is None else input_dropout
        output_rate = dropout if output_dropout is None else output_dropout
        return cls(
            between=dropout,
            input=check_rate("input_dropout", input_rate),
            output=check_rate("output_dropout", output_rate),
            word=check_rate("word_dropout", word),
            weight=check_rate("weight_dropout", weight),
        )


def check_model_options(
    rnn_cell, rates, stateful, batch_size, tie_weights, embedding_dim, units
):
    """Raises `ValueError` for options of `build_language_model` that clash."""
    if rates.weight > 0 and rnn_cell != "lstm":
        raise ValueError(
            f"weight_dropout={rates.weight} drops TimeLSTM's recurrent "
            f"weights; rnn_cell={rnn_cell!r} has no weight drop. Use "
            "rnn_cell='lstm' or weight_dropout=0."
        )
    if rnn_cell not in RNN_CELLS:
        raise ValueError(
            f"rnn_cell must be one of {RNN_CELLS}; received "
            f"rnn_cell={rnn_cell!r}."
        )
    if stateful and batch_size is None:
        raise ValueError(
            "stateful=True carries states from one batch to the next, so "
            "the batch size must be fixed; received batch_size=None. Pass "
            "batch_size=N (the number of parallel token streams)."
        )
    if tie_weights and embedding_dim != units:
        raise ValueError(
            "tie_weights=True uses the embedding matrix as the output "
            "projection, so the last LSTM layer's size must equal the "
            f"embedding size; received embedding_dim={embedding_dim} and "
            f"hidden_units={units}. Set both to the same value, or "
            "pass tie_weights=False."
        )


def make_embedding(vocab_size, embedding_dim, tie_weights, initializer):
    """The input embedding: a `TiedEmbedding` when it is also the output."""
    if tie_weights:
        return TiedEmbedding(
            vocab_size,
            embedding_dim,
            embeddings_initializer=initializer,
            name="tied_embedding",
        )
    return keras.layers.Embedding(
        vocab_size,
        embedding_dim,
        embeddings_initializer=initializer,
        name="embedding",
    )


def embedded_inputs(token_ids, embedding, vocab_size, rates, locked_dropout):
    """The embedding of `token_ids` after word dropout and input dropout."""
    x = embedding(token_ids)  # (batch, time, embedding_dim)
    if rates.word > 0:
        x = WordDropout(vocab_size, rates.word, name="word_dropout")(
            [token_ids, x]
        )
    if rates.input > 0:
        x = dropout_layer(rates.input, "embedding_dropout", locked_dropout)(x)
    return x


def dropout_layer(rate, name, locked):
    """Dropout; `locked`: one mask per sequence and feature, all steps."""
    if locked:
        return keras.layers.SpatialDropout1D(rate, name=name)
    return keras.layers.Dropout(rate, name=name)


def recurrent_stack(
    x, rnn_cell, units, num_layers, rates, locked_dropout, layer_options
):
    """The LSTM layers with dropout after each.

    Returns:
        `(hidden, x)`: the last layer's outputs before and after its dropout.
    """
    for layer_index in range(1, num_layers + 1):
        rnn = recurrent_layer(rnn_cell, units, layer_index, **layer_options)
        x = rnn(x)  # (batch, time, hidden_units)
        hidden = x
        last = layer_index == num_layers
        rate = rates.output if last else rates.between
        if rate > 0:
            x = dropout_layer(rate, f"dropout_{layer_index}", locked_dropout)(x)
    return hidden, x


def model_parts(model):
    """Splits a `build_language_model` model into what it is made of.

    The serving functions, the gate probe and the gradient-flow probe run
    these parts themselves (one step at a time, or with their own states).

    Args:
        model: A model from `build_language_model`.

    Returns:
        `(embedding, rnn_layers, projection)`; `projection` is a callable
        from hidden vectors to logits (the tied embedding's reverse call, or
        the `Dense` output layer).

    Raises:
        ValueError: if the model lacks an embedding or LSTM layers.
    """
    embedding, rnn_layers, dense = None, [], None
    for layer in model.layers:
        if isinstance(layer, (TiedEmbedding, keras.layers.Embedding)):
            embedding = layer
        elif isinstance(layer, keras.layers.RNN):
            rnn_layers.append(layer)
        elif isinstance(layer, keras.layers.Dense):
            dense = layer
    if embedding is None or not rnn_layers:
        raise ValueError(
            f"Model {model.name!r} is not a language model from "
            "build_language_model: it needs an embedding and RNN layers; "
            f"found layers {[layer.name for layer in model.layers]}."
        )
    if isinstance(embedding, TiedEmbedding):

        def projection(hidden):
            return embedding(hidden, reverse=True)

    elif dense is not None:
        projection = dense
    else:
        raise ValueError(f"Model {model.name!r} has no output projection.")
    return embedding, rnn_layers, projection


def recurrent_layer(
    rnn_cell,
    hidden_units,
    layer_index,
    kernel_initializer,
    recurrent_initializer,
    unit_forget_bias,
    stateful,
    weight_dropout,
    seed,
    use_onednn,
):
    """One recurrent layer of `build_language_model`, by `rnn_cell`."""
    common = dict(
        kernel_initializer=kernel_initializer,
        recurrent_initializer=recurrent_initializer,
        return_sequences=True,
        stateful=stateful,
    )
    if rnn_cell == "simple_rnn":
        return keras.layers.SimpleRNN(
            hidden_units, name=f"simple_rnn_{layer_index}", **common
        )
    if rnn_cell == "keras_lstm":
        return keras.layers.LSTM(
            hidden_units,
            unit_forget_bias=unit_forget_bias,
            name=f"keras_lstm_{layer_index}",
            **common,
        )
    return TimeLSTM(
        hidden_units,
        unit_forget_bias=unit_forget_bias,
        weight_dropout=weight_dropout,
        seed=None if seed is None else seed + layer_index,
        use_onednn=use_onednn,
        name=f"lstm_{layer_index}",
        **common,
    )


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


def carried_state(model):
    """What `model` carries from batch to batch besides its weights.

    The `h`, `c` states of its stateful RNN layers and the states of its
    random seed generators (dropout, word dropout, weight drop): Keras
    saves neither with the weights, and a run resumed inside an epoch
    needs both to go on as if it had not stopped.

    Returns:
        `{name: NumPy array}`, named by position (`"seed/0"`, `"rnn/1/0"`:
        the first state of the second stateful RNN layer), so that another
        build of the same model takes them back (`restore_carried_state`).
    """
    values = {}
    seeds = [v for v in model.variables if v.name == "seed_generator_state"]
    for index, variable in enumerate(seeds):
        values[f"seed/{index}"] = keras.ops.convert_to_numpy(variable)
    for index, layer in enumerate(_stateful_rnn_layers(model)):
        for position, state in enumerate(layer.states or ()):
            values[f"rnn/{index}/{position}"] = keras.ops.convert_to_numpy(
                state
            )
    return values


def restore_carried_state(model, values):
    """Assigns the states `carried_state` returned to `model`.

    Raises:
        ValueError: if `values` name a state `model` does not have.
    """
    current = carried_state(model)
    unknown = sorted(set(values) - set(current))
    if unknown:
        raise ValueError(
            f"The saved states {unknown} have no place in this model; it "
            "differs from the one they were saved from."
        )
    seeds = [v for v in model.variables if v.name == "seed_generator_state"]
    layers = _stateful_rnn_layers(model)
    for name, value in values.items():
        kind, *index = name.split("/")
        if kind == "seed":
            seeds[int(index[0])].assign(value)
        else:
            layers[int(index[0])].states[int(index[1])].assign(value)


def _stateful_rnn_layers(model):
    return [
        layer
        for layer in _walk_layers(model)
        if isinstance(layer, keras.layers.RNN) and layer.stateful
    ]


def _walk_layers(layer):
    yield layer
    for sublayer in getattr(layer, "layers", []):
        if sublayer is not layer:
            yield from _walk_layers(sublayer)


def computing_in_float32(model):
    """`model` itself when it computes in float32, else `float32_clone`.

    A model trained under `mixed_bfloat16` keeps float32 weights but
    computes in bfloat16; serving and evaluation run its cells with float32
    states, so they get the same weights in float32 layers.
    """
    if all(layer.compute_dtype == "float32" for layer in model.layers):
        return model
    return float32_clone(model)


def float32_clone(model):
    """A copy of `model`, computing in float32, with its own variables."""

    def float32_layer(layer):
        return layer.__class__.from_config(
            {**layer.get_config(), "dtype": "float32"}
        )

    copy = keras.models.clone_model(model, clone_function=float32_layer)
    copy.set_weights(model.get_weights())
    return copy
