"""Correlations live (SPEC §2.5, §6.1; issue 9): the daily closes come from IB's historical data through the
fake gateway, cached in the store, so the correlation factor and the 7dte correlated-book caps apply live."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import pytest

from daemon.history import META_KEY
from tests.broker.test_ib_e2e import WEDNESDAY_10AM, async_eq, rig

pytestmark = pytest.mark.slow
MAG7 = {"AAPL": "175.00", "MSFT": "400.00", "GOOGL": "140.00", "AMZN": "175.00", "NVDA": "850.00",
        "META": "500.00", "TSLA": "180.00"}


def _moving_together(gw, sessions: int = 70) -> None:
    """Seventy weekdays of closes before the test day, every symbol the same wiggle (rho = 1)."""
    day, days = WEDNESDAY_10AM.date(), []
    while len(days) < sessions:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    days.reverse()
    for symbol, price in MAG7.items():
        base = Decimal(price)
        gw.daily_closes[symbol] = {
            d: (base * Decimal(str(1 + 0.02 * math.sin(i * 1.3)))).quantize(Decimal("0.01")) for i, d in enumerate(days)}


async def test_correlations_come_from_ib_daily_bars_and_the_correlated_caps_apply(tmp_path):
    week = date(2024, 3, 13)
    async with rig(tmp_path, "7dte", MAG7, **{"broker.ib.history_pace_s": "0"}) as r:
        _moving_together(r.gw)
        outcome = await r.open_trade("corr-1", "AAPL", week, list(range(170, 181)), "9.95",
                                     listed=(date(2024, 3, 8), date(2024, 3, 22)))
        await r.until(lambda: len(r.engine.correlations) == len(MAG7), timeout=20)
        assert r.engine.correlations["AAPL"]["MSFT"] > Decimal("0.99")
        assert {s for s, _ in r.gw.history_requests} == {*MAG7, "VIX"}  # one paced request each (VIX: the regime)
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        r.gw.market.add_chain("MSFT", [date(2024, 3, 8), week, date(2024, 3, 22)], list(range(395, 406)))
        for k in range(395, 406):
            r.quote("MSFT", week, k, "9.95")
        second = await r.engine.submit_signal(r.signal("corr-2", "MSFT"), "test")
        decision = second.decision
        assert decision["notes"]["correlation_regime"] == "high"
        assert Decimal(decision["factors"]["correlation"]) < 1  # the factor applies
        # the 7dte correlated book's tighter total-exposure cap applies: here it leaves too little to trade
        assert [c["name"] for c in decision["caps"]] == ["total_exposure"]
        assert not second.accepted and decision["reason"] == "below_minimum_bet"
        assert await r.store.get_meta(META_KEY)  # cached in the store for the next start


async def test_the_vix_history_is_seeded_from_ib_daily_bars_and_cached_for_the_regime_percentile(tmp_path):
    """SPEC §10.2 live: a fresh daemon asks IB for VIX's daily closes (an index, CBOE) and knows its
    percentile on its first day; the history is cached in the store for the next start."""
    import json

    from daemon.regime import VIX_HISTORY_KEY

    async with rig(tmp_path, "7dte", MAG7, **{"broker.ib.history_pace_s": "0"}) as r:
        _moving_together(r.gw)
        day, closes = WEDNESDAY_10AM.date(), {}
        while len(closes) < 300:
            day -= timedelta(days=1)
            if day.weekday() < 5:
                closes[day] = Decimal("14.00") + Decimal(len(closes) % 7)  # 14..20, the last sessions low
        r.gw.daily_closes["VIX"] = closes
        await r.engine.start()
        await r.until(lambda: len(r.engine.core.regime.vix_history) == 252, timeout=20)
        assert ("VIX", "252 D") in r.gw.history_requests
        history = list(r.engine.core.regime.vix_history)
        assert history == sorted(closes.items())[-252:]  # the last 252 sessions before today, in order
        view = r.engine.core.regime.volatility_for("AAPL", Decimal("25"))
        assert view.vix_percentile == Decimal(1)  # 25 is above every close of the year
        cached = await r.until(_meta(r.store, VIX_HISTORY_KEY), timeout=20)
        assert [d for d, _ in json.loads(cached)][-1] == history[-1][0].isoformat()
        asked = len([s for s, _ in r.gw.history_requests if s == "VIX"])
        await r.engine.refresh_history()  # the shell's daily refresh, the same day again: nothing more to ask
        assert len([s for s, _ in r.gw.history_requests if s == "VIX"]) == asked


def _meta(store, key):
    async def read():
        return await store.get_meta(key)
    return read
