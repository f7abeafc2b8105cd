"""The neural cache of the export: a request's own text, remembered.

With `use_cache`, `score`, `next_words`, `generate` and `complete` mix
the model's distribution with the continuous cache (Grave et al. 2016)
over each text's own earlier pairs `(h_i, x_{i+1})`, never another
text's, with the settings `training.evaluate` chose on validation
(docs/serving.md, "The neural cache").
"""

import tensorflow as tf

from keras_lstm_scratch.evaluation import neural_cache
from keras_lstm_scratch.serving import request_limits


class ServedCache:
    """The cache reading of a `LanguageModelServer`.

    Args:
        server: The `LanguageModelServer` whose layers run the text.
        settings: A `NeuralCache`, or `None` for an export without one
            (`use_cache=true` is then an `InvalidArgument`).
    """

    def __init__(self, server, settings):
        self.server = server
        self.settings = settings

    def checks(self, signature, use_cache, rows):
        """Refuses `use_cache` without settings, or a cache of more than
        `MAX_LOG_PROBS` numbers (rows x window x units)."""
        if self.settings is None:
            return [
                tf.debugging.assert_equal(
                    use_cache,
                    False,
                    message=f"{signature}: this export has no neural cache "
                    "settings; call with use_cache=false, or run python -m "
                    "training.evaluate --run RUN and export the run again",
                )
            ]
        window, units = self.settings.window, self.server.units
        most = max(request_limits.MAX_LOG_PROBS // (window * units), 1)
        cached_rows = tf.where(use_cache, tf.cast(rows, tf.int64), 0)
        return [
            tf.debugging.assert_less_equal(
                cached_rows,
                tf.constant(most, tf.int64),
                message=f"{signature}: at most {most} texts per request with "
                f"use_cache (a cache of {window} x {units} numbers each); "
                "split the request",
            )
        ]

    def either(self, use_cache, cached, static):
        """`cached()` when `use_cache` (and the export has a cache), else
        `static()`."""
        if self.settings is None:
            return static()
        return tf.cond(use_cache, cached, static)

    def chunk_length(self, rows):
        """Time steps per chunk: at most the window, and `CHUNK_LOG_PROBS`
        numbers of logits and cache scores together."""
        window = self.settings.window
        values = self.server.vocab_size + 2 * window
        return tf.minimum(request_limits.chunk_length(rows, values), window)

    def empty(self, rows, window=None):
        window = self.settings.window if window is None else window
        return neural_cache.empty_memory(rows, window, self.server.units)

    def read_prompts(self, signature, prompts):
        """`(logits, h, c, memory)` after each prompt, the logits mixed
        with the cache of the prompt's own pairs."""
        server = self.server
        ids = server.tokenize(prompts, end_with_eos=False)
        dense, mask, _ = server.dense_request(signature, ids)
        rows = tf.shape(dense)[0]
        # The pair of position t is (h_t, x_{t+1}): the prompt's last token
        # has no pair yet.
        next_ids = tf.concat([dense[:, 1:], tf.zeros([rows, 1], tf.int32)], 1)
        has_next = tf.concat([mask[:, 1:], tf.zeros([rows, 1], tf.bool)], 1)

        def remember(outputs, start, end, memory):
            return neural_cache.advance_memory(
                memory, outputs, next_ids[:, start:end], has_next[:, start:end]
            )

        h, c, memory = server.run_chunks(
            dense,
            mask,
            remember,
            self.empty(rows),
            length=self.chunk_length(rows),
        )
        logits = self.mixed_logits(server.projection(h[-1]), h[-1], memory)
        return logits, h, c, memory

    def log_likelihood(self, dense, mask, targets):
        """Each row's summed log-probability of its `targets`, mixed with
        the cache over its own earlier pairs, in chunks that carry it."""
        weights = tf.cast(mask, tf.float32)
        rows = tf.shape(dense)[0]

        def add_chunk(outputs, start, end, totals):
            log_likelihood, memory = totals
            chunk_targets = targets[:, start:end]
            chunk_mask = mask[:, start:end]
            mixed = self.mixed_target_log_probs(
                outputs, chunk_targets, chunk_mask, memory
            )
            chunk = tf.reduce_sum(mixed * weights[:, start:end], 1)
            memory = neural_cache.advance_memory(
                memory, outputs, chunk_targets, chunk_mask
            )
            return log_likelihood + chunk, memory

        _, _, (log_likelihood, _) = self.server.run_chunks(
            dense,
            mask,
            add_chunk,
            (tf.zeros([rows]), self.empty(rows)),
            length=self.chunk_length(rows),
        )
        return log_likelihood

    def mixed_target_log_probs(self, outputs, targets, mask, memory):
        """A chunk's target log-probabilities, model and cache mixed."""
        model_log_probs = self.server.target_log_probs(outputs, targets)
        probs, has_pairs = neural_cache.target_cache_probs(
            outputs,
            tf.concat([memory[0], outputs], axis=1),
            tf.concat([memory[1], targets], axis=1),
            tf.concat([memory[2], mask], axis=1),
            targets,
            self.settings.theta,
        )
        return neural_cache.mix_log_probs(
            model_log_probs, probs, has_pairs, self.settings.interpolation
        )

    def mixed_logits(self, logits, query, memory):
        """Logits of `(1 - lambda) p_model + lambda p_cache` for one query
        per row (`p_model` alone where the cache is still empty)."""
        probs, has_pairs = neural_cache.cache_distribution(
            query, *memory, self.settings.theta, self.server.vocab_size
        )
        interpolation = self.settings.interpolation
        mixed = tf.math.log(
            (1 - interpolation) * tf.nn.softmax(logits) + interpolation * probs
        )
        return tf.where(has_pairs[:, None], mixed, logits)
