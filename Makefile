# The two commands of the README. Both do all the set-up first (idempotent).
.PHONY: setup demo test lint lock

VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/vlmpipe demo

test: setup
	$(VENV)/python -m pytest -q

lint: setup
	$(VENV)/ruff check src tests benchmarks scripts

# Regenerate the dependency lock from the current environment (maintainers only).
lock:
	$(VENV)/python -m pip freeze --exclude-editable | grep -v '^vlmpipe' > requirements.lock
