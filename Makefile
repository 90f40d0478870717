# Developer entry points. A fresh machine needs only Python 3.11 and make:
#   make demo   # the whole mission on one machine
#   make test   # the test suite (embedded PostgreSQL and Redis start by themselves)
# Every target first makes sure .venv exists and holds `pip install -e '.[dev]'`; the install is
# redone only when pyproject.toml's content changes (the stamp's name carries its checksum).

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edgefleet-dev-$(shell cksum < pyproject.toml | cut -d' ' -f1)
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k migrations -x"`.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint protos bench

help:
	@echo "make demo    run the whole mission on this machine (edgefleet demo)"
	@echo "make test    run the tests (PYTEST_ARGS=... to pass options)"
	@echo "make lint    ruff + mypy"
	@echo "make protos  regenerate the committed gRPC stubs"
	@echo "make bench   run every benchmark in benchmarks/"

$(BIN)/python:
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
