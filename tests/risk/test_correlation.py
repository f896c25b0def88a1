import csv
import gzip
import math
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest

from risk.correlation import (
    average_abs_to, average_pairwise_abs, correlation_matrix, log_returns, pearson, regime, rho,
)
from tests.risk.builders import settings

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "market" / "mag7_daily_always03" / "data"


def test_log_returns():
    r = log_returns([100, 110, 99])
    assert r is not None
    assert r == pytest.approx([math.log(1.1), math.log(0.9)])
    assert log_returns([100, 0, 99]) is None
    assert log_returns([100, float("nan")]) is None


def test_pearson_known_values():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1, 2], [1, 2]) is None  # too short
    assert pearson([1, 1, 1], [1, 2, 3]) is None  # flat


def test_matrix_uses_only_the_lookback_and_is_symmetric():
    a = [100.0 * 1.01 ** i for i in range(5)] + [105.0, 100.0, 103.0, 99.0, 104.0]
    b = [50.0] * 5 + [52.5, 50.0, 51.5, 49.5, 52.0]  # lower-case key: symbols come back upper-case
    matrix = correlation_matrix({"A": a, "b": b}, lookback_sessions=4)
    assert matrix["A"]["A"] == D(1) and matrix["B"]["B"] == D(1)
    assert matrix["A"]["B"] == matrix["B"]["A"]
    expected = np.corrcoef(np.diff(np.log(a[-5:])), np.diff(np.log(b[-5:])))[0, 1]
    assert float(matrix["A"]["B"]) == pytest.approx(expected, abs=1e-6)


def test_matrix_leaves_out_unusable_series_and_flat_pairs():
    matrix = correlation_matrix({"A": [1, 2, 3, 5], "BAD": [1, -1, 2, 3], "FLAT": [2, 2, 2, 2]}, 60)
    assert "BAD" not in matrix
    assert "FLAT" not in matrix["A"]


def test_rho_lookup_either_way_and_self():
    table = {"SPY": {"QQQ": D("0.9")}}
    assert rho(table, "QQQ", "SPY") == D("0.9")
    assert rho(table, "SPY", "SPY") == D(1)
    assert rho(table, "SPY", "IWM") is None


def test_averages_per_position():
    table = {"SPY": {"QQQ": D("0.9"), "IWM": D("-0.5")}}
    assert average_abs_to("SPY", ["QQQ", "IWM"], table) == D("0.7")
    assert average_abs_to("SPY", ["QQQ", "QQQ", "IWM"], table) == (D("0.9") * 2 + D("0.5")) / 3
    assert average_abs_to("SPY", [], table) is None
    assert average_abs_to("SPY", ["TLT"], table) is None  # unknown pairs are left out, not zero
    assert average_pairwise_abs(["SPY", "QQQ", "IWM"], table) == D("0.7")  # QQQ-IWM unknown
    assert average_pairwise_abs(["SPY", "SPY"], table) == D(1)  # two positions on one underlying
    assert average_pairwise_abs(["SPY"], table) is None


@pytest.mark.parametrize("average, expected", [
    (None, "none"), (D("0.6"), "none"), (D("0.61"), "moderate"), (D("0.8"), "moderate"), (D("0.81"), "high"),
])
def test_regime(average, expected):
    assert regime(average, settings("7dte").correlation) == expected


def _closes(symbol: str) -> list[float]:
    with gzip.open(DATA / f"{symbol}.csv.gz", "rt") as fh:
        return [float(row["Close"]) for row in csv.DictReader(fh)]


@pytest.mark.shared_data
def test_real_mag7_matrix_matches_numpy():
    if not DATA.exists():
        pytest.skip(f"shared market data not found at {DATA} (a fresh clone has no ../shared)")
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA"]
    closes = {s: _closes(s) for s in symbols}
    lookback = settings("7dte").correlation.lookback_sessions
    matrix = correlation_matrix(closes, lookback)
    returns = np.array([np.diff(np.log(closes[s][-(lookback + 1):])) for s in symbols])
    expected = np.corrcoef(returns)
    for i, a in enumerate(symbols):
        for j, b in enumerate(symbols):
            assert float(matrix[a][b]) == pytest.approx(expected[i, j], abs=1e-6)
    assert 0 < matrix["AAPL"]["MSFT"] < 1
