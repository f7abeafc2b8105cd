"""See the gates work: gradient flow through time, and gate statistics.

    # ||d loss / d h_t|| against distance, SimpleRNN vs LSTM, untrained and
    # trained (two runs of the same size):
    python -m training.train --preset book-rnnlm --output-dir runs/book-rnnlm
    python -m training.train --preset book-simple-rnnlm \\
        --output-dir runs/book-simple-rnnlm
    python -m training.inspect_model gradients --lstm-run runs/book-rnnlm \\
        --simple-rnn-run runs/book-simple-rnnlm --output-dir docs

    # Gate openness per layer over validation windows, and the cell state
    # of a few units across a sentence:
    python -m training.inspect_model gates --run runs/book-rnnlm \\
        --output-dir docs

Each command writes PNGs and the numbers behind them as CSV.
"""

import argparse
import csv
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_lstm_scratch.inspection import (
    gradient_ratio,
    hidden_state_gradient_norms,
    summarize_gates,
    trace_gates,
)
from training.cli import reports_input_errors
from training.data import (
    first_validation_sentence,
    first_validation_window,
    load_corpus,
)
from training.model import build_model
from training.plots import (
    plot_cell_trajectory,
    plot_gate_histograms,
    plot_gradient_flow,
)
from training.run_directory import RunDirectory

FAR, NEAR = 30, 1  # the distances of the reported gradient ratio
PROBE_STREAMS, PROBE_STEPS = 20, 35  # validation window of the probes


def measure_gradient_flow(models, token_ids, targets):
    """`{label: (layers, time) norms}` for each `(label, model)`."""
    return {
        label: hidden_state_gradient_norms(model, token_ids, targets)
        for label, model in models
    }


def write_gradient_csv(norms_by_label, path):
    """One row per model, layer and distance."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "layer", "distance", "gradient_norm"])
        for label, norms in norms_by_label.items():
            steps = norms.shape[1]
            for layer, row in enumerate(norms, start=1):
                for t, value in enumerate(row):
                    writer.writerow([label, layer, steps - 1 - t, value])


def run_gradients(args):
    runs = {"SimpleRNN": args.simple_rnn_run, "LSTM": args.lstm_run}
    models, corpus = [], None
    for name, path in runs.items():
        run_dir = RunDirectory(path)
        trained, vocabulary = run_dir.load_finished()
        config = run_dir.load_config()
        keras.utils.set_random_seed(config.seed)
        untrained = build_model(
            config, len(vocabulary), tf.distribute.get_strategy()
        )
        models += [
            (f"{name}, untrained", untrained),
            (f"{name}, trained", trained),
        ]
        corpus = corpus or load_corpus(config, args.data_dir)
    token_ids, targets = first_validation_window(
        corpus, PROBE_STREAMS, PROBE_STEPS
    )
    norms = measure_gradient_flow(models, token_ids, targets)
    os.makedirs(args.output_dir, exist_ok=True)
    write_gradient_csv(
        norms, os.path.join(args.output_dir, "gradient-flow.csv")
    )
    layers = "layer" if config.num_layers == 1 else "layers"
    plot_gradient_flow(
        {label: values[0] for label, values in norms.items()},
        os.path.join(args.output_dir, "gradient-flow.png"),
        f"{config.num_layers} {layers}, {config.hidden_units} units",
    )
    ratios = {
        label: float(gradient_ratio(values, FAR, NEAR)[0])
        for label, values in norms.items()
    }
    with open(
        os.path.join(args.output_dir, "gradient-ratios.json"), "w"
    ) as handle:
        json.dump(
            {"far": FAR, "near": NEAR, "ratios": ratios}, handle, indent=2
        )
    print(f"||dL/dh|| at distance {FAR} / at distance {NEAR} (layer 1):")
    for label, ratio in ratios.items():
        print(f"  {label:<20} {ratio:.3e}")
    return ratios


def run_gates(args):
    run_dir = RunDirectory(args.run)
    model, vocabulary = run_dir.load_finished()
    corpus = load_corpus(run_dir.load_config(), args.data_dir)
    token_ids, _ = first_validation_window(corpus, PROBE_STREAMS, PROBE_STEPS)
    traces = trace_gates(model, token_ids)
    os.makedirs(args.output_dir, exist_ok=True)
    rows = summarize_gates(traces)
    with open(
        os.path.join(args.output_dir, "gates.csv"), "w", newline=""
    ) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_gate_histograms(traces, os.path.join(args.output_dir, "gates.png"))

    sentence = first_validation_sentence(corpus)
    words = [vocabulary.words[i] for i in sentence]
    cell = trace_gates(model, sentence[None, :])[0]["cell"][0]  # (T, units)
    units = np.argsort(cell.std(axis=0))[::-1][: args.units]
    with open(
        os.path.join(args.output_dir, "cell-trajectory.csv"), "w", newline=""
    ) as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "word", *[f"unit_{u}" for u in units]])
        for step, word in enumerate(words):
            writer.writerow([step, word, *cell[step, units].tolist()])
    plot_cell_trajectory(
        cell[:, units],
        words,
        [int(u) for u in units],
        os.path.join(args.output_dir, "cell-trajectory.png"),
    )
    for row in rows:
        print(
            f"layer {row['layer']} {row['gate']:<7} mean {row['mean']:.3f}  "
            f"median {row['median']:.3f}  <0.1: {row['share_below_0.1']:.1%}"
            f"  >0.9: {row['share_above_0.9']:.1%}"
        )
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.inspect_model",
        description=__doc__.split("\n")[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gradients = commands.add_parser(
        "gradients", help="gradient norm against distance, RNN vs LSTM"
    )
    gradients.add_argument("--lstm-run", required=True)
    gradients.add_argument(
        "--simple-rnn-run",
        required=True,
        help="a run of the same size with rnn_cell=simple_rnn",
    )
    gates = commands.add_parser("gates", help="gate statistics of a run")
    gates.add_argument("--run", required=True)
    gates.add_argument(
        "--units", type=int, default=6, help="cell-state units to plot"
    )
    for command in (gradients, gates):
        command.add_argument("--data-dir", default=None)
        command.add_argument("--output-dir", default="inspect")
    return parser.parse_args(argv)


@reports_input_errors
def main(argv=None):
    args = parse_args(argv)
    if args.command == "gradients":
        run_gradients(args)
    else:
        run_gates(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
