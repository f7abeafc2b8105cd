"""Dynamic evaluation: the model keeps learning from the text it has scored.

Krause, Kahembwe, Murray and Renals, 2018, "Dynamic Evaluation of Neural
Sequence Models" (https://arxiv.org/abs/1709.07432). The stream is read in
segments of `segment_length` tokens; each segment is scored first, then
its loss takes one gradient step on a copy of the weights, so the next
segment is scored by a model that has adapted to the text so far. A score
never depends on its own token or on anything after it.

Two update rules, for each weight `w` with trained value `w0`:

```
"sgd": w += -learning_rate * g                + decay * (w0 - w)
"rms": w += -learning_rate * g / (rms + eps)  + decay * r * (w0 - w)
```

where `g` is the segment's gradient. The RMS rule (the paper's "RMS with
a global prior") divides by `rms`, the root mean square of the weight's
gradient over training text (`gradient_rms`), and pulls each weight back
at a rate `r = rms / sum(mean(rms) of every weight)`, at most
`1 / decay`, so the weights that training moved most may move most here.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch.argument_checks import (
    check_non_negative,
    check_positive_int,
)
from keras_lstm_scratch.data.batching import TBPTTLayout, count_targets
from keras_lstm_scratch.evaluation.stream_model import (
    StreamModel,
    StreamScores,
    check_stream,
    target_log_probs,
)

METHODS = ("sgd", "rms")


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class DynamicEvaluation:
    """Scores a stream while adapting a copy of the model to it.

    The model's own weights never change: each call adapts a fresh float32
    copy (`StreamModel`) and throws it away. Dropout and the other
    training-time layers stay off while adapting.

    Args:
        segment_length: Positive integer, tokens scored between two
            gradient steps (Krause et al.: 5 to 20 for PTB words).
        learning_rate: Non-negative float; 0 gives the static scores.
        decay: Non-negative float, the pull back toward the trained
            weights per step (the paper's lambda); 0 lets them drift.
        method: `"sgd"` or `"rms"` (needs `gradient_rms`).
        epsilon: Positive float added to `rms` in the RMS rule.

    Call arguments:
        model: A model from `build_language_model`.
        ids: 1-D int array, the stream (at least 2 ids).
        gradient_rms: For `method="rms"`: `gradient_rms(model, ...)`.
        keep_hidden: Also return the adapting model's top-layer hidden
            vectors (for a `NeuralCache` on top).
        verbose: Show a progress bar.

    Returns:
        A `StreamScores` over `ids[1:]`.

    Example:

    >>> dynamic = DynamicEvaluation(segment_length=20, learning_rate=0.5)
    >>> scores = dynamic(model, test_ids)
    >>> scores.perplexity
    """

    def __init__(
        self,
        segment_length=20,
        learning_rate=0.5,
        decay=0.0,
        method="sgd",
        epsilon=1e-3,
    ):
        self.segment_length = check_positive_int(
            "segment_length", segment_length
        )
        if method not in METHODS:
            raise ValueError(
                f"method must be one of {METHODS}; received method={method!r}."
            )
        if not epsilon > 0:
            raise ValueError(
                f"epsilon must be > 0; received epsilon={epsilon!r}."
            )
        self.learning_rate = check_non_negative("learning_rate", learning_rate)
        self.decay = check_non_negative("decay", decay)
        self.method = method
        self.epsilon = float(epsilon)

    def get_config(self):
        return {
            "segment_length": self.segment_length,
            "learning_rate": self.learning_rate,
            "decay": self.decay,
            "method": self.method,
            "epsilon": self.epsilon,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __call__(
        self, model, ids, gradient_rms=None, keep_hidden=True, verbose=False
    ):
        check_stream("ids", ids)
        if self.method == "rms" and gradient_rms is None:
            raise ValueError(
                "method='rms' divides each step by the gradient's root mean "
                "square over training text; pass "
                "gradient_rms=gradient_rms(model, train_ids)."
            )
        stream = StreamModel(model)
        step = self.adaptation_step(stream, gradient_rms)
        # One stream in segments, as the scoring loop lays it out (padded).
        layout = TBPTTLayout(ids, 1, self.segment_length, pad=True)
        progress = keras.utils.Progbar(
            layout.num_windows, verbose=int(bool(verbose)), unit_name="segment"
        )
        states = stream.zero_states(1)
        log_probs, hidden = [], []
        for index in range(layout.num_windows):
            inputs, targets, weights = layout.window(index)
            segment_hidden, segment_log_probs, states = step(
                inputs, targets, weights, states
            )
            log_probs.append(segment_log_probs.numpy()[0])
            if keep_hidden:
                hidden.append(segment_hidden.numpy()[0])
            progress.update(index + 1)
        count = count_targets(ids)  # the padding of the last segment cut
        return StreamScores(
            targets=np.asarray(ids[1:], np.int32),
            log_probs=np.concatenate(log_probs)[:count].astype(np.float64),
            hidden=np.concatenate(hidden)[:count] if keep_hidden else None,
        )

    def adaptation_step(self, stream, gradient_rms):
        """The compiled step: score a segment, then update `stream`'s
        variables from that segment's loss."""
        variables = stream.trainable_variables
        trained = [tf.constant(variable.numpy()) for variable in variables]
        scales = self.update_scales(variables, gradient_rms)

        @tf.function(reduce_retracing=True)
        def step(inputs, targets, weights, states):
            with tf.GradientTape() as tape:
                hidden, logits, new_states = stream(inputs, states)
                log_probs = target_log_probs(logits, targets)
                loss = -tf.reduce_sum(log_probs * weights) / tf.reduce_sum(
                    weights
                )
            gradients = tape.gradient(loss, variables)
            for variable, gradient, start, (step_scale, pull) in zip(
                variables, gradients, trained, scales, strict=True
            ):
                gradient = tf.convert_to_tensor(gradient)
                variable.assign_add(
                    -self.learning_rate * gradient * step_scale
                    + pull * (start - variable)
                )
            return (
                hidden,
                log_probs,
                tf.nest.map_structure(tf.stop_gradient, new_states),
            )

        return step

    def update_scales(self, variables, gradient_rms):
        """`(step_scale, pull)` per variable: 1 and `decay` for SGD;
        `1 / (rms + epsilon)` and `decay * r` for the RMS rule."""
        if self.method == "sgd":
            return [(1.0, self.decay) for _ in variables]
        if len(gradient_rms) != len(variables):
            raise ValueError(
                f"gradient_rms holds {len(gradient_rms)} arrays; the model "
                f"has {len(variables)} trainable variables. Compute it with "
                "gradient_rms(model, train_ids) for this model."
            )
        total = sum(float(np.mean(rms)) for rms in gradient_rms)
        scales = []
        for rms in gradient_rms:
            rate = rms / total
            if self.decay > 0:
                rate = np.minimum(rate, 1.0 / self.decay)
            scales.append(
                (
                    tf.constant(1.0 / (rms + self.epsilon), tf.float32),
                    tf.constant(self.decay * rate, tf.float32),
                )
            )
        return scales


def gradient_rms(model, train_ids, segment_length=20, streams=20, segments=200):
    """Root mean square of each weight's gradient over training text.

    What the RMS rule of `DynamicEvaluation` divides by. The text is read
    as `streams` parallel streams (as in training) for `segments` windows
    of `segment_length` tokens, states carried across windows; each
    window's gradient of its mean loss counts once.

    Args:
        model: A model from `build_language_model`.
        train_ids: 1-D int array of training text.
        segment_length, streams, segments: Positive integers; at most
            `streams * segment_length * segments` tokens are read.

    Returns:
        A list of float32 arrays, one per `StreamModel(model)`
        trainable variable, shaped as it.

    Raises:
        InvalidInputError: (a `ValueError`) if `train_ids` cannot fill one
            window, `streams * segment_length + 1` tokens.
    """
    segment_length = check_positive_int("segment_length", segment_length)
    streams = check_positive_int("streams", streams)
    segments = check_positive_int("segments", segments)
    stream = StreamModel(model)
    variables = stream.trainable_variables
    # The training text laid out as in training: `streams` rows, windows of
    # `segment_length`, read from the start.
    layout = TBPTTLayout(train_ids, streams, segment_length)

    @tf.function(reduce_retracing=True)
    def squared_gradients(inputs, targets, states):
        with tf.GradientTape() as tape:
            _, logits, new_states = stream(inputs, states)
            loss = -tf.reduce_mean(target_log_probs(logits, targets))
        gradients = tape.gradient(loss, variables)
        squares = [tf.square(tf.convert_to_tensor(g)) for g in gradients]
        return squares, tf.nest.map_structure(tf.stop_gradient, new_states)

    totals = [np.zeros(variable.shape, np.float64) for variable in variables]
    states = stream.zero_states(streams)
    count = min(segments, layout.num_windows)
    for index in range(count):
        inputs, targets, _ = layout.window(index)
        squares, states = squared_gradients(inputs, targets, states)
        for total, square in zip(totals, squares, strict=True):
            total += square.numpy()
    return [np.sqrt(total / count).astype(np.float32) for total in totals]
