"""Market data entitlements, seen by a real ib_async client: 354 / 10168 refusals, and delayed
data (notice 10167, marketDataType 3, delayed tick types) after reqMarketDataType(3)."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest
from ib_async import IB, Option, Stock, Ticker

from tests.fakegw import FakeGateway
from tests.fakegw.contracts import make_underlying
from tests.fakegw.entitlements import Entitlement, grant
from tests.fakegw.market import Market
from tests.fakegw_tests.conftest import EXPIRY, settle

CALL = Option("SPY", "20240119", 470, "C", "SMART")
SPY = make_underlying("SPY")
DELAYED_TYPES = {66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76}
ErrorLog = list[tuple[int, int, str]]


@pytest.fixture
def errors(ib: IB) -> ErrorLog:
    seen: ErrorLog = []
    ib.errorEvent += lambda req_id, code, text, _contract: seen.append((req_id, code, text))
    return seen


async def _subscribe(ib: IB, contract: Stock | Option, generic: str = "") -> tuple[Ticker, int]:
    (qualified,) = await ib.qualifyContractsAsync(contract)
    ticker = ib.reqMktData(qualified, generic)
    ticker.marketDataType = 0  # so the type the gateway announces is seen, whatever it is
    return ticker, ib.wrapper.ticker2ReqId["mktData"][ticker]


async def _answered(ib: IB) -> None:
    """Everything sent before this has been answered (TWS handles one socket in order)."""
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)


async def test_live_request_without_a_live_subscription_is_354(ib: IB, gw: FakeGateway, errors: ErrorLog) -> None:
    gw.market.entitle("SPY", live=False)
    ticker, req_id = await _subscribe(ib, Stock("SPY", "SMART", "USD"))
    await settle(ib, lambda: bool(errors))
    await _answered(ib)
    ((at, code, text),) = errors
    assert (at, code) == (req_id, 354)
    assert text.startswith("Requested market data is not subscribed.Delayed market data is available.")
    assert math.isnan(ticker.bid) and math.isnan(ticker.last)
    assert all(not s.market_data for s in gw.sessions)  # a refused request holds no line


async def test_354_does_not_offer_delayed_data_the_account_lacks(ib: IB, gw: FakeGateway, errors: ErrorLog) -> None:
    gw.market.entitle("SPY", live=False, delayed=False)
    await _subscribe(ib, Stock("SPY", "SMART", "USD"))
    await settle(ib, lambda: bool(errors))
    ((_, code, text),) = errors
    assert code == 354 and "Delayed market data is available" not in text


async def test_delayed_type_serves_delayed_ticks_into_the_same_fields(ib: IB, gw: FakeGateway,
                                                                      errors: ErrorLog) -> None:
    gw.market.entitle("SPY", live=False)
    ib.reqMarketDataType(3)
    ticker, req_id = await _subscribe(ib, Stock("SPY", "SMART", "USD"))
    await settle(ib, lambda: ticker.last == 470.01)
    assert ticker.marketDataType == 3
    assert (ticker.bid, ticker.bidSize, ticker.ask, ticker.askSize) == (470.00, 300, 470.02, 200)
    assert errors == [(req_id, 10167, "Requested market data is not subscribed. Displaying delayed market data.")]
    assert {t.tickType for t in ticker.ticks} <= DELAYED_TYPES
    gw.market.set_stock("SPY", "470.05", "470.07", last="470.06", close="468.00")
    await settle(ib, lambda: ticker.bid == 470.05 and ticker.close == 468.00)
    assert {t.tickType for t in ticker.ticks} <= DELAYED_TYPES


async def test_delayed_option_brings_greeks_and_open_interest(ib: IB, gw: FakeGateway) -> None:
    gw.market.entitle("SPY", live=False, options=True)
    ib.reqMarketDataType(3)
    ticker, _ = await _subscribe(ib, CALL, "101")
    await settle(ib, lambda: ticker.modelGreeks is not None and not math.isnan(ticker.callOpenInterest))
    assert ticker.marketDataType == 3
    assert (ticker.bid, ticker.ask, ticker.modelGreeks.delta, ticker.callOpenInterest) == (1.50, 1.55, 0.52, 1234)
    assert {t.tickType for t in ticker.ticks} - {27} <= DELAYED_TYPES  # open interest has no delayed type
    stock, _ = await _subscribe(ib, Stock("SPY", "SMART", "USD"))  # the options rule leaves the stock live
    await settle(ib, lambda: stock.marketDataType == 1 and stock.last == 470.01)


async def test_delayed_type_without_delayed_data_is_10168(ib: IB, gw: FakeGateway, errors: ErrorLog) -> None:
    gw.market.entitle("SPY", live=False, delayed=False)
    ib.reqMarketDataType(3)
    ticker, req_id = await _subscribe(ib, Stock("SPY", "SMART", "USD"))
    await settle(ib, lambda: bool(errors))
    await _answered(ib)
    assert errors == [(req_id, 10168, "Requested market data is not subscribed. Delayed market data is not enabled.")]
    assert math.isnan(ticker.last) and ticker.marketDataType == 0


async def test_delayed_type_streams_live_for_an_entitled_instrument(ib: IB, errors: ErrorLog) -> None:
    ib.reqMarketDataType(3)
    ticker, _ = await _subscribe(ib, CALL)
    await settle(ib, lambda: ticker.marketDataType == 1 and ticker.ask == 1.55)
    assert {t.tickType for t in ticker.ticks} <= {1, 2}
    assert not errors


async def test_an_instruments_own_entitlement_wins_over_its_symbols(ib: IB, gw: FakeGateway, errors: ErrorLog) -> None:
    gw.market.entitle("SPY", live=False, options=True)
    gw.market.entitle(gw.market.option("SPY", EXPIRY, Decimal(470), "C"), live=True)
    ticker, _ = await _subscribe(ib, CALL)
    _put, put_req = await _subscribe(ib, Option("SPY", "20240119", 470, "P", "SMART"))
    await settle(ib, lambda: ticker.ask == 1.55 and bool(errors))
    assert [(r, c) for r, c, _ in errors] == [(put_req, 354)]


async def test_delayed_snapshot(ib: IB, gw: FakeGateway) -> None:
    gw.market.entitle("SPY", live=False)
    ib.reqMarketDataType(3)
    (spy,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    (ticker,) = await asyncio.wait_for(ib.reqTickersAsync(spy), 2)
    assert (ticker.bid, ticker.ask, ticker.marketDataType) == (470.00, 470.02, 3)


async def test_refused_snapshot_ends_the_request(ib: IB, gw: FakeGateway) -> None:
    gw.market.entitle("SPY", live=False)
    (spy,) = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    (ticker,) = await asyncio.wait_for(ib.reqTickersAsync(spy), 2)
    assert math.isnan(ticker.bid)


@pytest.mark.parametrize(("requested", "entitlement", "data_type", "code"), [
    (None, Entitlement(), None, None),
    (1, Entitlement(), 1, None),
    (2, Entitlement(), 2, None),
    (3, Entitlement(), 1, None),
    (4, Entitlement(), 1, None),
    (None, Entitlement(live=False), None, 354),
    (1, Entitlement(live=False), None, 354),
    (2, Entitlement(live=False), None, 354),
    (3, Entitlement(live=False), 3, 10167),
    (4, Entitlement(live=False), 3, 10167),
    (3, Entitlement(live=False, delayed=False), None, 10168),
    (1, Entitlement(live=False, delayed=False), None, 354),
])
def test_what_tws_grants(requested: int | None, entitlement: Entitlement, data_type: int | None,
                         code: int | None) -> None:
    granted = grant(requested, entitlement, SPY)
    assert granted.data_type == data_type
    assert (granted.notice[0] if granted.notice else None) == code
    assert granted.refused == (data_type is None and code is not None)


@pytest.mark.parametrize("target", ["", "  ", 42, None])
def test_entitling_nothing_is_refused(target: object) -> None:
    with pytest.raises(ValueError, match="bad_entitlement"):
        Market().entitle(target, live=False)  # type: ignore[arg-type]


def test_options_flag_needs_a_symbol() -> None:
    market = Market()
    with pytest.raises(ValueError, match="bad_entitlement"):
        market.entitle(market.underlying("SPY"), live=False, options=True)
