# Two commands set everything up: `make train` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.ptlab-installed

.PHONY: setup train test test-slow bench clean

setup: $(STAMP)

# --no-compile: pip would byte-compile every file of torch's 5 GB (about a minute); Python compiles the
# modules a run imports on their first import instead, once.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	touch $(STAMP)

# Train the default task offline; pass extra overrides with ARGS="task=logreg seed=1".
train: setup
	$(BIN)/ptlab train $(ARGS)

# Two workers: most tests wait on single-threaded subprocesses, so both cores stay busy.
# `make test` is the lean suite (under 10 minutes on 2 cores); `make test-slow` runs the
# end-to-end checks marked slow (full-budget quality targets, torchrun, kill -9 of every task).
# CI runs both.
PYTEST_ARGS ?= -n 2
test: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

bench: setup
	$(BIN)/python scripts/bench_trainer.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
