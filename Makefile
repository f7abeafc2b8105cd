# The project's entry points. Each target creates or reuses .venv itself.
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: train test test-fast lint

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e ".[test]"
	touch $(INSTALLED)

# PTB comes from $KERAS_LSTM_SCRATCH_PTB_DIR when it is set, else from the
# download cache (~/.cache/keras_lstm_scratch/ptb, downloaded once).
train: $(INSTALLED)
	$(VENV_PYTHON) -m training.train --preset book-rnnlm

lint: $(INSTALLED)
	$(VENV_PYTHON) -m ruff check .
	$(VENV_PYTHON) -m ruff format --check .

test: lint
	$(VENV_PYTHON) -m pytest

# The inner loop: everything but the tests marked slow.
test-fast: lint
	$(VENV_PYTHON) -m pytest -m "not slow"
