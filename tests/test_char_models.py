"""A character model of made-up Korean text, from training to serving.

Korean attaches particles to words, so whitespace words would be mostly
`<unk>`; as characters every syllable of the text is in the vocabulary.
The text comes from a little grammar of movie-review lines (nouns with
particles, a verb phrase, sometimes an emoji), seeded.
"""

import json
import os
import textwrap
from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lstm_scratch import build_language_model
from keras_lstm_scratch.data import Tokenization
from tests.fresh_process import run_tensorflow_only
from tests.helpers import small_config
from training import export as export_cli
from training import generate as generate_cli
from training.run import run
from training.run_directory import RunDirectory

pytestmark = pytest.mark.slow

CHARS = Tokenization("chars")
NOUNS = ["영화", "배우", "감독", "음악", "장면", "이야기", "주인공", "결말"]
PARTICLES = ["가", "는", "도", "의", "를"]
VERBS = [
    "정말 좋아요", "재미있어요", "지루했어요", "최고예요", "별로예요",
    "다시 보고 싶어요", "마음에 들어요", "너무 길어요",
]  # fmt: skip
ENDINGS = ["", "", "", " 👍", " ㅋㅋ", "!", "..."]
SPLIT_LINES = {"train": 400, "valid": 40, "test": 40}
PROMPTS = ["영화가 ", "배우는 정말", "음악", "이야기의 결말이"]
SENTENCES = [
    "영화가 정말 좋아요 👍",
    "감독의 음악도 최고예요!\n결말도 별로예요",
]


def review_line(rng):
    words = [
        rng.choice(NOUNS) + rng.choice(PARTICLES)
        for _ in range(rng.integers(1, 3))
    ]
    return " ".join([*words, rng.choice(VERBS)]) + rng.choice(ENDINGS)


def write_korean_corpus(directory):
    rng = np.random.default_rng(21)
    for split, lines in SPLIT_LINES.items():
        text = "\n".join(review_line(rng) for _ in range(lines)) + "\n"
        with open(os.path.join(directory, f"{split}.txt"), "w") as handle:
            handle.write(text)


@pytest.fixture(scope="module")
def korean_run(tmp_path_factory):
    """Three epochs of a 1x64 character model: (run_dir, model, vocabulary)."""
    corpus_dir = tmp_path_factory.mktemp("korean")
    write_korean_corpus(corpus_dir)
    run_dir = str(tmp_path_factory.mktemp("runs") / "korean")
    config = small_config(
        corpus_dir,
        tokens="chars",
        embedding_dim=32,
        hidden_units=64,
        batch_size=8,
        seq_len=25,
        epochs=3,
        optimizer="adam",
        learning_rate=0.01,
        clip_norm=1.0,
    )
    run(config, run_dir, verbose=0)
    model, vocabulary = RunDirectory(run_dir).load_finished()
    return run_dir, model, vocabulary


@pytest.fixture(scope="module")
def exported(korean_run, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("saved_models"))
    return export_cli.export_run(korean_run[0], root, name="korean")


def stateless_twin(model, vocabulary):
    """The trained model's weights in a model of any batch and length."""
    twin = build_language_model(len(vocabulary), 32, 64)
    twin.set_weights(model.get_weights())
    return twin


def reference_score(model, vocabulary, text):
    """The Keras model's log-likelihood of `text` after a leading <eos>."""
    ids = vocabulary.encode(["<eos>", *CHARS.text_tokens(text)])
    logits = stateless_twin(model, vocabulary).predict(
        ids[None, :-1], verbose=0
    )[0]
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits))
    return float(log_probs[np.arange(len(ids) - 1), ids[1:]].sum())


def test_the_vocabulary_holds_every_training_character(korean_run):
    vocabulary = korean_run[2]
    text = "".join(NOUNS + PARTICLES + VERBS + ENDINGS) + " "
    for character in CHARS.text_tokens(text):
        assert vocabulary.encode([character])[0] != vocabulary.unknown_id, (
            character
        )


