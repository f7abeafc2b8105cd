"""A keras-hub style `run_layer_test`: the checks every layer must pass."""

import keras
import numpy as np


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights,
    wrap=None,
    expected_num_updated_weights=None,
):
    """Checks config and serialization round trips, weights, calls, fit.

    Args:
        layer_cls: The layer class under test.
        init_kwargs: Constructor arguments.
        input_data: A NumPy batch for the eager call and the fit step.
        expected_output_shape: Output shape of the eager call.
        expected_num_trainable_weights: Trainable variables after build.
        wrap: Optional function from a layer instance to the layer that is
            called (e.g. a cell wrapped in `keras.layers.RNN`).
        expected_num_updated_weights: Trainable variables that one fit step
            of this call changes; all of them by default.
    """
    wrap = wrap or (lambda layer: layer)

    # Config round trip.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    revived = layer_cls.from_config(config)
    assert revived.get_config() == config

    # Registered serialization round trip.
    serialized = keras.saving.serialize_keras_object(layer)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is layer_cls
    assert deserialized.get_config() == config

    # Symbolic call.
    symbolic_input = keras.Input(
        shape=input_data.shape[1:], dtype=str(input_data.dtype)
    )
    symbolic_output = wrap(layer_cls(**init_kwargs))(symbolic_input)
    assert tuple(symbolic_output.shape[1:]) == tuple(expected_output_shape[1:])

    # Eager call and weight count.
    eager_layer = wrap(layer_cls(**init_kwargs))
    output = eager_layer(input_data)
    assert tuple(output.shape) == tuple(expected_output_shape)
    assert len(eager_layer.trainable_weights) == expected_num_trainable_weights

    # One fit step changes every weight that the call uses.
    model = keras.Sequential(
        [
            keras.Input(
                shape=input_data.shape[1:], dtype=str(input_data.dtype)
            ),
            wrap(layer_cls(**init_kwargs)),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    target = np.ones(expected_output_shape, dtype="float32")
    model.fit(input_data, target, batch_size=len(input_data), verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    pairs = zip(before, after, strict=True)
    updated = sum(not np.allclose(b, a) for b, a in pairs)
    if expected_num_updated_weights is None:
        expected_num_updated_weights = expected_num_trainable_weights
    assert updated == expected_num_updated_weights
