import numpy as np
import pytest

from keras_lstm_scratch.data import count_targets, tbptt_dataset, tbptt_windows


def test_the_docstring_diagram_exactly():
    inputs, targets, weights = tbptt_windows(np.arange(13), 3, 2)
    assert inputs.tolist() == [
        [[0, 1], [4, 5], [8, 9]],
        [[2, 3], [6, 7], [10, 11]],
    ]
    assert targets.tolist() == [
        [[1, 2], [5, 6], [9, 10]],
        [[3, 4], [7, 8], [11, 12]],
    ]
    assert weights.min() == 1.0


def test_training_drops_only_the_tail_that_fills_no_window():
    # 17 tokens -> 16 pairs; 3 rows x 2 steps = 6 per window -> 2 windows.
    inputs, targets, _ = tbptt_windows(np.arange(17), 3, 2)
    assert inputs.shape == (2, 3, 2)
    assert inputs.max() == 11  # tokens 12..15 fill no whole window


def test_rows_continue_from_one_window_to_the_next():
    inputs, targets, _ = tbptt_windows(np.arange(1000), 4, 5)
    for k in range(len(inputs) - 1):
        # the state of row r carries on from token inputs[k, r, -1]
        np.testing.assert_array_equal(inputs[k + 1, :, 0], inputs[k, :, -1] + 1)
    np.testing.assert_array_equal(targets, inputs + 1)


@pytest.mark.parametrize("length", [2, 7, 13, 14, 100, 701])
def test_evaluation_counts_every_token_exactly_once(length):
    stream = np.random.default_rng(length).integers(0, 50, length)
    inputs, targets, weights = tbptt_windows(stream, 3, 4, pad=True)
    assert weights.sum() == count_targets(stream) == length - 1
    real = weights.astype(bool)
    # Read row by row, the weighted pairs are the stream's pairs in order.
    by_row = lambda a: a.transpose(1, 0, 2).reshape(-1)  # noqa: E731
    pairs_in = by_row(inputs)[by_row(real)]
    pairs_out = by_row(targets)[by_row(real)]
    np.testing.assert_array_equal(pairs_in, stream[:-1])
    np.testing.assert_array_equal(pairs_out, stream[1:])


def test_ptb_test_split_is_counted_in_full(ptb_corpus):
    dataset = tbptt_dataset(ptb_corpus.test, 20, 35, pad=True)
    counted = sum(float(w.numpy().sum()) for _, _, w in dataset)
    assert counted == len(ptb_corpus.test) - 1 == 82429


def test_a_corpus_shorter_than_one_window_is_rejected():
    with pytest.raises(ValueError, match=r"10 tokens.*batch_size \* seq_len"):
        tbptt_windows(np.arange(10), 3, 4)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        tbptt_windows(np.arange(1), 3, 4, pad=True)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="batch_size=0"):
        tbptt_windows(np.arange(100), 0, 4)
    with pytest.raises(ValueError, match=r"1-D.*\(2, 50\)"):
        tbptt_windows(np.zeros((2, 50)), 2, 4)
