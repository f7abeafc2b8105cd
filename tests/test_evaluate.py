"""`python -m training.evaluate`: adaptive evaluation of a finished run."""

import dataclasses
import json
import math
import os
import textwrap

import numpy as np
import pytest

from keras_lstm_scratch.evaluation import StreamModel, score_stream
from keras_lstm_scratch.serving import read_neural_cache
from tests.fresh_process import run_tensorflow_only
from tests.helpers import small_config
from training import evaluate as evaluate_module
from training.data import load_corpus
from training.evaluate import SEARCH, evaluate_run
from training.export import export_run
from training.run import run
from training.run_directory import RunDirectory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluated_run(small_corpus_dir, tmp_path_factory):
    """A small trained run and what `evaluate_run` wrote for it."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "small")
    config = small_config(small_corpus_dir, embedding_dim=32, hidden_units=32)
    results = run(config, run_dir, verbose=0)
    return run_dir, results, evaluate_run(run_dir, verbose=0)


def test_evaluation_reports_every_method_and_writes_it(evaluated_run):
    run_dir, results, report = evaluated_run
    assert RunDirectory(run_dir).load_evaluation() == json.loads(
        json.dumps(report)
    )
    # The static figure is the training run's own test figure.
    assert report["static"]["test_perplexity"] == pytest.approx(
        results["test_perplexity"], rel=1e-5
    )
    for name in ("static", "cache", "dynamic", "both"):
        assert math.isfinite(report[name]["test_perplexity"])
        assert report[name]["seconds"] >= 0
    cache = report["cache"]["settings"]
    assert cache["window"] in SEARCH["cache_window"]
    assert cache["theta"] in SEARCH["cache_theta"]
    assert cache["interpolation"] in SEARCH["cache_interpolation"]
    dynamic = report["dynamic"]["settings"]
    assert dynamic["learning_rate"] in SEARCH["dynamic_learning_rate"]
    assert dynamic["decay"] in SEARCH["dynamic_decay"]
    best_tried = min(p["valid_perplexity"] for p in report["dynamic"]["tried"])
    assert report["dynamic"]["valid_perplexity"] == best_tried
    # Each choice beats or equals the static model on validation.
    static_valid = report["static"]["valid_perplexity"]
    assert report["cache"]["valid_perplexity"] <= static_valid
    assert (
        report["both"]["valid_perplexity"]
        <= report["dynamic"]["valid_perplexity"]
    )


def test_the_test_text_never_steers_a_choice(evaluated_run, monkeypatch):
    run_dir, _, report = evaluated_run
    real_load_corpus = evaluate_module.load_corpus

    def other_test_text(config, data_dir=None):
        corpus = real_load_corpus(config, data_dir)
        rng = np.random.default_rng(0)
        return dataclasses.replace(corpus, test=rng.permutation(corpus.test))

    monkeypatch.setattr(evaluate_module, "load_corpus", other_test_text)
    other = evaluate_run(run_dir, verbose=0)
    for name in ("cache", "dynamic", "both"):
        assert other[name]["settings"] == report[name]["settings"]
        assert (
            other[name]["valid_perplexity"] == report[name]["valid_perplexity"]
        )
    assert other["static"]["test_perplexity"] != pytest.approx(
        report["static"]["test_perplexity"]
    )
    RunDirectory(run_dir).write_evaluation(report)  # as the fixture left it


def test_only_the_first_max_tokens_are_read(evaluated_run):
    run_dir, _, report = evaluated_run
    cut = evaluate_run(run_dir, verbose=0, max_tokens=60)
    model, _ = RunDirectory(run_dir).load_finished()
    test = load_corpus(RunDirectory(run_dir).load_config()).test
    assert (cut["test_tokens"], cut["valid_tokens"]) == (60, 60)
    assert cut["test_tokens_in_text"] == report["test_tokens"] > 60
    first = score_stream(StreamModel(model), test[:61])
    assert cut["static"]["test_perplexity"] == pytest.approx(
        first.perplexity, rel=1e-6
    )
    RunDirectory(run_dir).write_evaluation(report)  # as the fixture left it


SERVED_TEST_TEXT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    path, text_file, out = sys.argv[1:4]
    text = open(text_file, encoding="utf-8").read().rstrip("\\n")  # its lines
    score = tf.saved_model.load(path).signatures["score"]
    outputs = score(sentences=tf.constant([text]), use_cache=tf.constant(True))
    json.dump({
        "perplexity": float(outputs["perplexity"][0]),
        "tokens": int(outputs["token_count"][0]),
        "modules": [m for m in sys.modules if m.startswith("keras_lstm")],
    }, open(out, "w"))
    """
)


def test_the_export_serves_the_chosen_cache(
    evaluated_run, small_corpus_dir, tmp_path
):
    run_dir, _, report = evaluated_run
    exported = export_run(run_dir, str(tmp_path / "exports"))
    cache = read_neural_cache(exported)
    assert cache.get_config() == report["cache"]["settings"]
    out = str(tmp_path / "served.json")
    test_file = os.path.join(small_corpus_dir, "test.txt")
    run_tensorflow_only(SERVED_TEST_TEXT, exported, test_file, out)
    with open(out) as handle:
        served = json.load(handle)
    assert served["modules"] == []
    # Serving predicts every token of the text, the first from a leading
    # <eos>; the evaluation stream, as the training run's test figure,
    # starts at the first token. The same stream through the library:
    model, vocabulary = RunDirectory(run_dir).load_finished()
    corpus = load_corpus(RunDirectory(run_dir).load_config())
    ids = np.concatenate([[vocabulary.end_of_sentence_id], corpus.test])
    scores = score_stream(StreamModel(model), ids)
    expected = cache(scores.log_probs, scores.hidden, scores.targets)
    assert served["tokens"] == report["test_tokens"] + 1
    assert served["perplexity"] == pytest.approx(
        math.exp(-expected.mean()), rel=1e-5
    )
    # ... which differs from the command's figure by that one token.
    assert served["perplexity"] == pytest.approx(
        report["cache"]["test_perplexity"], rel=0.05
    )
