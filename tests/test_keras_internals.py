"""One test per private Keras hook the package relies on.

Keras is pinned to the tested minor version (pyproject.toml); these tests
fail when a new Keras stops calling a hook or changes what it does, before
the change can silently alter training.
"""

import json
import os
import subprocess
import sys
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch import TimeLSTM, distribution
from keras_lstm_scratch.distribution import multi_worker_fit

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One step of SGD (learning rate 1, global clip norm 1) on w = [1, 1] under
# MirroredStrategy on two logical CPUs; replica 0's gradient is [3, 0] and
# replica 1's [0, 4]. Prints the updated w for GlobalBatchClippedSGD and
# stock SGD.
TWO_REPLICA_CLIPPING = r"""
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras

from keras_lstm_scratch import GlobalBatchClippedSGD

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
GRADIENTS = [[3.0, 0.0], [0.0, 4.0]]


def one_step(optimizer_class):
    with strategy.scope():
        w = keras.Variable([1.0, 1.0])
        optimizer = optimizer_class(learning_rate=1.0, global_clipnorm=1.0)
        optimizer.build([w])
    gradients = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(GRADIENTS[context.replica_id_in_sync_group])
    )

    @tf.function
    def apply(gradient):
        strategy.run(
            lambda g: optimizer.apply_gradients([(g, w)]), args=(gradient,)
        )

    apply(gradients)
    return keras.ops.convert_to_numpy(w).tolist()


print("RESULT " + json.dumps(
    {
        "clipped": one_step(GlobalBatchClippedSGD),
        "stock": one_step(keras.optimizers.SGD),
    }
))
"""


def test_clipped_sgd_clips_the_summed_gradient_of_two_replicas():
    completed = subprocess.run(
        [sys.executable, "-c", TWO_REPLICA_CLIPPING],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = completed.stdout.splitlines()[-1]
    result = json.loads(line.removeprefix("RESULT "))
    # GlobalBatchClippedSGD: the sum [3, 4] has norm 5, clipped to [0.6, 0.8].
    np.testing.assert_allclose(result["clipped"], [0.4, 0.2], atol=1e-6)
    # Keras clips each replica's share to norm 1 first: [1, 0] + [0, 1].
    # If this changes, Keras moved its clipping and GlobalBatchClippedSGD
    # needs review.
    np.testing.assert_allclose(result["stock"], [0.0, 0.0], atol=1e-6)


def test_stateful_time_lstm_keeps_its_states_per_replica():
    # TimeLSTM._create_state_variables wraps RNN's to make them on-read.
    layer = TimeLSTM(4, stateful=True, return_sequences=True)
    layer(tf.zeros((2, 3, 5)))
    assert len(layer.states) == 2
    for state in layer.states:
        assert tuple(state.shape) == (2, 4)
        assert state.value.synchronization == tf.VariableSynchronization.ON_READ


def test_time_lstm_runs_its_own_loop_through_rnn_inner_loop():
    # RNN.call reaches TimeLSTM.recurrence only through inner_loop.
    layer = TimeLSTM(4, return_sequences=True)
    with mock.patch.object(
        TimeLSTM, "recurrence", autospec=True, side_effect=TimeLSTM.recurrence
    ) as recurrence:
        layer(tf.zeros((2, 3, 5)))
    assert recurrence.call_count == 1


def test_multi_worker_fit_builds_the_model_and_runs_its_own_train_step():
    # _symbolic_build, _make_function and _distribute_strategy, exercised
    # with the default strategy standing in for a multi-worker one.
    inputs = keras.Input((3,), batch_size=2, dtype="int32")
    outputs = keras.layers.Dense(5)(keras.layers.Embedding(5, 4)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ids = np.zeros((4, 3), "int32")
    strategy = tf.distribute.get_strategy()
    calls = []
    with mock.patch.object(distribution, "is_multi_worker", return_value=True):
        with multi_worker_fit(model, strategy):
            assert model.optimizer.built  # by _symbolic_build
            made = model.train_function  # by _make_function

            def counting_train_function(iterator):
                calls.append(1)
                return made(iterator)

            model.train_function = counting_train_function
            history = model.fit(ids, ids, batch_size=2, epochs=1, verbose=0)
    assert calls  # fit ran the train function made by multi_worker_fit
    assert np.isfinite(history.history["loss"][0])
    assert np.ndim(history.history["loss"][0]) == 0
    assert model.train_function is None


def test_get_variable_index_finds_each_model_variable_slot():
    # AveragedSGD keeps one average per variable and finds it, as Keras's
    # SGD finds its momentum, with the private `_get_variable_index`.
    from keras_lstm_scratch import AveragedSGD

    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)]
    )
    optimizer = AveragedSGD(1.0)
    optimizer.build(model.trainable_variables)
    for index, variable in enumerate(model.trainable_variables):
        assert optimizer._get_variable_index(variable) == index
        average = optimizer.averages[index]
        assert tuple(average.shape) == tuple(variable.shape)
