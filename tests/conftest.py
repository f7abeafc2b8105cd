import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def ptb_dir():
    """The local PTB copy: $KERAS_LSTM_SCRATCH_PTB_DIR or ../shared/data/ptb."""
    path = os.environ.get("KERAS_LSTM_SCRATCH_PTB_DIR") or os.path.join(
        REPO_ROOT, "..", "shared", "data", "ptb"
    )
    assert os.path.isfile(os.path.join(path, "ptb.train.txt")), (
        f"PTB not found at {path}; set KERAS_LSTM_SCRATCH_PTB_DIR."
    )
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def ptb_corpus(ptb_dir):
    from keras_lstm_scratch.data import load_ptb

    return load_ptb(ptb_dir)


@pytest.fixture(scope="session")
def tiny_ptb_run(ptb_dir, tmp_path_factory):
    """The `tiny` preset trained on PTB for one epoch: (run_dir, results)."""
    from training.config import resolve_config
    from training.train import run

    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    results = run(resolve_config("tiny"), run_dir, data_dir=ptb_dir, verbose=0)
    return run_dir, results


@pytest.fixture(scope="session")
def small_corpus_dir(ptb_dir, tmp_path_factory):
    """A few hundred PTB lines as a user's own train/valid/test corpus."""
    directory = tmp_path_factory.mktemp("small_corpus")
    for split, lines in (("train", 300), ("valid", 40), ("test", 40)):
        with open(os.path.join(ptb_dir, f"ptb.{split}.txt")) as source:
            text = "".join(source.readline() for _ in range(lines))
        (directory / f"{split}.txt").write_text(text)
    return str(directory)
