"""Training and inference throughput: this package vs keras.layers.LSTM vs
PyTorch's nn.LSTM, on the same model, measured side by side.

    python benchmarks/throughput.py --config book-rnnlm book-better \\
        --repeats 3 --steps 10 --json benchmarks/results.json

Systems run in turn (A B C A B C ...) in one process, so that the machine's
drift hits all of them alike; each figure is the median of `--repeats`
timings of `--steps` steps, with its spread (min-max). Ratios are to this
package's best setting. Peak memory is measured per system in a fresh
subprocess (its `VmHWM`, peak resident set) running the same steps.
`--smoke` runs a tiny model once per system, for CI.

`--backends jax torch` adds, for each of those Keras backends, a row for
this package and one for `keras.layers.LSTM` on it (`ours-jax`,
`keras-jax`, ...), measured in a child process that runs Keras on that
backend (one backend per process): JAX compiled with `jax.jit`, PyTorch
eager (Keras's defaults there). Their ratios are to TensorFlow's best
`ours`, measured just before in the parent.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

WORDS = dict(vocab=10000, batch=20, seq_len=35)  # PTB words, book's batch
CONFIGS = {
    # vocabulary size, embedding and hidden units, layers, dropout, tied,
    # batch size and time steps of the preset
    "book-rnnlm": dict(
        WORDS, embedding=100, hidden=100, layers=1, dropout=0.0, tied=False
    ),
    "book-better": dict(
        WORDS, embedding=650, hidden=650, layers=2, dropout=0.5, tied=True
    ),
    # PTB as characters: 51 tokens, char-30min's model and windows
    "char-30min": dict(
        vocab=51,
        embedding=128,
        hidden=512,
        layers=1,
        dropout=0.0,
        tied=False,
        batch=32,
        seq_len=100,
    ),
    "smoke": dict(
        vocab=50,
        embedding=8,
        hidden=8,
        layers=2,
        dropout=0.5,
        tied=True,
        batch=20,
        seq_len=35,
    ),
}
LEARNING_RATE, CLIP_NORM = 1.0, 0.25
# The compile setting of each other backend's rows: Keras's default there.
OTHER_BACKENDS = {"jax": "jit-on", "torch": "jit-off"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def output_bias_layer():
    """A bias-only layer: stock Keras's tied head is ReversibleEmbedding +
    a separate bias add (PyTorch's tied `nn.Linear` has a bias too)."""
    import keras

    class OutputBias(keras.layers.Layer):
        def build(self, input_shape):
            self.bias = self.add_weight(
                shape=input_shape[-1:], initializer="zeros"
            )

        def call(self, inputs):
            return inputs + keras.ops.cast(self.bias, inputs.dtype)

    return OutputBias()


def keras_system(config, kind, jit, precision):
    """A train step and a predict step for a Keras model of `config`."""
    model = build_keras_model(config, kind, jit, precision)
    x, y = random_batch(config)
    return (
        lambda: model.train_on_batch(x, y),
        lambda: model.predict_on_batch(x),
    )


def random_batch(config):
    """Token ids and targets, `(batch, seq_len)` int32, fixed seed."""
    rng = np.random.default_rng(0)
    shape = (config["batch"], config["seq_len"])
    x = rng.integers(0, config["vocab"], shape).astype("int32")
    y = rng.integers(0, config["vocab"], shape).astype("int32")
    return x, y


def build_keras_model(config, kind, jit, precision):
    """A compiled, stateful Keras language model of `config`.

    `kind`: "ours" (`build_language_model`: `TimeLSTM` layers, the
    bias-folded output projection, `SparseSoftmaxCrossEntropy`; its default
    `use_onednn="auto"`), "fused" (the same with oneDNN's fused LSTM in
    every call, `use_onednn=True`), "ownloop" (with `TimeLSTM`'s own loop
    in every call, `use_onednn=False`), "cell"
    (the same with Keras's generic loop, `RNN(LSTMCell)`), "keras" (stock
    Keras: `keras.layers.LSTM`, `Dense`, `SparseCategoricalCrossentropy`)
    or "kerashead" (`keras.layers.LSTM` under this package's output
    projection and loss: separates the loop's share from the head's).
    """
    from training.model import global_dtype_policy

    # The layers keep the policy they are built under; the global policy
    # is restored afterwards, so the next system starts from float32.
    with global_dtype_policy(precision):
        return keras_model_of_kind(config, kind, jit)


def keras_model_of_kind(config, kind, jit):
    """`build_keras_model` under the policy it set."""
    import keras

    from keras_lstm_scratch import (
        LSTMCell,
        OutputProjection,
        SparseSoftmaxCrossEntropy,
        TiedEmbedding,
        build_language_model,
    )

    if kind in ("ours", "fused", "ownloop"):
        model = build_language_model(
            config["vocab"],
            config["embedding"],
            config["hidden"],
            num_layers=config["layers"],
            dropout=config["dropout"],
            tie_weights=config["tied"],
            stateful=True,
            batch_size=config["batch"],
            seq_len=config["seq_len"],
        )
        for layer in model.layers:  # the TimeLSTMs are top-level layers
            if kind != "ours" and hasattr(layer, "use_onednn"):
                layer.use_onednn = kind == "fused"
    else:
        ids = keras.Input(
            (config["seq_len"],), batch_size=config["batch"], dtype="int32"
        )
        if config["tied"] and kind == "keras":
            embedding = keras.layers.ReversibleEmbedding(
                config["vocab"], config["embedding"]
            )
        elif config["tied"]:
            embedding = TiedEmbedding(config["vocab"], config["embedding"])
        else:
            embedding = keras.layers.Embedding(
                config["vocab"], config["embedding"]
            )
        x = embedding(ids)
        x = keras.layers.Dropout(config["dropout"])(x)
        # Keras 3.15's LSTM cannot train statefully on PyTorch (it assigns
        # its states in place under autograd): there it runs stateless,
        # which times the same work.
        stateful = keras.backend.backend() != "torch"
        for _ in range(config["layers"]):
            if kind == "cell":
                x = keras.layers.RNN(
                    LSTMCell(config["hidden"]),
                    return_sequences=True,
                    stateful=True,
                )(x)
            else:
                x = keras.layers.LSTM(
                    config["hidden"], return_sequences=True, stateful=stateful
                )(x)
            x = keras.layers.Dropout(config["dropout"])(x)
        if config["tied"] and kind == "keras":
            logits = output_bias_layer()(embedding(x, reverse=True))
        elif config["tied"]:
            logits = embedding(x, reverse=True)
        elif kind == "keras":
            logits = keras.layers.Dense(config["vocab"])(x)
        else:
            logits = OutputProjection(config["vocab"])(x)
        model = keras.Model(
            ids, keras.layers.Activation("linear", dtype="float32")(logits)
        )
    model.compile(
        optimizer=keras.optimizers.SGD(
            LEARNING_RATE, global_clipnorm=CLIP_NORM
        ),
        loss=(
            keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if kind == "keras"
            else SparseSoftmaxCrossEntropy()
        ),
        jit_compile=jit,
    )
    return model


def build_torch_model(config):
    """The same model in PyTorch (the word_language_model example's shape):
    `forward(ids, state)` returns `(logits, state)`."""
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(config["vocab"], config["embedding"])
            self.dropout = nn.Dropout(config["dropout"])
            self.lstm = nn.LSTM(
                config["embedding"],
                config["hidden"],
                num_layers=config["layers"],
                dropout=config["dropout"],
                batch_first=True,
            )
            self.output = nn.Linear(config["hidden"], config["vocab"])
            if config["tied"]:
                self.output.weight = self.embedding.weight

        def forward(self, ids, state):
            x = self.dropout(self.embedding(ids))
            x, state = self.lstm(x, state)
            return self.output(self.dropout(x)), state

    return Model()


def torch_system(config, precision):
    """A train step and a predict step for `build_torch_model(config)`."""
    import torch
    from torch import nn

    model = build_torch_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    x, y = (torch.from_numpy(a.astype("int64")) for a in random_batch(config))
    shape = (config["layers"], config["batch"], config["hidden"])
    state = [(torch.zeros(shape), torch.zeros(shape))]
    autocast = torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=precision == "mixed_bfloat16"
    )

    def train():
        model.train()
        h, c = (s.detach() for s in state[0])  # truncated BPTT
        optimizer.zero_grad()
        with autocast:
            logits, new_state = model(x, (h, c))
            loss = loss_fn(
                logits.float().reshape(-1, config["vocab"]), y.reshape(-1)
            )
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        state[0] = new_state

    def predict():
        model.eval()
        with torch.no_grad(), autocast:
            logits, new_state = model(x, state[0])
        state[0] = new_state
        return logits

    return train, predict


