"""Contract details (STK, IND, OPT, by conId) and option chain parameters."""

from __future__ import annotations

import asyncio

from ib_async import IB, Contract, Index, Option, Stock

from tests.fakegw import FakeGateway
from tests.fakegw.contracts import derive_con_id
from tests.fakegw_tests.conftest import EXPIRY


async def test_qualify_stock_index_and_option(ib: IB, gw: FakeGateway) -> None:
    spy, vix, call = await ib.qualifyContractsAsync(
        Stock("SPY", "SMART", "USD"), Index("VIX", "CBOE"), Option("SPY", "20240119", 470, "C", "SMART"))
    assert (spy.secType, spy.primaryExchange, spy.conId) == ("STK", "ARCA", gw.market.underlying("SPY").con_id)
    assert (vix.secType, vix.exchange) == ("IND", "CBOE")
    assert call.localSymbol == "SPY   240119C00470000"
    assert (call.multiplier, call.tradingClass, call.strike) == ("100", "SPY", 470.0)
    assert call.conId == gw.market.option("SPY", EXPIRY, 470, "C").con_id


async def test_option_details_by_con_id_name_the_underlying(ib: IB, gw: FakeGateway) -> None:
    put = gw.market.option("SPY", EXPIRY, 465, "P")
    (details,) = await ib.reqContractDetailsAsync(Contract(conId=put.con_id))
    assert details.contract.right == "P" and details.contract.strike == 465.0
    assert details.underConId == gw.market.underlying("SPY").con_id
    assert details.underSymbol == "SPY" and details.minTick == 0.01
    assert details.realExpirationDate == "20240119"
    sessions = details.liquidSessions()
    assert sessions and sessions[0].start.hour == 9 and sessions[0].start.minute == 30


async def test_partial_option_query_lists_every_match(ib: IB) -> None:
    details = await ib.reqContractDetailsAsync(Option("SPY", "20240119", exchange="SMART"))
    assert len(details) == 6
    assert sorted({d.contract.strike for d in details}) == [465.0, 470.0, 475.0]


async def test_unknown_contract_is_error_200(ib: IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    assert await ib.qualifyContractsAsync(Stock("NOPE", "SMART", "USD")) == [None]
    assert errors == [200]


async def test_stock_query_does_not_match_an_index(ib: IB) -> None:
    assert await ib.reqContractDetailsAsync(Stock("VIX", "SMART", "USD")) == []


async def test_sec_def_opt_params_per_exchange(ib: IB, gw: FakeGateway) -> None:
    spy = gw.market.underlying("SPY")
    chains = await asyncio.wait_for(ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.con_id), 2)
    assert [c.exchange for c in chains] == ["SMART", "CBOE"]
    assert chains[0].expirations == ["20240119"] and chains[0].strikes == [465.0, 470.0, 475.0]
    assert (chains[0].tradingClass, chains[0].multiplier) == ("SPY", "100")
    assert int(chains[0].underlyingConId) == spy.con_id


async def test_sec_def_opt_params_with_wrong_con_id_is_empty(ib: IB) -> None:
    assert await asyncio.wait_for(ib.reqSecDefOptParamsAsync("SPY", "", "STK", 1), 2) == []


def test_con_ids_are_stable_across_gateways() -> None:
    first, second = FakeGateway(), FakeGateway()
    assert first.market.option("SPY", EXPIRY, 470, "C") == second.market.option("SPY", EXPIRY, 470, "C")
    assert first.market.underlying("SPY").con_id == derive_con_id("STK:SPY")
