import keras
import numpy as np
import pytest

from training.config import resolve_config
from training.model import make_optimizer

GRADIENTS = [np.array([[3.0, 0.0], [0.0, 4.0]]), np.array([12.0, 0.0])]
WEIGHTS = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])]


def book_clip_grads(grads, max_norm):
    """`common/util.py` clip_grads of the book: one global norm."""
    total_norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    return [g * rate for g in grads] if rate < 1 else grads


def one_step(clip_mode, learning_rate=20.0, clip_norm=0.25):
    config = resolve_config(
        "tiny",
        {
            "clip_mode": clip_mode,
            "learning_rate": learning_rate,
            "clip_norm": clip_norm,
        },
    )
    optimizer = make_optimizer(config)
    variables = [keras.Variable(w.astype("float32")) for w in WEIGHTS]
    optimizer.apply_gradients(
        [
            (g.astype("float32"), v)
            for g, v in zip(GRADIENTS, variables, strict=True)
        ]
    )
    return [keras.ops.convert_to_numpy(v) for v in variables]


def test_global_clipping_follows_the_books_rule():
    # Global norm sqrt(9 + 16 + 144) = 13 > 0.25: all scaled by 0.25 / 13.
    updated = one_step("global")
    clipped = book_clip_grads(GRADIENTS, 0.25)
    for got, w, g in zip(updated, WEIGHTS, clipped, strict=True):
        np.testing.assert_allclose(got, w - 20.0 * g, rtol=1e-5)


def test_gradients_under_the_threshold_are_not_scaled():
    updated = one_step("global", learning_rate=0.1, clip_norm=100.0)
    for got, w, g in zip(updated, WEIGHTS, GRADIENTS, strict=True):
        np.testing.assert_allclose(got, w - 0.1 * g, rtol=1e-6)


def test_per_variable_clipping_differs_from_the_book():
    updated = one_step("per_variable")
    # Each variable clipped to norm 0.25 on its own: norms 5 and 12.
    expected = [
        w - 20.0 * g * 0.25 / np.linalg.norm(g)
        for w, g in zip(WEIGHTS, GRADIENTS, strict=True)
    ]
    for got, want in zip(updated, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5)
    book = one_step("global")
    assert not np.allclose(updated[0], book[0])


@pytest.mark.parametrize("mode", ["global", "per_variable"])
def test_modes_map_to_keras_arguments(mode):
    optimizer = make_optimizer(resolve_config("tiny", {"clip_mode": mode}))
    if mode == "global":
        assert optimizer.global_clipnorm == 0.25 and optimizer.clipnorm is None
    else:
        assert optimizer.clipnorm == 0.25 and optimizer.global_clipnorm is None
