"""In-graph serving functions of a trained language model.

`LanguageModelServer` holds the trained layers (the real `LSTMCell`s, the
embedding and the output projection) and the vocabulary as a lookup table,
and offers the functions that `saved_model.py` writes as SavedModel
signatures. Every function runs without Python and without this package
once saved: tokenising, looking tokens up, sampling and decoding all
happen in-graph.

Text is read as in training, as words or as characters: `GraphTokenizer`
(`graph_tokenizer.py`) applies the run's `Tokenization` in-graph. Each
line of a string ends with `<eos>`, unknown tokens become `<unk>`, and a
leading `<eos>` is the context of the first token, as in the training
stream, where every line follows an `<eos>`.
"""

import math

import keras
import tensorflow as tf

from keras_lstm_scratch.argument_checks import check_tensorflow_backend
from keras_lstm_scratch.data.tokenization import WORD_TOKENS
from keras_lstm_scratch.evaluation import neural_cache
from keras_lstm_scratch.evaluation.stream_model import (
    cell_states,
    target_log_probs,
)
from keras_lstm_scratch.language_model import computing_in_float32, model_parts
from keras_lstm_scratch.serving.graph_tokenizer import GraphTokenizer

MAX_GENERATED_TOKENS = 10000
# Per-request memory bounds (docs/serving.md, "Memory per request"):
# token positions a request may read (its texts times the longest one's
# tokens, `<eos>`s included), log-probabilities a request may hold or
# return at once, and log-probabilities computed at once while `score` and
# the prompts of `next_words` / `generate` run in time chunks that carry
# the LSTM states.
MAX_REQUEST_TOKENS = 200_000
MAX_LOG_PROBS = 2**25  # 128 MiB of float32
CHUNK_LOG_PROBS = 2**22  # 16 MiB of float32

SIGNATURES = {
    "serving_default": [
        tf.TensorSpec([None, None], tf.int32, name="token_ids"),
    ],
    "score": [
        tf.TensorSpec([None], tf.string, name="sentences"),
        tf.TensorSpec([], tf.bool, name="use_cache"),
    ],
    "next_words": [
        tf.TensorSpec([None], tf.string, name="prompts"),
        tf.TensorSpec([], tf.int32, name="k"),
        tf.TensorSpec([], tf.bool, name="use_cache"),
    ],
    "step": [
        tf.TensorSpec([None], tf.int32, name="token_ids"),
        # h and c of every layer: (num_layers, batch, units).
        tf.TensorSpec([None, None, None], tf.float32, name="h"),
        tf.TensorSpec([None, None, None], tf.float32, name="c"),
    ],
    "generate": [
        tf.TensorSpec([None], tf.string, name="prompts"),
        tf.TensorSpec([], tf.int32, name="max_tokens"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.bool, name="use_cache"),
    ],
}


