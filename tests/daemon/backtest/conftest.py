from __future__ import annotations

from pathlib import Path

import pytest

from daemon.backtest.data import market_root


@pytest.fixture(scope="session")
def shared_market() -> Path:
    """../shared/data/market: tests-only recorded data. A fresh clone has none: skip, saying so."""
    root = market_root()
    if root is None:
        pytest.skip("../shared/data/market is absent (a user's clone has no ../shared): recorded-data test skipped")
    return root
