# The two commands of the README: `make run` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/stepline dev

test: $(STAMP)
	$(BIN)/ruff check .
	bash scripts/ensure-chromium.sh || [ -z "$$CI" ]  # without Chromium, browser tests skip locally
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/chain.py
	$(BIN)/python bench/api_latency.py
	$(BIN)/python bench/redis_chain.py

clean:
	rm -rf $(VENV) .stepline
