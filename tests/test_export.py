import concurrent.futures
import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import serving_concurrency, serving_memory
from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.serving import (
    SIGNATURES,
    WARMUP_FILE,
    LanguageModelServer,
    export_for_serving,
    request_limits,
)
from keras_lstm_scratch.serving import saved_model as export_module
from tests.fresh_process import run_tensorflow_only
from tests.helpers import small_config
from training import export as export_cli
from training import generate as generate_cli
from training.run import run
from training.run_directory import RunDirectory

pytestmark = pytest.mark.slow

SENTENCES = [
    "the company said it expects higher sales",
    "",
    "   ",
    "zzyzx qwerty the market\nrose sharply",
]
TOKEN_IDS = np.array([[1, 24, 2, 87, 5, 100], [9, 8, 7, 6, 5, 4]], np.int32)


@pytest.fixture(scope="module")
def small_run(small_corpus_dir, tmp_path_factory):
    """One epoch of a 1x32 model on the small corpus: (run_dir, results)."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    config = small_config(small_corpus_dir, embedding_dim=32, hidden_units=32)
    return run_dir, run(config, run_dir, verbose=0)


@pytest.fixture(scope="module")
def run_parts(small_run):
    run_dir, results = small_run
    model, vocabulary = RunDirectory(run_dir).load_finished()
    with open(os.path.join(run_dir, "config.json")) as handle:
        config = json.load(handle)
    # A stateless twin of the trained model, for reference outputs.
    twin = build_language_model(
        len(vocabulary),
        config["embedding_dim"],
        config["hidden_units"],
        num_layers=config["num_layers"],
        tie_weights=config["tie_weights"],
    )
    twin.set_weights(model.get_weights())
    return run_dir, results, model, vocabulary, twin


@pytest.fixture(scope="module")
def exported(run_parts, tmp_path_factory):
    run_dir = run_parts[0]
    root = str(tmp_path_factory.mktemp("saved_models"))
    return export_cli.export_run(run_dir, root, name="tiny")


def keras_log_probs(twin, ids):
    return keras.ops.convert_to_numpy(keras.ops.log_softmax(twin(ids), axis=-1))


def reference_score(twin, vocabulary, text):
    """Total log-likelihood of the text's tokens after a leading <eos>."""
    tokens = []
    for line in text.strip().split("\n"):
        tokens += line.split() + ["<eos>"]
    if not text.strip():
        tokens = ["<eos>"]
    ids = vocabulary.encode(["<eos>"] + tokens)[None, :]
    log_probs = keras_log_probs(twin, ids[:, :-1])[0]
    return float(log_probs[np.arange(len(tokens)), ids[0, 1:]].sum()), len(
        tokens
    )


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    path, out = sys.argv[1:3]
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures
    results = {}
    results["log_probs"] = sig["serving_default"](
        token_ids=tf.constant(np.load(out + ".ids.npy")))["log_probs"].numpy()
    sentences = json.loads(open(out + ".sentences.json").read())
    score = sig["score"](sentences=tf.constant(sentences),
                         use_cache=tf.constant(False))
    for key, value in score.items():
        results["score_" + key] = value.numpy()
    nxt = sig["next_words"](prompts=tf.constant(["the stock", ""]),
                            k=tf.constant(5), use_cache=tf.constant(False))
    results["next_words"] = nxt["words"].numpy().astype(str)
    results["next_probabilities"] = nxt["probabilities"].numpy()
    step = sig["step"](token_ids=tf.constant([1, 2]),
                       h=tf.zeros((1, 2, 32)), c=tf.zeros((1, 2, 32)))
    results["step_log_probs"] = step["log_probs"].numpy()
    gen = sig["generate"](prompts=tf.constant(["the market"]),
                          max_tokens=tf.constant(12),
                          temperature=tf.constant(1.0),
                          top_k=tf.constant(20),
                          seed=tf.constant(7, tf.int64),
                          use_cache=tf.constant(False))
    results["generated"] = gen["token_ids"].numpy()
    # TF1-style loading, as TF Serving's C++ loader does it.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta.signature_def["serving_default"]
        results["tf1_log_probs"] = session.run(
            signature.outputs["log_probs"].name,
            {signature.inputs["token_ids"].name: np.load(out + ".ids.npy")},
        )
    results["modules"] = np.array(
        [name for name in sys.modules if name.startswith("keras_lstm")] or
        ["none"])
    np.savez(out, **results)
