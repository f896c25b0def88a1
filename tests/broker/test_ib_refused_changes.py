"""A refused order change is the broker's truth (SPEC §6.1, issue 9), end to end over the fake gateway.

IB refuses to shrink the protective stop before a partial exit: the daemon must not believe the new
quantity. The stop is replaced (cancelled, confirmed, placed again for what is left) before the exit
may sell, so the stop and the exit never offer more than is held.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.broker.test_ib_e2e import SPY_QQQ_IWM, WEDNESDAY_10AM, _never_oversold, _stops, async_eq, async_where, rig

pytestmark = pytest.mark.slow


async def test_a_refused_stop_shrink_then_a_partial_exit_never_offers_more_than_is_held(tmp_path):
    today = WEDNESDAY_10AM.date()
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM) as r:
        outcome = await r.open_0dte("refused-shrink")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=5)
        [first_stop] = _stops(r.gw)
        check = _never_oversold(r.gw)
        r.gw.reject_next_order("Order modification not allowed")  # the stop's shrink before the exit
        r.quote("SPY", today, 470, "3.22")  # tier 1: a partial exit
        left = await r.until(async_where(r.position_qty, lambda q: 0 < q[0][0] < contracts
                                         and [int(o.qty) for o in _stops(r.gw)] == [q[0][0]] and q), timeout=20)
        check()
        assert any(e[2] == 201 and e[1] == first_stop.order_id for e in r.gw.errors_sent)  # it was refused
        [stop] = _stops(r.gw)
        assert stop.order_id != first_stop.order_id  # replaced, not believed changed
        assert r.gw.orders[first_stop.order_id].status == "Cancelled"
        assert int(stop.qty) == left[0][0] and stop.aux_price == first_stop.aux_price
        await r.agree()


async def test_a_stop_the_session_cannot_control_holds_the_exit_back(tmp_path):
    """The stop rests under another client id (after a 326 move): IB refuses its change and its cancel
    (103, 10147). The exit must wait rather than sell what the stop may still sell."""
    today = WEDNESDAY_10AM.date()
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM) as r:
        outcome = await r.open_0dte("foreign-stop")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=5)
        [stop] = _stops(r.gw)
        stop.client_id = 99  # IB now ties it to a client this session is not
        check = _never_oversold(r.gw)
        r.quote("SPY", today, 470, "3.22")  # tier 1 wants a partial exit
        await r.until(lambda: any(e[2] == 10147 and e[1] == stop.order_id for e in r.gw.errors_sent), timeout=20)
        await asyncio.sleep(3.0)  # the exit's children would have gone long since (child interval 0.1 s)
        check()
        assert not [e for e in r.gw.executions if e.action == "SELL"]
        assert int(r.gw.orders[stop.order_id].qty) == contracts and not r.gw.orders[stop.order_id].done


async def test_an_unanswered_stop_shrink_is_read_back_from_the_broker_and_the_exit_goes(tmp_path):
    today = WEDNESDAY_10AM.date()
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **{"broker.ib.change_confirm_timeout_s": "0.5"}) as r:
        outcome = await r.open_0dte("silent-shrink")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=5)
        [stop] = _stops(r.gw)
        check = _never_oversold(r.gw)
        r.gw.silent_modifications = True  # IB takes the shrink but its reply is lost
        r.quote("SPY", today, 470, "3.22")  # tier 1: a partial exit
        await r.until(async_where(r.position_qty, lambda q: 0 < q[0][0] < contracts), timeout=20)
        check()
        assert r.gw.orders[stop.order_id].revisions >= 1 and not r.gw.orders[stop.order_id].done
