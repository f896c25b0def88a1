# Two commands for a new user: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv bench clean lint validation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

venv: $(STAMP)

## The daemon on its embedded default: 0dte, sim broker, bundled real week of 2019-02-11..15, fast.
run: $(STAMP)
	$(BIN)/tradingd run --profile 0dte --broker sim --replay bundled --speed 0 --signals reference

## Every test.
test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache

## docs/validation.md from replays over every usable day (needs ../shared/data/market).
validation: $(STAMP)
	$(BIN)/python -m daemon.backtest.validation
