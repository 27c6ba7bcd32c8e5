# crab-eval: everything a newcomer types. Each target creates .venv and installs what it needs from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: install browser test test-fast lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first (a CPU build): a looser requirement pulls a multi-GB CUDA build. Every extra: the suite and
# the demo use them all (a user who only scores needs `pip install crab-eval`, see README).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[all,dev]'
	# DeepSpeed (ZeRO-2 test on one CPU process) builds against the installed torch: no build isolation, or pip
	# would fetch another torch to build it.
	$(BIN)/pip install --quiet --no-build-isolation deepspeed
	touch $(STAMP)

install: $(STAMP)

# The leaderboard's browser test drives Debian's chromium; installed here (apt-get, as root: CI runs as root),
# never inside a test. Without root it prints the command to run and stops.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "chromium and chromium-driver are missing: run 'sudo apt-get install -y chromium chromium-driver'"; \
		exit 1; \
	fi

# Everything, browser included (what CI runs).
test: $(STAMP) browser
	$(BIN)/pytest

# The fast layer for development: no training, no multi-process or whole-demo runs, no browser.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not model and not browser"

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
