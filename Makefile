# Developer entry points. A fresh machine needs only Python (3.11 to 3.13) and make:
#   make demo   # the whole mission on one machine
#   make test   # the test suite (embedded PostgreSQL and Redis start by themselves)
# Every target but test-agent first makes sure .venv exists and holds `pip install -e '.[dev]'`;
# the install is redone only when pyproject.toml's content changes (the stamp's name carries its
# checksum).

# The interpreter: PYTHON when given, else the first of python3.11, python3.12, python3.13 that
# runs. 3.11 first: only there do the tests also run tflite-runtime, the devices' usual
# interpreter. "Runs", not "is on PATH": a pyenv shim for a version not selected is passed over.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell for p in python3.11 python3.12 python3.13; do \
            "$$p" -c '' >/dev/null 2>&1 && { echo "$$p"; break; }; done),python3.11)
endif
VENV   ?= .venv
BIN    := $(VENV)/bin
CKSUM  := $(shell cksum < pyproject.toml | cut -d' ' -f1)
STAMP  := $(VENV)/.edgefleet-dev-$(CKSUM)
# What test-agent installs besides edgefleet[agent] (keep in step with pyproject's extras): the
# test tools, and what the tests' models are built with (controlplane.modelgen: flatbuffers and
# ai-edge-litert's TFLite schema), which the agent extra brings only where ai-edge-litert is its
# interpreter.
AGENT_TEST_DEPS := 'pytest>=8' 'pytest-timeout>=2.3' 'flatbuffers>=24' 'ai-edge-litert==2.3.*'
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k migrations -x"`.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-agent lint protos bench

help:
	@echo "make demo    run the whole mission on this machine (edgefleet demo)"
	@echo "make test    run the tests (PYTEST_ARGS=... to pass options)"
	@echo "make test-agent PYTHON=python3.12"
	@echo "             the agent's tests in a venv holding only edgefleet[agent] (.venv-agentXY)"
	@echo "make lint    ruff + mypy"
	@echo "make protos  regenerate the committed gRPC stubs"
	@echo "make bench   run every benchmark in benchmarks/"

$(BIN)/python:
	@$(PYTHON) -c '' 2>/dev/null || { echo "make: $(PYTHON) does not run; EdgeFleet needs Python" \
	  "3.11, 3.12 or 3.13: install one, or pass PYTHON=/path/to/python3.X" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	rm -f $(VENV)/.edgefleet-dev-*
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/edgefleet demo

# pytest exits 5 when it collected nothing; say so rather than leave a bare "Error 5".
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) || { rc=$$?; \
	  [ $$rc -ne 5 ] || echo "make test: pytest collected no tests" >&2; exit $$rc; }

# The agent's tests as a device installs it: only edgefleet[agent] (tflite-runtime on Linux with
# Python <= 3.11, ai-edge-litert elsewhere) plus pytest, in .venv-agentXY for PYTHON's version
# XY, so one checkout holds one per interpreter. Done in the recipe, not as make prerequisites:
# the venv's name depends on PYTHON's version, known only by running it.
test-agent:
	@ver=$$($(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])') || { \
	  echo "make test-agent: $(PYTHON) does not run; pass PYTHON=/path/to/python3.X" \
	    "(a pyenv shim may need PYENV_VERSION, or use ~/.pyenv/versions/3.X.Y/bin/python3.X)" >&2; \
	  exit 2; }; \
	venv=.venv-agent$$ver; stamp=$$venv/.edgefleet-agent-$(CKSUM); \
	if [ ! -e "$$stamp" ]; then \
	  { [ -x "$$venv/bin/python" ] || $(PYTHON) -m venv "$$venv"; } && \
	  "$$venv/bin/python" -m pip install -q -e '.[agent]' $(AGENT_TEST_DEPS) && \
	  rm -f "$$venv"/.edgefleet-agent-* && touch "$$stamp" || exit $$?; \
	fi; \
	echo "make test-agent: $$venv/bin/python -m pytest -q tests/agent tests/contract $(PYTEST_ARGS)"; \
	"$$venv/bin/python" -m pytest -q tests/agent tests/contract $(PYTEST_ARGS) || { rc=$$?; \
	  [ $$rc -ne 5 ] || echo "make test-agent: pytest collected no tests" >&2; exit $$rc; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy controlplane agent protos

protos: $(STAMP)
	$(BIN)/python -m protos.generate

# Each benchmarks/NAME.py (not starting with _) runs as `python -m benchmarks.NAME`.
bench: $(STAMP)
	@found=0; for f in benchmarks/*.py; do \
	  [ -e "$$f" ] || continue; name=$$(basename "$$f" .py); \
	  case "$$name" in _*) continue;; esac; \
	  found=1; echo "== benchmarks.$$name"; \
	  $(BIN)/python -m benchmarks.$$name || exit $$?; \
	done; [ $$found = 1 ] || echo "no benchmarks in benchmarks/ yet"
