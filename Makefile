# Two commands for a new user: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow venv bench clean lint validation

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

venv: $(STAMP)

## The daemon on its embedded default: 0dte, sim broker, bundled real week of 2019-02-11..15, fast.
run: $(STAMP)
	$(BIN)/tradingd run --profile 0dte --broker sim --replay bundled --speed 0 --signals reference

## Every test but the long soaks (those are `make test-slow`'s).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not soak"

## The slow harnesses (tests/slow: the crash-consistency replay) and the soaks (the long API fuzz).
test-slow: $(STAMP)
	TRADINGD_SLOW_TESTS=1 $(BIN)/python -m pytest tests/slow tests/daemon/test_api_fuzz.py -m "slow or soak"

## Every benchmark (medians of >= 3 runs): a table, and bench/results.json. Never part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache

## docs/validation.md from replays over every usable day (needs ../shared/data/market).
validation: $(STAMP)
	$(BIN)/python -m daemon.backtest.validation
