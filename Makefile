# Vigil — two commands: `make demo` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit e2e serve clean bench-hl7 bench bench-quick bench-slow bench-mllp

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Vigil needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## start the server with four simulated bays (PORT=8000)
	$(BIN)/vigil demo --port $(or $(PORT),8000)

serve: $(STAMP)  ## start from a config file: make serve CONFIG=vigil.toml
	$(BIN)/vigil serve --config $(CONFIG)

lint: $(STAMP)  ## ruff + mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: lint

unit: $(STAMP)  ## tests without the browser
	$(BIN)/pytest -m 'not e2e'

e2e: $(STAMP)  ## browser tests only (needs /usr/bin/chromium)
	$(BIN)/pytest -m e2e

test: lint  ## ruff, mypy --strict and every test (browser tests included)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts *.sqlite3*

bench-hl7: $(STAMP)  ## HL7 ingest throughput vs a bare python-hl7 peer (JSON in benchmarks/results/)
	$(BIN)/python -m benchmarks.bench_hl7_ingest

bench: $(STAMP)  ## load/latency matrix N=10..200 beds x M=10..300 viewers vs a bare websockets peer (< 10 min)
	$(BIN)/vigil bench matrix

bench-quick: $(STAMP)  ## one cell (100 beds x 300 viewers) vs the bare peer, ~1 min (CI smoke)
	$(BIN)/vigil bench quick

bench-slow: $(STAMP)  ## one viewer stops reading for 60 s: the others' p99, server RSS, resync on resume
	$(BIN)/vigil bench slow

bench-mllp: $(STAMP)  ## beds over HL7 MLLP from sender processes, vs the bare python-hl7 peer
	$(BIN)/vigil bench mllp
