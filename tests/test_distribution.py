"""tf.distribute: per-replica TBPTT state, MirroredStrategy, multi-worker.

The strategies need devices or processes configured before TensorFlow
starts, so each check runs in a fresh Python process.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import REPO_ROOT, read_history, train_command
from training.run_directory import RunDirectory

WORKER_TEMP = "keras-lstm-scratch-worker-*"  # non-chief write directories

# Runs N training steps on one device and under MirroredStrategy on two
# logical CPUs, from the same weights on the same global batches; prints
# per-step losses and final weights as JSON. Also tries the stock stateful
# keras.layers.RNN under the same strategy, and prints its error.
MIRRORED_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
import keras

from keras_lstm_scratch import LSTMCell
from keras_lstm_scratch.data import tbptt_dataset
from keras_lstm_scratch.distribution import shard_by_batch_slices
from training.config import resolve_config
from training.model import build_model

jit_compile = sys.argv[1] == "jit"
config = resolve_config(
    "tiny",
    dict(embedding_dim=8, hidden_units=8, num_layers=2, batch_size=4,
         seq_len=5, learning_rate=5.0, clip_norm=0.25,
         jit_compile=jit_compile),
)
VOCAB, STEPS = 30, 6
ids = np.random.default_rng(0).integers(
    0, VOCAB, config.batch_size * config.seq_len * STEPS + 1
).astype("int32")
data = shard_by_batch_slices(
    tbptt_dataset(ids, config.batch_size, config.seq_len)
)


class StepLosses(keras.callbacks.Callback):
    # logs["loss"] is the running mean over the epoch: undo it per step.
    def __init__(self):
        super().__init__()
        self.means, self.losses = [], []

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        previous = self.means[-1] if self.means else 0.0
        self.losses.append(mean * (batch + 1) - previous * batch)
        self.means.append(mean)


def train(strategy):
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, VOCAB, strategy)
    model.set_weights(initial)
    losses = StepLosses()
    model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[losses])
    return losses.losses, [w.tolist() for w in model.get_weights()]


keras.utils.set_random_seed(config.seed)
initial = build_model(config, VOCAB, tf.distribute.get_strategy()).get_weights()
one_device = train(tf.distribute.get_strategy())
mirrored_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
mirrored = train(mirrored_strategy)

# The stock stateful RNN built for the global batch, as Keras users do.
with mirrored_strategy.scope():
    inputs = keras.Input((config.seq_len,), batch_size=config.batch_size)
    x = keras.layers.Embedding(VOCAB, 8)(inputs)
    x = keras.layers.RNN(LSTMCell(8), return_sequences=True, stateful=True)(x)
    stock = keras.Model(inputs, keras.layers.Dense(VOCAB)(x))
    stock.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
try:
    stock.fit(data, epochs=1, verbose=0)
    stock_error = None
except ValueError as error:
    stock_error = str(error)

print("RESULT " + json.dumps({
    "replicas": mirrored_strategy.num_replicas_in_sync,
    "initial": [w.tolist() for w in initial],
    "one_device": one_device,
    "mirrored": mirrored,
    "stock_error": stock_error,
}))
"""

STOCK_ERROR = (
    "If an RNN is stateful, the batch size of the input sequences must be "
    "the same as the batch size of the initial state"
)


