"""`python -m training.generate`: tokens printed as they come, stops,
several samples, the options of `complete`, and exports of every age."""

import io
import os

import pytest
import tensorflow as tf

from keras_lstm_scratch.serving import SIGNATURES, export_for_serving
from keras_lstm_scratch.serving import saved_model as export_module
from tests.helpers import small_config
from training import generate as generate_cli
from training.run import run
from training.run_directory import RunDirectory


class Recorder(io.StringIO):
    """stdout that keeps each write apart."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.small_corpus import write_small_corpus

    root = tmp_path_factory.mktemp("generate")
    write_small_corpus(root)
    output = str(root / "run")
    run(small_config(str(root), epochs=1), output, verbose=0)
    return output


def printed(monkeypatch, *arguments):
    out = Recorder()
    monkeypatch.setattr("sys.stdout", out)
    assert generate_cli.main(list(arguments)) == 0
    return out


def test_tokens_are_printed_as_they_come(tiny_run, monkeypatch):
    out = printed(
        monkeypatch, "--run", tiny_run, "--prompt", "the", "--max-tokens", "12"
    )
    text = out.getvalue()
    assert text.startswith("the ")
    assert text.endswith("\n")
    # The prompt, then a write per token (a word, a space before it).
    assert len(out.writes) >= 12
    again = printed(
        monkeypatch, "--run", tiny_run, "--prompt", "the", "--max-tokens", "12"
    )
    assert again.getvalue() == text


def test_a_stop_text_ends_the_printed_sample_before_it(tiny_run, monkeypatch):
    common = ["--run", tiny_run, "--prompt", "the", "--seed", "3"]
    free = printed(monkeypatch, *common, "--max-tokens", "30").getvalue()
    words = free.split()
    stop = " ".join(words[3:5])  # two words, after the prompt
    stopped = printed(
        monkeypatch, *common, "--max-tokens", "30", "--stop", stop
    ).getvalue()
    assert stopped == free[: free.index(stop)] + "\n"
    eos = printed(
        monkeypatch, *common, "--max-tokens", "200", "--stop-at-eos"
    ).getvalue()
    assert eos.count("\n") == 1  # one sentence, then the line's end


def test_several_samples_and_the_options_of_complete(tiny_run, monkeypatch):
    out = printed(
        monkeypatch,
        "--run",
        tiny_run,
        "--prompt",
        "the",
        "--num-samples",
        "3",
        "--top-p",
        "0.8",
        "--top-k",
        "5",
        "--repetition-penalty",
        "1.3",
        "--temperature",
        "0.9",
        "--max-tokens",
        "10",
        "--stop-at-eos",  # no line breaks in a sample
    ).getvalue()
    samples = out.rstrip("\n").split("\n\n")
    assert len(samples) == 3
    assert all(sample.split(" ")[0] == "the" for sample in samples)
    assert len(set(samples)) > 1


def test_an_export_made_before_start_writes_whole_texts(
    tiny_run, tmp_path, monkeypatch
):
    """An export without `start`'s files prints `complete`'s text at once."""
    model, vocabulary = RunDirectory(tiny_run).load_finished()
    monkeypatch.setattr(export_module, "write_stepping_files", lambda *a: None)
    path = export_for_serving(model, vocabulary.words, str(tmp_path), "old")
    assert not os.path.exists(os.path.join(path, export_module.STATES_FILE))
    whole = printed(
        monkeypatch, "--saved-model", path, "--prompt", "the", "--seed", "2"
    )
    loaded = tf.saved_model.load(path)
    text = loaded.complete(
        prompts=tf.constant(["the"]), seed=tf.constant(2, tf.int64)
    )["text"]
    assert whole.getvalue() == f"the {text.numpy()[0].decode()}\n"
    assert len(whole.writes) == 3  # the prompt, the text, the line's end


def test_an_export_made_before_complete_refuses_its_options(
    tiny_run, tmp_path, monkeypatch, capsys
):
    model, vocabulary = RunDirectory(tiny_run).load_finished()
    first = {
        name: inputs
        for name, inputs in SIGNATURES.items()
        if name not in ("start", "complete")
    }
    monkeypatch.setattr(export_module, "SIGNATURES", first)
    path = export_for_serving(model, vocabulary.words, str(tmp_path), "old")
    assert "complete" not in tf.saved_model.load(path).signatures
    assert generate_cli.main(["--saved-model", path, "--top-p", "0.5"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --top-p:") and "export" in error
    out = printed(monkeypatch, "--saved-model", path, "--prompt", "the")
    assert out.getvalue().startswith("the ")
