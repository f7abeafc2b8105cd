# The project's entry points. Each target creates or reuses .venv itself.
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# The test tools and the other Keras backends (JAX, PyTorch): tests only.
TEST_INSTALLED := $(VENV)/.installed-test

.PHONY: train test test-fast lint

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e .
	touch $(INSTALLED)

$(TEST_INSTALLED): $(INSTALLED)
	$(VENV_PYTHON) -m pip install --quiet -e ".[test]"
	touch $(TEST_INSTALLED)

# PTB comes from $KERAS_LSTM_SCRATCH_PTB_DIR when it is set, else from the
# download cache (~/.cache/keras_lstm_scratch/ptb, downloaded once).
train: $(INSTALLED)
	$(VENV_PYTHON) -m training.train --preset book-rnnlm

lint: $(TEST_INSTALLED)
	$(VENV_PYTHON) -m ruff check .
	$(VENV_PYTHON) -m ruff format --check .

test: lint
	$(VENV_PYTHON) -m pytest

# The inner loop: everything but the tests marked slow.
test-fast: lint
	$(VENV_PYTHON) -m pytest -m "not slow"
