"""A model's token-weighted negative log-likelihood over a dataset."""

import keras
import tensorflow as tf
from keras import ops

from keras_lstm_scratch.language_model import reset_rnn_states
from keras_lstm_scratch.metrics.perplexity import Perplexity


class TokenNLLEvaluator:
    """Scores one model's token-weighted NLL, with its graph traced once.

    The metric and the compiled scoring step are made when the evaluator
    is, and every call reuses them: a validation pass per epoch does not
    trace (or, with XLA, compile) again. `PerplexityCallback` keeps one
    evaluator for its model; `evaluate_token_nll` makes a fresh one.

    Args:
        model: A model from token ids to logits. Under a `tf.distribute`
            strategy (`model.distribute_strategy`) every replica scores its
            own slice of each batch with its own states; the metric sums
            over the replicas. Compiled with `jit_compile=True`, the
            scoring step is compiled with XLA too.

    Call arguments:
        dataset: `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches, in stream order for a stateful model.
        reset_states: Zero stateful RNN states before and after the pass.
        verbose: 1: a progress bar, a step per batch.

    Returns:
        `(mean_nll, token_count)`: NLL per (weighted) token in nats, and
        the (weighted) number of tokens counted. Perplexity is
        `exp(mean_nll)`.

    Raises:
        ValueError: (from a call) if the dataset holds no tokens.

    Example:

    >>> evaluate = TokenNLLEvaluator(model)
    >>> mean_nll, tokens = evaluate(valid_windows)
    """

    def __init__(self, model):
        self.model = model
        self.strategy = None  # TensorFlow's, where there is one
        if keras.backend.backend() != "tensorflow":
            self.metric = Perplexity()  # scored by `score_batches`
            return
        self.strategy = model.distribute_strategy
        with self.strategy.scope():
            self.metric = Perplexity()
        jit_compile = bool(getattr(model, "jit_compile", False))

        @tf.function(jit_compile=jit_compile)
        def score(batch):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
            self.metric.update_state(
                y, self.model(x, training=False), sample_weight
            )

        @tf.function
        def distributed_score(batch):
            self.strategy.run(score, args=(batch,))

        self._distributed_score = distributed_score

    def __call__(self, dataset, reset_states=True, verbose=0):
        self.metric.reset_state()
        if reset_states:
            reset_rnn_states(self.model)
        progress = batch_progress(dataset, verbose)
        if self.strategy is None:
            self.score_batches(dataset, progress)
        else:
            batches = self.strategy.experimental_distribute_dataset(dataset)
            for batch in batches:
                self._distributed_score(batch)
                progress.add(1)
        if reset_states:
            reset_rnn_states(self.model)
        count = float(ops.convert_to_numpy(self.metric.token_count))
        if count == 0:
            raise ValueError(
                "The evaluation data gave no tokens to count; pass a non-empty "
                "dataset."
            )
        total = float(ops.convert_to_numpy(self.metric.total_nll))
        return total / count, count

    def score_batches(self, dataset, progress):
        """Adds every batch to the metric, one compiled prediction each
        (the JAX and PyTorch path; `tf.data` batches arrive as NumPy)."""
        if isinstance(dataset, tf.data.Dataset):
            dataset = dataset.as_numpy_iterator()
        for batch in dataset:
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
            logits = self.model.predict_on_batch(x)
            self.metric.update_state(y, logits, sample_weight)
            progress.add(1)


def batch_progress(dataset, verbose):
    """A `keras.utils.Progbar` over the dataset's batches (silent unless
    `verbose`)."""
    target = None
    if isinstance(dataset, tf.data.Dataset):
        cardinality = int(dataset.cardinality())
        target = cardinality if cardinality >= 0 else None
    return keras.utils.Progbar(target, verbose=verbose, unit_name="batch")


def evaluate_token_nll(model, dataset, reset_states=True, verbose=0):
    """Token-weighted mean negative log-likelihood of `model` on `dataset`.

    A one-off `TokenNLLEvaluator(model)(dataset, reset_states)`; to score
    the same model repeatedly, keep a `TokenNLLEvaluator`.

    Args:
        model: A model from token ids to logits.
        dataset: `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches, in stream order for a stateful model.
        reset_states: Zero stateful RNN states before and after the pass.
        verbose: 1: a progress bar, a step per batch.

    Returns:
        `(mean_nll, token_count)`: NLL per (weighted) token in nats, and the
        (weighted) number of tokens counted. Perplexity is `exp(mean_nll)`.

    Raises:
        ValueError: if the dataset holds no tokens.
    """
    return TokenNLLEvaluator(model)(dataset, reset_states, verbose)
