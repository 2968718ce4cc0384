# Technic scan cluster. `make scan` and `make test` work from a fresh clone: each sets up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TECHNIC := $(VENV)/bin/technic
export TECHNIC_RUN_DIR ?= $(CURDIR)/.run

.PHONY: help setup redis up down status scan test test-reliability mutation bench proto models lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

redis: ## install redis-server from Debian when it is missing (needs root)
	@if command -v redis-server >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server (Debian package)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	else \
		echo "redis-server is not installed and this is not a root Debian shell."; \
		echo "Install Redis 7 yourself (e.g. 'sudo apt-get install redis-server' or 'brew install redis'),"; \
		echo "or point REDIS_URL at a running server, then run make again."; \
		exit 1; \
	fi

setup: $(STAMP) redis ## virtualenv with dev extras, redis-server

up: setup ## start the local cluster under supervisord (simulator as the market)
	$(TECHNIC) up

down: ## stop the local cluster and every process it started
	@if [ -x $(TECHNIC) ]; then $(TECHNIC) down; fi

status: setup ## every process and its health
	$(TECHNIC) status

scan: up ## set up, start the cluster and run a full-universe scan
	$(TECHNIC) scan

test: setup ## the test suite (unit + integration, fast fault subset)
	$(PY) -m pytest -q -m 'not reliability'

test-reliability: setup ## the full fault, load and security suite
	$(PY) -m pytest -q tests/reliability

# mutmut leaves decorated functions unmutated, so the Numba kernels of jsonbars.py and tickers.py
# keep running compiled (no NUMBA_DISABLE_JIT: their logic is checked by the fuzz test against orjson);
# mutmut mutates and traces only the plain Python around them. One worker process; MODULES=... picks
# modules by name (see tests/mutation.py). Several minutes per module on two cores.
mutation: setup ## mutation score per pure domain module (mutmut; slow, not part of `make test`)
	$(PY) -m tests.mutation $(MODULES)

bench: setup ## every performance budget, each beside a reference measured in the same run
	$(PY) -m bench

proto: setup ## regenerate the committed protobuf modules
	$(PY) -m services.common.protogen

models: setup ## retrain the shipped models on the simulated market
	$(TECHNIC) train

lint: setup ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services gateway

clean: down ## remove the virtualenv and run folder
	rm -rf $(VENV) .run
