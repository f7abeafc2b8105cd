"""Where inference time goes: this package vs PyTorch, part by part.

    python benchmarks/inference_parts.py --config book-better \\
        --repeats 12 --json benchmarks/inference-parts.json

`throughput.py` times Keras inference as users call it,
`model.predict_on_batch`. This script splits that figure, for this
package's model (XLA off, its faster inference setting on 2x650) and the
same model in PyTorch, into:

- `predict_on_batch` (ours only): the forward pass, Keras's predict
  wrapper and the copy of the logits into a new NumPy array;
- `forward`: the compiled forward pass returning the logits as a tensor
  (ours: a `tf.function` of `model(ids, training=False)`, which is what a
  SavedModel signature runs; PyTorch: `model(ids, state)` under
  `no_grad`, as `throughput.py` times it);
- `lstm stack`: the embedding lookup and the LSTM layers;
- `head`: the output projection of `(batch*time, units)` vectors to
  logits (tied: `h @ E^T + b`).

Parts alternate in one process; each figure is the median (and minimum)
of `--repeats` timings of `--steps` calls, in milliseconds per batch (20 x 35
tokens for the word models). `--smoke` runs the tiny model once, for CI.
"""

import argparse
import statistics
import time

from benchmarks.throughput import (
    CONFIGS,
    build_keras_model,
    build_torch_model,
    have_torch,
    random_batch,
    write_json,
)


def keras_parts(config):
    """`{part: callable}` for this package's model of `config`."""
    import tensorflow as tf

    from keras_lstm_scratch.language_model import model_parts

    model = build_keras_model(config, "ours", jit=False, precision="float32")
    embedding, rnn_layers, projection = model_parts(model)
    ids, _ = random_batch(config)
    ids_tensor = tf.constant(ids)
    hidden = tf.random.stateless_normal(
        (config["batch"] * config["seq_len"], config["hidden"]), seed=(0, 0)
    )

    @tf.function
    def forward():
        return model(ids_tensor, training=False)

    @tf.function
    def lstm_stack():
        x = embedding(ids_tensor)
        for layer in rnn_layers:
            x = layer(x, training=False)
        return x

    return {
        "predict_on_batch": lambda: model.predict_on_batch(ids),
        "forward": forward,
        "lstm stack": lstm_stack,
        "head": tf.function(lambda: projection(hidden)),
    }


def torch_parts(config):
    """`{part: callable}` for the PyTorch model of `config`."""
    import torch

    model = build_torch_model(config).eval()
    ids = torch.from_numpy(random_batch(config)[0].astype("int64"))
    shape = (config["layers"], config["batch"], config["hidden"])
    state = (torch.zeros(shape), torch.zeros(shape))
    hidden = torch.randn(config["batch"] * config["seq_len"], config["hidden"])

    def no_grad(function):
        def run():
            with torch.no_grad():
                return function()

        return run

    return {
        "forward": no_grad(lambda: model(ids, state)),
        "lstm stack": no_grad(lambda: model.lstm(model.embedding(ids), state)),
        "head": no_grad(lambda: model.output(hidden)),
    }


def measure(parts, repeats, steps):
    """Median and minimum milliseconds per call of each part, alternating
    the parts (A B C A B C ...) so that drift hits all of them alike."""
    for run in parts.values():  # warm up: tracing
        run()
        run()
    times = {name: [] for name in parts}
    for _ in range(repeats):
        for name, run in parts.items():
            start = time.perf_counter()
            for _ in range(steps):
                run()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return {
        name: {"median_ms": statistics.median(values), "min_ms": min(values)}
        for name, values in times.items()
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="book-better", choices=CONFIGS)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", default=None, help="write results here")
    args = parser.parse_args(argv)
    config_name, repeats, steps = args.config, args.repeats, args.steps
    if args.smoke:
        config_name, repeats, steps = "smoke", 1, 1
    config = CONFIGS[config_name]
    parts = {f"ours {name}": run for name, run in keras_parts(config).items()}
    if have_torch() and not args.no_torch:
        parts.update(
            {f"torch {name}": run for name, run in torch_parts(config).items()}
        )
    rows = measure(parts, repeats, steps)
    print(
        f"\n{config_name} inference (float32, batch {config['batch']}, seq "
        f"{config['seq_len']}, "
        f"ms per batch, {repeats} x {steps} calls)"
    )
    print(f"{'part':<24} {'median':>8} {'min':>8}")
    for name, row in rows.items():
        print(f"{name:<24} {row['median_ms']:8.2f} {row['min_ms']:8.2f}")
    results = {
        "config": config_name,
        "batch": config["batch"],
        "seq_len": config["seq_len"],
        "repeats": repeats,
        "steps": steps,
        "parts": rows,
    }
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
