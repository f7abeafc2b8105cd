import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Corpora the tests prepare go to a folder of this session, not the
# user's cache (the variable reaches the CLIs the tests start, too).
os.environ["KERAS_LSTM_SCRATCH_PREPARED_DIR"] = tempfile.mkdtemp(
    prefix="keras-lstm-scratch-prepared-"
)

import keras  # noqa: E402
import pytest  # noqa: E402

from tests.small_corpus import write_small_corpus  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Set (as CI does) to make a missing Penn Treebank fail instead of skip.
REQUIRE_PTB_ENV = "KERAS_LSTM_SCRATCH_REQUIRE_PTB"


@pytest.fixture(autouse=True)
def fixed_seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


def find_ptb():
    """A verified PTB folder from the variable or the download cache, or a
    one-line reason why there is none."""
    from keras_lstm_scratch.data import ptb
    from keras_lstm_scratch.errors import InputError

    try:
        return ptb.resolve_ptb_directory(download=False), None
    except InputError as error:
        if os.environ.get(ptb.DATA_DIR_ENV):
            return None, f"{ptb.DATA_DIR_ENV}: {error}"
        cache = os.path.join(ptb.default_cache_dir(), "ptb")
        return None, (
            f"Penn Treebank not found: {ptb.DATA_DIR_ENV} is not set and "
            f"{cache} holds no download; set the variable to a folder with "
            "ptb.{train,valid,test}.txt, or run make train once with "
            "internet to download it"
        )


@pytest.fixture(scope="session")
def ptb_dir():
    """The real PTB, for the tests about PTB itself: skipped without it."""
    path, reason = find_ptb()
    if path is None:
        if os.environ.get(REQUIRE_PTB_ENV) == "1":
            pytest.fail(f"{REQUIRE_PTB_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def ptb_corpus(ptb_dir):
    from keras_lstm_scratch.data import load_ptb

    return load_ptb(ptb_dir)


@pytest.fixture(scope="session")
def tiny_ptb_run(ptb_dir, tmp_path_factory):
    """The `tiny` preset trained on PTB for one epoch: (run_dir, results)."""
    from training.config import resolve_config
    from training.run import run

    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    results = run(resolve_config("tiny"), run_dir, data_dir=ptb_dir, verbose=0)
    return run_dir, results


@pytest.fixture(scope="session")
def small_corpus_dir(tmp_path_factory):
    """A small made-up corpus as a user's own train/valid/test text."""
    directory = tmp_path_factory.mktemp("small_corpus")
    write_small_corpus(directory)
    return str(directory)
