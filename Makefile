# hogo (保護) — developer entry points. `make` (or `make help`) lists the targets.
#
#   make run    set up and run hogo on the embedded default (SQLite + keys in ./hogo-data)
#   make test   set up and run the whole test suite

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:

PYTHON        ?= python3
VENV          ?= .venv
BIN           := $(VENV)/bin
STAMP         := $(VENV)/.installed
HOGO_DATA_DIR ?= ./hogo-data
DEMO_DATA_DIR ?= ./hogo-demo-data
HOST          ?= 127.0.0.1
PORT          ?= 8700
# pytest-xdist: one worker per core (2 on the project's machines). Every test has its own temporary
# directory, SQLite file and PostgreSQL schema, and live servers take free ports, so workers share
# nothing. `make test XDIST=` runs in one process.
XDIST         ?= -n auto
PYTEST_ARGS   ?=
BENCH_ARGS    ?=

.PHONY: help venv install run demo test lint migration-check bench clean distclean

help: ## List the targets (default)
	@echo "hogo (保護) — make targets:"
	@awk 'BEGIN {FS = ":.*?## "} /^[a-zA-Z_-]+:.*?## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Variables: HOGO_DATA_DIR=$(HOGO_DATA_DIR) HOST=$(HOST) PORT=$(PORT) XDIST='$(XDIST)'"
	@echo "           PYTEST_ARGS='...' BENCH_ARGS='...' PYTHON=$(PYTHON)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installed only when pyproject.toml changes (or the stamp is missing).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

venv: $(BIN)/python ## Create the virtualenv in .venv (python3 -m venv) if missing

install: $(STAMP) ## Install hogo (editable) with the dev tools into .venv

run: install ## Create an instance in HOGO_DATA_DIR (default ./hogo-data) if none, then serve http://127.0.0.1:8700
	@if [ ! -f "$(HOGO_DATA_DIR)/keys/master.key" ]; then \
	  echo "No hogo instance in $(HOGO_DATA_DIR): creating one (note the one-time password below)."; \
	  HOGO_DATA_DIR="$(HOGO_DATA_DIR)" $(BIN)/hogo init --data-dir "$(HOGO_DATA_DIR)"; \
	fi
	HOGO_DATA_DIR="$(HOGO_DATA_DIR)" $(BIN)/hogo serve --data-dir "$(HOGO_DATA_DIR)" --host $(HOST) --port $(PORT)

demo: install ## Create a demo organisation in ./hogo-demo-data (published passwords) and serve it
	@if [ ! -f "$(DEMO_DATA_DIR)/keys/master.key" ]; then \
	  HOGO_DATA_DIR="$(DEMO_DATA_DIR)" $(BIN)/hogo init --demo --data-dir "$(DEMO_DATA_DIR)"; \
	fi
	HOGO_DATA_DIR="$(DEMO_DATA_DIR)" $(BIN)/hogo serve --data-dir "$(DEMO_DATA_DIR)" --host $(HOST) --port $(PORT)

test: install ## Run the whole test suite (PostgreSQL cases need HOGO_TEST_PG_URL: see .ci/start-postgres)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

migration-check: install ## Migrations vs models, downgrade/upgrade, append-only audit table (SQLite + PostgreSQL)
	$(BIN)/python -m pytest tests/integration/test_migrations.py $(PYTEST_ARGS)

bench: install ## Auth, import, record-read, policy and audit-log benchmarks vs plain baselines (~8 min); writes bench/results/latest.json
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk (Debian package) for the load generator"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 \
	      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1; } \
	      || echo "wrk could not be installed: using bench/loadgen.py"; \
	  else \
	    echo "wrk is not installed (Debian: apt-get install wrk): using bench/loadgen.py"; \
	  fi; \
	fi
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove caches, build output and bench results (keeps .venv and every instance's data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info bench/results
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## Also remove .venv and the demo instance (never ./hogo-data: it holds your keys)
	rm -rf $(VENV) $(DEMO_DATA_DIR)
