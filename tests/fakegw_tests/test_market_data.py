"""Streaming and snapshot market data: prices, sizes, model greeks, open interest."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

from ib_async import IB, Index, Option, Stock

from tests.fakegw import FakeGateway
from tests.fakegw_tests.conftest import EXPIRY, settle

CALL = Option("SPY", "20240119", 470, "C", "SMART")


async def test_option_ticks_with_greeks_and_open_interest(ib: IB) -> None:
    (call,) = await ib.qualifyContractsAsync(CALL)
    ticker = ib.reqMktData(call, "100,101")
    await settle(ib, lambda: ticker.modelGreeks is not None and not math.isnan(ticker.callOpenInterest))
    assert (ticker.bid, ticker.bidSize, ticker.ask, ticker.askSize) == (1.50, 10, 1.55, 12)
    greeks = ticker.modelGreeks
    assert (greeks.delta, greeks.gamma, greeks.impliedVol) == (0.52, 0.045, 0.151)
    assert greeks.undPrice == 470.01 and greeks.optPrice == 1.525
    assert ticker.callOpenInterest == 1234
    assert ticker.minTick == 0.01


async def test_underlying_open_interest_sums_the_chain(ib: IB) -> None:
    (spy,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(spy, "101")
    await settle(ib, lambda: not math.isnan(ticker.putOpenInterest))
    assert (ticker.callOpenInterest, ticker.putOpenInterest) == (1234, 987)
    assert ticker.last == 470.01


async def test_market_updates_stream_only_changes(ib: IB, gw: FakeGateway) -> None:
    (call,) = await ib.qualifyContractsAsync(CALL)
    ticker = ib.reqMktData(call)
    await settle(ib, lambda: ticker.ask == 1.55)
    ticks: list[tuple[int, float, float]] = []
    ticker.updateEvent += lambda t: ticks.extend((d.tickType, d.price, d.size) for d in t.ticks)
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", "1.50", "1.60", 10, 5,
                         open_interest=1234, delta="0.52", gamma="0.045", iv="0.151")
    await settle(ib, lambda: ticker.ask == 1.60)
    assert ticks == [(2, 1.60, 5)]  # the bid did not change, so nothing about it
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", "1.50", "1.60", 7, 5)
    await settle(ib, lambda: ticker.bidSize == 7)
    gw.market.set_option("SPY", EXPIRY, Decimal(470), "C", None, "1.60", 0, 5)
    await settle(ib, lambda: math.isnan(ticker.bid) or ticker.bid == -1)
    assert ticker.ask == 1.60


async def test_index_streams_last(ib: IB, gw: FakeGateway) -> None:
    (vix,) = await ib.qualifyContractsAsync(Index("VIX", "CBOE"))
    ticker = ib.reqMktData(vix)
    await settle(ib, lambda: ticker.last == 14.5)
    gw.market.set_index("VIX", "16.25", close="14.10")
    await settle(ib, lambda: ticker.last == 16.25 and ticker.close == 14.10)


async def test_snapshot_ends_with_tick_snapshot_end(ib: IB) -> None:
    (call,) = await ib.qualifyContractsAsync(CALL)
    (ticker,) = await asyncio.wait_for(ib.reqTickersAsync(call), 2)
    assert (ticker.bid, ticker.ask) == (1.50, 1.55)


async def test_snapshot_with_generic_ticks_is_refused(ib: IB, gw: FakeGateway) -> None:
    (call,) = await ib.qualifyContractsAsync(CALL)
    ib.reqMktData(call, "101", snapshot=True)
    await settle(ib, lambda: any(code == 321 for _, _, code, _ in gw.errors_sent))


async def test_cancelled_subscription_gets_no_more_ticks(ib: IB, gw: FakeGateway) -> None:
    (call,) = await ib.qualifyContractsAsync(CALL)
    ticker = ib.reqMktData(call)
    await settle(ib, lambda: ticker.ask == 1.55)
    ib.cancelMktData(call)
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)  # the cancel has been processed
    assert all(not s.market_data for s in gw.sessions)


async def test_market_data_type_is_announced_per_subscription(ib: IB) -> None:
    ib.reqMarketDataType(2)
    (call,) = await ib.qualifyContractsAsync(CALL)
    ticker = ib.reqMktData(call)
    await settle(ib, lambda: ticker.marketDataType == 2)
    # Delayed (3) is "live when subscribed": an entitled instrument is announced as live.
    # Delayed data itself is in test_entitlements.py.


async def test_market_data_lines_are_limited(ib: IB, gw: FakeGateway) -> None:
    gw.max_market_data_lines = 1
    (call,) = await ib.qualifyContractsAsync(CALL)
    (spy,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ib.reqMktData(call)
    ib.reqMktData(spy)
    await settle(ib, lambda: any(code == 101 for _, _, code, _ in gw.errors_sent))
