"""The presets: named runs, each a few `TrainConfig` fields over the defaults.

Add a preset here; `python -m training.train --preset NAME` finds it, and
`--set key=value` overrides any field of it.
"""

# The book's Rnnlm (ch. 6 train_rnnlm.py): 1x100, untied, no dropout,
# 4 epochs, SGD 20, global clip 0.25. The book keeps the rate at 20 for all
# 4 epochs; this preset divides it by 4 after epochs 2 and 3 (the /4 of
# the book's train_better_rnnlm.py, whose plateau rule would not fire in 4
# epochs), epochs 1-2 at 20, 3 at 5, 4 at 1.25. XLA: faster for this small
# model (docs/speed.md). Every preset's result: docs/quality.md.
BOOK_RNNLM = dict(
    lr_schedule="step", lr_decay=4.0, decay_start_epoch=2, jit_compile=True
)

# The character-level presets' shared recipe; each sets its time budget.
# SGD at 20 (global clip 0.25), falling linearly to zero over the budget,
# as the word presets; Adam learnt slower, and XLA ran slower than
# bfloat16 on a CPU with AMX (docs/quality.md#characters).
CHAR_PTB = dict(
    tokens="chars",
    embedding_dim=128,
    hidden_units=512,
    batch_size=32,
    seq_len=100,
    lr_schedule="linear",
    precision="auto",
    epochs=100,
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
    # LSTM: the baseline of `python -m training.inspect_model gradients`.
    # At the LSTM's rate of 20 it diverges in the first epoch.
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
    # tied 2x400, dropout 0.35, AWD-LSTM's AR 2 and TAR 1, the rate falling
    # linearly from 20 to zero as the 30 minutes run out, bfloat16 where the
    # CPU has it (docs/quality.md: its result and the recipes tried).
    "cpu-30min": dict(
        embedding_dim=400,
        hidden_units=400,
        num_layers=2,
        dropout=0.35,
        tie_weights=True,
        activation_regularization=2.0,
        temporal_activation_regularization=1.0,
        precision="auto",
        epochs=100,
        lr_schedule="linear",
        time_budget_minutes=30.0,
    ),
    # The book's BetterRnnlm model trained to a 2-hour budget: the rate
    # falls linearly from 20 to zero as the training time runs out, in
    # place of 40 epochs of the plateau rule. bfloat16 where the CPU has
    # it (faster on a CPU with AMX: docs/quality.md).
    "cpu-2h": dict(
        embedding_dim=650,
        hidden_units=650,
        num_layers=2,
        dropout=0.5,
        tie_weights=True,
        precision="auto",
        epochs=200,
        lr_schedule="linear",
        time_budget_minutes=120.0,
    ),
    # Penn Treebank as characters (`tokens="chars"`: every character a
    # token, a line's end `<eos>`): a 1x512 LSTM with 128-dimensional
    # character vectors, 32 streams of 100 steps, bfloat16 where the CPU
    # has it. Their figures: docs/quality.md#characters.
    "char-quick": dict(CHAR_PTB, time_budget_minutes=5.0),
    "char-30min": dict(CHAR_PTB, time_budget_minutes=30.0),
    # AWD-LSTM's regularisers (Merity et al., 2017) on the book's tied
    # 2x650: locked dropout (0.4 on the embedding, 0.25 between layers, 0.4
    # before the projection), word dropout 0.1, weight drop 0.5 on the
    # recurrent kernels, AR 2 and TAR 1, SGD at a constant 30 averaged once
    # validation stalls for 5 epochs (NT-ASGD). AWD-LSTM trains for 500
    # epochs: for a GPU, or a CPU run resumed over days.
    "awd-medium": dict(
        embedding_dim=650,
        hidden_units=650,
        num_layers=2,
        tie_weights=True,
        locked_dropout=True,
        input_dropout=0.4,
        dropout=0.25,
        output_dropout=0.4,
        word_dropout=0.1,
        weight_dropout=0.5,
        activation_regularization=2.0,
        temporal_activation_regularization=1.0,
        learning_rate=30.0,
        lr_schedule="constant",
        averaging_nonmono=5,
        precision="auto",
        epochs=500,
    ),
}
