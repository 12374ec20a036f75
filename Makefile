# Two commands set everything up: `make train` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.ptlab-installed

.PHONY: setup train test test-slow ci bench clean

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

# Two workers: most tests wait on single-threaded subprocesses, so both cores stay busy; `worksteal`
# hands a finished worker tests still queued for the other, so no core idles through a long tail.
# `make test` is the lean suite (under 10 minutes on 2 cores); `make test-slow` runs the
# end-to-end checks marked slow (full-budget quality targets, torchrun, kill -9 of every task).
# CI (.ci/run) runs both in one session (`make ci`): one collection, one tail instead of two.
PYTEST_ARGS ?= -n 2 --dist worksteal
test: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

ci: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python scripts/bench_trainer.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
