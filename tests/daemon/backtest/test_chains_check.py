"""The Yahoo Mag7 EOD chains and the Lean EOD universes (../shared, tests-only) against the 7dte
listing rules and the option model (daemon.backtest.chains_check): skipped without ../shared."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from config.loader import load_settings
from daemon.backtest.chains_check import run_checks, summary


@pytest.fixture(scope="module")
def checks(shared_market: Path):
    return run_checks(shared_market, load_settings("7dte"))


def test_our_7dte_expiry_and_money_strike_are_listed_in_every_real_mag7_chain(checks) -> None:
    yahoo = [c for c in checks if c.source == "yahoo"]
    assert len(yahoo) >= 40 and {c.underlying for c in yahoo} >= {"AAPL", "AMZN", "GOOG", "META", "NVDA"}
    for c in yahoo:
        assert c.expiry_listed, (c.underlying, c.day, c.expiry)
        assert 4 <= (c.expiry - c.day).days <= 11
    assert sum(c.strike_listed for c in yahoo) >= 0.95 * len(yahoo)
    # Thanksgiving week: the half day 2025-11-28 and the Friday weekly of 2025-12-05
    assert {c.expiry for c in yahoo if c.day == date(2025, 11, 28)} == {date(2025, 12, 5)}


def test_the_model_atm_iv_against_the_recorded_chains_is_measured_where_documented(checks) -> None:
    found = summary(checks)
    yahoo, lean = found["yahoo"], found["lean"]
    assert yahoo["iv_points"] >= 40 and lean["iv_points"] >= 8
    # docs/validation.md: VIX × multiple ~1.3× Yahoo's late-2025 7-day ATM IV; the guard catches a drift
    assert 1.1 <= yahoo["median_iv_ratio"] <= 1.5
    assert yahoo["median_abs_iv_error"] <= 0.40
    assert lean["median_abs_iv_error"] <= 0.45
    for c in checks:
        if c.recorded_iv is not None:
            assert 0.05 < c.recorded_iv < 1.5, c  # solved / quoted near the money: sane vols only


def test_the_summary_is_in_docs_validation() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "validation.md").read_text()
    assert "## The 7dte model and the sim's chains against real end-of-day chains" in text
