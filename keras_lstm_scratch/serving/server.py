"""In-graph serving functions of a trained language model.

`LanguageModelServer` holds the trained layers (the real `LSTMCell`s, the
embedding and the output projection) and the vocabulary as a lookup table,
and offers the functions that `saved_model.py` writes as SavedModel
signatures. Every function runs without Python and without this package
once saved: tokenising, looking words up, sampling and decoding all
happen in-graph.

Text conventions are those of training (`data/text_files.py`): words are
separated by whitespace, each line of a string ends with `<eos>`, unknown
words become `<unk>`. A leading `<eos>` is the context of the first word,
as in the training stream, where every sentence follows an `<eos>`.
"""

import keras
import tensorflow as tf

from keras_lstm_scratch.data.vocabulary import END_OF_SENTENCE, UNKNOWN
from keras_lstm_scratch.language_model import model_parts

MAX_GENERATED_TOKENS = 10000

SIGNATURES = {
    "serving_default": [
        tf.TensorSpec([None, None], tf.int32, name="token_ids"),
    ],
    "score": [
        tf.TensorSpec([None], tf.string, name="sentences"),
    ],
    "next_words": [
        tf.TensorSpec([None], tf.string, name="prompts"),
        tf.TensorSpec([], tf.int32, name="k"),
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
    ],
}


