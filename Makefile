# The project's entry points. Each target creates or reuses .venv itself.
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# A local Penn Treebank copy if there is one beside the checkout; without it
# training downloads PTB (verified by SHA-256) into ~/.cache.
PTB_DIR ?= $(wildcard ../shared/data/ptb)

.PHONY: train test lint

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e ".[test]"
	touch $(INSTALLED)

train: $(INSTALLED)
	$(VENV_PYTHON) -m training.train --preset book-rnnlm \
		$(if $(PTB_DIR),--data-dir $(PTB_DIR))

lint: $(INSTALLED)
	$(VENV_PYTHON) -m ruff check .
	$(VENV_PYTHON) -m ruff format --check .

test: lint
	$(VENV_PYTHON) -m pytest
