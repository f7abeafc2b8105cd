import json

import pytest
import tensorflow as tf

from keras_lstm_scratch import TimeLSTM
from training.config import (
    PRESETS,
    TrainConfig,
    parse_overrides,
    resolve_config,
)
from training.model import build_model, resolve_precision
from training.train import main


def test_presets_match_the_book_models():
    rnnlm = resolve_config("book-rnnlm")
    assert (rnnlm.num_layers, rnnlm.hidden_units, rnnlm.embedding_dim) == (
        1,
        100,
        100,
    )
    assert (rnnlm.dropout, rnnlm.tie_weights, rnnlm.epochs) == (0.0, False, 4)
    better = resolve_config("book-better")
    assert (better.num_layers, better.hidden_units, better.dropout) == (
        2,
        650,
        0.5,
    )
    assert better.tie_weights and better.epochs == 40
    assert (better.learning_rate, better.clip_norm, better.clip_mode) == (
        20.0,
        0.25,
        "global",
    )
    assert {
        "tiny",
        "zaremba-small",
        "zaremba-medium",
        "zaremba-large",
        "cpu-30min",
        "cpu-2h",
        "awd-medium",
    } <= set(PRESETS)


def test_overrides_are_typed():
    overrides = parse_overrides(
        [
            "epochs=7",
            "dropout=0.25",
            "tie_weights=true",
            "clip_mode=per_variable",
        ]
    )
    assert overrides == {
        "epochs": 7,
        "dropout": 0.25,
        "tie_weights": True,
        "clip_mode": "per_variable",
    }
    config = resolve_config("tiny", overrides)
    assert isinstance(config, TrainConfig) and config.epochs == 7


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("hiden_units=5", "Unknown config key 'hiden_units'.*hidden_units"),
        ("epochs=two", "epochs=two: expected a int"),
        ("tie_weights=maybe", "expected true or false"),
        ("epochs", "key=value"),
    ],
)
def test_bad_overrides_are_rejected(assignment, message):
    with pytest.raises(ValueError, match=message):
        parse_overrides([assignment])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"clip_mode": "norm"}, "clip_mode='norm'"),
        ({"precision": "float16"}, "precision='float16'"),
        ({"dropout": 1.5}, "dropout=1.5"),
        ({"seq_len": 0}, "seq_len=0"),
        ({"corpus": "wiki"}, "corpus='wiki'"),
        ({"weight_dropout": 1.0}, "weight_dropout=1.0"),
        ({"activation_regularization": -2.0}, "activation_regularization"),
        ({"averaging_nonmono": -1}, "averaging_nonmono=-1"),
        ({"lr_constant_fraction": 1.0}, "lr_constant_fraction=1.0"),
        ({"lr_schedule": "linear"}, "time_budget_minutes"),
        (
            {"weight_dropout": 0.5, "rnn_cell": "simple_rnn"},
            "rnn_cell='lstm'",
        ),
    ],
)
def test_invalid_values_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_config("tiny", overrides)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="book-rnnlm"):
        resolve_config("huge")


def test_cli_rejects_unknown_keys_before_training(tmp_path, capsys):
    code = main(
        [
            "--preset",
            "tiny",
            "--output-dir",
            str(tmp_path / "run"),
            "--set",
            "learning_rat=1",
        ]
    )
    assert code == 2
    assert "Unknown config key 'learning_rat'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_config_json_round_trips(tmp_path):
    from training.run_directory import save_config

    config = resolve_config("cpu-30min", {"epochs": 3})
    save_config(config, tmp_path / "config.json")
    loaded = json.loads((tmp_path / "config.json").read_text())
    assert TrainConfig(**loaded) == config


@pytest.mark.parametrize(
    "flags, policy",
    [
        (["avx2", "avx512f", "avx512_bf16"], "mixed_bfloat16"),
        (["avx2", "amx_bf16", "amx_tile"], "mixed_bfloat16"),
        (["avx2", "fma"], "float32"),
        ([], "float32"),
    ],
)
def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_it(flags, policy):
    assert resolve_precision("auto", cpu_flags=flags) == policy
    assert resolve_precision("float32", cpu_flags=flags) == "float32"


@pytest.mark.parametrize(
    "setting, expected", [("auto", "auto"), ("on", True), ("off", False)]
)
def test_use_onednn_reaches_every_time_lstm(setting, expected):
    overrides = parse_overrides(
        ["hidden_units=8", "embedding_dim=8", f"use_onednn={setting}"]
    )
    config = resolve_config("tiny", {**overrides, "num_layers": 2})
    model = build_model(config, 20, tf.distribute.get_strategy(), 4)
    flags = [
        layer.use_onednn
        for layer in model.layers
        if isinstance(layer, TimeLSTM)
    ]
    assert flags == [expected, expected]