class LanguageModelServer:
    """Serving functions over a trained model and its vocabulary.

    Args:
        model: A trained model from `build_language_model` (stateful or
            not; the serving functions never use its carried states).
        words: The vocabulary, a word per id; must hold `<unk>`, `<eos>`.

    Example:

    >>> server = LanguageModelServer(model, vocabulary.words)
    >>> generate = server.function("generate")
    >>> generate(tf.constant(["the market"]), 20, 1.0, 10, 0)["text"]
    """

    def __init__(self, model, words):
        words = list(words)
        for special in (UNKNOWN, END_OF_SENTENCE):
            if special not in words:
                raise ValueError(f"The vocabulary lacks {special!r}.")
        self.embedding, rnn_layers, self.projection = model_parts(model)
        self.cells = [layer.cell for layer in rnn_layers]
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
        self.words = tf.constant(words)
        self.unknown_id = words.index(UNKNOWN)
        self.end_of_sentence_id = words.index(END_OF_SENTENCE)
        self.word_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words), tf.range(len(words), dtype=tf.int32)
            ),
            default_value=self.unknown_id,
        )

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

    def run_sequence(self, token_ids, mask=None, h=None, c=None):
        """Logits `(batch, time, vocab)` and final states of every layer."""
        if h is None:
            h, c = self.zero_states(tf.shape(token_ids)[0])
        x = self.embedding(token_ids)  # (batch, time, embedding_dim)
        final_h, final_c = [], []
        for index, layer in enumerate(self.sequence_layers):
            x, layer_h, layer_c = layer(
                x, initial_state=[h[index], c[index]], mask=mask
            )
            final_h.append(layer_h)
            final_c.append(layer_c)
        return self.projection(x), tf.stack(final_h), tf.stack(final_c)

    def run_step(self, token_ids, h, c):
        """One token per row: logits `(batch, vocab)` and the new states."""
        x = self.embedding(token_ids)  # (batch, embedding_dim)
        new_h, new_c = [], []
        for index, cell in enumerate(self.cells):
            x, (layer_h, layer_c) = cell(x, [h[index], c[index]])
            new_h.append(layer_h)
            new_c.append(layer_c)
        return self.projection(x), tf.stack(new_h), tf.stack(new_c)

    def tokenize(self, texts, end_with_eos):
        """Strings -> ragged ids with a leading `<eos>` context.

        Each line's words are followed by `<eos>` (the last line's only when
        `end_with_eos`, so that a prompt can continue its last sentence).
        """
        text = tf.strings.strip(texts)
        text = tf.strings.regex_replace(text, r"\s*\n\s*", " <eos> ")
        words = tf.strings.split(text)  # ragged (batch, words)
        ids = tf.ragged.map_flat_values(self.word_table.lookup, words)
        batch = tf.shape(texts, out_type=tf.int64)[0]
        eos = tf.fill([batch, 1], self.end_of_sentence_id)
        pieces = [tf.RaggedTensor.from_tensor(eos), ids]
        if end_with_eos:
            pieces.append(tf.RaggedTensor.from_tensor(eos))
        return tf.concat(pieces, axis=1)

    def run_prompts(self, prompts):
        """Last-position logits and states after each prompt."""
        ids = self.tokenize(prompts, end_with_eos=False)
        lengths = ids.row_lengths()
        dense = ids.to_tensor(default_value=0)
        mask = tf.sequence_mask(lengths, tf.shape(dense)[1])
        # Masked steps keep the states of the last real token.
        logits, h, c = self.run_sequence(dense, mask=mask)
        last = tf.gather(logits, lengths - 1, axis=1, batch_dims=1)
        return last, h, c

    # --- signatures -------------------------------------------------------

    def serving_default(self, token_ids):
        """Token ids `(batch, time)` -> next-token log-probabilities."""
        logits, _, _ = self.run_sequence(token_ids)
        return {"log_probs": tf.nn.log_softmax(logits)}

    def score(self, sentences):
        """Sentences -> total log-likelihood, token count and perplexity.

        Every token of the text (each line's words and its `<eos>`) is
        predicted, the first one from a leading `<eos>`. An empty or
        whitespace-only string scores one token: an immediate `<eos>`.
        """
        ids = self.tokenize(sentences, end_with_eos=True)
        inputs = ids[:, :-1]
        targets = ids[:, 1:]
        lengths = targets.row_lengths()
        dense_inputs = inputs.to_tensor(default_value=0)
        dense_targets = targets.to_tensor(default_value=0)
        mask = tf.sequence_mask(lengths, tf.shape(dense_inputs)[1])
        logits, _, _ = self.run_sequence(dense_inputs, mask=mask)
        log_probs = tf.nn.log_softmax(logits)
        target_log_probs = tf.gather(
            log_probs, dense_targets, axis=2, batch_dims=2
        )
        weights = tf.cast(mask, tf.float32)
        log_likelihood = tf.reduce_sum(target_log_probs * weights, axis=1)
        token_count = tf.cast(lengths, tf.int32)
        perplexity = tf.exp(-log_likelihood / tf.cast(token_count, tf.float32))
        return {
            "log_likelihood": log_likelihood,
            "token_count": token_count,
            "perplexity": perplexity,
        }

    def next_words(self, prompts, k):
        """Prompts -> the `k` most likely next words and probabilities.

        `k` larger than the vocabulary returns the whole vocabulary; `k`
        below 1 is an `InvalidArgument` error.
        """
        k = tf.minimum(k, self.vocab_size)
        check = tf.debugging.assert_positive(
            k, message="next_words: k must be at least 1"
        )
        with tf.control_dependencies([check]):
            logits, _, _ = self.run_prompts(prompts)
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
        ]
        with tf.control_dependencies(checks):
            logits, new_h, new_c = self.run_step(token_ids, h, c)
        return {"log_probs": tf.nn.log_softmax(logits), "h": new_h, "c": new_c}

    def generate(self, prompts, max_tokens, temperature, top_k, seed):
        """Samples up to `max_tokens` words after each prompt, in-graph.

        `temperature <= 0` picks the most likely word (greedy); `top_k <= 0`
        samples from the whole vocabulary, otherwise from the `top_k` most
        likely words. `max_tokens` is clipped to [0, 10000]. The same
        `seed` gives the same text. `<eos>` is written as a line break.
        """
        max_tokens = tf.clip_by_value(max_tokens, 0, MAX_GENERATED_TOKENS)
        top_k = tf.minimum(top_k, self.vocab_size)
        logits, h, c = self.run_prompts(prompts)
        batch = tf.shape(logits)[0]

        def choose(logits, index):
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

        def body(index, logits, h, c, token_ids):
            token = choose(logits, index)
            token_ids = tf.concat([token_ids, token[:, None]], axis=1)
            logits, h, c = self.run_step(token, h, c)
            return index + 1, logits, h, c, token_ids

        start = (tf.constant(0), logits, h, c, tf.zeros([batch, 0], tf.int32))
        _, _, _, _, token_ids = tf.while_loop(
            lambda index, *_: index < max_tokens,
            body,
            start,
            shape_invariants=(
                tf.TensorShape([]),
                logits.shape,
                h.shape,
                c.shape,
                tf.TensorShape([None, None]),
            ),
        )
        words = tf.gather(self.words, token_ids)
        text = tf.strings.reduce_join(words, axis=1, separator=" ")
        text = tf.strings.regex_replace(text, r" ?<eos> ?", "\n")
        return {"text": text, "token_ids": token_ids}
