"""tests/slow: long harnesses (marker `slow`) that `make test` leaves out and `make test-slow` runs.

Every test here is marked `slow`; it runs only when the marker expression asks for it
(`pytest -m slow`, what `make test-slow` does) or TRADINGD_SLOW_TESTS=1 is set, so a plain
`pytest` (`make test`) skips them with a clear reason instead of spending minutes.
"""

from __future__ import annotations

import os

import pytest


def _asked_for(config: pytest.Config) -> bool:
    expr = (config.getoption("markexpr", default="") or "").replace(" ", "")
    return os.environ.get("TRADINGD_SLOW_TESTS") == "1" or (expr.startswith("slow") or "andslow" in expr)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    run = _asked_for(config)
    skip = pytest.mark.skip(reason="slow harness: run it with `make test-slow` (pytest -m slow tests/slow)")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.slow)
            if not run:
                item.add_marker(skip)
