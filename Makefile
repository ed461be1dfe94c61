# The commands of the README.  `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help venv lint test clean

# Each area adds its targets in make/<area>.mk and may append stamps to TEST_DEPS.
TEST_DEPS :=
-include make/*.mk

help:  ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt container/requirements.txt container/requirements-cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -r requirements.txt
	$(BIN)/pip install --progress-bar off --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)  ## create .venv with every pinned requirement

lint: $(STAMP)  ## ruff over the Python code
	$(BIN)/ruff check code container deploy tests bench demo_models

test: $(STAMP) lint $(TEST_DEPS)  ## the whole suite: lint, unit, HTTP, DLC parity, deploy against moto
	$(PY) -m pytest $(PYTEST_ARGS)

clean:  ## remove build outputs (keeps .venv)
	rm -rf build dist .pytest_cache

