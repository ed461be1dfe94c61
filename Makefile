# The commands of the README.  `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.serve-installed
SERVE_REQS  := requirements-serve.txt container/requirements.txt container/requirements-cpu.txt \
  container/constraints.txt

# $(call shq,TEXT): TEXT as one shell word, single-quoted, a ' inside written as '\''.
shq = '$(subst ','\'',$(1))'

export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help venv constraints lint test clean

# A venv of its own from a complete lock (pip --no-deps), then an import check that fails
# on a missing package: $(call locked_venv,X) reads X_VENV, X_REQS and X_SMOKE.
define locked_venv
	rm -rf $($(1)_VENV)
	$(PYTHON) -m venv $($(1)_VENV)
	$($(1)_VENV)/bin/pip install --progress-bar off --no-deps -r $($(1)_REQS)
	$($(1)_VENV)/bin/python -W ignore -c "$($(1)_SMOKE)"
	touch $@
endef

# Each area adds its targets in make/<area>.mk and may append stamps to TEST_DEPS.
TEST_DEPS :=
-include make/*.mk

help:  ## list the commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# The project itself, editable.  setuptools warns (a boxed UserWarning from its editable
# wheel command) that deploy/ and bench/ in the working folder shadow the installed
# packages: they are the same folders.  That one module's warnings are silenced, no other.
EDITABLE_INSTALL = PYTHONWARNINGS=ignore::UserWarning:setuptools.command.editable_wheel \
  $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .

$(STAMP): requirements.txt $(SERVE_REQS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "installing every pinned package into $(VENV)"
	@$(BIN)/pip install --quiet --upgrade pip
	@set -o pipefail; $(BIN)/pip install --progress-bar off -r requirements.txt 2>&1 \
	  | { grep --line-buffered -E '^(Collecting|ERROR|Successfully installed)' || true; } \
	  | sed -u -e 's/^Collecting /  /' -e 's/^Successfully installed .*/  done/'
	@$(EDITABLE_INSTALL)
	touch $@ $(SERVE_STAMP)

# The first commands (make demo-model, make serve) need only serving's packages; `make test`
# completes the same .venv later.  Both show one line per package instead of pip's whole log
# (errors kept).
$(SERVE_STAMP): $(SERVE_REQS) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing serving's pinned packages into $(VENV) (make test adds the rest)"
	@$(BIN)/pip install --quiet --upgrade pip
	@set -o pipefail; $(BIN)/pip install -r requirements-serve.txt 2>&1 \
	  | { grep --line-buffered -E '^(Collecting|ERROR|Successfully installed)' || true; } \
	  | sed -u -e 's/^Collecting /  /' -e 's/^Successfully installed .*/  done/'
	@$(EDITABLE_INSTALL)
	@touch $@

venv: $(STAMP)  ## create .venv with every pinned requirement

# After changing a pin in container/requirements*.txt: install it into .venv
# (.venv/bin/pip install NAME==VERSION), then this rewrites what the pins pull in, as .venv
# has it, for the image and .venv alike; a test fails until it is run.
constraints: $(SERVE_STAMP)  ## rewrite container/constraints.txt from .venv (after changing a pin)
	$(PY) container/base/constraints.py > container/constraints.txt.new
	mv container/constraints.txt.new container/constraints.txt

lint: $(STAMP)  ## ruff over the Python code
	$(BIN)/ruff check code container deploy tests bench demo_models

test: $(STAMP) lint $(TEST_DEPS)  ## the whole suite: lint, unit, HTTP, DLC parity, deploy against moto
	$(PY) -m pytest $(PYTEST_ARGS)

clean:  ## remove build outputs (keeps .venv)
	rm -rf build dist .pytest_cache