class LanguageModelServer:
    """Serving functions over a trained model and its vocabulary.

    Args:
        model: A trained model from `build_language_model` (stateful or
            not; the serving functions never use its carried states).
        words: The vocabulary, a token per id; must hold `<unk>`, `<eos>`.
        tokenization: The `Tokenization` the model was trained with
            (words by default).
        cache: Optional `NeuralCache`, the settings with which `score`,
            `next_words` and `generate` read a request's own text when
            called with `use_cache=True` (docs/serving.md, "The neural
            cache"). `None`: `use_cache=True` is an `InvalidArgument`.

    Example:

    >>> server = LanguageModelServer(model, vocabulary.words)
    >>> generate = server.function("generate")
    >>> generate(tf.constant(["the market"]), 20, 1.0, 10, 0, False)["text"]
    """

    def __init__(self, model, words, tokenization=WORD_TOKENS, cache=None):
        check_tensorflow_backend(
            "LanguageModelServer builds TensorFlow functions: load the .keras "
            "file in a TensorFlow process and serve it there"
        )
        self.tokenizer = GraphTokenizer(words, tokenization)
        self.tokenization = tokenization
        self.cache = cache
        model = computing_in_float32(model)
        self.embedding, rnn_layers, self.projection = model_parts(model)
        self.cells = [layer.cell for layer in rnn_layers]
        self.state_counts = [len(cell_states(layer)) for layer in rnn_layers]
        # Stateless wrappers around the same trained cells (shared weights).
        self.sequence_layers = [
            keras.layers.RNN(cell, return_sequences=True, return_state=True)
            for cell in self.cells
        ]
        self.units = self.cells[0].units
        if any(cell.units != self.units for cell in self.cells):
            raise ValueError("Serving needs the same units in every layer.")
        self.num_layers = len(self.cells)
        self.vocab_size = len(words)
        self.words = self.tokenizer.words
        self.word_table = self.tokenizer.table

    def function(self, name):
        """The named serving function as a `tf.function` with its signature."""
        return tf.function(
            getattr(self, name),
            input_signature=SIGNATURES[name],
            autograph=False,
        )

    # --- building blocks -------------------------------------------------

    def zero_states(self, batch_size):
        shape = tf.stack([self.num_layers, batch_size, self.units])
        return tf.zeros(shape), tf.zeros(shape)

    def cell_states(self, index, h, c):
        """Layer `index`'s states: `[h, c]` of an LSTM, `[h]` of a plain
        RNN (`SimpleRNN`), whose `c` rows are carried as they came."""
        if self.state_counts[index] == 1:
            return [h[index]]
        return [h[index], c[index]]

    def new_states(self, index, states, c):
        """`(h, c)` of layer `index` from its cell's new `states`."""
        return states[0], states[1] if len(states) > 1 else c[index]

    def run_layers(self, token_ids, mask, h, c):
        """Top-layer outputs `(batch, time, units)` and final states."""
        x = self.embedding(token_ids)  # (batch, time, embedding_dim)
        final_h, final_c = [], []
        for index, layer in enumerate(self.sequence_layers):
            x, *states = layer(
                x, initial_state=self.cell_states(index, h, c), mask=mask
            )
            layer_h, layer_c = self.new_states(index, states, c)
            final_h.append(layer_h)
            final_c.append(layer_c)
        return x, tf.stack(final_h), tf.stack(final_c)

    def run_sequence(self, token_ids, mask=None):
        """Logits `(batch, time, vocab)` and final states of every layer."""
        h, c = self.zero_states(tf.shape(token_ids)[0])
        x, h, c = self.run_layers(token_ids, mask, h, c)
        return self.projection(x), h, c

    def run_step(self, token_ids, h, c):
        """One token per row: logits `(batch, vocab)` and the new states."""
        x = self.embedding(token_ids)  # (batch, embedding_dim)
        new_h, new_c = [], []
        for index, cell in enumerate(self.cells):
            x, states = cell(x, self.cell_states(index, h, c))
            layer_h, layer_c = self.new_states(index, states, c)
            new_h.append(layer_h)
            new_c.append(layer_c)
        return self.projection(x), tf.stack(new_h), tf.stack(new_c)

    def tokenize(self, texts, end_with_eos):
        """Strings -> ragged ids with a leading `<eos>` context.

        Each line's tokens are followed by `<eos>` (the last line's only
        when `end_with_eos`, so that a prompt can continue its last line).
        """
        return self.tokenizer.tokenize(texts, end_with_eos)

    def check_ids(self, signature, token_ids):
        """Refuses ids outside `[0, vocab_size)` with `InvalidArgument`."""
        message = (
            f"{signature}: token_ids must be in [0, {self.vocab_size}), the "
            "ids of this model's vocabulary"
        )
        return [
            tf.debugging.assert_non_negative(token_ids, message=message),
            tf.debugging.assert_less(token_ids, self.vocab_size, message),
        ]

    def check_rows(self, signature, rows):
        """Refuses `rows` x vocabulary log-probabilities above the budget."""
        most = MAX_LOG_PROBS // self.vocab_size
        return tf.debugging.assert_less_equal(
            tf.cast(rows, tf.int64),
            tf.constant(most, tf.int64),
            message=f"{signature}: at most {most} rows per request "
            f"({MAX_LOG_PROBS} log-probabilities over a vocabulary of "
            f"{self.vocab_size}); split the request",
        )

    def dense_request(self, signature, ids):
        """Ragged ids -> `(dense, mask, lengths)`, within the request limits.

        Refuses, with an `InvalidArgument` error naming the limit, a request
        of more than `MAX_REQUEST_TOKENS` token positions (texts x longest)
        or of more rows than `MAX_LOG_PROBS` allows.
        """
        lengths = ids.row_lengths()
        rows = ids.nrows()
        longest = tf.reduce_max(
            tf.concat([lengths, tf.zeros([1], lengths.dtype)], axis=0)
        )
        checks = [
            self.check_rows(signature, rows),
            tf.debugging.assert_less_equal(
                rows * longest,
                tf.constant(MAX_REQUEST_TOKENS, tf.int64),
                message=f"{signature}: at most {MAX_REQUEST_TOKENS} token "
                "positions per request (texts x the longest text's tokens, "
                "<eos> included); split the request",
            ),
        ]
        with tf.control_dependencies(checks):
            dense = ids.to_tensor(default_value=0)
        mask = tf.sequence_mask(lengths, tf.shape(dense)[1])
        return dense, mask, lengths

    def chunk_length(self, rows):
        """Time steps per chunk: `CHUNK_LOG_PROBS` values, at least one."""
        values = tf.cast(rows, tf.int32) * self.vocab_size
        return tf.maximum(CHUNK_LOG_PROBS // tf.maximum(values, 1), 1)

    def run_chunks(self, dense, mask, step, totals, length=None):
        """Runs `dense` (batch, time) through the LSTM in time chunks.

        Each chunk starts from the states the previous one ended with, so
        the result equals one pass over the whole sequence while only a
        chunk's activations exist at a time. `step(chunk_outputs, start,
        end, totals)` folds each chunk's top-layer outputs into `totals`.

        `length`: time steps per chunk (default `chunk_length`).

        Returns:
            `(h, c, totals)`: the states after each row's last unmasked
            token and the folded totals.
        """
        rows = tf.shape(dense)[0]
        if length is None:
            length = self.chunk_length(rows)
        h, c = self.zero_states(rows)

        def body(start, h, c, totals):
            end = start + length
            outputs, h, c = self.run_layers(
                dense[:, start:end], mask[:, start:end], h, c
            )
            return end, h, c, step(outputs, start, end, totals)

        _, h, c, totals = tf.while_loop(
            lambda start, *_: start < tf.shape(dense)[1],
            body,
            (tf.constant(0), h, c, totals),
        )
        return h, c, totals

    def run_prompts(self, signature, prompts):
        """Last-position logits and states after each prompt.

        The prompts run in time chunks; only the last real token's output,
        the top layer's final `h`, is projected onto the vocabulary.
        """
        ids = self.tokenize(prompts, end_with_eos=False)
        dense, mask, _ = self.dense_request(signature, ids)
        # Masked steps keep the states of the last real token.
        h, c, _ = self.run_chunks(
            dense, mask, lambda *args: args[-1], tf.zeros([])
        )
        return self.projection(h[-1]), h, c

    def run_cached_prompts(self, signature, prompts):
        """`run_prompts`, and the cache of each prompt's own pairs."""
        ids = self.tokenize(prompts, end_with_eos=False)
        dense, mask, _ = self.dense_request(signature, ids)
        rows = tf.shape(dense)[0]
        # The pair of position t is (h_t, x_{t+1}): the prompt's last token
        # has no pair yet.
        next_ids = tf.concat([dense[:, 1:], tf.zeros([rows, 1], tf.int32)], 1)
        has_next = tf.concat([mask[:, 1:], tf.zeros([rows, 1], tf.bool)], 1)

        def remember(outputs, start, end, memory):
            return neural_cache.advance_memory(
                memory, outputs, next_ids[:, start:end], has_next[:, start:end]
            )

        memory = neural_cache.empty_memory(rows, self.cache.window, self.units)
        h, c, memory = self.run_chunks(
            dense, mask, remember, memory, length=self.cache_chunk_length(rows)
        )
        logits = self.cached_logits(self.projection(h[-1]), h[-1], memory)
        return logits, h, c, memory

    # --- signatures -------------------------------------------------------

    def serving_default(self, token_ids):
        """Token ids `(batch, time)` -> next-token log-probabilities.

        Returns every position's distribution, so a request may hold at
        most `MAX_LOG_PROBS` of them (batch x time x vocabulary).
        """
        shape = tf.shape(token_ids, out_type=tf.int64)
        most = MAX_LOG_PROBS // self.vocab_size
        check = tf.debugging.assert_less_equal(
            shape[0] * shape[1],
            tf.constant(most, tf.int64),
            message=f"serving_default: at most {most} token positions "
            f"(batch x time) per request, {MAX_LOG_PROBS} log-probabilities "
            f"over a vocabulary of {self.vocab_size}; use score, or step "
            "for long streams",
        )
        checks = [check, *self.check_ids("serving_default", token_ids)]
        with tf.control_dependencies(checks):
            logits, _, _ = self.run_sequence(token_ids)
        return {"log_probs": tf.nn.log_softmax(logits)}

    def score(self, sentences, use_cache):
        """Sentences -> log-likelihood, token count, perplexity, words.

        Every token of the text (each line's tokens and its `<eos>`) is
        predicted, the first one from a leading `<eos>`. `word_count` is
        the text's whitespace words with each `<eos>` one, and
        `perplexity_per_word` is `exp(-log_likelihood / word_count)`,
        which compares a word and a character model of the same text; a
        character model also answers `bits_per_char`. An empty or
        whitespace-only string scores one token: an immediate `<eos>`.
        The text runs in time chunks that carry the LSTM states, so at
        most `CHUNK_LOG_PROBS` log-probabilities (or one per row and word,
        if more) exist at a time, whatever the length. With `use_cache`,
        each text is also read with the neural cache over its own earlier
        tokens (never another text's).
        """
        ids = self.tokenize(sentences, end_with_eos=True)
        dense, mask, lengths = self.dense_request("score", ids[:, :-1])
        targets = ids[:, 1:].to_tensor(default_value=0)
        with tf.control_dependencies(
            self.check_cache("score", use_cache, tf.shape(dense)[0])
        ):
            log_likelihood = self.if_cache(
                use_cache,
                lambda: self.cached_log_likelihood(dense, mask, targets),
                lambda: self.log_likelihood(dense, mask, targets),
            )
        token_count = tf.cast(lengths, tf.int32)
        mean_nll = -log_likelihood / tf.cast(token_count, tf.float32)
        word_count = self.tokenizer.count_words(targets, mask)
        outputs = {
            "log_likelihood": log_likelihood,
            "token_count": token_count,
            "perplexity": tf.exp(mean_nll),
            "word_count": word_count,
            "perplexity_per_word": tf.exp(
                -log_likelihood / tf.cast(tf.maximum(word_count, 1), tf.float32)
            ),
        }
        if self.tokenization.is_chars:
            outputs["bits_per_char"] = mean_nll / math.log(2)
        return outputs

    def log_likelihood(self, dense, mask, targets):
        """Each row's summed log-probability of its `targets`."""
        weights = tf.cast(mask, tf.float32)

        def add_chunk(outputs, start, end, log_likelihood):
            target_log_probs = self.target_log_probs(
                outputs, targets[:, start:end]
            )
            chunk = tf.reduce_sum(target_log_probs * weights[:, start:end], 1)
            return log_likelihood + tf.cast(chunk, tf.float32)

        _, _, log_likelihood = self.run_chunks(
            dense, mask, add_chunk, tf.zeros([tf.shape(dense)[0]])
        )
        return log_likelihood

    def cached_log_likelihood(self, dense, mask, targets):
        """`log_likelihood` with the neural cache over each row's own
        earlier pairs `(h_i, x_{i+1})`, in chunks that carry the cache."""
        weights = tf.cast(mask, tf.float32)
        rows = tf.shape(dense)[0]

        def add_chunk(outputs, start, end, totals):
            log_likelihood, memory = totals
            chunk_targets, chunk_mask = (
                targets[:, start:end],
                mask[:, start:end],
            )
            model_log_probs = self.target_log_probs(outputs, chunk_targets)
            probs, has_pairs = neural_cache.target_cache_probs(
                outputs,
                tf.concat([memory[0], outputs], axis=1),
                tf.concat([memory[1], chunk_targets], axis=1),
                tf.concat([memory[2], chunk_mask], axis=1),
                chunk_targets,
                self.cache.theta,
            )
            mixed = neural_cache.mix_log_probs(
                model_log_probs, probs, has_pairs, self.cache.interpolation
            )
            chunk = tf.reduce_sum(mixed * weights[:, start:end], 1)
            memory = neural_cache.advance_memory(
                memory, outputs, chunk_targets, chunk_mask
            )
            return log_likelihood + chunk, memory

        memory = neural_cache.empty_memory(rows, self.cache.window, self.units)
        _, _, (log_likelihood, _) = self.run_chunks(
            dense,
            mask,
            add_chunk,
            (tf.zeros([rows]), memory),
            length=self.cache_chunk_length(rows),
        )
        return log_likelihood

    def target_log_probs(self, outputs, targets):
        """Log-probabilities `(batch, time)` of `targets` after `outputs`."""
        return target_log_probs(self.projection(outputs), targets)

    # --- the neural cache ----------------------------------------------

    def check_cache(self, signature, use_cache, rows):
        """Refuses `use_cache` without cache settings, or a cache of more
        than `MAX_LOG_PROBS` numbers (rows x window x units)."""
        if self.cache is None:
            return [
                tf.debugging.assert_equal(
                    use_cache,
                    False,
                    message=f"{signature}: this export has no neural cache "
                    "settings; call with use_cache=false, or run python -m "
                    "training.evaluate --run RUN and export the run again",
                )
            ]
        size = self.cache.window * self.units
        most = max(MAX_LOG_PROBS // size, 1)
        cached_rows = tf.where(use_cache, tf.cast(rows, tf.int64), 0)
        return [
            tf.debugging.assert_less_equal(
                cached_rows,
                tf.constant(most, tf.int64),
                message=f"{signature}: at most {most} texts per request with "
                f"use_cache (a cache of {self.cache.window} x {self.units} "
                "numbers each); split the request",
            )
        ]

    def if_cache(self, use_cache, cached, static):
        """`cached()` when `use_cache` (and the export has a cache), else
        `static()`."""
        if self.cache is None:
            return static()
        return tf.cond(use_cache, cached, static)

    def cache_chunk_length(self, rows):
        """Time steps per chunk with the cache: at most the window, and
        `CHUNK_LOG_PROBS` numbers of logits and cache scores together."""
        window = self.cache.window
        values = tf.cast(rows, tf.int32) * (self.vocab_size + 2 * window)
        length = CHUNK_LOG_PROBS // tf.maximum(values, 1)
        return tf.clip_by_value(length, 1, window)

    def cached_logits(self, logits, query, memory):
        """Logits of `(1 - lambda) p_model + lambda p_cache` for one query
        per row (`p_model` alone where the cache is still empty)."""
        probs, has_pairs = neural_cache.cache_distribution(
            query, *memory, self.cache.theta, self.vocab_size
        )
        interpolation = self.cache.interpolation
        mixed = tf.math.log(
            (1 - interpolation) * tf.nn.softmax(logits) + interpolation * probs
        )
        return tf.where(has_pairs[:, None], mixed, logits)

    def next_words(self, prompts, k, use_cache):
        """Prompts -> the `k` most likely next words and probabilities.

        `k` larger than the vocabulary returns the whole vocabulary; `k`
        below 1 is an `InvalidArgument` error. With `use_cache`, the
        probabilities mix in the neural cache over the prompt's own text.
        """
        k = tf.minimum(k, self.vocab_size)
        checks = [
            tf.debugging.assert_positive(
                k, message="next_words: k must be at least 1"
            ),
            *self.check_cache("next_words", use_cache, tf.size(prompts)),
        ]
        with tf.control_dependencies(checks):
            logits = self.if_cache(
                use_cache,
                lambda: self.run_cached_prompts("next_words", prompts)[0],
                lambda: self.run_prompts("next_words", prompts)[0],
            )
            top = tf.math.top_k(tf.nn.softmax(logits), k=k)
        return {
            "words": tf.gather(self.words, top.indices),
            "probabilities": top.values,
        }

    def step(self, token_ids, h, c):
        """One token per row and the states -> log-probs and new states.

        Start from zeros of shape `(num_layers, batch, units)`; feeding
        tokens one by one reproduces `serving_default` on the sequence.
        """
        expected = tf.stack(
            [self.num_layers, tf.shape(token_ids)[0], self.units]
        )
        checks = [
            tf.debugging.assert_equal(
                tf.shape(state),
                expected,
                message="step: h and c must be (num_layers, batch, units)",
            )
            for state in (h, c)
        ] + [
            self.check_rows("step", tf.shape(token_ids)[0]),
            *self.check_ids("step", token_ids),
        ]
        with tf.control_dependencies(checks):
            logits, new_h, new_c = self.run_step(token_ids, h, c)
        return {"log_probs": tf.nn.log_softmax(logits), "h": new_h, "c": new_c}

    def generate(
        self, prompts, max_tokens, temperature, top_k, seed, use_cache
    ):
        """Samples up to `max_tokens` words after each prompt, in-graph.

        `temperature <= 0` picks the most likely word (greedy); `top_k <= 0`
        samples from the whole vocabulary, otherwise from the `top_k` most
        likely words. `max_tokens` is clipped to [0, 10000]. The same
        `seed` gives the same text. `<eos>` is written as a line break;
        words are joined with spaces, characters with nothing between. A
        `temperature` that is NaN or infinite is an `InvalidArgument`.
        With `use_cache`, every next word is drawn from the model mixed
        with the neural cache over the prompt and the text generated so
        far.
        """
        max_tokens = tf.clip_by_value(max_tokens, 0, MAX_GENERATED_TOKENS)
        top_k = tf.minimum(top_k, self.vocab_size)
        checks = [
            tf.debugging.assert_equal(
                tf.math.is_finite(temperature),
                True,
                message="generate: temperature must be a finite number (> 0 "
                "samples, <= 0 picks the most likely token)",
            ),
            *self.check_cache("generate", use_cache, tf.size(prompts)),
        ]
        sampling = (max_tokens, temperature, top_k, seed)
        with tf.control_dependencies(checks):
            token_ids = self.if_cache(
                use_cache,
                lambda: self.sample(
                    *self.run_cached_prompts("generate", prompts), *sampling
                ),
                lambda: self.sample(
                    *self.run_prompts("generate", prompts), (), *sampling
                ),
            )
        text = self.tokenizer.detokenize(token_ids)
        return {"text": text, "token_ids": token_ids}

    def sample(
        self, logits, h, c, memory, max_tokens, temperature, top_k, seed
    ):
        """The sampling loop of `generate` from the prompts' last logits and
        states; `memory` is the prompts' cache, or `()` without one."""
        batch = tf.shape(logits)[0]

        def body(index, logits, h, c, tokens, memory):
            token = self.choose(logits, index, temperature, top_k, seed)
            tokens = tokens.write(index, token)
            query = h[-1]  # the top layer's h that predicted `token`
            logits, h, c = self.run_step(token, h, c)
            if memory:
                memory = neural_cache.advance_memory(
                    memory,
                    query[:, None],
                    token[:, None],
                    tf.ones([batch, 1], tf.bool),
                )
                logits = self.cached_logits(logits, h[-1], memory)
            return index + 1, logits, h, c, tokens, memory

        # One write per step (a concat per step would copy the tokens so
        # far every step: quadratic in max_tokens).
        tokens = tf.TensorArray(
            tf.int32, size=max_tokens, element_shape=tf.TensorShape([None])
        )
        start = (tf.constant(0), logits, h, c, tokens, memory)
        invariants = (
            tf.TensorShape([]),
            logits.shape,
            h.shape,
            c.shape,
            tf.TensorShape(None),
            tf.nest.map_structure(lambda part: part.shape, memory),
        )
        tokens = tf.while_loop(
            lambda index, *_: index < max_tokens,
            body,
            start,
            shape_invariants=invariants,
        )[4]
        return tf.cond(  # an empty TensorArray of unknown rows cannot stack
            max_tokens > 0,
            lambda: tf.transpose(tokens.stack()),
            lambda: tf.zeros([batch, 0], tf.int32),
        )

    def choose(self, logits, index, temperature, top_k, seed):
        """Step `index`'s token of each row: the most likely one when
        `temperature <= 0`, else a draw from `softmax(logits /
        temperature)` over the `top_k` most likely (all when `top_k <= 0`).
        """
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        scaled = logits / tf.maximum(temperature, 1e-6)
        kth = tf.math.top_k(scaled, k=tf.maximum(top_k, 1)).values[:, -1:]
        filtered = tf.where(
            tf.logical_and(top_k > 0, scaled < kth),
            tf.fill(tf.shape(scaled), -1e9),
            scaled,
        )
        sampled = tf.random.stateless_categorical(
            filtered,
            1,
            seed=tf.stack([seed, tf.cast(index, tf.int64)]),
            dtype=tf.int32,
        )[:, 0]
        return tf.where(temperature > 0, sampled, greedy)
