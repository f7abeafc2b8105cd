"""Every Keras backend: the backend-neutral tests under JAX and PyTorch,
the same numbers on all three, `.keras` files that travel between them,
and a model trained on JAX exported and served by TensorFlow."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.data import Vocabulary
from tests.helpers import REPO_ROOT
from training.export import main as export_main

OTHER_BACKENDS = ("jax", "torch")
BACKENDS = ("tensorflow", *OTHER_BACKENDS)
# float32 round-off of a few products and sums of O(1) values.
TOLERANCE = dict(rtol=1e-5, atol=1e-5)

# One model, one batch, one SGD step from the same weights; what each
# backend computes goes into an .npz, the model before the step into a
# .keras file.
ONE_STEP = r"""
import sys
import keras
import numpy as np
from keras_lstm_scratch import SparseSoftmaxCrossEntropy, build_language_model

weights_path, out = sys.argv[1], sys.argv[2]
weights = np.load(weights_path)
model = build_language_model(20, 8, 8, num_layers=2, tie_weights=True)
ids = (np.arange(4 * 7).reshape(4, 7) * 3 % 20).astype("int32")
x, y = ids[:, :-1], ids[:, 1:]
model(x)
model.set_weights([weights[f"w{i}"] for i in range(len(weights.files))])
model.save(out + ".keras")
logits = keras.ops.convert_to_numpy(model(x))
loss = keras.ops.convert_to_numpy(SparseSoftmaxCrossEntropy()(y, logits))
model.compile(keras.optimizers.SGD(1.0), SparseSoftmaxCrossEntropy())
model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
stepped = {f"w{i}": w for i, w in enumerate(model.get_weights())}
np.savez(out + ".npz", logits=logits, loss=loss, **stepped)
"""

# The logits of `.keras` files saved on other backends, on this one.
LOAD = r"""
import sys
import keras
import numpy as np
import keras_lstm_scratch  # noqa: F401 (registers the classes)

ids = (np.arange(4 * 7).reshape(4, 7) * 3 % 20).astype("int32")
results = {}
for path in sys.argv[2:]:
    model = keras.models.load_model(path)
    results[path] = keras.ops.convert_to_numpy(model(ids[:, :-1]))
np.savez(sys.argv[1], *[results[path] for path in sys.argv[2:]])
"""

# A Keras user's run on JAX: the package's data pipeline and model,
# model.fit, then the .keras file and the vocabulary for the export.
TRAIN_ON_JAX = r"""
import sys
import keras
import numpy as np
from keras_lstm_scratch import (PerplexityCallback, Perplexity,
    ResetStatesCallback, SparseSoftmaxCrossEntropy, build_language_model)
from keras_lstm_scratch.data import load_text_corpus, tbptt_dataset

assert keras.backend.backend() == "jax"
corpus_dir, out = sys.argv[1], sys.argv[2]
corpus = load_text_corpus(corpus_dir)
model = build_language_model(
    len(corpus.vocabulary), 16, 16, tie_weights=True, stateful=True,
    batch_size=4, seq_len=10)
model.compile(keras.optimizers.SGD(5.0), SparseSoftmaxCrossEntropy(),
              metrics=[Perplexity()])
model.fit(tbptt_dataset(corpus.train, 4, 10), epochs=2, verbose=0,
          callbacks=[PerplexityCallback(tbptt_dataset(corpus.valid, 4, 10)),
                     ResetStatesCallback()])
model.save(out + "/model.keras")
corpus.vocabulary.save(out + "/vocabulary.json")
ids = np.array([corpus.vocabulary.encode("the cat sat".split())], "int32")
stateless = build_language_model(
    len(corpus.vocabulary), 16, 16, tie_weights=True)
