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
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	bash scripts/ensure-chromium.sh || [ -z "$$CI" ]  # without Chromium, browser tests skip locally
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Figures for the README's Performance section (~8 min; `make bench BENCH_ARGS=--quick`: ~1 min).
# Needs Redis on REDIS_URL, wrk for the peak rates, PyPI for the peers' venv on first use.
bench: $(STAMP)
	$(BIN)/python bench/chain.py $(BENCH_ARGS)
	$(BIN)/python bench/chain.py --long 100000 $(BENCH_ARGS)
	$(BIN)/python bench/redis_chain.py $(BENCH_ARGS)
	$(BIN)/python bench/api_latency.py $(BENCH_ARGS)
	$(BIN)/python bench/peers.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .stepline
