"""One TimeLSTM layer: its own loop against oneDNN's fused LSTM.

    python benchmarks/fused_lstm.py [--rounds 5] [--calls 5]

Times a forward and backward pass (training) and a forward pass
(`training=False`, scoring) of one layer with `use_onednn=False` and
`use_onednn=True`, in float32 and mixed_bfloat16, for the `char-30min`
layer (1x512, 128 inputs, batch 32 x 100 steps) and a `book-better`
layer (650 units and inputs, batch 20 x 35 steps). The two loops run in
turn, `--rounds` times `--calls` calls each; medians in ms per call.
"""

import argparse
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

# (name, steps, batch, features, units)
LAYERS = (
    ("char-30min 1x512", 100, 32, 128, 512),
    ("book-better 650", 35, 20, 650, 650),
)


def layer_call(layer, inputs, training):
    """A traced call of `layer`: with its weight gradients in training."""

    @tf.function
    def call():
        if not training:
            return layer(inputs, training=False)
        with tf.GradientTape() as tape:
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(tf.cast(outputs, "float32"))
        return tape.gradient(loss, layer.trainable_weights)

    return call


def median_ms(calls, rounds, repeats):
    """Median ms per call of each of `calls`, run in turn."""
    for call in calls.values():
        call()  # trace
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def compare(shape, policy, training, rounds, repeats):
    from keras_lstm_scratch.layers.time_lstm import TimeLSTM

    _, steps, batch, features, units = shape
    keras.config.set_dtype_policy(policy)
    try:
        rng = np.random.default_rng(0)
        inputs = tf.constant(
            0.3 * rng.normal(size=(batch, steps, features)), "float32"
        )
        calls = {}
        for name, use_onednn in (("own", False), ("fused", True)):
            layer = TimeLSTM(
                units, return_sequences=True, use_onednn=use_onednn
            )
            layer(inputs)
            calls[name] = layer_call(layer, inputs, training)
        return median_ms(calls, rounds, repeats)
    finally:
        keras.config.set_dtype_policy("float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args(argv)
    print("layer | precision | pass | own ms | fused ms | own / fused")
    for shape in LAYERS:
        for policy in ("float32", "mixed_bfloat16"):
            for training in (True, False):
                ms = compare(shape, policy, training, args.rounds, args.calls)
                print(
                    f"{shape[0]} | {policy} | "
                    f"{'training' if training else 'scoring'} | "
                    f"{ms['own']:.1f} | {ms['fused']:.1f} | "
                    f"{ms['own'] / ms['fused']:.2f}"
                )


if __name__ == "__main__":
    main()
