# The two commands a new machine needs: `make render` (the example, offline) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test render check plan emulator lint bench mutants clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# --provider local: the example renders offline even where an API key is set (never a paid surprise).
render: $(STAMP)
	$(BIN)/renderspec build --provider local

emulator: $(STAMP)
	$(BIN)/renderspec emulator

check: $(STAMP)
	$(BIN)/renderspec check

plan: $(STAMP)
	$(BIN)/renderspec plan

lint: $(STAMP)
	$(BIN)/ruff check renderspec tests bench
	$(BIN)/ruff format --check renderspec tests bench
	$(BIN)/mypy renderspec

bench: $(STAMP)
	$(BIN)/python bench/plan_noop.py

# Breaks the product on purpose, one known way at a time; exits 1 if a mutant survives the tests.
mutants: $(STAMP)
	$(BIN)/python tests/mutants.py

clean-venv:
	rm -rf $(VENV)
