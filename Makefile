# The two commands of the README. Both do all the set-up first (idempotent).
.PHONY: setup demo test lint lock

VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/vlmpipe demo

# First the import layers (lint-imports, contracts in pyproject.toml); then the tests that load the offline perplexity
# model, alone (torch uses both cores); then the rest in two pytest-xdist workers. All three always run; the exit
# status is the worst of them.
test: setup
	@$(VENV)/lint-imports --no-cache; l=$$?; \
	$(VENV)/python -m pytest -q -m model; a=$$?; \
	$(VENV)/python -m pytest -q -n 2 -m "not model"; b=$$?; \
	exit $$(( l > a ? (l > b ? l : b) : (a > b ? a : b) ))

lint: setup
	$(VENV)/ruff check src tests benchmarks scripts

# Regenerate the dependency lock from the current environment (maintainers only).
lock:
	$(VENV)/python -m pip freeze --exclude-editable | grep -v '^vlmpipe' > requirements.lock
