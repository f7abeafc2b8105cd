"""Training on several devices or machines with `tf.distribute`.

Truncated BPTT splits the corpus into `batch_size` parallel token streams
and carries each stream's `h`, `c` from one window to the next. Under a
strategy with `R` replicas the global batch of `batch_size` streams is cut
into `R` contiguous slices, one per replica, every step; so replica `r`
always reads streams `r * B .. (r + 1) * B - 1` (`B = batch_size / R`) and
must keep the states of exactly those streams. `TimeLSTM` therefore keeps
its stateful `h`, `c` in on-read synchronised variables (one copy per
replica, of the per-replica batch `B`), and the model is built for `B`.
Out of the box a stateful `keras.layers.RNN` under `MirroredStrategy`
fails at the first step: its single state variable was made for the global
batch ("If an RNN is stateful, the batch size of the input sequences must
be the same as the batch size of the initial state").
"""

import contextlib
import json
import os

import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_tensorflow_backend
from keras_lstm_scratch.errors import InvalidInputError

STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")


def make_strategy(name="default", tpu=None):
    """The `tf.distribute.Strategy` that `name` stands for.

    Args:
        name: `"default"` (one device, no distribution), `"mirrored"`
            (every local GPU, else the CPU: `MirroredStrategy`),
            `"multi-worker"` (`MultiWorkerMirroredStrategy`, the cluster
            read from the `TF_CONFIG` environment variable) or `"tpu"`
            (`TPUStrategy`).
        tpu: TPU name or address for `"tpu"`; `None` finds the local TPU
            (a TPU VM) or the one in `$TPU_NAME`.

    Returns:
        The strategy; build and compile the model under its `scope()`.

    Raises:
        InvalidInputError: (a `ValueError`) for an unknown name, or
            `"multi-worker"` without a valid `TF_CONFIG`.
        BackendError: (a `RuntimeError`) under another Keras backend.
    """
    check_tensorflow_backend(
        "make_strategy: tf.distribute strategies run on the TensorFlow backend"
    )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise InvalidInputError(
        f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}."
    )


def check_tf_config():
    """Raises `InvalidInputError` unless `$TF_CONFIG` names a worker cluster."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise InvalidInputError(
            "The multi-worker strategy reads the cluster from the TF_CONFIG "
            "environment variable, which is not set. Set it on every "
            'machine, e.g. {"cluster": {"worker": ["host1:12345", '
            '"host2:12345"]}, "task": {"type": "worker", "index": 0}}.'
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInputError(
            f"TF_CONFIG must be JSON with cluster.worker and task; received "
            f"{text!r} ({error})."
        ) from None
    if task.get("type") not in ("worker", "chief") or not workers:
        raise InvalidInputError(
            f"TF_CONFIG must describe a worker task of a worker cluster; "
            f"received {text!r}."
        )


def per_replica_batch_size(global_batch_size, strategy):
    """Streams per replica: `global_batch_size / num_replicas_in_sync`.

    Raises:
        InvalidInputError: (a `ValueError`) if the replicas cannot share
            the streams evenly.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise InvalidInputError(
            f"batch_size={global_batch_size} token streams cannot be shared "
            f"evenly by {replicas} replicas; use a multiple of {replicas}."
        )
    return global_batch_size // replicas


def is_chief(strategy):
    """Whether this process writes the run's files (checkpoints, logs).

    Every worker of a multi-worker run saves (saving reads variables
    collectively), but only the chief, worker 0, into the run directory.
    """
    return strategy.extended.should_checkpoint


def is_multi_worker(strategy):
    """Whether `strategy` spans more than one process."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.cluster_resolver.cluster_spec().num_tasks("worker") > 1
    )


def shard_by_batch_slices(dataset):
    """Lets every worker of a multi-worker run read its own stream slices.

    With `DATA` sharding each worker reads the whole window sequence and
    keeps its replicas' slices of every global batch: the same streams at
    every step, as TBPTT needs (file sharding would hand out whole windows).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)


def can_jit_compile(strategy):
    """Whether Keras's XLA-compiled steps can run under `strategy`.

    Not with several replicas on CPUs (logical CPU devices, or CPU-only
    workers): each replica's compiled step would read variables placed on
    another replica's device, which XLA refuses ("Trying to access
    resource ... located in device CPU:1 from device CPU:0").
    """
    if strategy.num_replicas_in_sync == 1:
        return True
    devices = strategy.extended.worker_devices
    return not any("CPU" in device.upper() for device in devices)


@contextlib.contextmanager
def multi_worker_fit(model, strategy):
    """Lets `model.fit` run under `MultiWorkerMirroredStrategy`.

    Works around two faults of Keras 3's `fit` with several workers
    (keras-team/keras#20585), each with its own error:

    - before training it takes one batch and averages it over the
      replicas with `strategy.reduce` to build the metrics and optimizer
      symbolically, which fails on the `(ids, targets)` tuple ("Attempt to
      convert a value (PerReplica ...) with an unsupported type"). Here the
      same build is done from a local batch of zeros of the model's
      per-replica input shape, and `fit` skips its own: it does when the
      model holds no strategy of its own, and the strategy's scope,
      entered here, still distributes every step;
    - every step it averages the scalar logs over replicas along axis 0,
      which scalars lack ("Invalid reduction dimension 0 for input with 0
      dimensions"). Here the train step returns its logs as 1-element
      vectors, which that average turns back into scalars.

    Other strategies pass through untouched.

    Example:

    ```
    with multi_worker_fit(model, strategy):
        model.fit(dataset, epochs=epochs)
    ```
    """
    if not is_multi_worker(strategy):
        yield
        return
    zeros = tf.zeros(model.inputs[0].shape, model.inputs[0].dtype)
    with strategy.scope():
        model._symbolic_build(data_batch=(zeros, zeros))

    def train_step(data):
        logs = model.train_step(data)
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}

    own_strategy = model._distribute_strategy
    model._distribute_strategy = None
    try:
        with strategy.scope():
            model.train_function = model._make_function(train_step)
            yield
    finally:
        model._distribute_strategy = own_strategy
        model.train_function = None