""")


@pytest.fixture(scope="module")
def fresh_process_results(exported, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fresh") / "results")
    np.save(out + ".ids.npy", TOKEN_IDS)
    with open(out + ".sentences.json", "w") as handle:
        json.dump(SENTENCES, handle)
    run_tensorflow_only(FRESH_PROCESS, exported, out)
    return dict(np.load(out + ".npz"))


def test_fresh_tensorflow_process_never_imports_this_package(
    fresh_process_results,
):
    assert fresh_process_results["modules"].tolist() == ["none"]


def test_serving_default_equals_the_keras_model(
    fresh_process_results, run_parts
):
    twin = run_parts[4]
    expected = keras_log_probs(twin, TOKEN_IDS)
    np.testing.assert_allclose(
        fresh_process_results["log_probs"], expected, atol=1e-5
    )
    np.testing.assert_allclose(
        fresh_process_results["tf1_log_probs"], expected, atol=1e-5
    )


def test_score_equals_the_keras_model(fresh_process_results, run_parts):
    _, _, _, vocabulary, twin = run_parts
    for index, sentence in enumerate(SENTENCES):
        log_likelihood, count = reference_score(twin, vocabulary, sentence)
        assert fresh_process_results["score_token_count"][index] == count
        assert fresh_process_results["score_log_likelihood"][index] == (
            pytest.approx(log_likelihood, abs=1e-4)
        )
        assert fresh_process_results["score_perplexity"][index] == (
            pytest.approx(math.exp(-log_likelihood / count), rel=1e-5)
        )
    # Empty and whitespace-only strings score one token: an immediate <eos>.
    assert fresh_process_results["score_token_count"][1:3].tolist() == [1, 1]


def test_score_on_ptb_test_matches_the_training_run(
    tiny_ptb_run, ptb_dir, tmp_path
):
    run_dir, results = tiny_ptb_run
    path = export_cli.export_run(run_dir, str(tmp_path), name="tiny")
    score = tf.saved_model.load(path).signatures["score"]
    # The PTB test set, as line-aligned chunks scored one by one.
    with open(os.path.join(ptb_dir, "ptb.test.txt"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    total, count = 0.0, 0
    for start in range(0, len(lines), 500):
        chunk = "\n".join(lines[start : start + 500])
        scored = score(
            sentences=tf.constant([chunk]), use_cache=tf.constant(False)
        )
        total += float(scored["log_likelihood"].numpy()[0])
        count += int(scored["token_count"].numpy()[0])
    assert count == 82430
    assert math.exp(-total / count) == pytest.approx(
        results["test_perplexity"], rel=1e-3
    )


def test_next_words_are_the_keras_top_k(fresh_process_results, run_parts):
    _, _, _, vocabulary, twin = run_parts
    ids = vocabulary.encode(["<eos>", "the", "stock"])[None, :]
    probabilities = np.exp(keras_log_probs(twin, ids)[0, -1])
    top = np.argsort(-probabilities)[:5]
    assert fresh_process_results["next_words"][0].tolist() == (
        vocabulary.decode(top)
    )
    np.testing.assert_allclose(
        fresh_process_results["next_probabilities"][0],
        probabilities[top],
        atol=1e-5,
    )


def test_step_by_step_reproduces_serving_default(exported, run_parts):
    signatures = tf.saved_model.load(exported).signatures
    whole = signatures["serving_default"](token_ids=tf.constant(TOKEN_IDS))[
        "log_probs"
    ].numpy()
    h = c = tf.zeros((1, len(TOKEN_IDS), 32))
    for t in range(TOKEN_IDS.shape[1]):
        out = signatures["step"](
            token_ids=tf.constant(TOKEN_IDS[:, t]), h=h, c=c
        )
        h, c = out["h"], out["c"]
        np.testing.assert_allclose(
            out["log_probs"].numpy(), whole[:, t], atol=1e-5
        )


def call_generate(
    signatures,
    seed,
    prompt="the market",
    temperature=1.0,
    top_k=20,
    max_tokens=12,
):
    return signatures["generate"](
        prompts=tf.constant([prompt]),
        max_tokens=tf.constant(max_tokens),
        temperature=tf.constant(temperature),
        top_k=tf.constant(top_k),
        seed=tf.constant(seed, tf.int64),
        use_cache=tf.constant(False),
    )


def test_generate_is_deterministic_per_seed(exported, fresh_process_results):
    signatures = tf.saved_model.load(exported).signatures
    first = call_generate(signatures, 7)["token_ids"].numpy()
    np.testing.assert_array_equal(first, fresh_process_results["generated"])
    assert first.shape == (1, 12)
    others = [
        call_generate(signatures, seed)["token_ids"].numpy() for seed in (8, 9)
    ]
    assert any(not np.array_equal(first, other) for other in others)


def test_generate_with_zero_temperature_is_greedy(exported, run_parts):
    _, _, _, vocabulary, twin = run_parts
    signatures = tf.saved_model.load(exported).signatures
    out = call_generate(signatures, 1, temperature=0.0, max_tokens=3)
    context = list(vocabulary.encode(["<eos>", "the", "market"]))
    for generated in out["token_ids"].numpy()[0]:
        log_probs = keras_log_probs(twin, np.array([context], np.int32))
        assert generated == int(np.argmax(log_probs[0, -1]))
        context.append(int(generated))
    # The text is the words of the ids, with <eos> as a line break.
    words = vocabulary.decode(out["token_ids"].numpy()[0])
    text = out["text"].numpy()[0].decode()
    assert text.replace("\n", " ").split() == [w for w in words if w != "<eos>"]


def test_sampled_tokens_follow_the_models_distribution(exported, run_parts):
    # The first token after a prompt over 2,000 seeds, top 5 at temperature
    # 1: each frequency within 4.5 standard errors of its probability (for
    # 5 tokens a chance failure is below 1 in 10,000; the seeds are fixed).
    _, _, _, vocabulary, twin = run_parts
    generate = tf.saved_model.load(exported).signatures["generate"]
    draws = 2000
    first = [
        int(
            call_generate({"generate": generate}, seed, top_k=5, max_tokens=1)[
                "token_ids"
            ][0, 0]
        )
        for seed in range(draws)
    ]
    context = vocabulary.encode(["<eos>", "the", "market"])[None, :]
    log_probs = keras_log_probs(twin, context)[0, -1]
    top = np.argsort(log_probs)[::-1][:5]
    probs = np.exp(log_probs[top] - np.logaddexp.reduce(log_probs[top]))
    assert set(first) <= set(top.tolist())
    for token, p in zip(top, probs, strict=True):
        frequency = first.count(int(token)) / draws
        assert abs(frequency - p) <= 4.5 * np.sqrt(p * (1 - p) / draws)


def test_top_k_one_is_greedy_too(exported):
    signatures = tf.saved_model.load(exported).signatures
    sampled = call_generate(signatures, 3, top_k=1)["token_ids"].numpy()
    greedy = call_generate(signatures, 3, temperature=0.0)["token_ids"]
    np.testing.assert_array_equal(sampled, greedy.numpy())


def test_bad_and_edge_inputs_have_defined_results(exported, run_parts):
    vocabulary = run_parts[3]
    signatures = tf.saved_model.load(exported).signatures
    # k larger than the vocabulary returns the whole vocabulary.
    everything = signatures["next_words"](
        prompts=tf.constant([""]),
        k=tf.constant(10**6),
        use_cache=tf.constant(False),
    )
    assert everything["words"].shape == (1, len(vocabulary))
    assert float(tf.reduce_sum(everything["probabilities"])) == (
        pytest.approx(1.0, abs=1e-4)
    )
    # k below 1 is an InvalidArgument error, not a crash.
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be"):
        signatures["next_words"](
            prompts=tf.constant(["a"]),
            k=tf.constant(0),
            use_cache=tf.constant(False),
        )
    # Negative max_tokens generates nothing.
    empty = call_generate(signatures, 1, max_tokens=-5)
    assert empty["token_ids"].shape == (1, 0)
    assert empty["text"].numpy().tolist() == [b""]
    # A 10,000-token input is scored in full.
    long_text = " ".join(["the"] * 10_000)
    long_score = signatures["score"](
        sentences=tf.constant([long_text]), use_cache=tf.constant(False)
    )
    assert long_score["token_count"].numpy().tolist() == [10_001]
    assert np.isfinite(long_score["perplexity"].numpy()).all()
    # Wrong dtypes and ranks are rejected by the signature itself.
    rejected = (TypeError, ValueError, tf.errors.InvalidArgumentError)
    with pytest.raises(rejected, match="int32"):
        signatures["serving_default"](token_ids=tf.constant([[0.5]]))
    with pytest.raises(rejected):
        signatures["serving_default"](token_ids=tf.constant([1, 2]))
    with pytest.raises(rejected):
        signatures["score"](
            sentences=tf.constant([[b"a"]]), use_cache=tf.constant(False)
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_layers"):
        signatures["step"](
            token_ids=tf.constant([1]),
            h=tf.zeros((2, 1, 32)),
            c=tf.zeros((2, 1, 32)),
        )


@pytest.mark.parametrize("bad_id", [-1, "vocab_size"])
def test_ids_outside_the_vocabulary_are_invalid_arguments(
    exported, run_parts, bad_id
):
    vocab_size = len(run_parts[3])
    bad_id = vocab_size if bad_id == "vocab_size" else bad_id
    signatures = tf.saved_model.load(exported).signatures
    message = f"token_ids must be in \\[0, {vocab_size}\\)"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signatures["serving_default"](token_ids=tf.constant([[1, bad_id]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signatures["step"](
            token_ids=tf.constant([bad_id]),
            h=tf.zeros((1, 1, 32)),
            c=tf.zeros((1, 1, 32)),
        )


@pytest.mark.parametrize("temperature", [float("nan"), float("inf")])
def test_a_non_finite_temperature_is_an_invalid_argument(exported, temperature):
    signatures = tf.saved_model.load(exported).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        call_generate(signatures, 1, temperature=temperature)


def test_saved_model_cli_lists_the_documented_signatures(exported, run_parts):
    vocab_size = len(run_parts[3])
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", exported, "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    text = shown.stdout
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in text
    blocks = dict(
        (block.split("'")[0], block)
        for block in text.split("signature_def['")[1:]
    )
    assert (
        "dtype: DT_INT32\n        shape: (-1, -1)\n        name: "
        "serving_default_token_ids" in blocks["serving_default"]
    )
    assert f"shape: (-1, -1, {vocab_size})" in blocks["serving_default"]
    assert "dtype: DT_STRING\n        shape: (-1)" in blocks["score"]
    assert "shape: (-1, -1, -1)" in blocks["step"]
    assert "dtype: DT_INT64\n        shape: ()" in blocks["generate"]


def test_warmup_requests_match_the_signatures(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    signatures = tf.saved_model.load(exported).signatures
    path = os.path.join(exported, WARMUP_FILE)
    seen = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        name = request.model_spec.signature_name
        assert request.model_spec.name == "tiny"
        signature = signatures[name]
        specs = signature.structured_input_signature[1]
        assert set(request.inputs) == set(specs)
        inputs = {
            key: tf.make_ndarray(proto) for key, proto in request.inputs.items()
        }
        for key, value in inputs.items():
            assert tf.as_dtype(value.dtype) == specs[key].dtype
        signature(**{key: tf.constant(value) for key, value in inputs.items()})
        seen.append(name)
    assert seen == list(SIGNATURES)


def test_versions_are_numbered_and_never_overwritten(run_parts, tmp_path):
    _, _, model, vocabulary, _ = run_parts
    root = str(tmp_path)
    first = export_for_serving(model, vocabulary.words, root, "lm")
    second = export_for_serving(model, vocabulary.words, root, "lm")
    assert (os.path.basename(first), os.path.basename(second)) == ("1", "2")
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_for_serving(model, vocabulary.words, root, "lm", version=2)
    assert sorted(os.listdir(os.path.join(root, "lm"))) == ["1", "2"]


def test_an_interrupted_export_leaves_no_version_folder(
    run_parts, tmp_path, monkeypatch
):
    _, _, model, vocabulary, _ = run_parts

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "write_warmup_requests", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_for_serving(model, vocabulary.words, str(tmp_path), "lm")
    assert os.listdir(tmp_path / "lm") == []


def test_export_and_generate_command_lines(run_parts, tmp_path, capsys):
    run_dir = run_parts[0]
    root = str(tmp_path / "saved")
    arguments = [
        "--run",
        run_dir,
        "--export-root",
        root,
        "--name",
        "cli",
        "--version",
        "3",
    ]
    assert export_cli.main(arguments) == 0
    path = capsys.readouterr().out.strip()
    assert path == os.path.join(root, "cli", "3")
    assert export_cli.main(arguments) == 2
    assert "never overwritten" in capsys.readouterr().err

    texts = []
    for source in (
        ["--saved-model", path],
        ["--saved-model", path],
        ["--run", run_dir],
    ):
        generate_cli.main(
            [
                *source,
                "--prompt",
                "the market",
                "--seed",
                "4",
                "--max-tokens",
                "8",
            ]
        )
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] == texts[2]
    assert texts[0].startswith("the market ")


def test_load_run_names_a_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="best.keras"):
        RunDirectory(str(tmp_path)).load_finished()


LONG_TEXTS = [
    "the company said it expects higher sales\nthe market rose " * 3,
    "",
    "zzyzx the stock fell " * 5,
    "a bank",
]


def test_scoring_in_time_chunks_equals_one_pass(run_parts, monkeypatch):
    """Chunks of 3 steps carry the states: the answers stay the same."""
    _, _, model, vocabulary, twin = run_parts
    texts = tf.constant(LONG_TEXTS)
    prompts = tf.constant(LONG_TEXTS[::-1])
    one_pass = LanguageModelServer(model, vocabulary.words)
    monkeypatch.setattr(
        request_limits, "CHUNK_LOG_PROBS", 3 * len(LONG_TEXTS) * len(vocabulary)
    )
    chunked = LanguageModelServer(model, vocabulary.words)
    steps = request_limits.chunk_length(len(LONG_TEXTS), len(vocabulary))
    assert int(steps) == 3

    whole = one_pass.function("score")(texts, tf.constant(False))
    parts = chunked.function("score")(texts, tf.constant(False))
    np.testing.assert_array_equal(parts["token_count"], whole["token_count"])
    assert max(whole["token_count"].numpy()) > 10 * 3  # many chunks
    np.testing.assert_allclose(
        parts["log_likelihood"], whole["log_likelihood"], rtol=0, atol=1e-5
    )
    for text, value in zip(
        LONG_TEXTS, parts["log_likelihood"].numpy(), strict=True
    ):
        expected, _ = reference_score(twin, vocabulary, text)
        assert value == pytest.approx(expected, rel=1e-5)

    for name, arguments in (
        ("next_words", (prompts, tf.constant(5), tf.constant(False))),
        (
            "generate",
            (prompts, 8, 1.0, 10, tf.constant(3, tf.int64), tf.constant(False)),
        ),
    ):
        expected = one_pass.function(name)(*arguments)
        got = chunked.function(name)(*arguments)
        for key in expected:
            if expected[key].dtype == tf.float32:
                np.testing.assert_allclose(got[key], expected[key], atol=1e-6)
            else:
                np.testing.assert_array_equal(got[key], expected[key])


def test_a_request_above_the_limits_is_refused_naming_them(
    exported, run_parts, monkeypatch
):
    vocabulary = run_parts[3]
    signatures = tf.saved_model.load(exported).signatures
    words = " ".join(["the"] * request_limits.MAX_REQUEST_TOKENS)  # +1 <eos>
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="score: at most 200000 token positions per request",
    ):
        signatures["score"](
            sentences=tf.constant([words]), use_cache=tf.constant(False)
        )
    most = request_limits.MAX_LOG_PROBS // len(vocabulary)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=f"serving_default: at most {most} token positions",
    ):
        signatures["serving_default"](
            token_ids=tf.zeros((1, most + 1), tf.int32)
        )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"next_words: at most {most} rows"
    ):
        signatures["next_words"](
            prompts=tf.constant([""] * (most + 1)),
            k=tf.constant(1),
            use_cache=tf.constant(False),
        )
    zeros = tf.zeros((1, most + 1, 32))
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=f"step: at most {most} rows"
    ):
        signatures["step"](
            token_ids=tf.zeros([most + 1], tf.int32), h=zeros, c=zeros
        )

    # At the limit a request is answered; one token more is refused.
    monkeypatch.setattr(request_limits, "MAX_REQUEST_TOKENS", 12)
    score = LanguageModelServer(run_parts[2], vocabulary.words).function(
        "score"
    )
    two_texts = tf.constant(["a b c d e", "the"])  # 2 x (5 words + <eos>)
    assert score(two_texts, tf.constant(False))[
        "token_count"
    ].numpy().tolist() == [6, 2]
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 12"):
        score(tf.constant(["a b c d e f", "the"]), tf.constant(False))


def serving_requests():
    """One request per signature, `generate` with a fixed seed."""
    zeros, off = tf.zeros((1, 2, 32)), tf.constant(False)
    return {
        "serving_default": dict(token_ids=tf.constant(TOKEN_IDS)),
        "score": dict(sentences=tf.constant(SENTENCES), use_cache=off),
        "next_words": dict(
            prompts=tf.constant(["the stock", ""]),
            k=tf.constant(5),
            use_cache=off,
        ),
        "step": dict(token_ids=tf.constant([1, 2]), h=zeros, c=zeros),
        "generate": dict(
            prompts=tf.constant(["the market", "a"]),
            max_tokens=tf.constant(12),
            temperature=tf.constant(1.0),
            top_k=tf.constant(20),
            seed=tf.constant(7, tf.int64),
            use_cache=off,
        ),
    }


def test_eight_threads_get_the_serial_answers(exported):
    signatures = tf.saved_model.load(exported).signatures
    requests = serving_requests()
    serial = {
        name: {
            key: value.numpy()
            for key, value in signatures[name](**inputs).items()
        }
        for name, inputs in requests.items()
    }
    names = list(requests)
    mismatches = []

    def client(index):
        for round_ in range(6):
            for offset in range(len(names)):  # each thread its own order
                name = names[(index + round_ + offset) % len(names)]
                answer = signatures[name](**requests[name])
                for key, expected in serial[name].items():
                    if not np.array_equal(answer[key].numpy(), expected):
                        mismatches.append((index, round_, name, key))
        return index

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(client, range(8))) == list(range(8))
    assert mismatches == []


def test_the_serving_benchmarks_measure_every_row(exported, tmp_path):
    path = str(tmp_path / "concurrency.json")
    serving_concurrency.main(
        ["--saved-model", exported, "--clients", "1,2", "--seconds", "0.2",
         "--json", path]
    )  # fmt: skip
    rows = json.load(open(path))["rows"]
    assert [(row["signature"], row["clients"]) for row in rows] == [
        (name, clients)
        for name in ("score", "next_words", "step")
        for clients in (1, 2)
    ]
    for row in rows:
        assert row["requests"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    rows = serving_memory.main(["--saved-model", exported, "--tokens", "300"])
    assert rows[0]["outcome"] == "ok: 300 tokens"
    assert rows[0]["peak_after_mib"] >= rows[0]["peak_before_mib"] > 0


def test_a_model_trained_in_bfloat16_exports_in_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        # Trained with oneDNN's fused LSTM: the export keeps the portable
        # loop of core ops, which stock TF Serving runs.
        trained = build_language_model(40, 8, 8, use_onednn=True)
        trained(np.zeros((1, 3), np.int32), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    words = ["<unk>", "<eos>", *[f"w{i}" for i in range(38)]]
    path = export_for_serving(trained, words, str(tmp_path), "bf16")
    twin = build_language_model(40, 8, 8)
    twin.set_weights(trained.get_weights())
    ids = np.array([[1, 5, 7, 2]], np.int32)
    served = tf.saved_model.load(path).signatures["serving_default"]
    np.testing.assert_allclose(
        served(token_ids=tf.constant(ids))["log_probs"].numpy(),
        keras_log_probs(twin, ids),
        atol=1e-5,
    )
    graph = tmp_path / "bf16" / os.path.basename(path) / "saved_model.pb"
    assert b"OnednnLstm" not in graph.read_bytes()


def test_a_simple_rnn_run_exports_scores_and_generates(
    small_corpus_dir, tmp_path, capsys
):
    # book-simple-rnnlm's cell: one state per layer where an LSTM has two.
    run_dir = str(tmp_path / "simple")
    config = small_config(
        small_corpus_dir,
        embedding_dim=16,
        hidden_units=16,
        rnn_cell="simple_rnn",
        learning_rate=1.0,
    )
    run(config, run_dir, verbose=0)
    path = export_cli.export_run(run_dir, str(tmp_path / "saved"), "simple")
    model, vocabulary = RunDirectory(run_dir).load_finished()
    twin = build_language_model(
        len(vocabulary),
        16,
        16,
        num_layers=config.num_layers,
        tie_weights=config.tie_weights,
        rnn_cell="simple_rnn",
    )
    twin.set_weights(model.get_weights())
    signatures = tf.saved_model.load(path).signatures
    text = SENTENCES[0]
    score = signatures["score"](
        sentences=tf.constant([text]), use_cache=tf.constant(False)
    )
    expected, tokens = reference_score(twin, vocabulary, text)
    assert int(score["token_count"][0]) == tokens
    assert float(score["log_likelihood"][0]) == pytest.approx(
        expected, rel=1e-5
    )
    # One step from zero states, as the model's first position reads it.
    zeros = tf.zeros((config.num_layers, 1, 16))
    step = signatures["step"](token_ids=tf.constant([1]), h=zeros, c=zeros)
    np.testing.assert_allclose(
        step["log_probs"].numpy()[0],
        keras_log_probs(twin, np.array([[1]]))[0, 0],
        rtol=1e-5,
        atol=1e-6,
    )
    capsys.readouterr()
    arguments = ["--run", run_dir, "--prompt", "the", "--max-tokens", "5"]
    assert generate_cli.main(arguments) == 0
    assert capsys.readouterr().out.strip().startswith("the")
