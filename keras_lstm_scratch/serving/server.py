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
from keras_lstm_scratch.evaluation.stream_model import (
    cell_states,
    target_log_probs,
)
from keras_lstm_scratch.language_model import computing_in_float32, model_parts
from keras_lstm_scratch.serving import request_limits
from keras_lstm_scratch.serving.generation import (
    MAX_GENERATED_TOKENS,
    GenerationLoop,
    Stopping,
    generation_checks,
)
from keras_lstm_scratch.serving.graph_tokenizer import GraphTokenizer
from keras_lstm_scratch.serving.sampling import SamplingOptions
from keras_lstm_scratch.serving.served_cache import ServedCache
from keras_lstm_scratch.serving.signatures import signature_function


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
        self.cache = ServedCache(self, cache)
        self.model = model = computing_in_float32(model)
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
        """The named serving function as a `tf.function` with its
        declared signature and defaults (`signatures.py`)."""
        return signature_function(name, getattr(self, name))

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
        return request_limits.check_ids(signature, token_ids, self.vocab_size)

    def check_rows(self, signature, rows):
        return request_limits.check_rows(signature, rows, self.vocab_size)

    def dense_request(self, signature, ids):
        """Ragged ids -> `(dense, mask, lengths)`, within the request
        limits (`request_limits.dense_request`)."""
        return request_limits.dense_request(signature, ids, self.vocab_size)

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
            length = request_limits.chunk_length(rows, self.vocab_size)
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

    # --- signatures -------------------------------------------------------

    def serving_default(self, token_ids):
        """Token ids `(batch, time)` -> next-token log-probabilities.

        Returns every position's distribution, so a request may hold at
        most `MAX_LOG_PROBS` of them (batch x time x vocabulary).
        """
        shape = tf.shape(token_ids, out_type=tf.int64)
        check = request_limits.check_positions(
            "serving_default", shape[0] * shape[1], self.vocab_size
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
            self.cache.checks("score", use_cache, tf.shape(dense)[0])
        ):
            log_likelihood = self.cache.either(
                use_cache,
                lambda: self.cache.log_likelihood(dense, mask, targets),
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

    def target_log_probs(self, outputs, targets):
        """Log-probabilities `(batch, time)` of `targets` after `outputs`."""
        return target_log_probs(self.projection(outputs), targets)

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
            *self.cache.checks("next_words", use_cache, tf.size(prompts)),
        ]
        with tf.control_dependencies(checks):
            logits = self.cache.either(
                use_cache,
                lambda: self.cache.read_prompts("next_words", prompts)[0],
                lambda: self.run_prompts("next_words", prompts)[0],
            )
            top = tf.math.top_k(tf.nn.softmax(logits), k=k)
        return {
            "words": tf.gather(self.words, top.indices),
            "probabilities": top.values,
        }

    def start(self, prompts):
        """Prompts -> the next token's log-probabilities and the states
        after each prompt: where `step` continues, one token at a time
        (a client that prints tokens as they come)."""
        logits, h, c = self.run_prompts("start", prompts)
        return {"log_probs": tf.nn.log_softmax(logits), "h": h, "c": c}

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
        """`max_tokens` tokens after each prompt: `complete` without top-p,
        the repetition penalty, several samples or stops (none of their
        ops is in the graph), drawn as the exports before `complete` drew
        (`sampling.row_uniforms`), so that a request of one prompt gets
        the text it got there. Returns `text` and `token_ids`."""
        options = SamplingOptions(
            temperature, tf.minimum(top_k, self.vocab_size), None, None, seed
        )
        outputs = self.sample(
            "generate",
            prompts,
            max_tokens,
            options,
            Stopping(None, None),
            num_samples=1,
            use_cache=use_cache,
        )
        return {"text": outputs["text"], "token_ids": outputs["token_ids"]}

    def complete(
        self,
        prompts,
        max_tokens,
        temperature,
        top_k,
        top_p,
        repetition_penalty,
        seed,
        num_samples,
        stop_at_eos,
        stop_texts,
        use_cache,
    ):
        """Samples up to `max_tokens` tokens after each prompt, in-graph.

        `temperature <= 0` picks the most likely token (greedy); else a
        token is drawn from `softmax(logits / temperature)` cut to the
        `top_k` most likely (`top_k <= 0`: all) and then to the nucleus
        of probability `top_p` (1: all); `repetition_penalty` above 1
        lowers the tokens a row already wrote (`sampling.py`). Each
        prompt is sampled `num_samples` times (rows prompt by prompt); a
        row's sample depends only on its prompt, `seed` and which sample
        it is, never on its place in the request. A row stops at `<eos>`
        with `stop_at_eos`, or once its text holds one of `stop_texts`;
        its text ends before the stop. `max_tokens` is clipped to [0,
        10000], and a request writes at most `MAX_GENERATED_ROW_TOKENS`
        (rows x max_tokens). `<eos>` within a text is a line break; words
        are joined with spaces, characters with nothing between. With
        `use_cache`, every token is drawn from the model mixed with the
        neural cache over the prompt and the text written so far.

        Returns:
            `text` `(rows,)`, `token_ids` `(rows, steps)` (`-1` after a
            row's stop) and `lengths` `(rows,)`: the tokens each row
            wrote, the stopping one included.
        """
        options = SamplingOptions(
            temperature,
            tf.minimum(top_k, self.vocab_size),
            top_p,
            repetition_penalty,
            seed,
        )
        return self.sample(
            "complete",
            prompts,
            max_tokens,
            options,
            Stopping(stop_at_eos, stop_texts),
            num_samples,
            use_cache,
            keyed=True,
        )

    def sample(
        self,
        signature,
        prompts,
        max_tokens,
        options,
        stopping,
        num_samples,
        use_cache,
        keyed=False,
    ):
        """The body of `generate` and `complete` (see `complete`);
        `keyed`: draw each prompt on its own numbers."""
        max_tokens = tf.clip_by_value(max_tokens, 0, MAX_GENERATED_TOKENS)
        rows = tf.size(prompts) * num_samples
        checks = generation_checks(
            signature, max_tokens, rows, num_samples, options, stopping
        )
        checks += [
            self.check_rows(signature, rows),
            *self.cache.checks(signature, use_cache, rows),
        ]
        with tf.control_dependencies(checks):
            start = self.prompt_start(signature, prompts, use_cache)
        start = repeat_rows(start, num_samples)
        samples = tf.tile(tf.range(num_samples), [tf.size(prompts)])
        keys = tf.repeat(prompts, num_samples) if keyed else None
        loop = GenerationLoop(self, options, stopping, use_cache, keys)
        token_ids, lengths, at_eos = loop.run(start, samples, max_tokens)
        shown = tf.RaggedTensor.from_tensor(
            token_ids, lengths=lengths - tf.cast(at_eos, tf.int32)
        )
        text = stopping.cut(self.tokenizer.detokenize(shown))
        return {"text": text, "token_ids": token_ids, "lengths": lengths}

    def prompt_start(self, signature, prompts, use_cache):
        """`(logits, h, c, memory)` after the prompts: `memory` is the
        prompts' cache with `use_cache`, an empty one without, `()` for an
        export without a cache."""
        if self.cache.settings is None:
            return (*self.run_prompts(signature, prompts), ())
        empty = self.cache.empty(tf.size(prompts), window=0)
        return tf.cond(
            use_cache,
            lambda: self.cache.read_prompts(signature, prompts),
            lambda: (*self.run_prompts(signature, prompts), empty),
        )


def repeat_rows(start, times):
    """`(logits, h, c, memory)` with each row `times` times in a row."""
    if isinstance(times, int) and times == 1:
        return start
    logits, h, c, memory = start
    return (
        tf.repeat(logits, times, axis=0),
        tf.repeat(h, times, axis=1),
        tf.repeat(c, times, axis=1),
        tuple(tf.repeat(part, times, axis=0) for part in memory),
    )
