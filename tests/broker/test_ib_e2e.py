"""End to end over a real socket: the daemon trading through IBBroker against the fake gateway.

Each test runs on the live shell over the deterministic core (`daemon.live.LiveShell`, what
`tradingd run` uses).

A full 0dte and a full 7dte trade (signal -> chain -> strike -> sliced entry -> fills -> partial exits
-> close; the store and the gateway agree), and the socket dropped in the middle of a sliced entry.
The clock is live time moved to a Wednesday morning, the gateway's clock the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from broker.ib import ConnectionState, IBBroker
from broker.quotes import QuoteBook
from market.types import OptionContract
from config.loader import load_settings
from market.clock import EXCHANGE_TZ
from daemon.live import LiveShell
from daemon.reconcile import reconcile
from daemon.store import Store
from tests.broker.test_ib_support import FAST_IB, ShiftedClock
from tests.fakegw import FakeGateway

WEDNESDAY_10AM = datetime(2024, 3, 6, 10, 0, tzinfo=EXCHANGE_TZ)
SPY_QQQ_IWM = {"SPY": "470.00", "QQQ": "400.00", "IWM": "200.00"}
FAST_EXECUTION = {"execution.child_interval_s": "0.1", "execution.reprice_s": "0.2"}
pytestmark = pytest.mark.slow


@dataclass
class Rig:
    gw: FakeGateway
    engine: Any  # LiveShell
    store: Store
    broker: IBBroker
    clock: ShiftedClock
    profile: str

    def signal(self, sid: str, underlying: str, confidence: float = 0.75) -> dict[str, Any]:
        return {"id": sid, "profile": self.profile, "underlying": underlying, "direction": "bullish",
                "strategy": "directional", "confidence": confidence, "created_at": self.clock.now().isoformat()}

    def quote(self, underlying: str, expiry: date, strike: int, bid: str, spread: str = "0.10",
              size: int = 50) -> None:
        self.gw.market.set_option(underlying, expiry, strike, "C", bid, str(Decimal(bid) + Decimal(spread)),
                                  bid_size=size, ask_size=size, open_interest=1200, delta="0.5", gamma="0.04",
                                  iv="0.25")

    async def until(self, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError(f"not reached within {timeout} s")

    async def position_qty(self) -> list[tuple[int, str]]:
        return [(p.open_qty, p.status) for p in await self.store.list_positions()]

    async def open_trade(self, sid: str, underlying: str, expiry: date, strikes: list[int], bid: str,
                         listed: tuple[date, ...] = ()) -> Any:
        """Calls listed around the money; the engine started; a bullish signal accepted."""
        self.gw.market.add_chain(underlying, sorted({expiry, *listed}), strikes)
        for k in strikes:
            self.quote(underlying, expiry, k, bid)
        await self.engine.start()
        # The candidates are not streamed yet: the engine subscribes them and prices on what arrives.
        outcome = await self.engine.submit_signal(self.signal(sid, underlying), "test")
        assert outcome.accepted, outcome
        return outcome

    async def open_0dte(self, sid: str) -> Any:
        return await self.open_trade(sid, "SPY", WEDNESDAY_10AM.date(), list(range(465, 476)), "2.95")

    async def agree(self) -> None:
        """The store and the gateway saw the same executions, and hold the same positions."""
        await self.engine.settle_fills()
        stored = {f.exec_id: (f.order_id, f.side, f.quantity, f.price) for f in await self.store.list_fills(limit=1000)}
        at_gw = {e.exec_id: (e.order_id, e.action, int(e.qty), e.price) for e in self.gw.executions}
        assert stored == at_gw
        held = {p.contract_key: p.open_qty for p in await self.store.load_open_positions() if p.open_qty}
        gw_held = {_key(p.contract): int(p.qty) for p in self.gw.positions.values() if p.qty}
        assert held == gw_held
        assert len(set(self.gw.orders)) == len(self.gw.orders)  # never an id twice


def _key(c: Any) -> str:
    return OptionContract(c.symbol, datetime.strptime(c.expiry, "%Y%m%d").date(), c.strike, c.right).key


@contextlib.asynccontextmanager
async def rig(tmp_path, profile: str, underlyings: dict[str, str], **overrides: Any) -> AsyncIterator[Rig]:
    clock = ShiftedClock(WEDNESDAY_10AM)
    gw = FakeGateway(clock=clock.now)
    await gw.start()
    for symbol, price in underlyings.items():
        gw.market.set_stock(symbol, price, str(Decimal(price) + Decimal("0.02")))
    gw.market.set_index("VIX", "18.5")
    gw.account_values(net_liquidation="200000", buying_power="800000", cash="200000")
    settings = load_settings(profile, env={}, overrides={
        **FAST_IB, **FAST_EXECUTION, "broker.ib.port": gw.port, "broker.ib.client_id": 31, **overrides})
    broker = IBBroker(settings, clock)
    store = Store(profile, f"sqlite:///{tmp_path / 'e2e.db'}")
    engine = LiveShell(settings, clock, store, broker, QuoteBook())
    r = Rig(gw, engine, store, broker, clock, profile)
    try:
        yield r
    finally:
        await engine.stop()
        await store.close()
        await gw.stop()


async def test_full_0dte_trade(tmp_path):
    today = WEDNESDAY_10AM.date()
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM) as r:
        outcome = await r.open_0dte("e2e-0dte")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        entries = [o for o in r.gw.orders.values() if o.action == "BUY"]
        assert len(entries) > 1 and all(o.qty <= 10 for o in entries)  # sliced into children
        assert {o.order_ref.rsplit(":", 1)[0] for o in entries} == {"tradingd:0dte:e2e-0dte"}

        r.quote("SPY", today, 470, "3.22")  # +5 % tier
        await r.until(lambda: _sold(r.gw) > 0)
        first = await r.until(async_where(r.position_qty, lambda q: q[0][0] < contracts and q))
        assert first[0][1] == "open"
        r.quote("SPY", today, 470, "3.37")  # +10 %
        await r.until(async_where(r.position_qty, lambda q: q[0][0] < first[0][0]))
        r.quote("SPY", today, 470, "3.52")  # +15 %: the rest
        await r.until(async_eq(r.position_qty, [(0, "closed")]))
        await r.agree()
        [position] = await r.store.list_positions()
        assert position.realized_pnl > 0


async def test_full_7dte_trade(tmp_path):
    expiry = date(2024, 3, 13)  # 7 calendar days out
    strikes = list(range(170, 181))
    mag7 = {"AAPL": "175.00", "MSFT": "400.00", "GOOGL": "140.00", "AMZN": "175.00", "NVDA": "850.00",
            "META": "500.00", "TSLA": "180.00"}
    async with rig(tmp_path, "7dte", mag7) as r:
        outcome = await r.open_trade("e2e-7dte", "AAPL", expiry, strikes, "9.95",
                                     listed=(date(2024, 3, 8), date(2024, 3, 22)))
        assert outcome.decision["selection"]["contract"] == f"AAPL {expiry:%Y%m%d} C 175"
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        r.quote("AAPL", expiry, 175, "12.10")  # +20 %: a quarter
        await r.until(async_where(r.position_qty, lambda q: q[0][0] < contracts))
        r.quote("AAPL", expiry, 175, "15.20")  # +50 %: two more quarters at once
        await r.until(async_where(r.position_qty, lambda q: 0 < q[0][0] <= contracts // 4 + 1))
        r.quote("AAPL", expiry, 175, "17.00")  # the runner's take-profit
        await r.until(async_eq(r.position_qty, [(0, "closed")]))
        await r.agree()


async def test_socket_dropped_mid_slice_sends_nothing_twice_and_loses_nothing(tmp_path):
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **{"execution.child_interval_s": "0.4"}) as r:
        outcome = await r.open_0dte("e2e-drop")
        await r.until(lambda: len(r.gw.executions) >= 1)
        await r.gw.drop_clients()  # mid-slice: more children were still to come
        await r.until(lambda: r.broker.state is ConnectionState.DISCONNECTED, timeout=5)
        await r.until(lambda: r.broker.state is ConnectionState.READY, timeout=10)
        await r.until(lambda: not r.engine.busy, timeout=90)  # the parent finished or gave up
        await r.agree()
        bought = sum(int(e.qty) for e in r.gw.executions if e.action == "BUY")
        assert 0 < bought <= outcome.decision["contracts"]
        assert await r.position_qty() == [(bought, "open")]
        # Whether the executor went on after the reconnect or gave the parent up, every order at the
        # gateway had its intent first, and the intents that never reached it are exactly what a
        # restart would report as never sent.
        intents = {i.order_id: i for i in (await r.store.load_pending_intents())}
        assert set(r.gw.orders) <= {*intents, *(f.order_id for f in await r.store.list_fills(limit=1000))}
        report = await reconcile(r.broker, r.store, profile="0dte", prefix="tradingd", now=r.clock.now())
        assert set(report.never_sent) == {i for i in intents if i not in r.gw.orders}
        assert report.fills_applied == () and not report.unknown_positions and not report.mismatches


def _sold(gw: FakeGateway) -> int:
    return sum(int(e.qty) for e in gw.executions if e.action == "SELL")


def async_eq(fn: Callable[[], Any], expected: Any) -> Callable[[], Any]:
    async def check() -> bool:
        return await fn() == expected
    return check


def async_where(fn: Callable[[], Any], test: Callable[[Any], Any]) -> Callable[[], Any]:
    async def check() -> Any:
        value = await fn()
        return value if value and test(value) else None
    return check


def _stops(gw: FakeGateway) -> list[Any]:
    return [o for o in gw.orders.values() if o.order_type == "STP" and not o.done]


def _never_oversold(gw: FakeGateway) -> Callable[[], None]:
    """Sample the gateway while the test runs: the working stop and exit orders never sell more than is held."""
    worst: list[tuple[int, int]] = []

    async def watch() -> None:
        while True:
            held = sum(int(p.qty) for p in gw.positions.values())
            selling = sum(int(o.remaining) for o in gw.orders.values() if o.action == "SELL" and not o.done)
            if selling > held:
                worst.append((selling, held))
            await asyncio.sleep(0.005)

    task = asyncio.ensure_future(watch())

    def check() -> None:
        task.cancel()
        assert not worst, f"stop + exits offered more than was held: {worst[:5]}"

    return check


async def test_protective_stop_rests_at_the_broker_and_follows_partial_exits(tmp_path):
    today = WEDNESDAY_10AM.date()
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM) as r:
        outcome = await r.open_0dte("e2e-stop")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=3)
        [stop] = _stops(r.gw)
        [position] = await r.store.list_positions()
        assert stop.order_ref == f"tradingd:0dte:stop-{position.id}:1" and stop.action == "SELL"
        assert stop.aux_price == (position.entry_price * Decimal("0.75")).quantize(Decimal("0.01"), "ROUND_FLOOR")
        intent = await r.store.find_intent(stop.order_id)
        assert intent is not None and intent.position_id == position.id  # written before it was sent
        check = _never_oversold(r.gw)

        r.quote("SPY", today, 470, "3.22")  # tier 1: a partial exit; the stop shrinks to what is left
        first = await r.until(async_where(r.position_qty, lambda q: q[0][0] < contracts
                                          and [int(o.qty) for o in _stops(r.gw)] == [q[0][0]] and q))
        assert stop.order_id in {o.order_id for o in _stops(r.gw)}  # changed in place, same order id
        r.quote("SPY", today, 470, "3.37")  # tier 2
        await r.until(async_where(r.position_qty, lambda q: q[0][0] < first[0][0]
                                  and [int(o.qty) for o in _stops(r.gw)] == [q[0][0]]))
        r.quote("SPY", today, 470, "3.52")  # tier 3: the rest; the stop is cancelled
        await r.until(async_eq(r.position_qty, [(0, "closed")]))
        await r.until(lambda: not _stops(r.gw), timeout=3)
        check()
        assert r.gw.orders[stop.order_id].status == "Cancelled" and r.gw.orders[stop.order_id].filled == 0
        await r.agree()


async def test_a_stop_filled_at_the_broker_closes_the_position_once_and_no_exit_follows(tmp_path):
    today = WEDNESDAY_10AM.date()
    # The daemon's own loss levels are moved below the quote that trips the broker's stop, so the stop
    # alone closes the position: the daemon must take its fills as the close, and sell nothing itself.
    levels = {"position_levels.close_half_pct": "-0.24", "position_levels.hard_stop_pct": "-0.25"}
    async with rig(tmp_path, "0dte", SPY_QQQ_IWM, **levels) as r:
        outcome = await r.open_0dte("e2e-stopped")
        contracts = outcome.decision["contracts"]
        await r.until(async_eq(r.position_qty, [(contracts, "open")]))
        await r.until(lambda: sum(int(o.qty) for o in _stops(r.gw)) == contracts, timeout=3)
        [stop] = _stops(r.gw)
        # bid at the stop (it fires), mid above the daemon's own stop and close-half levels
        r.quote("SPY", today, 470, str(stop.aux_price), spread="0.12", size=contracts)
        await r.until(async_eq(r.position_qty, [(0, "closed")]))
        await r.agree()
        sells = [e for e in r.gw.executions if e.action == "SELL"]
        assert sells and {e.order_id for e in sells} == {stop.order_id}
        assert not [o for o in r.gw.orders.values() if o.action == "SELL" and o.order_type != "STP"]
        events = await r.store.list_exit_events()
        assert [(e.rule, e.kind) for e in events if e.kind != "alert"] == [("protective_stop", "close")]
        assert not r.engine.book.positions
        fills = await r.store.list_fills(limit=1000)
        assert sum(f.quantity for f in fills if f.side == "SELL") == contracts
