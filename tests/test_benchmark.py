import json

import pytest

from benchmarks import inference_parts, profile_step, throughput


def test_smoke_run_measures_every_system_and_writes_json(tmp_path):
    path = tmp_path / "results.json"
    throughput.main(
        [
            "--smoke",
            "--json",
            str(path),
            "--systems",
            "ours-jit-off",
            "keras-jit-off",
        ]
    )
    results = json.loads(path.read_text())
    rows = results["configs"]["smoke"]
    assert set(rows) == {"ours-jit-off", "keras-jit-off"}
    for row in rows.values():
        for mode in ("train", "inference"):
            assert row[mode]["median"] > 0
        assert row["peak_memory_mib"] > 0
    # Each ratio is the system's median over the best median of ours.
    for mode in ("train", "inference"):
        best = max(
            row[mode]["median"]
            for name, row in rows.items()
            if name.startswith("ours")
        )
        for row in rows.values():
            assert row[mode]["ratio_to_ours"] == pytest.approx(
                row[mode]["median"] / best
            )


def test_each_figure_is_the_median_of_the_repeats(monkeypatch):
    # Tokens per second as time_steps would give them, in the order the
    # benchmark asks: per repeat, training then inference.
    figures = iter([3.0, 30.0, 1.0, 10.0, 2.0, 20.0])
    rows = {}

    def fake_time_steps(step, steps, config):
        return next(figures)

    monkeypatch.setattr(throughput, "time_steps", fake_time_steps)
    rows = throughput.benchmark(
        "smoke", ["ours-jit-off"], repeats=3, steps=1,
        precision="float32", memory=False,
    )  # fmt: skip
    train, inference = (
        rows["ours-jit-off"]["train"],
        rows["ours-jit-off"]["inference"],
    )
    assert (train["median"], train["min"], train["max"]) == (2.0, 1.0, 3.0)
    assert (inference["median"], inference["min"]) == (20.0, 10.0)
    assert inference["max"] == 30.0 and train["ratio_to_ours"] == 1.0


def test_inference_parts_smoke_run_times_every_part_and_writes_json(tmp_path):
    path = tmp_path / "parts.json"
    inference_parts.main(["--smoke", "--no-torch", "--json", str(path)])
    parts = json.loads(path.read_text())["parts"]
    assert set(parts) == {
        "ours predict_on_batch",
        "ours forward",
        "ours lstm stack",
        "ours head",
    }
    for row in parts.values():
        assert row["min_ms"] > 0


def test_a_mixed_precision_system_leaves_the_global_policy_as_it_was():
    import keras

    config = throughput.CONFIGS["smoke"]
    model = throughput.build_keras_model(
        config, "ours", jit=False, precision="mixed_bfloat16"
    )
    assert keras.mixed_precision.global_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in model.layers[1:-1]} == {
        "mixed_bfloat16"
    }


def test_the_profile_splits_a_step_by_op_type(capsys):
    profile_step.main(["--config", "smoke", "--steps", "2"])
    printed = capsys.readouterr().out
    for part in ("training step", "scoring pass"):
        assert f"smoke, ours, {part} (float32)" in printed
    rows = [line for line in printed.splitlines() if "MatMul |" in line]
    assert rows  # the recurrent products are traced
    shares = [
        float(line.split("|")[3].strip(" %")) for line in printed.splitlines()
        if line.startswith("| ") and line.count("|") == 6 and "%" in line
    ]  # fmt: skip
    assert 0 < max(shares) <= 100
