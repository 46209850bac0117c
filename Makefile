# Everything runs inside .venv, made with the standard library's venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test unit integration e2e lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cutover demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check cutover tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/files.py
	$(BIN)/python bench/soap.py

clean:
	rm -rf $(VENV) demo runs data
