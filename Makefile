# kaisec: the two entry points of the README.
#   make run    set up .venv and run the main job
#   make test   set up .venv (and the system tools the tests need) and run every check
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kaisec-installed

.PHONY: run tour test lint typecheck unit bench fuzz clean system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@$(BIN)/python -m compileall -q src >/dev/null  # start-up time: bytecode even where PYTHONDONTWRITEBYTECODE is set
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/kaisec --home .kaisec-home demo

tour: $(STAMP)
	$(BIN)/python examples/tour.py

system-deps:
	@bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz examples
	$(BIN)/ruff format --check src tests bench fuzz examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck unit

bench: $(STAMP) system-deps
	$(BIN)/python bench/bench_check.py
	$(BIN)/python bench/bench_verify.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
