"""`generate`'s loop: one token per row and step, until each row stops.

A row stops at `max_tokens`, at `<eos>` when asked, or once its generated
text holds one of the request's stop texts (matched on the text, so a
stop text may span tokens). The loop ends when every row has stopped; a
row that stopped writes `-1` from then on (its states still advance with
the others': one batch, one product per step).
"""

import dataclasses

import tensorflow as tf

from keras_lstm_scratch.evaluation import neural_cache
from keras_lstm_scratch.serving.sampling import choose

MAX_GENERATED_TOKENS = 10000  # max_tokens is clipped to [0, this]
# Compute bound of one request: rows (prompts x num_samples) x max_tokens.
MAX_GENERATED_ROW_TOKENS = 2**20
MAX_STOP_TEXTS = 16
MAX_STOP_CHARS = 256  # characters of one stop text
PADDING = -1  # token_ids after a row's stop


@dataclasses.dataclass(frozen=True)
class Stopping:
    """Where rows stop besides `max_tokens`.

    Args:
        at_eos: Scalar bool: stop a row at `<eos>` (a sentence's end for a
            word model, a line's for a character model); `None`: never
            (no op in the graph).
        texts: `(n,)` strings: stop a row once its text holds any of them;
            the text returned ends before it; `None`: none.
    """

    at_eos: tf.Tensor
    texts: tf.Tensor

    def pattern(self):
        """The stop texts as one RE2 alternation, each quoted."""
        quoted = tf.strings.regex_replace(
            self.texts, r"([.^$|?*+()\[\]{}\\])", r"\\\1"
        )
        return tf.strings.reduce_join(quoted, separator="|")

    def window(self):
        """Tokens to read back for a stop text ending in the last one:
        the longest stop text's characters and one (every token is at
        least a character, and words one more between them)."""
        lengths = tf.strings.length(self.texts, unit="UTF8_CHAR")
        return tf.reduce_max(tf.concat([lengths, [0]], 0)) + 1

    def cut(self, text):
        """`text` up to the first stop text (all of it without any)."""
        if self.texts is None:
            return text
        return tf.cond(
            tf.size(self.texts) > 0,
            lambda: tf.strings.regex_replace(
                text,
                tf.strings.join(["(?s)(?:", self.pattern(), ").*"]),
                "",
                replace_global=False,
            ),
            lambda: text,
        )


def generation_checks(
    signature, max_tokens, rows, num_samples, options, stopping
):
    """`InvalidArgument` checks of the options of `signature` (`generate`
    or `complete`): each names the input and what to send."""
    checks = [
        tf.debugging.assert_equal(
            tf.math.is_finite(options.temperature),
            True,
            message=f"{signature}: temperature must be a finite number (> 0 "
            "samples, <= 0 picks the most likely token)",
        ),
        tf.debugging.assert_less_equal(
            tf.cast(rows, tf.int64) * tf.cast(max_tokens, tf.int64),
            tf.constant(MAX_GENERATED_ROW_TOKENS, tf.int64),
            message=f"{signature}: at most {MAX_GENERATED_ROW_TOKENS} tokens "
            "per request (prompts x num_samples x max_tokens); split the "
            "request",
        ),
    ]
    if options.top_p is None:  # generate: none of complete's options
        return checks
    return checks + option_checks(signature, num_samples, options, stopping)


def option_checks(signature, num_samples, options, stopping):
    """The checks of `complete`'s own options."""

    def positive_finite(value, name, rule):
        return tf.debugging.assert_equal(
            tf.logical_and(tf.math.is_finite(value), value > 0),
            True,
            message=f"{signature}: {name} must be {rule}",
        )

    stop_texts = stopping.texts
    lengths = tf.strings.length(stop_texts, unit="UTF8_CHAR")
    return [
        tf.debugging.assert_positive(
            num_samples, message=f"{signature}: num_samples must be at least 1"
        ),
        positive_finite(
            options.top_p, "top_p", "in (0, 1] (1: no nucleus cut)"
        ),
        tf.debugging.assert_less_equal(
            options.top_p, 1.0, message=f"{signature}: top_p must be in (0, 1]"
        ),
        positive_finite(
            options.repetition_penalty,
            "repetition_penalty",
            "a positive number (1: off; above 1 lowers tokens written)",
        ),
        tf.debugging.assert_less_equal(
            tf.size(stop_texts),
            MAX_STOP_TEXTS,
            message=f"{signature}: at most {MAX_STOP_TEXTS} stop_texts",
        ),
        tf.debugging.assert_equal(
            tf.reduce_all((lengths > 0) & (lengths <= MAX_STOP_CHARS)),
            True,
            message=f"{signature}: each of stop_texts must have 1 to "
            f"{MAX_STOP_CHARS} characters",
        ),
    ]


def holds_stop_text(detokenize, tokens, index, stopping):
    """Whether the text of each row's last `stopping.window()` tokens (up
    to step `index`) holds a stop text."""
    start = tf.maximum(index + 1 - stopping.window(), 0)
    recent = tf.transpose(tokens.gather(tf.range(start, index + 1)))
    text = detokenize(tf.maximum(recent, 0))
    pattern = tf.strings.join(["(?s).*(?:", stopping.pattern(), ").*"])
    return tf.strings.regex_full_match(text, pattern)


