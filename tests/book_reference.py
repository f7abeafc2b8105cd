"""The book's LSTM forward pass in NumPy, for checking the Keras cell.

"Deep Learning from Scratch 2", `common/time_layers.py`: the affine output
`A = x @ Wx + h_prev @ Wh + b` is sliced in the order f, g, i, o.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def keras_to_book_order(weights):
    """Reorders the last axis from Keras's blocks (i, f, g, o) to (f, g, i, o).

    ```
    keras: [ W_i | W_f | W_g | W_o ]
    book:  [ W_f | W_g | W_i | W_o ]
    ```
    """
    w_i, w_f, w_g, w_o = np.split(weights, 4, axis=-1)
    return np.concatenate([w_f, w_g, w_i, w_o], axis=-1)


def book_lstm_step(x, h_prev, c_prev, Wx, Wh, b):  # noqa: N803 (book names)
    """One `LSTM.forward` of the book; weights in f, g, i, o order."""
    H = h_prev.shape[1]  # noqa: N806
    A = x @ Wx + h_prev @ Wh + b  # noqa: N806, (N, 4H)
    f = sigmoid(A[:, :H])
    g = np.tanh(A[:, H : 2 * H])
    i = sigmoid(A[:, 2 * H : 3 * H])
    o = sigmoid(A[:, 3 * H :])
    c = f * c_prev + g * i
    h = o * np.tanh(c)
    return h, c


def book_time_lstm(xs, Wx, Wh, b, h0=None, c0=None):  # noqa: N803
    """The book's `TimeLSTM.forward`: hs (N, T, H) and the final h, c."""
    N, T, _ = xs.shape  # noqa: N806
    H = Wh.shape[0]  # noqa: N806
    h = np.zeros((N, H)) if h0 is None else h0
    c = np.zeros((N, H)) if c0 is None else c0
    hs = np.empty((N, T, H))
    for t in range(T):
        h, c = book_lstm_step(xs[:, t, :], h, c, Wx, Wh, b)
        hs[:, t, :] = h
    return hs, h, c
