# The two commands of the README, `make demo` and `make test`; both set up what they need first (idempotent: a second
# run skips what is done). scripts/setup.sh says what each step installs and prints how long it took.
.PHONY: setup setup-test llama demo test lint lock

VENV := .venv/bin

# What the demo uses: Debian packages, .venv with vlmpipe, the torch perplexity scorer and its model.
setup:
	@bash scripts/setup.sh demo

# What the tests use besides: the test tools and bert-score.
setup-test:
	@bash scripts/setup.sh test

# llama-cpp-python (backend: llama_cpp), built portably once per machine, and its server. A failed build is retried
# by the next `make llama`.
llama:
	@bash scripts/setup.sh llama

demo: setup
	$(VENV)/vlmpipe demo

# The set-up, llama-cpp-python (its tests need it), the import layers (lint-imports, contracts in pyproject.toml);
# then the tests that load the offline perplexity model, alone (torch uses both cores); then the rest in two
# pytest-xdist workers. All run even when one fails; the exit status is the worst of them.
test: setup-test
	@$(MAKE) --no-print-directory llama; s=$$?; \
	$(VENV)/lint-imports --no-cache; l=$$?; \
	$(VENV)/python -m pytest -q -m model; a=$$?; \
	$(VENV)/python -m pytest -q -n 2 -m "not model"; b=$$?; \
	worst=0; for x in $$s $$l $$a $$b; do [ $$x -gt $$worst ] && worst=$$x; done; exit $$worst

lint: setup-test
	$(VENV)/ruff check src tests benchmarks scripts

# Regenerate the dependency lock from the current environment (maintainers only).
lock:
	$(VENV)/python -m pip freeze --exclude-editable | grep -v '^vlmpipe' > requirements.lock