class GenerationLoop:
    """The sampling loop of a `LanguageModelServer`.

    Args:
        server: The `LanguageModelServer` whose cells step.
        options: `SamplingOptions`.
        stopping: `Stopping`.
        use_cache: Scalar bool: mix each step's distribution with the
            neural cache (the server must have one).
        prompts: `(rows,)` each row's prompt, to draw on the prompt's own
            numbers (`sampling.row_uniforms`); `None`: as `generate`.
    """

    def __init__(self, server, options, stopping, use_cache, prompts=None):
        self.server = server
        self.options = options
        self.stopping = stopping
        self.use_cache = use_cache
        self.prompts = prompts
        # generate's loop has no stops: none of their ops is built.
        self.can_stop = not (stopping.at_eos is None and stopping.texts is None)

    def run(self, start, samples, max_tokens):
        """Runs from `start` = `(logits, h, c, memory)` after the prompts,
        a row per sample (`samples`: which sample of its prompt).

        Returns:
            `(token_ids, lengths, at_eos)`: `(rows, steps)` int32 with
            `PADDING` after each row's stop, the tokens each row wrote (the
            stopping one included), and whether a row stopped at `<eos>`.
        """
        logits, h, c, memory = start
        rows = tf.shape(logits)[0]
        # One write per step (a concat per step would copy the tokens so
        # far every step: quadratic in max_tokens).
        tokens = tf.TensorArray(
            tf.int32, size=0, dynamic_size=True, element_shape=[None]
        )
        done = tf.zeros([rows], tf.bool)
        state = (tf.constant(0), logits, h, c, memory, tokens)
        state += (tf.zeros_like(logits, tf.bool), done, done)
        invariants = tf.nest.map_structure(relaxed_shape, state)

        def more(index, *state):
            if not self.can_stop:  # generate: max_tokens steps
                return index < max_tokens
            return tf.logical_and(index < max_tokens, ~tf.reduce_all(state[6]))

        final = tf.while_loop(
            more,
            lambda *state: self.step(samples, *state),
            state,
            shape_invariants=invariants,
        )
        *_, tokens, _, _, at_eos = final
        token_ids = stacked(tokens, rows)
        lengths = tf.reduce_sum(tf.cast(token_ids != PADDING, tf.int32), 1)
        return token_ids, lengths, at_eos

    def step(
        self, samples, index, logits, h, c, memory, tokens, seen, done, at_eos
    ):
        """One loop step: choose, write, test the stops, advance."""
        token = choose(logits, seen, index, samples, self.options, self.prompts)
        if self.can_stop:
            token = tf.where(done, PADDING, token)
        tokens = tokens.write(index, token)
        if self.options.repetition_penalty is not None:
            written = tf.one_hot(token, tf.shape(seen)[1], True, False)
            seen = tf.logical_or(seen, written)
        if self.can_stop:
            is_eos = self.eos_stops(token)
            at_eos = tf.logical_or(at_eos, tf.logical_and(~done, is_eos))
            stops = tf.logical_or(is_eos, self.stops(tokens, index, token))
            done = tf.logical_or(done, stops)
        query = h[-1]  # the top layer's h that predicted `token`
        logits, h, c = self.server.run_step(tf.maximum(token, 0), h, c)
        logits, memory = self.cache_step(logits, h, memory, query, token)
        return index + 1, logits, h, c, memory, tokens, seen, done, at_eos

    def eos_stops(self, token):
        """Rows that stop at this `<eos>` (none without `at_eos`)."""
        if self.stopping.at_eos is None:
            return tf.zeros_like(token, tf.bool)
        eos = self.server.tokenizer.end_of_sentence_id
        return tf.logical_and(self.stopping.at_eos, tf.equal(token, eos))

    def stops(self, tokens, index, token):
        """Rows whose text now holds a stop text (none without texts)."""
        if self.stopping.texts is None:
            return tf.zeros_like(token, tf.bool)
        return tf.cond(
            tf.size(self.stopping.texts) > 0,
            lambda: holds_stop_text(
                self.server.tokenizer.detokenize, tokens, index, self.stopping
            ),
            lambda: tf.zeros_like(token, tf.bool),
        )

    def cache_step(self, logits, h, memory, query, token):
        """The new pair in the cache and the cache-mixed logits, with
        `use_cache`; `(logits, memory)` as they are without."""
        if not memory:
            return logits, memory

        def cached():
            rows = tf.shape(token)[0]
            new = neural_cache.advance_memory(
                memory,
                query[:, None],
                tf.maximum(token, 0)[:, None],
                tf.ones([rows, 1], tf.bool),
            )
            return self.server.cache.mixed_logits(logits, h[-1], new), new

        return tf.cond(self.use_cache, cached, lambda: (logits, memory))


def relaxed_shape(value):
    if isinstance(value, tf.TensorArray):
        return tf.TensorShape(None)
    return tf.TensorShape([None] * value.shape.rank)


def stacked(tokens, rows):
    """`(rows, steps)` from the loop's TensorArray (`(rows, 0)` if empty)."""
    return tf.cond(
        tokens.size() > 0,
        lambda: tf.transpose(tokens.stack()),
        lambda: tf.zeros([rows, 0], tf.int32),
    )
