# Every target bootstraps .venv from requirements.lock when it is missing or older
# than the lock or pyproject.toml, so a fresh clone needs only `make run` / `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help venv run test test-fast test-long bench bench-full lint format lock lock-upgrade airflow clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP) ## create or refresh .venv from the lock

run: $(STAMP) ## the main job: generate data if missing, run the training_pipeline DAG, print a summary
	@$(BIN)/python -m scripts.run_pipeline $(ARGS)

# Both tiers run on every core (pytest-xdist; TEST_WORKERS=0 runs in one process): the
# service tests as one unit on one worker, every other module wherever a worker is free
# (testkit/xdist.py).
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

test: $(STAMP) ## the test suite (what CI runs)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The unit tier: everything but end-to-end runs (slow) and Airflow services; what the
# pre-commit hook runs. `make test` is the whole suite (what CI runs).
test-fast: $(STAMP) ## the fast unit tier (no Airflow services, no end-to-end runs): a few minutes
	$(BIN)/python -m pytest -m "not slow and not services and not long" -p no:cacheprovider $(XDIST) $(PYTEST_ARGS)

test-long: $(STAMP) ## opt-in: a 12-minute training task under the real scheduler
	$(BIN)/python -m pytest -m long -p no:cacheprovider tests/services/test_long_task.py $(PYTEST_ARGS)

bench: $(STAMP) ## benchmarks: table on screen, JSON in benchmarks/results/
	$(BIN)/python -m benchmarks $(ARGS)

bench-full: $(STAMP) ## benchmarks including the 10M-row data point
	$(BIN)/python -m benchmarks --full $(ARGS)

LINT_PATHS := ml dags plugins tests benchmarks scripts testkit

lint: $(STAMP) ## ruff check + ruff format --check + mypy strict on ml/ (CI runs it before the tests)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

airflow: $(STAMP) ## start the Airflow services for this project (UI on http://localhost:8080); Ctrl-C stops them
	@$(BIN)/python -m scripts.airflow_services up $(ARGS)

# `make lock` resolves requirements.in constrained by the current lock, so adding a package
# moves no existing pin; `make lock-upgrade` re-resolves everything from scratch.
LOCK_CONSTRAINTS ?= -c requirements.lock

lock: ## add what requirements.in gained to the lock without moving existing pins
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements.in $(LOCK_CONSTRAINTS)
	.venv-lock/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf .venv-lock

lock-upgrade: ## re-resolve every pin from requirements.in (review the diff)
	$(MAKE) lock LOCK_CONSTRAINTS=

clean: ## remove .venv and caches (keeps data/, experiments/, models/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
