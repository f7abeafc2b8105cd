import csv
import json
import os

import pytest

from tests.helpers import small_config
from training import inspect_model
from training.run import run


@pytest.fixture(scope="module")
def tiny_runs(small_corpus_dir, tmp_path_factory):
    """One-epoch LSTM and SimpleRNN runs of the same size."""
    runs = {}
    for rnn_cell in ("lstm", "simple_rnn"):
        output_dir = str(tmp_path_factory.mktemp(rnn_cell))
        run(
            small_config(small_corpus_dir, rnn_cell=rnn_cell),
            output_dir,
            verbose=0,
        )
        runs[rnn_cell] = output_dir
    return runs


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_gradients_command_writes_the_figure_and_numbers(tiny_runs, tmp_path):
    output_dir = str(tmp_path / "out")
    code = inspect_model.main(
        [
            "gradients",
            "--lstm-run",
            tiny_runs["lstm"],
            "--simple-rnn-run",
            tiny_runs["simple_rnn"],
            "--output-dir",
            output_dir,
        ]
    )
    assert code == 0
    assert os.path.getsize(os.path.join(output_dir, "gradient-flow.png")) > 0
    rows = read_csv(os.path.join(output_dir, "gradient-flow.csv"))
    labels = {row["model"] for row in rows}
    assert labels == {
        "SimpleRNN, untrained",
        "SimpleRNN, trained",
        "LSTM, untrained",
        "LSTM, trained",
    }
    # One row per model and distance 0..34 (one layer).
    assert len(rows) == 4 * 35
    assert all(float(row["gradient_norm"]) > 0 for row in rows)
    with open(os.path.join(output_dir, "gradient-ratios.json")) as handle:
        saved = json.load(handle)
    assert (saved["far"], saved["near"]) == (30, 1)
    by_distance = {
        (row["model"], int(row["distance"])): float(row["gradient_norm"])
        for row in rows
    }
    for label, ratio in saved["ratios"].items():
        expected = by_distance[(label, 30)] / by_distance[(label, 1)]
        assert ratio == pytest.approx(expected, rel=1e-6)


def test_gates_command_summarises_each_gate(tiny_runs, tmp_path):
    output_dir = str(tmp_path / "out")
    code = inspect_model.main(
        ["gates", "--run", tiny_runs["lstm"], "--output-dir", output_dir]
    )
    assert code == 0
    for name in ("gates.png", "cell-trajectory.png"):
        assert os.path.getsize(os.path.join(output_dir, name)) > 0
    rows = read_csv(os.path.join(output_dir, "gates.csv"))
    assert [(row["layer"], row["gate"]) for row in rows] == [
        ("1", "forget"),
        ("1", "input"),
        ("1", "output"),
    ]
    for row in rows:
        assert 0.0 <= float(row["q1"]) <= float(row["median"]) <= 1.0
    trajectory = read_csv(os.path.join(output_dir, "cell-trajectory.csv"))
    assert trajectory[-1]["word"] == "<eos>"
    assert len(trajectory[0]) == 2 + 6  # step, word, six units
    # The training run logged gate histograms for TensorBoard too.
    gates_logs = os.path.join(tiny_runs["lstm"], "tensorboard", "gates")
    assert any(name.startswith("events") for name in os.listdir(gates_logs))


def test_a_missing_run_is_reported(tmp_path, capsys):
    code = inspect_model.main(["gates", "--run", str(tmp_path / "nothing")])
    assert code == 2
    assert "not found" in capsys.readouterr().err
