"""The one stream scorer: one stream or several, arrays or memory maps."""

import math

import keras
import numpy as np
import pytest

from keras_lstm_scratch import build_language_model, evaluate_token_nll
from keras_lstm_scratch.data import tbptt_dataset
from keras_lstm_scratch.evaluation import StreamModel, score_stream
from keras_lstm_scratch.evaluation.stream_model import (
    stream_nll,
    window_length,
)

VOCAB = 23


@pytest.fixture(scope="module")
def stream_and_text():
    keras.utils.set_random_seed(9)
    model = build_language_model(VOCAB, 8, 10, num_layers=2, dropout=0.2)
    ids = np.random.default_rng(4).integers(0, VOCAB, 157).astype(np.int32)
    return model, StreamModel(model), ids


def test_every_token_is_scored_once_in_text_order(stream_and_text):
    _, stream, ids = stream_and_text
    one = score_stream(stream, ids, window=10)
    for streams in (2, 5):
        several = score_stream(stream, ids, window=10, streams=streams)
        assert several.log_probs.shape == (len(ids) - 1,)
        assert several.hidden.shape == (len(ids) - 1, stream.units)
        np.testing.assert_array_equal(several.targets, ids[1:])
        # The first stream starts where the one stream does.
        row = math.ceil((len(ids) - 1) / streams)
        np.testing.assert_allclose(
            several.log_probs[:row], one.log_probs[:row], rtol=1e-5
        )


def test_each_stream_reads_its_part_of_the_text_alone(stream_and_text):
    _, stream, ids = stream_and_text
    streams, window = 4, 7
    several = score_stream(stream, ids, window=window, streams=streams)
    # Each stream's length: a share of the text, in whole windows.
    row = math.ceil(math.ceil((len(ids) - 1) / streams) / window) * window
    for index in range(streams):
        start = index * row
        stop = min(start + row, len(ids) - 1)
        alone = score_stream(stream, ids[start : stop + 1], window=window)
        np.testing.assert_allclose(
            several.log_probs[start:stop], alone.log_probs, rtol=1e-5
        )


@pytest.mark.parametrize("streams", [1, 3])
def test_stream_nll_is_the_mean_of_the_kept_scores(stream_and_text, streams):
    _, stream, ids = stream_and_text
    mean_nll, count = stream_nll(stream, ids, streams, window=9)
    kept = score_stream(stream, ids, window=9, streams=streams)
    assert count == len(ids) - 1
    assert mean_nll == pytest.approx(kept.mean_nll, rel=1e-12)


def test_one_stream_is_the_keras_models_own_token_nll(stream_and_text):
    model, stream, ids = stream_and_text
    twin = build_language_model(
        VOCAB, 8, 10, num_layers=2, dropout=0.2, stateful=True, batch_size=1
    )
    twin.set_weights(model.get_weights())
    expected, count = evaluate_token_nll(
        twin, tbptt_dataset(ids, 1, 12, pad=True)
    )
    mean_nll, scored = stream_nll(stream, ids, window=12)
    assert scored == count
    assert mean_nll == pytest.approx(expected, rel=1e-5)


def test_a_memory_map_scores_as_its_array(stream_and_text, tmp_path):
    _, stream, ids = stream_and_text
    path = tmp_path / "ids.bin"
    ids.astype(np.uint8).tofile(path)
    mapped = np.memmap(path, dtype=np.uint8, mode="r")
    assert stream_nll(stream, mapped, 3, window=10) == stream_nll(
        stream, ids, 3, window=10
    )


def test_a_window_never_holds_more_logits_than_the_bound():
    assert window_length(1, 10_000) == 1000
    assert window_length(32, 10_000) == (1 << 25) // (32 * 10_000)
    assert window_length(64, 1 << 20) == 1


def test_a_stream_of_one_token_is_refused(stream_and_text):
    _, stream, _ = stream_and_text
    with pytest.raises(ValueError, match="at least 2 token ids"):
        stream_nll(stream, np.array([3]))