def make_system(name, config, precision):
    if name == "torch":
        return torch_system(config, precision)
    kind, _, jit = name.partition("-jit-")
    return keras_system(config, kind, jit=jit == "on", precision=precision)


def time_steps(step, steps, config):
    """Tokens per second of `steps` calls of `step` on `config`'s batch."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    tokens = config["batch"] * config["seq_len"] * steps
    return tokens / (time.perf_counter() - start)


def peak_memory_mib(name, config_name, precision, steps):
    """Peak RSS of a fresh process that builds `name` and runs its steps."""
    code = "; ".join(
        [
            "import sys",
            f"sys.path.insert(0, {ROOT!r})",
            "import benchmarks.throughput as b",
            f"config = b.CONFIGS[{config_name!r}]",
            f"train, predict = b.make_system({name!r}, config, {precision!r})",
            f"[train() for _ in range({steps})]",
            f"[predict() for _ in range({steps})]",
            # VmHWM: the peak RSS of this process image. (ru_maxrss would not
            # do: Linux carries it over from the parent across execve.)
            "print([line.split()[1] for line in open('/proc/self/status')"
            " if line.startswith('VmHWM')][0])",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def have_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def benchmark(config_name, systems, repeats, steps, precision, memory):
    config = CONFIGS[config_name]
    built = {}
    for name in systems:
        train, predict = make_system(name, config, precision)
        for _ in range(2):  # warm up: tracing, XLA compilation
            train()
            predict()
        built[name] = (train, predict)
    timings = {name: {"train": [], "inference": []} for name in systems}
    names = list(built)
    for repeat in range(repeats):
        # Each repeat starts one system later: a system runs slower just
        # after another (caches, the other's threads), 5-10% measured, so
        # no system always follows the same one.
        start = repeat % len(names)
        for name in names[start:] + names[:start]:
            train, predict = built[name]
            timings[name]["train"].append(time_steps(train, steps, config))
            timings[name]["inference"].append(
                time_steps(predict, steps, config)
            )
    rows = {}
    for name, runs in timings.items():
        rows[name] = {
            mode: {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
            for mode, values in runs.items()
        }
        if memory:
            rows[name]["peak_memory_mib"] = peak_memory_mib(
                name, config_name, precision, steps
            )
    add_ratios(rows)
    return rows


def add_ratios(rows):
    """Each row's `ratio_to_ours`: its median over the best median of this
    package on TensorFlow (the `ours-jit-*` rows)."""
    ours = [name for name in rows if name.startswith("ours-jit")]
    for mode in ("train", "inference"):
        best = max(rows[name][mode]["median"] for name in ours)
        for name in rows:
            rows[name][mode]["ratio_to_ours"] = (
                rows[name][mode]["median"] / best
            )


def other_backend_rows(config_name, backend, repeats, steps, precision, memory):
    """The `ours-BACKEND` and `keras-BACKEND` rows, measured in a child
    process that runs Keras on `backend`."""
    jit = OTHER_BACKENDS[backend]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.json")
        command = [
            sys.executable, "-m", "benchmarks.throughput",
            "--config", config_name, "--systems", f"ours-{jit}", f"keras-{jit}",
            "--repeats", str(repeats), "--steps", str(steps),
            "--precision", precision, "--json", path,
            *([] if memory else ["--no-memory"]),
        ]  # fmt: skip
        subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": backend},
            check=True,
            capture_output=True,
        )
        with open(path) as handle:
            rows = json.load(handle)["configs"][config_name]
    return {
        f"{name.split('-')[0]}-{backend}": row for name, row in rows.items()
    }


def print_table(config_name, precision, rows):
    config = CONFIGS[config_name]
    print(
        f"\n{config_name} ({precision}, batch {config['batch']}, seq "
        f"{config['seq_len']}, "
        f"tokens/s: median [min-max], ratio = system / ours best)"
    )
    print(
        f"{'system':<16} {'train':>26} {'ratio':>6} {'inference':>26} "
        f"{'ratio':>6} {'peak MiB':>9}"
    )
    for name, row in rows.items():
        cells = []
        for mode in ("train", "inference"):
            m = row[mode]
            cells.append(
                f"{m['median']:8.0f} [{m['min']:6.0f}-{m['max']:6.0f}]"
                f" {m['ratio_to_ours']:6.2f}"
            )
        memory = row.get("peak_memory_mib")
        memory = "-" if memory is None else f"{memory:.0f}"
        print(f"{name:<16} {cells[0]:>33} {cells[1]:>33} {memory:>9}")


def write_json(path, results):
    """Writes `results` to `path` (nothing when `path` is None)."""
    if path:
        with open(path, "w") as handle:
            json.dump(results, handle, indent=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", nargs="+", default=["book-rnnlm", "book-better"]
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        default=None,
        help="default: ours/cell/keras jit off and on, torch",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--precision", default="float32", choices=("float32", "mixed_bfloat16")
    )
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model, one repeat of one step (CI)",
    )
    parser.add_argument(
        "--backends",
        nargs="*",
        default=[],
        choices=sorted(OTHER_BACKENDS),
        help="other Keras backends to add rows for (ours and keras on each)",
    )
    parser.add_argument("--json", default=None, help="write results here")
    args = parser.parse_args(argv)
    systems = args.systems or [
        "ours-jit-off",
        "ours-jit-on",
        "fused-jit-off",
        "ownloop-jit-off",
        "cell-jit-off",
        "cell-jit-on",
        "keras-jit-off",
        "keras-jit-on",
        *(["torch"] if have_torch() else []),
    ]
    configs, repeats, steps = args.config, args.repeats, args.steps
    if args.smoke:
        configs, repeats, steps = ["smoke"], 1, 1
    results = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "processor": platform.processor(),
        },
        "precision": args.precision,
        "repeats": repeats,
        "steps": steps,
        "configs": {},
    }
    for config_name in configs:
        rows = benchmark(
            config_name,
            systems,
            repeats,
            steps,
            args.precision,
            memory=not args.no_memory,
        )
        for backend in args.backends:
            rows.update(
                other_backend_rows(
                    config_name,
                    backend,
                    repeats,
                    steps,
                    args.precision,
                    memory=not args.no_memory,
                )
            )
        add_ratios(rows)
        results["configs"][config_name] = rows
        print_table(config_name, args.precision, rows)
    write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
