"""Run configuration: one flat frozen dataclass and how a run resolves it.

`resolve_config` takes a preset (`presets.py`) and the CLI's `--set`
overrides and checks every value; the run directory saves the result as
`config.json` beside the run's files.
"""

import dataclasses

from keras_lstm_scratch.data.tokenization import TOKENIZATIONS
from keras_lstm_scratch.errors import InvalidInputError
from keras_lstm_scratch.language_model import RNN_CELLS
from training.presets import PRESETS


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; saved as `config.json` per run."""

    # --- data ---
    # "ptb", "text:NAME" (a folder with {train,valid,test}.txt, one file, a
    # folder of files or a glob; docs/training.md) or "tfds:NAME"
    corpus: str = "ptb"
    # "words": split on whitespace; "chars": every Unicode character
    tokens: str = "words"
    max_vocab_size: int = 10000  # cap for text/tfds corpora (PTB has 10,000)
    tfds_text_key: str = "text"  # string feature of a TFDS dataset
    # Validate each epoch on the validation text's first N tokens; 0: all
    # of it (PTB's is 73,760 words, 393,042 characters: read whole)
    valid_max_tokens: int = 500_000
    # The test text read as this many parallel streams, each carrying its
    # state; 0: one stream up to 500,000 tokens (PTB), else 32
    test_streams: int = 0
    # --- fine-tuning ---
    # A finished run directory: start from its best weights, reading the
    # text with its vocabulary and tokens; "": a new model
    init_from: str = ""
    # With init_from: add the new text's tokens (characters) that the
    # vocabulary lacks, each starting as a copy of <unk>
    add_new_tokens: bool = False
    # --- model ---
    embedding_dim: int = 100  # word vector size
    hidden_units: int = 100  # LSTM state size, every layer
    num_layers: int = 1  # stacked LSTM layers
    dropout: float = 0.0  # between layers only (depth direction)
    input_dropout: float = -1.0  # after the embedding; <0: as dropout
    output_dropout: float = -1.0  # before the projection; <0: as dropout
    locked_dropout: bool = False  # one mask per sequence, every time step
    word_dropout: float = 0.0  # whole words dropped per batch window
    weight_dropout: float = 0.0  # DropConnect on recurrent weights (AWD)
    activation_regularization: float = 0.0  # AR coefficient (AWD: 2)
    temporal_activation_regularization: float = 0.0  # TAR (AWD: 1)
    tie_weights: bool = False  # embedding matrix doubles as output projection
    # "lstm": TimeLSTM; "keras_lstm": keras.layers.LSTM and "simple_rnn":
    # the plain RNN, for comparison
    rnn_cell: str = "lstm"
    init_scale: float = 0.0  # >0: weights U(-s, s) (Zaremba); 0: Keras's
    # --- truncated BPTT ---
    batch_size: int = 20  # parallel token streams
    seq_len: int = 35  # time steps per window (backprop length)
    # --- optimisation ---
    epochs: int = 4
    optimizer: str = "sgd"  # "sgd": plain SGD, as the book; or "adam"
    learning_rate: float = 20.0  # SGD's, as the book; Adam's: about 0.002
    clip_norm: float = 0.25  # gradient clipping threshold
    clip_mode: str = "global"  # "global" (book, PyTorch) or "per_variable"
    # "plateau": book; "step": Zaremba; "constant": AWD-LSTM (with NT-ASGD);
    # "linear": to zero over the time budget
    lr_schedule: str = "plateau"
    lr_decay: float = 4.0  # divide the learning rate by this
    decay_start_epoch: int = 0  # "step": epochs at the full rate
    lr_constant_fraction: float = 0.0  # "linear": share of the budget at full
    # >0: NT-ASGD, average the weights once validation has not improved on
    # the best before the last N epochs (AWD-LSTM: 5); 0: off
    averaging_nonmono: int = 0
    time_budget_minutes: float = 0.0  # >0: start no epoch that would overrun
    backup_minutes: float = 10.0  # a backup inside an epoch this often; 0: off
    jit_compile: bool = False  # XLA; slower for this model on CPU
    # TimeLSTM's loop: "auto" (oneDNN's fused LSTM for bfloat16 scoring),
    # "on" (the fused LSTM in training too), "off" (always its own loop)
    use_onednn: str = "auto"
    # "float32"; "mixed_bfloat16": bf16 compute, float32 master weights;
    # "auto": mixed_bfloat16 where the CPU has bf16 instructions, else float32
    precision: str = "float32"
    seed: int = 1


CHOICES = {
    "tokens": TOKENIZATIONS,
    "optimizer": ("sgd", "adam"),
    "clip_mode": ("global", "per_variable"),
    "lr_schedule": ("plateau", "step", "constant", "linear"),
    "precision": ("float32", "mixed_bfloat16", "auto"),
    "rnn_cell": RNN_CELLS,
    "use_onednn": ("auto", "on", "off"),
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
    check_ranges(config)
    check_optimizer(config)
    check_combinations(config)


def check_ranges(config):
    """Refuses a field outside its choices or its range."""
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
    for key in ("dropout", "word_dropout", "weight_dropout"):
        if not 0.0 <= getattr(config, key) < 1.0:
            raise InvalidInputError(
                f"{key} must be in [0, 1); received "
                f"{key}={getattr(config, key)}."
            )
    for key in ("input_dropout", "output_dropout"):
        if not getattr(config, key) < 1.0:
            raise InvalidInputError(
                f"{key} must be below 1 (a negative value: as dropout); "
                f"received {key}={getattr(config, key)}."
            )
    for key in (
        "activation_regularization",
        "temporal_activation_regularization",
        "averaging_nonmono",
        "valid_max_tokens",
        "test_streams",
        "backup_minutes",
    ):
        if getattr(config, key) < 0:
            raise InvalidInputError(
                f"{key} must be >= 0; received {key}={getattr(config, key)}."
            )
    if not 0.0 <= config.lr_constant_fraction < 1.0:
        raise InvalidInputError(
            "lr_constant_fraction must be in [0, 1); received "
            f"lr_constant_fraction={config.lr_constant_fraction}."
        )


def check_combinations(config):
    """Refuses fields that cannot go together, and an unknown corpus."""
    if config.weight_dropout > 0 and config.rnn_cell != "lstm":
        raise InvalidInputError(
            f"weight_dropout={config.weight_dropout} needs rnn_cell='lstm'."
        )
    if config.lr_schedule == "linear" and config.time_budget_minutes <= 0:
        raise InvalidInputError(
            "lr_schedule='linear' decays over the time budget; set "
            "time_budget_minutes too (e.g. --set time_budget_minutes=30)."
        )
    if config.add_new_tokens and not config.init_from:
        raise InvalidInputError(
            "add_new_tokens=True extends the vocabulary of the run it starts "
            "from: give --init-from RUN too."
        )
    corpus = config.corpus
    if not (corpus == "ptb" or corpus.startswith(("text:", "tfds:"))):
        raise InvalidInputError(
            f"corpus={config.corpus!r}; expected 'ptb', 'text:DIR' or "
            "'tfds:NAME'."
        )


# Above this, an Adam rate is surely an SGD rate left over from a preset.
MAX_ADAM_RATE = 1.0


def check_optimizer(config):
    """Refuses optimizer settings that cannot go together."""
    if config.optimizer != "adam":
        return
    if config.learning_rate > MAX_ADAM_RATE:
        raise InvalidInputError(
            f"optimizer='adam' with learning_rate={config.learning_rate}: "
            "that is an SGD rate; Adam takes about 0.001-0.003 (e.g. --set "
            "learning_rate=0.002)."
        )
    if config.averaging_nonmono > 0:
        raise InvalidInputError(
            "averaging_nonmono averages SGD's weights (NT-ASGD); set "
            "optimizer='sgd' or averaging_nonmono=0."
        )


def config_from_dict(values, source):
    """The `TrainConfig` of saved `values` (a run's `config.json`).

    Fields added after the run was made take their defaults.

    Raises:
        InvalidInputError: if `values` hold fields that `TrainConfig` does
            not know, or invalid values; `source` names the file.
    """
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInputError(
            f"{source} has unknown config fields {unknown}."
        )
    config = TrainConfig(**values)
    validate_config(config)
    return config
