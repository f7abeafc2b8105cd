"""Choosing the next token of `complete` and `generate`, in-graph: the
repetition penalty, temperature, top-k, top-p and a draw that depends on
the row's distribution, prompt, sample and seed, never on its place.

`keras_hub.samplers` is not used: its samplers draw with a stateful
`SeedGenerator` (a variable advanced on every call), so a served request
could not be reproduced from its seed nor drawn independently of the
other rows, and they run their own loop over a fixed-length prompt where
`generate` carries LSTM states and stops rows one by one.
"""

import dataclasses

import tensorflow as tf

FILTERED = -1e9  # the logit of a token left out by top-k or top-p


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """How `generate` chooses tokens (the request's scalars).

    Args:
        temperature: `<= 0` picks the most likely token (greedy).
        top_k: `> 0`: only the `top_k` most likely tokens.
        top_p: `< 1`: only the most likely tokens whose probabilities
            together first reach `top_p` (nucleus sampling, Holtzman et
            al. 2020), after top-k; `None`: off, no op in the graph.
        repetition_penalty: `> 1` makes each token already generated in
            the row less likely (CTRL, Keskar et al. 2019); 1 or `None`:
            off (`None`: no op in the graph).
        seed: The request's seed.
    """

    temperature: tf.Tensor
    top_k: tf.Tensor
    top_p: tf.Tensor
    repetition_penalty: tf.Tensor
    seed: tf.Tensor


def penalize_repetition(logits, seen, penalty):
    """CTRL's penalty on the tokens `seen` `(rows, vocab)` so far.

    A seen token's logit `x` becomes `x / penalty` where `x > 0` and `x *
    penalty` otherwise, so that a penalty above 1 always lowers it (CTRL
    divides; the sign rule keeps that true for negative logits, as
    Hugging Face's `RepetitionPenaltyLogitsProcessor` does).
    """
    penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(seen, penalized, logits)


def keep_top_k(scaled, top_k):
    """`scaled` with all but the `top_k` largest of each row filtered
    (`top_k <= 0`: all kept; ties with the k-th are kept)."""
    kth = tf.math.top_k(scaled, k=tf.maximum(top_k, 1)).values[:, -1:]
    drop = tf.logical_and(top_k > 0, scaled < kth)
    return tf.where(drop, FILTERED, scaled)


def keep_top_p(scaled, top_p):
    """`scaled` with each row cut to its nucleus: the most likely tokens
    whose probabilities, largest first, first sum to `top_p` or more (the
    most likely always stays; ties with the last kept are kept)."""
    ordered = tf.sort(scaled, axis=-1, direction="DESCENDING")
    probs = tf.nn.softmax(ordered)
    before = tf.math.cumsum(probs, axis=-1, exclusive=True)
    kept = tf.where(before < top_p, ordered, ordered.dtype.max)
    smallest_kept = tf.reduce_min(kept, axis=-1, keepdims=True)
    return tf.where(scaled < smallest_kept, FILTERED, scaled)


def draw(logits, uniforms):
    """One token per row from `softmax(logits)`, by inverting the CDF at
    `uniforms` `(rows,)` in [0, 1).

    The arithmetic of `tf.random.stateless_categorical`'s CPU kernel
    (float64 CDF of `exp(logit - max)`, the first entry above `u *
    total`), so that with its first uniform a row gets the token that op
    gives a one-row batch: the answer of exports before rows were drawn
    independently.
    """
    logits = tf.cast(logits, tf.float64)
    weights = tf.exp(logits - tf.reduce_max(logits, axis=-1, keepdims=True))
    cdf = tf.math.cumsum(weights, axis=-1)
    target = uniforms[:, None] * cdf[:, -1:]
    index = tf.searchsorted(cdf, target, side="right", out_type=tf.int32)
    return tf.minimum(index[:, 0], tf.shape(logits)[-1] - 1)


def row_uniforms(seed, index, samples, prompts=None):
    """The uniform in [0, 1) of each row at step `index`.

    With `prompts` (`complete`): a 53-bit hash of the row's prompt, its
    sample number (`samples`), `seed` and `index`, so each prompt and
    sample draws on its own numbers. Without (`generate`, as the exports
    before `complete`): the `j`-th of the stateless stream `(seed,
    index)` for a row of sample `j`, shared by the rows of different
    prompts, which keeps a one-prompt request's answer as it was.
    """
    if prompts is not None:
        key = tf.strings.join(
            [
                prompts,
                tf.strings.as_string(samples),
                tf.strings.as_string(seed),
                tf.strings.as_string(index),
            ],
            separator="\x1f",
        )
        hashed = tf.strings.to_hash_bucket_fast(key, 2**53)
        return tf.cast(hashed, tf.float64) / 2**53
    count = tf.reduce_max(samples) + 1
    stream = tf.random.stateless_uniform(
        [count],
        seed=tf.stack([seed, tf.cast(index, tf.int64)]),
        dtype=tf.float64,
    )
    return tf.gather(stream, samples)


def choose(logits, seen, index, samples, options, prompts=None):
    """Step `index`'s token of each row.

    Args:
        logits: `(rows, vocab)` next-token logits.
        seen: `(rows, vocab)` bool, the tokens each row generated so far.
        index: The step, from 0.
        samples: `(rows,)` int32, which sample of its prompt each row is.
        options: `SamplingOptions`.
        prompts: `(rows,)` each row's prompt, to draw each prompt's
            sample on its own numbers (`row_uniforms`); `None`: as
            `generate` always drew.

    Returns:
        `(rows,)` int32 token ids.
    """
    if options.repetition_penalty is not None:
        logits = penalize_repetition(logits, seen, options.repetition_penalty)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    scaled = logits / tf.maximum(options.temperature, 1e-6)
    filtered = keep_top_k(scaled, options.top_k)
    if options.top_p is not None:
        filtered = tf.cond(
            options.top_p < 1.0,
            lambda: keep_top_p(filtered, options.top_p),
            lambda: filtered,
        )
    uniforms = row_uniforms(options.seed, index, samples, prompts)
    sampled = draw(filtered, uniforms)
    return tf.where(options.temperature > 0, sampled, greedy)
