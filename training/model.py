"""The run's model: the compiled language model its config describes."""

import contextlib

import keras

from keras_lstm_scratch import (
    GlobalBatchClippedAdam,
    GlobalBatchClippedSGD,
    Perplexity,
    SparseSoftmaxCrossEntropy,
    build_language_model,
)
from keras_lstm_scratch.distribution import (
    can_jit_compile,
    per_replica_batch_size,
)
from keras_lstm_scratch.optimizers import AveragedSGD


def make_optimizer(config):
    """Plain SGD (or Adam) with the configured gradient clipping.

    `clip_mode="global"` rescales all gradients together when their joint
    norm exceeds `clip_norm` (the book's `clip_grads`, PyTorch's
    `clip_grad_norm_`; Keras's `global_clipnorm`). `"per_variable"` clips
    each variable's gradient on its own (Keras's `clipnorm`), which changes
    the direction of the update. Under tf.distribute both clip the
    gradient of the whole global batch (`GlobalBatchClippedSGD`), as on
    one device. With `averaging_nonmono > 0` it is `AveragedSGD`, which
    can also keep the mean of the weights (NT-ASGD). `optimizer="adam"` is
    `GlobalBatchClippedAdam`, clipped the same way.
    """
    if config.optimizer == "adam":
        optimizer = GlobalBatchClippedAdam
    elif config.averaging_nonmono > 0:
        optimizer = AveragedSGD
    else:
        optimizer = GlobalBatchClippedSGD
    if config.clip_mode == "global":
        return optimizer(config.learning_rate, global_clipnorm=config.clip_norm)
    return optimizer(config.learning_rate, clipnorm=config.clip_norm)


@contextlib.contextmanager
def global_dtype_policy(name):
    """Sets Keras's global dtype policy for the block, then restores it.

    Layers keep the policy they are built under (and save it), so a model
    built inside the block is mixed precision and nothing built after it
    inherits the policy.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def resolve_precision(name, cpu_flags=None):
    """The dtype policy of a config's `precision`.

    `"auto"` is `"mixed_bfloat16"` on a CPU with bfloat16 instructions
    (AVX512-BF16 or AMX: faster there, docs/quality.md) and
    `"float32"` elsewhere, where bfloat16 would be emulated and slower.
    `cpu_flags` is for tests; by default `/proc/cpuinfo`'s flags (none
    elsewhere than Linux).
    """
    if name != "auto":
        return name
    if cpu_flags is None:
        cpu_flags = cpu_instruction_flags()
    has_bf16 = {"avx512_bf16", "amx_bf16"} & set(cpu_flags)
    return "mixed_bfloat16" if has_bf16 else "float32"


def cpu_instruction_flags():
    """The CPU's instruction-set flags (`/proc/cpuinfo`; none elsewhere)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return line.partition(":")[2].split()
    except OSError:
        pass
    return []


def initializers(config):
    """`U(-init_scale, init_scale)` for every weight (Zaremba), or Keras's."""
    if config.init_scale <= 0:
        return {}
    uniform = keras.initializers.RandomUniform(
        -config.init_scale, config.init_scale, seed=config.seed
    )
    return dict(
        embeddings_initializer=uniform,
        kernel_initializer=uniform,
        recurrent_initializer=uniform,
    )


def rate_or_none(rate):
    """A config's dropout rate; negative means "as `dropout`" (`None`)."""
    return None if rate < 0 else rate


def build_model(config, vocab_size, strategy, batch_size=None):
    """The stateful language model that `config` describes, compiled.

    Args:
        config: A `TrainConfig`.
        vocab_size: Words in the vocabulary.
        strategy: The `tf.distribute.Strategy` whose scope the model is
            built and compiled in (`tf.distribute.get_strategy()` outside
            any scope: one device).
        batch_size: Streams per replica; default `config.batch_size`
            shared by the strategy's replicas.

    Returns:
        The compiled `keras.Model`.
    """
    if batch_size is None:
        batch_size = per_replica_batch_size(config.batch_size, strategy)
    jit_compile = config.jit_compile and can_jit_compile(strategy)
    if config.jit_compile and not jit_compile:
        print(
            "note: jit_compile is off: XLA cannot compile replica steps on "
            f"CPU devices ({strategy.num_replicas_in_sync} replicas)."
        )
    with strategy.scope():
        with global_dtype_policy(resolve_precision(config.precision)):
            model = build_language_model(
                vocab_size,
                embedding_dim=config.embedding_dim,
                hidden_units=config.hidden_units,
                num_layers=config.num_layers,
                dropout=config.dropout,
                tie_weights=config.tie_weights,
                rnn_cell=config.rnn_cell,
                use_onednn={"on": True, "off": False}.get(
                    config.use_onednn, "auto"
                ),
                locked_dropout=config.locked_dropout,
                input_dropout=rate_or_none(config.input_dropout),
                output_dropout=rate_or_none(config.output_dropout),
                word_dropout=config.word_dropout,
                weight_dropout=config.weight_dropout,
                activation_regularization=config.activation_regularization,
                temporal_activation_regularization=(
                    config.temporal_activation_regularization
                ),
                seed=config.seed,
                stateful=True,
                batch_size=batch_size,
                seq_len=config.seq_len,
                **initializers(config),
            )
        model.compile(
            optimizer=make_optimizer(config),
            loss=SparseSoftmaxCrossEntropy(),
            metrics=[Perplexity()],
            jit_compile=jit_compile,
        )
    return model
