import json
import math
import os

import keras
import numpy as np
import pytest

from keras_lstm_scratch.data import Vocabulary
from keras_lstm_scratch.errors import InvalidInputError
from tests.helpers import small_config
from training.fine_tuning import extended_rows
from training.run import run
from training.run_directory import RunDirectory


def write_text(folder, lines):
    folder.mkdir(parents=True)
    for split, count in (("train", 200), ("valid", 30), ("test", 30)):
        text = "\n".join(lines[i % len(lines)] for i in range(count))
        (folder / f"{split}.txt").write_text(text + "\n", encoding="utf-8")
    return str(folder)


ENGLISH = ["the cat sat on the mat", "a dog ran to the park", "we sat down"]
KOREAN = ["고양이가 the mat 위에", "개가 park 로 갔다", "우리는 sat 앉았다"]


@pytest.fixture(scope="module")
def char_start(tmp_path_factory):
    root = tmp_path_factory.mktemp("start")
    text = write_text(root / "english", ENGLISH)
    config = small_config(text, tokens="chars", epochs=1)
    run(config, str(root / "run"), verbose=0)
    return str(root / "run")


def fine_tune(tmp_path, start, lines, **overrides):
    text = write_text(tmp_path / "new", lines)
    settings = {"tokens": "chars", "epochs": 1, **overrides}
    config = small_config(text, init_from=start, **settings)
    output = str(tmp_path / "tuned")
    keras.utils.set_random_seed(5)
    return config, output, run(config, output, verbose=0)


def test_a_run_starts_from_the_best_weights_of_another(char_start, tmp_path):
    config, output, _ = fine_tune(
        tmp_path, char_start, ENGLISH, learning_rate=1e-9
    )
    start, _ = RunDirectory(char_start).load_finished()
    tuned, vocabulary = RunDirectory(output).load_finished()
    # Nothing learned at a rate of 1e-9: the start's weights, unchanged.
    pairs = zip(start.trainable_weights, tuned.trainable_weights, strict=True)
    for old, new in pairs:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(new),
            keras.ops.convert_to_numpy(old),
            atol=1e-6,
        )
    assert vocabulary.words == RunDirectory(char_start).load_vocabulary().words
    report = json.load(open(os.path.join(output, "init_from.json")))
    assert report["init_from"] == os.path.abspath(char_start)
    assert report["added_tokens"] == 0
    assert report["tokens_outside_vocabulary"] == 0


def test_new_characters_are_counted_and_can_be_added(char_start, tmp_path):
    _, output, _ = fine_tune(tmp_path / "a", char_start, KOREAN)
    report = json.load(open(os.path.join(output, "init_from.json")))
    hangul = sum(
        1
        for i in range(200)
        for ch in KOREAN[i % 3]
        if ch not in "".join(ENGLISH)
    )
    assert report["tokens_outside_vocabulary"] == hangul
    assert report["added_tokens"] == 0

    _, output, _ = fine_tune(
        tmp_path / "b", char_start, KOREAN, add_new_tokens=True
    )
    report = json.load(open(os.path.join(output, "init_from.json")))
    words = RunDirectory(output).load_vocabulary().words
    base = RunDirectory(char_start).load_vocabulary().words
    assert words[: len(base)] == base
    assert set(words[len(base) :]) == set("".join(KOREAN)) - set(base)
    assert report["added_tokens"] == len(words) - len(base)
    assert report["tokens_outside_vocabulary"] == hangul


def test_new_rows_copy_unk_and_keep_its_probability():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(5, 3))
    grown = extended_rows(embedding, (8, 3), unknown_id=0, added=3)
    np.testing.assert_array_equal(grown[:5], embedding)
    np.testing.assert_array_equal(grown[5:], np.repeat(embedding[:1], 3, 0))

    bias = rng.normal(size=5)
    grown_bias = extended_rows(bias, (8,), unknown_id=0, added=3)
    logits = rng.normal(size=5) + bias
    new_logits = np.concatenate([logits, np.repeat(logits[:1], 3)])
    new_logits[[0, 5, 6, 7]] -= bias[0] - grown_bias[0]
    old = np.exp(logits) / np.exp(logits).sum()
    new = np.exp(new_logits) / np.exp(new_logits).sum()
    assert grown_bias[0] == pytest.approx(bias[0] - math.log(4))
    # Every old token keeps its probability; <unk>'s is shared by 4 now.
    np.testing.assert_allclose(new[1:5], old[1:5])
    np.testing.assert_allclose(new[[0, 5, 6, 7]].sum(), old[0])
    assert extended_rows(embedding, (8, 4), 0, 3) is None


def test_another_architecture_or_tokenisation_is_refused(char_start, tmp_path):
    with pytest.raises(InvalidInputError, match="not this preset's"):
        fine_tune(tmp_path / "a", char_start, ENGLISH, hidden_units=9)
    text = write_text(tmp_path / "words", ENGLISH)
    with pytest.raises(InvalidInputError, match="tokens=chars"):
        run(
            small_config(text, epochs=1, init_from=char_start),
            str(tmp_path / "w"),
            verbose=0,
        )


def test_extended_vocabulary_keeps_every_id():
    base = Vocabulary(["<unk>", "<eos>", "a", "b"])
    counts = {"c": 1, "a": 5, "d": 3, "e": 3}
    assert base.extended(counts).words == base.words + ["d", "e", "c"]
    assert base.extended(counts, max_size=5).words == base.words + ["d"]
