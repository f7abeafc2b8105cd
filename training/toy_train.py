"""Smallest end-to-end train and evaluation, on a built-in toy corpus.

Runs in seconds with no data download: it builds a stateful, tied LSTM
language model, trains it with truncated BPTT on a repeated toy text, and
prints the token-weighted perplexity per epoch and on held-out text.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch import (
    Perplexity,
    PerplexityCallback,
    ResetStatesCallback,
    build_language_model,
)

TOY_TEXT = (
    "you say goodbye and i say hello . "
    "the cat sat on the mat . the dog sat on the log . "
) * 40
BATCH_SIZE = 4  # parallel token streams
SEQ_LEN = 10  # time steps per window
EPOCHS = 20
SEED = 1


def windows(ids, batch_size, seq_len):
    """Cuts a token stream into a dataset of truncated-BPTT windows `(x, y)`.

    The stream is split into `batch_size` contiguous rows; window k holds
    columns `k*seq_len ... (k+1)*seq_len - 1` of every row, and its targets
    are the same positions shifted by one token.
    """
    per_row = (len(ids) - 1) // batch_size
    rows = np.asarray(ids[: per_row * batch_size + 1])
    inputs = np.stack(
        [rows[r * per_row : (r + 1) * per_row] for r in range(batch_size)]
    )
    targets = np.stack(
        [
            rows[r * per_row + 1 : (r + 1) * per_row + 1]
            for r in range(batch_size)
        ]
    )
    count = per_row // seq_len
    columns = [slice(k * seq_len, (k + 1) * seq_len) for k in range(count)]
    return tf.data.Dataset.from_tensor_slices(
        (
            np.stack([inputs[:, span] for span in columns]).astype("int32"),
            np.stack([targets[:, span] for span in columns]).astype("int32"),
        )
    )


def main():
    keras.utils.set_random_seed(SEED)
    words = TOY_TEXT.split()
    vocabulary = sorted(set(words))
    word_to_id = {word: index for index, word in enumerate(vocabulary)}
    ids = [word_to_id[word] for word in words]
    split = int(len(ids) * 0.9)
    train = windows(ids[:split], BATCH_SIZE, SEQ_LEN)
    held_out = windows(ids[split:], BATCH_SIZE, SEQ_LEN)

    model = build_language_model(
        len(vocabulary),
        32,
        32,
        num_layers=2,
        dropout=0.1,
        tie_weights=True,
        stateful=True,
        batch_size=BATCH_SIZE,
        seq_len=SEQ_LEN,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(10.0, global_clipnorm=0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[Perplexity()],
    )
    perplexity = PerplexityCallback(held_out)
    model.fit(
        train,
        epochs=EPOCHS,
        shuffle=False,
        verbose=2,
        callbacks=[ResetStatesCallback(), perplexity],
    )
    held_out_nll = perplexity.evaluate_mean_nll(held_out)
    print(
        f"vocabulary {len(vocabulary)} words; uniform perplexity "
        f"{len(vocabulary)}; held-out perplexity {np.exp(held_out_nll):.2f}"
    )


if __name__ == "__main__":
    main()
