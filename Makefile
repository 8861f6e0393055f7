# The two commands of the README. Both do all the set-up first (idempotent).
.PHONY: setup demo test lint lock

VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/vlmpipe demo

# The tests that load the offline perplexity model run first, alone (torch uses both cores); the rest then run in
# two pytest-xdist workers. Both parts always run; the exit status is the worse of the two.
test: setup
	@$(VENV)/python -m pytest -q -m model; a=$$?; \
	$(VENV)/python -m pytest -q -n 2 -m "not model"; b=$$?; \
	exit $$(( a > b ? a : b ))

lint: setup
	$(VENV)/ruff check src tests benchmarks scripts

# Regenerate the dependency lock from the current environment (maintainers only).
lock:
	$(VENV)/python -m pip freeze --exclude-editable | grep -v '^vlmpipe' > requirements.lock
