"""Run configuration: one flat frozen dataclass, presets, CLI overrides."""

import dataclasses
import json

from keras_lstm_scratch.errors import InvalidInputError
from keras_lstm_scratch.language_model import RNN_CELLS
from training.files import write_atomically


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; saved as `config.json` per run."""

    # --- data ---
    # "ptb", "text:DIR" (DIR/{train,valid,test}.txt) or "tfds:NAME"
    corpus: str = "ptb"
    max_vocab_size: int = 10000  # cap for text/tfds corpora (PTB has 10,000)
    tfds_text_key: str = "text"  # string feature of a TFDS dataset
    # --- model ---
    embedding_dim: int = 100  # word vector size
    hidden_units: int = 100  # LSTM state size, every layer
    num_layers: int = 1  # stacked LSTM layers
    dropout: float = 0.0  # between layers only (depth direction)
    tie_weights: bool = False  # embedding matrix doubles as output projection
    rnn_cell: str = "lstm"  # "simple_rnn": the plain RNN, for comparison
    init_scale: float = 0.0  # >0: weights U(-s, s) (Zaremba); 0: Keras's
    # --- truncated BPTT ---
    batch_size: int = 20  # parallel token streams
    seq_len: int = 35  # time steps per window (backprop length)
    # --- optimisation ---
    epochs: int = 4
    learning_rate: float = 20.0  # plain SGD, as the book
    clip_norm: float = 0.25  # gradient clipping threshold
    clip_mode: str = "global"  # "global" (book, PyTorch) or "per_variable"
    lr_schedule: str = "plateau"  # "plateau": book; "step": Zaremba
    lr_decay: float = 4.0  # divide the learning rate by this
    decay_start_epoch: int = 0  # "step": epochs at the full rate
    time_budget_minutes: float = 0.0  # >0: start no epoch that would overrun
    jit_compile: bool = False  # XLA; slower for this model on CPU
    # "float32", or "mixed_bfloat16": bf16 compute, float32 master weights
    precision: str = "float32"
    seed: int = 1


# The book's Rnnlm (ch. 6 train_rnnlm.py): 1x100, untied, no dropout,
# 4 epochs, SGD 20, global clip 0.25. The book keeps the rate at 20 for all
# 4 epochs: test perplexity 134.99 measured (single-stream test, as every
# figure here). This preset divides it by 4 after epochs 2 and 3 (the /4 of
# the book's train_better_rnnlm.py, whose plateau rule would not fire in 4
# epochs), epochs 1-2 at 20, 3 at 5, 4 at 1.25: about 128.
# XLA: 1.25-1.33x faster for this small model (docs/speed.md).
BOOK_RNNLM = dict(
    lr_schedule="step", lr_decay=4.0, decay_start_epoch=2, jit_compile=True
)

PRESETS = {
    # Seconds per epoch on a 2-core CPU; for smoke tests.
    "tiny": dict(
        embedding_dim=32,
        hidden_units=32,
        batch_size=64,
        seq_len=20,
        epochs=1,
        learning_rate=20.0,
    ),
    "book-rnnlm": BOOK_RNNLM,
    # book-rnnlm with the plain RNN of the book's chapter 5 in place of the
    # LSTM: the baseline of `python -m training.inspect gradients`. At the
    # LSTM's rate of 20 it diverged (train perplexity 328,603 after epoch 1).
    "book-simple-rnnlm": dict(
        BOOK_RNNLM, rnn_cell="simple_rnn", learning_rate=1.0
    ),
    # The book's BetterRnnlm (ch. 6 train_better_rnnlm.py).
    "book-better": dict(
        embedding_dim=650,
        hidden_units=650,
        num_layers=2,
        dropout=0.5,
        tie_weights=True,
        epochs=40,
    ),
    # Zaremba et al., 2014, "Recurrent Neural Network Regularization".
    "zaremba-small": dict(
        embedding_dim=200,
        hidden_units=200,
        num_layers=2,
        seq_len=20,
        epochs=13,
        learning_rate=1.0,
        clip_norm=5.0,
        lr_schedule="step",
        lr_decay=2.0,
        decay_start_epoch=4,
        init_scale=0.1,
    ),
    "zaremba-medium": dict(
        embedding_dim=650,
        hidden_units=650,
        num_layers=2,
        dropout=0.5,
        epochs=39,
        learning_rate=1.0,
        clip_norm=5.0,
        lr_schedule="step",
        lr_decay=1.2,
        decay_start_epoch=6,
        init_scale=0.05,
    ),
    "zaremba-large": dict(
        embedding_dim=1500,
        hidden_units=1500,
        num_layers=2,
        dropout=0.65,
        epochs=55,
        learning_rate=1.0,
        clip_norm=10.0,
        lr_schedule="step",
        lr_decay=1.15,
        decay_start_epoch=14,
        init_scale=0.04,
    ),
    # The best PTB model that trains within 30 minutes on a 2-core CPU:
    # tied 2x200 with light dropout, XLA (1.3x faster at this size), the
    # full rate for 6 epochs then halved every epoch, stopped by the budget.
    "cpu-30min": dict(
        embedding_dim=200,
        hidden_units=200,
        num_layers=2,
        dropout=0.2,
        tie_weights=True,
        jit_compile=True,
        epochs=14,
        lr_schedule="step",
        lr_decay=2.0,
        decay_start_epoch=6,
        time_budget_minutes=30.0,
    ),
}

CHOICES = {
    "clip_mode": ("global", "per_variable"),
    "lr_schedule": ("plateau", "step"),
    "precision": ("float32", "mixed_bfloat16"),
    "rnn_cell": RNN_CELLS,
}


def _parse_value(field, text):
    kind = field.type
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise InvalidInputError(
            f"--set {field.name}={text}: expected true or false."
        )
    try:
        return kind(text)
    except ValueError:
        raise InvalidInputError(
            f"--set {field.name}={text}: expected a {kind.__name__}."
        ) from None


def parse_overrides(assignments):
    """Parses `["key=value", ...]` into typed config fields.

    Raises:
        InvalidInputError: (a `ValueError`) for a malformed assignment, an
            unknown key (listing the allowed keys) or a value of the wrong
            type.
    """
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    overrides = {}
    for assignment in assignments:
        key, separator, text = assignment.partition("=")
        key = key.strip()
        if not separator or not key:
            raise InvalidInputError(
                f"--set expects key=value; received {assignment!r}."
            )
        if key not in fields:
            raise InvalidInputError(
                f"Unknown config key {key!r} in --set {assignment}. Allowed "
                f"keys: {', '.join(sorted(fields))}."
            )
        overrides[key] = _parse_value(fields[key], text)
    return overrides


def resolve_config(preset, overrides=None):
    """Returns the preset's `TrainConfig` with `overrides` applied.

    Raises:
        InvalidInputError: (a `ValueError`) for an unknown preset or an
            invalid field value.
    """
    if preset not in PRESETS:
        raise InvalidInputError(
            f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)}."
        )
    config = TrainConfig(**{**PRESETS[preset], **(overrides or {})})
    validate_config(config)
    return config


def validate_config(config):
    """Checks values that a wrong `--set` could produce."""
    for key, allowed in CHOICES.items():
        value = getattr(config, key)
        if value not in allowed:
            raise InvalidInputError(f"{key}={value!r}; allowed: {allowed}.")
    positive = (
        "max_vocab_size",
        "embedding_dim",
        "hidden_units",
        "num_layers",
        "batch_size",
        "seq_len",
        "epochs",
        "learning_rate",
        "clip_norm",
        "lr_decay",
    )
    for key in positive:
        if getattr(config, key) <= 0:
            raise InvalidInputError(
                f"{key} must be > 0; received {key}={getattr(config, key)}."
            )
    if not 0.0 <= config.dropout < 1.0:
        raise InvalidInputError(
            f"dropout must be in [0, 1); received dropout={config.dropout}."
        )
    corpus = config.corpus
    if not (corpus == "ptb" or corpus.startswith(("text:", "tfds:"))):
        raise InvalidInputError(
            f"corpus={config.corpus!r}; expected 'ptb', 'text:DIR' or "
            "'tfds:NAME'."
        )


def save_config(config, path):
    """Writes the resolved config as JSON (atomically)."""
    text = json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True)
    write_atomically(path, text + "\n")


def load_config(path):
    """Reads a run's `config.json` back into a `TrainConfig`.

    Fields added after the run was made take their defaults.
    """
    with open(path, encoding="utf-8") as handle:
        values = json.load(handle)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInputError(f"{path} has unknown config fields {unknown}.")
    config = TrainConfig(**values)
    validate_config(config)
    return config