def test_generate_writes_no_unknown_for_training_characters(
    exported, korean_run
):
    vocabulary = korean_run[2]
    generate = tf.saved_model.load(exported).signatures["generate"]
    for seed in range(3):
        outputs = generate(
            prompts=tf.constant(PROMPTS),
            max_tokens=tf.constant(60),
            temperature=tf.constant(1.0),
            top_k=tf.constant(0),
            seed=tf.constant(seed, tf.int64),
            use_cache=tf.constant(False),
        )
        ids = outputs["token_ids"].numpy()
        assert ids.shape == (len(PROMPTS), 60)
        assert vocabulary.unknown_id not in ids
        for text in outputs["text"].numpy():
            assert "<unk>" not in text.decode("utf-8")
            assert set(text.decode("utf-8")) <= set(vocabulary.words) | {"\n"}


def test_generated_text_reads_like_the_training_text(exported):
    generate = tf.saved_model.load(exported).signatures["generate"]
    greedy = generate(
        prompts=tf.constant(["감독의 음악"]),
        max_tokens=tf.constant(30),
        temperature=tf.constant(0.0),
        top_k=tf.constant(0),
        seed=tf.constant(0, tf.int64),
        use_cache=tf.constant(False),
    )
    text = greedy["text"].numpy()[0].decode("utf-8")
    # Greedy decoding continues with the grammar's own words.
    assert any(word in text for word in NOUNS + VERBS), text


def test_the_generate_command_continues_a_korean_prompt(exported, capsys):
    arguments = ["--prompt", "영화가 ", "--max-tokens", "20", "--seed", "3"]
    assert generate_cli.main(["--saved-model", exported, *arguments]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("영화가 ")
    assert "<unk>" not in printed
    assert len(printed.rstrip("\n")) > len("영화가 ")


def test_keras_file_round_trip_gives_the_same_logits(korean_run, tmp_path):
    _, model, vocabulary = korean_run
    twin = stateless_twin(model, vocabulary)
    path = str(tmp_path / "korean.keras")
    twin.save(path)
    loaded = keras.saving.load_model(path)
    ids = vocabulary.encode(CHARS.text_tokens(SENTENCES[1]))[None, :]
    assert vocabulary.unknown_id not in ids
    np.testing.assert_array_equal(
        loaded.predict(ids, verbose=0), twin.predict(ids, verbose=0)
    )


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf

    path, sentences, out = sys.argv[1:4]
    score = tf.saved_model.load(path).signatures["score"]
    outputs = score(sentences=tf.constant(json.loads(sentences)),
                    use_cache=tf.constant(False))
    results = {key: value.numpy().tolist() for key, value in outputs.items()}
    results["modules"] = [m for m in sys.modules if m.startswith("keras_lstm")]
    with open(out, "w") as handle:
        json.dump(results, handle)
""")


def test_served_score_in_a_tensorflow_process_equals_the_keras_model(
    exported, korean_run, tmp_path
):
    out = str(tmp_path / "score.json")
    run_tensorflow_only(FRESH_PROCESS, exported, json.dumps(SENTENCES), out)
    with open(out) as handle:
        served = json.load(handle)
    assert served["modules"] == []
    _, model, vocabulary = korean_run
    for index, text in enumerate(SENTENCES):
        tokens = CHARS.text_tokens(text)
        expected = reference_score(model, vocabulary, text)
        assert served["token_count"][index] == len(tokens)
        assert served["word_count"][index] == CHARS.count_words(tokens)
        np.testing.assert_allclose(
            served["log_likelihood"][index], expected, rtol=1e-5
        )
        np.testing.assert_allclose(
            served["bits_per_char"][index],
            -expected / len(tokens) / np.log(2),
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            served["perplexity_per_word"][index],
            np.exp(-expected / CHARS.count_words(tokens)),
            rtol=1e-5,
        )


def test_the_run_keeps_characters_by_frequency(korean_run):
    run_directory = RunDirectory(korean_run[0])
    assert run_directory.load_tokenization().is_chars
    corpus_dir = run_directory.load_config().corpus.removeprefix("text:")
    with open(os.path.join(corpus_dir, "train.txt")) as handle:
        counts = Counter(CHARS.text_tokens(handle.read()))
    words = korean_run[2].words
    assert words[:2] == ["<unk>", "<eos>"]
    characters = list(words[2:])
    assert sorted(characters) == sorted(set(counts) - {"<eos>"})
    frequencies = [counts[c] for c in characters]
    assert frequencies == sorted(frequencies, reverse=True)
