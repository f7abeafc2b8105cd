"""One test per private Keras hook the package relies on.

Keras is pinned to the tested minor version; the hooks are listed beside
the pin in pyproject.toml. These tests fail when a new Keras stops calling
a hook or changes what it does, before the change can silently alter
training, and when the code uses a private hook that the list lacks.
"""

import ast
import json
import os
import pathlib
import re
import subprocess
import sys
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import (
    Perplexity,
    SparseSoftmaxCrossEntropy,
    TimeLSTM,
    build_language_model,
    distribution,
)
from keras_lstm_scratch.distribution import multi_worker_fit
from tests.helpers import REPO_ROOT

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


@pytest.mark.slow  # a fresh process with two logical CPUs
def test_clipped_sgd_clips_the_summed_gradient_of_two_replicas():
    # Optimizer._clip_gradients: GlobalBatchClipping clips there.
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
    layer = TimeLSTM(4, return_sequences=True, use_onednn=False)
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


def test_monitor_callbacks_read_that_a_lower_perplexity_is_better():
    # Metric._direction: Keras's monitor callbacks (EarlyStopping,
    # ModelCheckpoint, ReduceLROnPlateau) in mode "auto" read it.
    model = build_language_model(8, embedding_dim=4, hidden_units=4)
    model.compile("sgd", SparseSoftmaxCrossEntropy(), metrics=[Perplexity()])
    ids = np.zeros((4, 3), "int32")
    stopping = keras.callbacks.EarlyStopping(monitor="val_perplexity")
    model.fit(
        ids,
        ids,
        validation_data=(ids, ids),
        epochs=1,
        verbose=0,
        callbacks=[stopping],
    )
    assert stopping.monitor_op is keras.ops.less


def test_a_metric_without_a_direction_leaves_monitor_callbacks_unsure():
    # The other side of the hook: Keras would not guess without it.
    model = build_language_model(8, embedding_dim=4, hidden_units=4)
    metric = Perplexity()
    del metric._direction
    model.compile("sgd", SparseSoftmaxCrossEntropy(), metrics=[metric])
    stopping = keras.callbacks.EarlyStopping(monitor="val_perplexity")
    stopping.set_model(model)
    ids = np.zeros((4, 3), "int32")
    model.evaluate(ids, ids, verbose=0)  # builds the compiled metrics
    with pytest.raises(ValueError, match="maximized or minimized"):
        stopping._set_monitor_op()


def listed_hooks():
    """The hook names listed beside the Keras pin in pyproject.toml."""
    text = (pathlib.Path(REPO_ROOT) / "pyproject.toml").read_text()
    block = text[text.index("private Keras hooks") : text.index('"keras~=')]
    return set(re.findall(r"[A-Z][A-Za-z]+\.(\w+)", block))


def private_attributes_used(path):
    """`_name`s the code reads through `super()` or on another object."""
    used = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        used.add(name)
    return used


def test_every_private_hook_used_is_listed_beside_the_keras_pin():
    listed = listed_hooks()
    used = set()
    for package in ("keras_lstm_scratch", "training"):
        for path in (pathlib.Path(REPO_ROOT) / package).rglob("*.py"):
            used |= private_attributes_used(path)
    assert used <= listed, sorted(used - listed)
    assert "_direction" in listed  # set on self, so not found by the scan


def test_every_listed_hook_has_a_test_here():
    source = pathlib.Path(__file__).read_text()
    tests = [
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    untested = [
        hook for hook in listed_hooks() if not any(hook in t for t in tests)
    ]
    assert not untested, untested
