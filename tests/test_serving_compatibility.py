"""Requests recorded against earlier exports get their recorded answers
from today's export of the same model.

`tests/fixtures/serving-7ea655f` was recorded at commit 7ea655f, before
`use_cache` existed; `serving-07b9e32` at 07b9e32, where `use_cache` was a
required input (with a neural cache, both ways).
`tests/fixtures/record_serving_fixture.py` made both. The requests are
replayed as clients would send them, each with only the inputs it had,
in a process that has TensorFlow but not this package: through
`tf.saved_model.load` and through the TF1 session loader, whose
`SignatureDef` reading TF Serving's C++ server shares (it fills an input
left out from `SignatureDef.defaults`).
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch.evaluation import NeuralCache
from keras_lstm_scratch.serving import SIGNATURES, export_for_serving
from tests.fresh_process import run_tensorflow_only

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
WORDS = ["<unk>", "<eos>", "the", "cat", "sat", "a", "dog", "ran", "on", "mat"]

REPLAY = r"""
import json, sys
import numpy as np
import tensorflow as tf

export, requests_path, answers_path = sys.argv[1:]
requests = json.load(open(requests_path))["requests"]

def value(encoded):
    if encoded["dtype"] == "string":
        data = [text.encode("utf-8") for text in encoded["data"]]
        return np.array(data, object).reshape(encoded["shape"])
    return np.array(encoded["data"], encoded["dtype"]).reshape(encoded["shape"])

def plain(outputs):
    return {
        key: (np.asarray(v).astype(str) if np.asarray(v).dtype == object
              else np.asarray(v)).tolist()
        for key, v in outputs.items()
    }

answers = {"tf2": [], "tf1": []}
loaded = tf.saved_model.load(export)
for request in requests:
    inputs = {k: tf.constant(value(v)) for k, v in request["inputs"].items()}
    outputs = getattr(loaded, request["signature"])(**inputs)
    answers["tf2"].append(plain({k: v.numpy() for k, v in outputs.items()}))

with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], export)
    for request in requests:
        signature = meta.signature_def[request["signature"]]
        feed = {
            signature.inputs[k].name: value(v)
            for k, v in request["inputs"].items()
        }
        names = sorted(request["outputs"])
        fetched = session.run([signature.outputs[k].name for k in names], feed)
        answers["tf1"].append(plain(dict(zip(names, fetched))))
json.dump(answers, open(answers_path, "w"))
"""


def decoded(encoded):
    data = np.array(encoded["data"])
    return data.reshape(encoded["shape"])


@pytest.mark.parametrize("recorded", ["serving-7ea655f", "serving-07b9e32"])
def test_recorded_requests_get_their_answers_from_todays_export(
    recorded, tmp_path
):
    folder = os.path.join(FIXTURES, recorded)
    with open(os.path.join(folder, "requests.json"), encoding="utf-8") as f:
        fixture = json.load(f)
    model = keras.models.load_model(os.path.join(folder, "model.keras"))
    cache = fixture["cache"] and NeuralCache.from_config(fixture["cache"])
    export = export_for_serving(
        model, fixture["words"], str(tmp_path), "m", cache=cache or None
    )
    answers_path = str(tmp_path / "answers.json")
    run_tensorflow_only(
        REPLAY, export, os.path.join(folder, "requests.json"), answers_path
    )
    with open(answers_path, encoding="utf-8") as handle:
        answers = json.load(handle)
    for loader in ("tf2", "tf1"):
        assert len(answers[loader]) == len(fixture["requests"])
        for request, answer in zip(
            fixture["requests"], answers[loader], strict=True
        ):
            check_answer(request, answer, loader)


def check_answer(request, answer, loader):
    where = f"{loader} {request['signature']} {request['inputs']}"
    for name, expected in request["outputs"].items():
        assert name in answer, where
        got = np.array(answer[name])
        want = decoded(expected)
        assert got.shape == want.shape, f"{where}: {name}"
        if want.dtype.kind == "f":
            np.testing.assert_allclose(
                got, want, rtol=2e-5, atol=1e-6, err_msg=f"{where}: {name}"
            )
        else:
            np.testing.assert_array_equal(got, want, err_msg=f"{where}: {name}")


def test_a_signature_keeps_its_inputs_and_only_added_ones_have_defaults():
    """Every input a recorded export had is still there; the only input
    added to an exported signature since (use_cache) has a default."""
    first = recorded_inputs("serving-7ea655f")
    latest = recorded_inputs("serving-07b9e32")
    for name, inputs in latest.items():
        declared = {i.name: i for i in SIGNATURES[name]}
        assert set(declared) == inputs, name
        for input_name in inputs:
            added = input_name not in first[name]
            assert declared[input_name].required != added, input_name


def test_the_saved_model_records_each_default(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    model = keras.models.load_model(
        os.path.join(FIXTURES, "serving-07b9e32", "model.keras")
    )
    export = export_for_serving(model, WORDS, str(tmp_path), "m")
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    signature_defs = saved.meta_graphs[0].signature_def
    for name, inputs in SIGNATURES.items():
        signature = signature_defs[name]
        assert set(signature.inputs) == {i.name for i in inputs}
        for declared in inputs:
            if declared.required:
                assert declared.name not in signature.defaults
                continue
            value = tf.make_ndarray(signature.defaults[declared.name])
            expected = np.array(declared.default, value.dtype)
            np.testing.assert_array_equal(value, expected)


def recorded_inputs(recorded):
    path = os.path.join(FIXTURES, recorded, "requests.json")
    with open(path, encoding="utf-8") as handle:
        requests = json.load(handle)["requests"]
    return {r["signature"]: set(r["inputs"]) for r in requests}
