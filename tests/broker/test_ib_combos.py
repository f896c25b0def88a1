"""IB combo (BAG) orders over the real ib_async client and the fake gateway: a straddle and an iron condor
placed, partly filled in whole units, filled and closed; fills per leg; refusals leave no leg; a socket
cut between a combo's leg executions is made whole by the next reconciliation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker.base import BrokerError
from broker.ib import ConnectionState
from market.types import ComboLeg, OptionContract, OrderRequest, OrderStatus
from tests.broker.test_ib_support import EXPIRY, connected, gateway

D = Decimal
CALL_470 = OptionContract("SPY", EXPIRY, D(470), "C")
PUT_470 = OptionContract("SPY", EXPIRY, D(470), "P")
STRADDLE = (ComboLeg(CALL_470, "BUY"), ComboLeg(PUT_470, "BUY"))
# An iron condor bought as IB writes it: short 468 put / 472 call, long 466 put / 474 call wings.
CONDOR = (ComboLeg(OptionContract("SPY", EXPIRY, D(468), "P"), "SELL"),
          ComboLeg(OptionContract("SPY", EXPIRY, D(466), "P"), "BUY"),
          ComboLeg(OptionContract("SPY", EXPIRY, D(472), "C"), "SELL"),
          ComboLeg(OptionContract("SPY", EXPIRY, D(474), "C"), "BUY"))
QUOTES = {  # (strike, right): (bid, ask)
    (466, "P"): ("0.90", "1.00"), (468, "P"): ("1.60", "1.70"), (470, "P"): ("2.40", "2.50"),
    (470, "C"): ("2.50", "2.60"), (472, "C"): ("1.70", "1.80"), (474, "C"): ("1.00", "1.10"),
}


def combo(order_id: int, legs: tuple[ComboLeg, ...], *, qty: int = 3, side: str = "BUY", limit: str | None = "5.10",
          order_type: str = "LMT", ref: str | None = None) -> OrderRequest:
    return OrderRequest(order_id=order_id, order_ref=ref or f"tradingd:7dte:combo-{order_id}:1",
                        contract=legs[0].contract, side=side, quantity=qty,  # type: ignore[arg-type]
                        order_type=order_type,  # type: ignore[arg-type]
                        limit_price=D(limit) if limit is not None else None, legs=legs)


def quote_legs(gw, size: int = 20, sizes: dict | None = None) -> None:
    gw.market.add_chain("SPY", [EXPIRY], (466, 468, 470, 472, 474))
    for (strike, right), (bid, ask) in QUOTES.items():
        n = (sizes or {}).get((strike, right), size)
        gw.market.set_option("SPY", EXPIRY, strike, right, bid, ask, bid_size=n, ask_size=n)


def held(gw) -> dict[str, int]:
    return {f"{p.contract.strike.normalize():f}{p.contract.right}": int(p.qty) for p in gw.positions.values()
            if p.contract.is_option and p.qty}


async def test_straddle_lifecycle_place_partial_fill_close():
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        gw.auto_fill = False
        await broker.place(combo(40, STRADDLE, qty=3, limit="5.10"))
        await rec.wait_for(lambda: rec.updates_for(40))
        sent = gw.orders[40]
        assert sent.contract.sec_type == "BAG" and sent.contract.symbol == "SPY"
        assert [(leg.contract.strike, leg.contract.right, leg.action, leg.ratio) for leg in sent.contract.legs] == [
            (D(470), "C", "BUY", 1), (D(470), "P", "BUY", 1)]
        assert (sent.qty, sent.lmt_price, sent.order_ref) == (3, D("5.1"), "tradingd:7dte:combo-40:1")

        await gw.fill_combo(40, 1)
        await rec.wait_for(lambda: len(rec.fills) == 2)
        part = await rec.wait_for(lambda: rec.updates_for(40)[-1].filled == 1 and rec.updates_for(40)[-1])
        assert (part.status, part.remaining) == (OrderStatus.PARTIALLY_FILLED, 2)  # combo units, not contracts
        assert {(f.contract.key, f.side, f.quantity, f.price, f.order_ref) for f in rec.fills} == {
            (CALL_470.key, "BUY", 1, D("2.6"), "tradingd:7dte:combo-40:1"),
            (PUT_470.key, "BUY", 1, D("2.5"), "tradingd:7dte:combo-40:1")}
        assert all(f.order_id == 40 and f.commission == D("1.00") for f in rec.fills)
        assert held(gw) == {"470C": 1, "470P": 1}

        await gw.fill_combo(40, 2)
        done = await rec.wait_for(lambda: rec.updates_for(40)[-1].status is OrderStatus.FILLED and rec.updates_for(40)[-1])
        assert (done.filled, done.remaining, done.avg_fill_price) == (3, 0, D("5.1"))
        await rec.wait_for(lambda: len(rec.fills) == 4)
        assert sorted((p.contract.key, p.quantity) for p in await broker.positions()) == [
            (CALL_470.key, 3), (PUT_470.key, 3)]

        gw.auto_fill = True  # close: SELL the combo, every leg reverses
        await broker.place(combo(41, STRADDLE, qty=3, side="SELL", limit="4.90", ref="tradingd:7dte:exit-40:1"))
        await rec.wait_for(lambda: rec.updates_for(41) and rec.updates_for(41)[-1].status is OrderStatus.FILLED)
        await rec.wait_for(lambda: len(rec.fills) == 6)
        closing = [f for f in rec.fills if f.order_id == 41]
        assert {(f.contract.key, f.side, f.quantity, f.price) for f in closing} == {
            (CALL_470.key, "SELL", 3, D("2.5")), (PUT_470.key, "SELL", 3, D("2.4"))}
        assert held(gw) == {} and await broker.positions() == []


async def test_condor_for_a_credit_fills_in_whole_units_leg_by_leg_consistently():
    # One wing shows 2 contracts: only 2 units can fill, every leg of them at once, the third waits.
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw, sizes={(474, "C"): 2})
        # Bought as IB writes it the condor's net is negative: -1.60 + 1.00 - 1.70 + 1.10 = -1.20 at the touch.
        await broker.place(combo(50, CONDOR, qty=3, limit="-1.20"))
        part = await rec.wait_for(lambda: rec.updates_for(50) and rec.updates_for(50)[-1].filled == 2
                                  and rec.updates_for(50)[-1])
        assert (part.status, part.remaining) == (OrderStatus.PARTIALLY_FILLED, 1)
        assert gw.orders[50].lmt_price == D("-1.2")
        await rec.wait_for(lambda: len(rec.fills) == 4)
        assert held(gw) == {"468P": -2, "466P": 2, "472C": -2, "474C": 2}
        assert {f.contract.key: (f.side, f.quantity) for f in rec.fills} == {
            CONDOR[0].contract.key: ("SELL", 2), CONDOR[1].contract.key: ("BUY", 2),
            CONDOR[2].contract.key: ("SELL", 2), CONDOR[3].contract.key: ("BUY", 2)}
        # the wing is offered again: the last unit fills, all four legs together
        gw.market.set_option("SPY", EXPIRY, 474, "C", "1.00", "1.10", bid_size=5, ask_size=5)
        await rec.wait_for(lambda: rec.updates_for(50)[-1].status is OrderStatus.FILLED)
        await rec.wait_for(lambda: len(rec.fills) == 8)
        assert held(gw) == {"468P": -3, "466P": 3, "472C": -3, "474C": 3}
        # a limit that is not reached fills nothing: no leg alone
        await broker.place(combo(51, CONDOR, qty=1, limit="-1.50"))
        await rec.wait_for(lambda: rec.updates_for(51))
        assert gw.orders[51].filled == 0 and len(rec.fills) == 8


async def test_a_refused_combo_leaves_no_leg_open():
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        gw.reject_next_order("Insufficient buying power")
        await broker.place(combo(60, CONDOR, qty=2, limit="-1.00"))
        rejected = await rec.wait_for(lambda: rec.updates_for(60) and rec.updates_for(60)[-1])
        assert rejected.status is OrderStatus.REJECTED and rejected.reason.startswith("201")
        # off the tick: refused by the gateway, nothing fills either
        await broker.place(combo(61, STRADDLE, qty=1, limit="5.105"))
        off_tick = await rec.wait_for(lambda: rec.updates_for(61) and rec.updates_for(61)[-1])
        assert off_tick.status is OrderStatus.REJECTED and off_tick.reason.startswith("110")
        # refused before the wire: a STP on a combo, legs on two underlyings
        with pytest.raises(BrokerError) as err:
            await broker.place(combo(62, STRADDLE, order_type="STP", limit=None))
        assert err.value.code == "combo_stop_unsupported"
        qqq = ComboLeg(OptionContract("QQQ", EXPIRY, D(400), "C"), "BUY")
        with pytest.raises(BrokerError) as err:
            await broker.place(combo(62, (STRADDLE[0], qqq)))
        assert err.value.code == "bad_order"
        await broker.place(combo(63, STRADDLE, qty=1, limit="5.10"))  # the next one goes through
        await rec.wait_for(lambda: rec.updates_for(63) and rec.updates_for(63)[-1].status is OrderStatus.FILLED)
        assert sorted(gw.orders) == [60, 61, 63] and gw.orders[60].filled == 0 and gw.orders[61].filled == 0
        assert {e.order_id for e in gw.executions} == {63}
        assert held(gw) == {"470C": 1, "470P": 1}


async def test_a_working_combo_is_listed_with_its_legs_modified_and_cancelled():
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        gw.auto_fill = False
        await broker.place(combo(70, CONDOR, qty=2, limit="-1.40"))
        await rec.wait_for(lambda: rec.updates_for(70))
        await broker.modify(combo(70, CONDOR, qty=2, limit="-1.30"), confirm=True)
        assert gw.orders[70].lmt_price == D("-1.3") and gw.orders[70].revisions == 1
        with pytest.raises(BrokerError) as err:
            await broker.modify(combo(70, STRADDLE, qty=2, limit="5.00"))
        assert err.value.code == "bad_order"
        [listed] = await broker.open_orders()
        assert listed.request.legs == CONDOR and listed.request.quantity == 2
        assert (listed.request.limit_price, listed.request.order_ref) == (D("-1.3"), "tradingd:7dte:combo-70:1")
        assert [leg.contract.con_id for leg in listed.request.legs] == [leg.contract.con_id for leg in gw.orders[70].contract.legs]
        await broker.cancel(70, confirm=True)
        assert gw.orders[70].status == "Cancelled" and gw.executions == []


async def test_executions_list_the_legs_not_the_combo_summary():
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        await broker.place(combo(80, STRADDLE, qty=2, limit="5.10"))
        await rec.wait_for(lambda: len(rec.fills) == 2)
        assert {e.contract.sec_type for e in gw.executions} == {"OPT", "BAG"}  # TWS reports both
        listed = await broker.executions()
        assert sorted((f.contract.key, f.quantity) for f in listed) == [(CALL_470.key, 2), (PUT_470.key, 2)]
        assert {f.exec_id for f in listed} == {f.exec_id for f in rec.fills}


async def test_a_socket_cut_between_leg_executions_is_made_whole_on_reconnect():
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        gw.drop_mid_combo = True  # the first leg's execDetails arrives, then the socket goes
        await broker.place(combo(90, STRADDLE, qty=2, limit="5.10"))
        await rec.wait_for(lambda: broker.state is ConnectionState.DISCONNECTED or len(rec.fills) == 2)
        await rec.wait_for(lambda: broker.state is ConnectionState.READY and broker.reconnects >= 1, timeout=10)
        live = {f.exec_id for f in rec.fills}
        legs = {e.exec_id: e for e in gw.executions if e.contract.sec_type == "OPT"}
        assert len(legs) == 2 and len(live) < 2  # one leg's fill was lost with the socket
        listed = await broker.executions()
        assert {f.exec_id for f in listed} == set(legs)  # the reconciliation's question finds both legs
        assert sorted((p.contract.key, p.quantity) for p in await broker.positions()) == [
            (CALL_470.key, 2), (PUT_470.key, 2)]


async def test_combo_fills_survive_the_real_gateways_orderings():
    # the BAG's Filled status before the legs' executions, sent twice; commission reports 0.2 s late
    async with gateway() as gw, connected(gw) as (broker, rec):
        quote_legs(gw)
        gw.status_before_exec = gw.duplicate_filled_status = True
        gw.commission_delay_s = 0.2
        await broker.place(combo(95, CONDOR, qty=2, limit="-1.20"))
        await rec.wait_for(lambda: len(rec.fills) == 4)
        assert [u.status for u in rec.updates_for(95)].count(OrderStatus.FILLED) == 1
        assert all(f.commission == D("1.30") for f in rec.fills)  # each leg: 2 contracts x 0.65
        assert sorted((f.contract.key, f.side, f.quantity) for f in rec.fills) == sorted(
            (leg.contract.key, leg.side, 2) for leg in CONDOR)
