# crab-eval: everything a newcomer types. Each target creates .venv and installs what it needs from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: install test lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first (a CPU build): a looser requirement pulls a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[dev,media,model]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scoring.py

# The whole job on SynthAV (docs/demo.md): synthesise, train, predict, score, transfer tables. Resumable.
demo: $(STAMP)
	$(BIN)/crab-eval demo --out out/demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
