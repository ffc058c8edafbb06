# One entry point for every task. `make help` lists them.
# `make demo` and `make test` do all the set-up themselves on a fresh clone.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test check unit integration faults format bench soak clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# The wallboard browser test drives Debian's Chromium (Playwright never downloads one).
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the wallboard browser test"; \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else \
		echo "NOTE: /usr/bin/chromium is missing and this is not root: run" \
		     "'sudo apt-get install chromium' or the wallboard browser test will fail"; \
	fi
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev and local extras

demo: $(STAMP)  ## run the demo on the embedded local broker, registry and emulator
	$(BIN)/pipeline demo

check: $(STAMP)  ## format check, lint, mypy --strict, import contracts
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: check  ## checks, then the whole test suite (starts its own broker and registry)
	$(BIN)/pytest

unit: $(STAMP)  ## unit tests only (no servers)
	$(BIN)/pytest tests/unit

integration: $(STAMP)  ## integration tests only
	$(BIN)/pytest tests/integration

faults: $(STAMP)  ## the fault matrix (tests/system); writes the results into docs/reliability.md
	@status=0; $(BIN)/pytest tests/system --junitxml=.faults.xml || status=$$?; \
	$(BIN)/python -m tests.system.matrix --write --junit .faults.xml; exit $$status

format: $(STAMP)  ## apply ruff format and the safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## run the benchmarks in bench/ (not the soak: make soak)
	@for b in bench/bench_*.py; do \
		case $$b in *soak*) continue;; esac; \
		echo "== $$b"; $(BIN)/python $$b || exit 1; \
	done

soak: $(STAMP)  ## 10 minutes of the whole pipeline at scale: RSS and open files per process
	$(BIN)/python bench/bench_soak.py

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
