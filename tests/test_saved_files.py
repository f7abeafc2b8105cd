"""`.keras` files saved by an earlier version keep loading and predicting.

`tests/fixtures/` holds two small compiled models saved by version 0.2.0
(commit 9e67d6b, before the package was grouped into `layers/`, `losses/`,
`metrics/`, ...) with their predictions: `tied_fixture` (every
`build_language_model` option: tied embedding, word dropout, locked
dropout, two weight-dropped `TimeLSTM`s, AR/TAR, `AveragedSGD`) and
`cell_fixture` (`keras.layers.RNN(LSTMCell)`, `WordDropout`,
`OutputProjection`, `GlobalBatchClippedAdam`), both with
`SparseSoftmaxCrossEntropy` and `Perplexity`.
"""

import os

import keras
import numpy as np
import pytest

import keras_lstm_scratch as kls

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
SAVED = np.load(os.path.join(FIXTURES, "saved-outputs.npz"))


def load_fixture(name):
    return keras.saving.load_model(os.path.join(FIXTURES, f"{name}.keras"))


@pytest.mark.parametrize("name", ["tied_fixture", "cell_fixture"])
def test_a_file_saved_before_predicts_the_same(name):
    model = load_fixture(name)
    logits = model.predict(SAVED["tokens"], verbose=0)
    np.testing.assert_allclose(logits, SAVED[name], rtol=1e-5, atol=1e-6)


def test_the_files_load_as_the_package_classes():
    tied = load_fixture("tied_fixture")
    cell = load_fixture("cell_fixture")
    layer_types = {type(layer) for layer in tied.layers + cell.layers}
    assert {
        kls.TiedEmbedding,
        kls.WordDropout,
        kls.TimeLSTM,
        kls.ActivationRegularization,
        kls.OutputProjection,
    } <= layer_types
    (rnn,) = [x for x in cell.layers if type(x) is keras.layers.RNN]
    assert type(rnn.cell) is kls.LSTMCell
    assert type(tied.optimizer) is kls.AveragedSGD
    assert type(cell.optimizer) is kls.GlobalBatchClippedAdam
    for model in (tied, cell):
        assert type(model.loss) is kls.SparseSoftmaxCrossEntropy


@pytest.mark.parametrize("name", ["tied_fixture", "cell_fixture"])
def test_a_loaded_file_evaluates_its_saved_logits(name):
    model = load_fixture(name)
    tokens = SAVED["tokens"]
    targets = np.roll(tokens, -1, axis=1)
    logits = SAVED[name].astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, targets[..., None], -1).mean()
    results = model.evaluate(tokens, targets, verbose=0, return_dict=True)
    assert results["perplexity"] == pytest.approx(np.exp(nll), rel=1e-5)
