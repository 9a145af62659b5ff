# Every target bootstraps .venv from requirements.lock when it is missing or older
# than the lock or pyproject.toml, so a fresh clone needs only `make run` / `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help venv run test test-long bench bench-full lint format lock airflow clean

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

test: $(STAMP) ## the test suite (what CI runs)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-long: $(STAMP) ## opt-in: a 12-minute training task under the real scheduler
	$(BIN)/python -m pytest -m long -p no:cacheprovider tests/services/test_long_task.py $(PYTEST_ARGS)

bench: $(STAMP) ## benchmarks: table on screen, JSON in benchmarks/results/
	$(BIN)/python -m benchmarks $(ARGS)

bench-full: $(STAMP) ## benchmarks including the 10M-row data point
	$(BIN)/python -m benchmarks --full $(ARGS)

lint: $(STAMP) ## ruff + mypy (strict on ml/)
	$(BIN)/ruff check ml dags tests benchmarks scripts
	$(BIN)/ruff format --check ml dags tests benchmarks scripts
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix ml dags tests benchmarks scripts
	$(BIN)/ruff format ml dags tests benchmarks scripts

airflow: $(STAMP) ## start the Airflow services for this project (UI on http://localhost:8080); Ctrl-C stops them
	@$(BIN)/python -m scripts.airflow_services up $(ARGS)

lock: ## re-resolve requirements.in into requirements.lock (needs the package index)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements.in
	.venv-lock/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements.lock
	rm -rf .venv-lock

clean: ## remove .venv and caches (keeps data/, experiments/, models/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
