# madoguchi: `make run` starts the app, `make test` runs every check.
# Both create or refresh .venv themselves (quick when nothing changed).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest eval bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "madoguchi needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/madoguchi run

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

eval: $(STAMP)
	$(BIN)/madoguchi faq evaluate --faq faq/data/curated_faq.jsonl --queries eval/dev_queries.jsonl

bench: $(STAMP)
	$(BIN)/madoguchi faq bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