stateless.set_weights(model.get_weights())
np.save(out + "/logits.npy", keras.ops.convert_to_numpy(stateless(ids)))
"""


def run_on(backend, *arguments, timeout=600):
    completed = subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "KERAS_BACKEND": backend,
            "TF_CPP_MIN_LOG_LEVEL": "3",
        },
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, (
        completed.stdout[-3000:] + completed.stderr[-3000:]
    )
    return completed


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_backend_neutral_tests_pass_on(backend):
    completed = run_on(
        backend,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "backend_neutral",
        "tests/test_backend_neutral.py",
    )
    assert " passed" in completed.stdout and "failed" not in completed.stdout


@pytest.fixture(scope="module")
def one_step_on_each_backend(tmp_path_factory):
    """Each backend's logits, loss and weights after one SGD step, all
    from the same starting weights."""
    folder = tmp_path_factory.mktemp("backends")
    template = build_language_model(20, 8, 8, num_layers=2, tie_weights=True)
    template(np.zeros((4, 6), "int32"))
    rng = np.random.default_rng(0)
    weights = {
        f"w{i}": (0.3 * rng.normal(size=w.shape)).astype("float32")
        for i, w in enumerate(template.get_weights())
    }
    np.savez(folder / "weights.npz", **weights)
    results = {}
    for backend in BACKENDS:
        out = str(folder / backend)
        run_on(backend, "-c", ONE_STEP, str(folder / "weights.npz"), out)
        results[backend] = dict(np.load(out + ".npz"))
    return folder, results


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_forward_loss_and_one_sgd_step_agree_with_tensorflow(
    one_step_on_each_backend, backend
):
    _, results = one_step_on_each_backend
    ours, reference = results[backend], results["tensorflow"]
    assert set(ours) == set(reference)
    np.testing.assert_allclose(ours["logits"], reference["logits"], **TOLERANCE)
    np.testing.assert_allclose(ours["loss"], reference["loss"], **TOLERANCE)
    for key in reference:
        if key.startswith("w"):
            np.testing.assert_allclose(ours[key], reference[key], **TOLERANCE)
    # The step moved the weights: the comparison is not of the start.
    start = np.load(one_step_on_each_backend[0] / "weights.npz")
    assert not np.allclose(reference["w0"], start["w0"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_keras_file_saved_on_one_backend_loads_on_the_others(
    one_step_on_each_backend, backend
):
    folder, results = one_step_on_each_backend
    others = [b for b in BACKENDS if b != backend]
    paths = [str(folder / f"{other}.keras") for other in others]
    out = str(folder / f"loaded-on-{backend}.npz")
    run_on(backend, "-c", LOAD, out, *paths)
    loaded = np.load(out)
    for index, other in enumerate(others):
        np.testing.assert_allclose(
            loaded[f"arr_{index}"], results[other]["logits"], **TOLERANCE
        )


@pytest.mark.slow
def test_a_model_trained_on_jax_is_exported_and_served_by_tensorflow(
    small_corpus_dir, tmp_path
):
    run_on("jax", "-c", TRAIN_ON_JAX, str(small_corpus_dir), str(tmp_path))
    version = export_main(
        [
            "--model",
            str(tmp_path / "model.keras"),
            "--vocabulary",
            str(tmp_path / "vocabulary.json"),
            "--export-root",
            str(tmp_path / "saved_models"),
            "--name",
            "from-jax",
        ]
    )
    assert version == 0  # main() returns the exit status
    exported = tmp_path / "saved_models" / "from-jax" / "1"
    served = tf.saved_model.load(str(exported))
    assert set(served.signatures) >= {
        "serving_default",
        "score",
        "next_words",
        "step",
        "generate",
    }
    vocabulary = Vocabulary.load(tmp_path / "vocabulary.json")
    ids = [vocabulary.encode("the cat sat".split())]
    answer = served.signatures["serving_default"](
        token_ids=tf.constant(ids, tf.int32)
    )
    jax_logits = np.load(tmp_path / "logits.npy")
    np.testing.assert_allclose(
        answer["log_probs"].numpy(),
        tf.nn.log_softmax(jax_logits).numpy(),
        **TOLERANCE,
    )


# TensorFlow-only parts on JAX: one clear line each, not an unrelated error.
TENSORFLOW_ONLY = r"""
import numpy as np
from keras_lstm_scratch import build_language_model, make_strategy
from keras_lstm_scratch.errors import BackendError
from keras_lstm_scratch.serving import export_for_serving

model = build_language_model(5, 4, 4)
for call in (
    lambda: export_for_serving(model, list("abcde"), "/nonexistent", "m"),
    lambda: make_strategy("mirrored"),
):
    try:
        call()
    except BackendError as error:
        print("BackendError:", error)
"""


@pytest.mark.slow
def test_tensorflow_only_parts_say_so_on_another_backend():
    completed = run_on("jax", "-c", TENSORFLOW_ONLY)
    lines = [
        line
        for line in completed.stdout.splitlines()
        if line.startswith("BackendError:")
    ]
    assert len(lines) == 2, completed.stdout
    assert "export_for_serving writes a TensorFlow SavedModel" in lines[0]
    assert "tf.distribute" in lines[1]
    for line in lines:
        assert "KERAS_BACKEND=tensorflow" in line and "'jax'" in line