def run_script(script, *args, timeout=600):
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(
        line for line in result.stdout.splitlines() if line.startswith("RESULT")
    )
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow
@pytest.mark.parametrize("compiled", ["eager-graph", "jit"])
def test_mirrored_training_equals_one_device_step_by_step(compiled):
    result = run_script(MIRRORED_SCRIPT, compiled)
    assert result["replicas"] == 2
    one_losses, one_weights = result["one_device"]
    mirrored_losses, mirrored_weights = result["mirrored"]
    assert len(one_losses) == len(mirrored_losses) == 6
    for one, mirrored in zip(one_losses, mirrored_losses, strict=True):
        assert mirrored == pytest.approx(one, abs=1e-4)
    # Both runs moved the weights, the same way.
    moved = 0.0
    for one, mirrored, initial in zip(
        one_weights, mirrored_weights, result["initial"], strict=True
    ):
        np.testing.assert_allclose(mirrored, one, atol=1e-4)
        moved = max(moved, float(np.abs(np.subtract(one, initial)).max()))
    assert moved > 1e-2
    # The failure this guards against: Keras's stateful RNN state is one
    # variable for the global batch, and each replica sees half of it.
    assert result["stock_error"] is not None
    assert STOCK_ERROR in result["stock_error"]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def start_workers(corpus_dir, output_dir, epochs, temp_dir):
    """Two `training.train --strategy multi-worker` processes on loopback.

    Their temporary files go to `temp_dir` (a killed worker cannot remove
    its own).
    """
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    command = [
        *train_command(corpus_dir, output_dir, epochs),
        "--strategy",
        "multi-worker",
    ]
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": cluster,
            "task": {"type": "worker", "index": index},
        }
        workers.append(
            subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={
                    **os.environ,
                    "TF_CONFIG": json.dumps(tf_config),
                    "TMPDIR": temp_dir,
                    "TF_CPP_MIN_LOG_LEVEL": "2",
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return workers


def finish(workers, timeout=600):
    outputs = [worker.communicate(timeout=timeout)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-4000:]
    return outputs


def epoch_lines(output):
    """The `| epoch | lr | train ppl | valid ppl |` columns of each row."""
    rows = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows.append(cells[:4])
    return rows


@pytest.mark.slow
def test_two_workers_agree_and_match_one_process(small_corpus_dir, tmp_path):
    single_dir, multi_dir = str(tmp_path / "single"), str(tmp_path / "multi")
    single = subprocess.run(
        train_command(small_corpus_dir, single_dir, epochs=1),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stdout + single.stderr
    temp_dir = str(tmp_path / "temp")
    os.makedirs(temp_dir)
    chief, other = finish(
        start_workers(small_corpus_dir, multi_dir, 1, temp_dir)
    )

    # Both workers log the same epoch: same loss, same validation.
    assert epoch_lines(chief) == epoch_lines(other)
    assert len(epoch_lines(chief)) == 1
    # And the same numbers as one process on the same global batches: each
    # worker kept the states of its own slice of the streams. (Rounding
    # differences of the summed gradients grow over the epoch's 114 steps
    # at learning rate 5: measured 1.6e-6 on the training loss, 1.2e-4 on
    # the validation loss of the end weights.)
    (one,) = read_history(single_dir)
    (multi,) = read_history(multi_dir)
    assert float(multi["loss"]) == pytest.approx(float(one["loss"]), rel=1e-5)
    assert float(multi["val_loss"]) == pytest.approx(
        float(one["val_loss"]), rel=1e-3
    )
    # The chief wrote the run directory; the other worker wrote into a
    # temporary directory, removed when it finished.
    assert {"best.keras", "results.json", "history.csv", "backup"} <= set(
        os.listdir(multi_dir)
    )
    assert glob.glob(os.path.join(temp_dir, WORKER_TEMP)) == []
    assert "Resuming" not in chief + other


@pytest.mark.slow
def test_killing_a_worker_and_restarting_both_resumes_from_the_backup(
    small_corpus_dir, tmp_path
):
    output_dir, temp_dir = str(tmp_path / "run"), str(tmp_path / "temp")
    os.makedirs(temp_dir)
    workers = start_workers(small_corpus_dir, output_dir, 8, temp_dir)
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline and workers[1].poll() is None:
        state = RunDirectory(output_dir).load_backup()
        if state is not None and state["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert state is not None and state["epoch"] >= 1, workers[1].poll()
    workers[1].send_signal(signal.SIGKILL)  # a worker dies mid-run
    time.sleep(1.0)
    workers[0].send_signal(signal.SIGKILL)  # its peer is stuck: restart both
    for worker in workers:
        worker.communicate()
    done_before_kill = RunDirectory(output_dir).load_backup()["epoch"]
    assert 1 <= done_before_kill < 8

    outputs = finish(start_workers(small_corpus_dir, output_dir, 8, temp_dir))
    for output in outputs:
        assert f"after epoch {done_before_kill}" in output
    assert epoch_lines(outputs[0]) == epoch_lines(outputs[1])
    epochs = [row["epoch"] for row in read_history(output_dir)]
    assert epochs == [str(epoch) for epoch in range(1, 9)]
