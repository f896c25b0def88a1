import asyncio
import itertools
from datetime import timedelta
from decimal import Decimal as D

import pytest

from broker.execution import ExecutionError, ExecutionStatus, Executor, ParentOrder, child_limit
from broker.listings import round_to_tick
from broker.order_ref import parse_order_ref
from broker.quotes import QuoteBook
from broker.sim import SimBroker
from market.types import OrderRequest, OrderStatus
from market.clock import VirtualClock
from tests.broker.helpers import T0, Recorder, advance, contract, drive, quote, settings

C = contract("270", "C")
KEY = C.key


class Market:
    """A feed for one option: every second a fresh quote from the latest (from_s, bid, ask, size) row."""

    def __init__(self, book, clock, rows):
        self.book, self.clock, self.rows = book, clock, rows

    def current(self):
        elapsed = (self.clock.now() - T0).total_seconds()
        return [r for r in self.rows if r[0] <= elapsed][-1]

    def post(self):
        _, bid, ask, size = self.current()
        self.book.update(quote(KEY, bid, ask, at=self.clock.now(), size=size))

    async def run(self):
        while True:
            self.post()
            await self.clock.sleep(1)


class Harness:
    def __init__(self, profile="0dte", rows=((0, "2.95", "3.05", 50),), **overrides):
        self.clock = VirtualClock(T0)
        self.book = QuoteBook()
        self.settings = settings(profile, **overrides)
        self.sim = SimBroker(self.book, self.clock, self.settings)
        self.log = []  # ("intent" | "place" | "modify" | "cancel", order id, time)
        self.requests = []
        ids = itertools.count(100)
        self.executor = Executor.from_settings(self.sim, self.book, self.clock, self.settings,
                                               allocate_order_id=lambda: next(ids), before_send=self.before_send)
        self.sim.set_listener(Recorder(forward=self.executor))
        self.market = Market(self.book, self.clock, list(rows))
        for name in ("place", "modify", "cancel"):
            self._spy(name)

    def _spy(self, name):
        real = getattr(self.sim, name)

        async def spy(arg):
            self.log.append((name, arg if isinstance(arg, int) else arg.order_id, self.clock.now()))
            if not isinstance(arg, int):
                self.requests.append(arg)
            return await real(arg)

        setattr(self.sim, name, spy)

    async def before_send(self, request: OrderRequest) -> None:
        await asyncio.sleep(0)  # a real hook awaits the database: place must still come after it
        self.log.append(("intent", request.order_id, self.clock.now()))

    async def start(self):
        await self.sim.start()
        self.feed = asyncio.create_task(self.market.run())
        await self.clock.settle()

    async def run(self, parent, limit_s=600):
        task = asyncio.create_task(self.executor.execute(parent))
        return await drive(self.clock, task, limit_s=limit_s)

    async def close(self):
        self.feed.cancel()
        await self.sim.stop()

    def sent(self, kind):
        return [(oid, t) for k, oid, t in self.log if k == kind]


def parent(qty=40, side="BUY", kind="entry", source="sig-1"):
    return ParentOrder("0dte", source, C, side, qty, kind)


async def buy_position(h, qty):
    """Give the sim a long position to exit from (a marketable order straight to the broker)."""
    await h.sim.place(OrderRequest(1, "tradingd:0dte:setup:1", C, "BUY", qty, "LMT", D(10)))
    await advance(h.clock, 1, step_s=0.05)
    assert (await h.sim.positions())[0].quantity == qty


@pytest.mark.parametrize("shown, expected", [(50, [10, 10, 10, 10]), (7, [7, 7, 7, 7, 7, 5])])
async def test_a_12000_parent_at_3_is_sliced_into_capped_children_spaced_apart(shown, expected):
    h = Harness(rows=[(0, "2.95", "3.05", shown)])
    await h.start()
    result = await h.run(parent(40))  # 40 × 3.00 × 100 = 12,000 > slice_threshold 5,000
    assert [c.quantity for c in result.children] == expected
    assert all(c.quantity <= 10 and c.quantity <= shown for c in result.children)
    sends = [c.sent_at for c in result.children]
    assert all(b - a >= timedelta(seconds=3) for a, b in zip(sends, sends[1:]))
    assert result.status is ExecutionStatus.FILLED and not result.underfilled
    assert (result.requested, result.filled, result.avg_price) == (40, 40, D("3.05"))
    assert result.arrival_mid == D("3.00") and result.slippage_vs_mid == D("0.05")
    assert result.commission == D("26.00")
    assert (await h.sim.positions())[0].quantity == 40
    await h.close()


async def test_a_parent_below_the_threshold_goes_as_one_order():
    h = Harness(rows=[(0, "2.95", "3.05", 5)])
    await h.start()
    result = await h.run(parent(16))  # 4,800 of notional
    assert [c.quantity for c in result.children] == [16] and result.filled == 16
    await h.close()


async def test_repricing_walks_a_quarter_spread_per_interval_and_never_past_the_band():
    h = Harness(rows=[(0, "2.90", "3.10", 50)])  # mid 3.00, spread 0.20; band 3.09 is short of the ask
    await h.start()
    result = await h.run(parent(40))
    [child] = result.children
    steps = [(t - child.sent_at, price) for t, price in child.limits]
    assert steps == [(timedelta(0), D("3.00")), (timedelta(seconds=2), D("3.05")), (timedelta(seconds=4), D("3.09"))]
    assert max(p for _, p in child.limits) <= D("3.00") * D("1.03")
    assert len(h.sent("modify")) == 2  # nothing is resent once the band holds
    assert result.status is ExecutionStatus.TIMED_OUT and result.underfilled and result.filled == 0
    await h.close()


async def test_a_parent_that_cannot_fill_times_out_keeping_what_filled():
    # the first child fills 5 at the ask, then the market runs away beyond the slippage band
    h = Harness(rows=[(0, "2.95", "3.05", 5), (5, "3.30", "3.60", 5)])
    await h.start()
    result = await h.run(parent(40))
    assert result.status is ExecutionStatus.TIMED_OUT and result.reason == "parent_timeout"
    assert result.underfilled and (result.filled, result.avg_price) == (5, D("3.05"))
    last = result.children[-1]
    assert last.status is OrderStatus.CANCELLED and last.filled == 0
    assert h.sent("cancel") == [(last.order_id, T0 + timedelta(seconds=60))]
    assert h.clock.now() - T0 < timedelta(seconds=61)
    assert (await h.sim.positions())[0].quantity == 5 and await h.sim.open_orders() == []
    await h.close()


async def test_an_exit_crosses_the_spread_after_the_band_and_completes():
    # bid 2.80 is beyond the 3 % band (2.91): an entry would never sell there, an exit must
    h = Harness(rows=[(0, "2.80", "3.20", 50)], **{"execution.parent_timeout_s": 5})
    await h.start()
    await buy_position(h, 40)
    result = await h.run(parent(40, side="SELL", kind="exit", source="exit-9"))
    assert result.status is ExecutionStatus.FILLED and result.filled == 40 and not result.underfilled
    first = result.children[0]
    assert [p for _, p in first.limits] == [D("3.00"), D("2.91"), D("2.80")]  # mid, held at the band, cross
    assert result.avg_price == D("2.80") and result.slippage_vs_mid == D("0.20")
    assert h.clock.now() - T0 > timedelta(seconds=5)  # longer than an entry may take: exits never give up
    assert await h.sim.positions() == []
    await h.close()


async def test_an_exit_on_a_stale_quote_takes_a_snapshot_and_crosses_at_once():
    h = Harness(rows=[(0, "2.80", "3.20", 50)])
    await h.start()
    await buy_position(h, 10)
    h.feed.cancel()  # the feed dies: the last quote goes stale
    await advance(h.clock, 15, step_s=0.5)
    result = await h.run(parent(10, side="SELL", kind="exit", source="exit-1"))
    assert result.filled == 10 and [p for _, p in result.children[0].limits] == [D("2.80")]
    await h.sim.stop()


async def test_an_entry_never_trades_on_a_stale_quote():
    h = Harness(rows=[(0, "2.95", "3.05", 50)])
    await h.start()
    h.feed.cancel()
    await advance(h.clock, 15, step_s=0.5)
    result = await h.run(parent(10))
    assert result.status is ExecutionStatus.TIMED_OUT and result.reason == "no_usable_quote"
    assert result.children == () and result.filled == 0 and h.sent("place") == []
    await h.sim.stop()


async def test_every_order_carries_the_order_ref_and_intent_precedes_place():
    h = Harness(rows=[(0, "2.95", "3.05", 10)])
    await h.start()
    result = await h.run(parent(40, source="sig:with:colons"))
    refs = [parse_order_ref(r.order_ref) for r in h.requests]
    assert refs and all((r.profile, r.source_id) == ("0dte", "sig:with:colons") for r in refs)
    assert sorted({r.n for r in refs}) == [1, 2, 3, 4] and result.parent_ref == "tradingd:0dte:sig:with:colons"
    for kind in ("place", "modify"):
        for oid, _ in h.sent(kind):
            sent_at = next(i for i, (k, o, _) in enumerate(h.log) if k == kind and o == oid)
            assert any(k == "intent" and o == oid for k, o, _ in h.log[:sent_at])
    order = [k for k, _, _ in h.log if k in ("intent", "place")]
    assert order[:2] == ["intent", "place"]
    await h.close()


async def test_a_failing_intent_write_sends_nothing():
    h = Harness()

    async def broken(request):
        raise OSError("disk full")

    h.executor._before_send = broken
    await h.start()
    result = await h.run(parent(10))
    assert result.status is ExecutionStatus.REJECTED and result.reason.startswith("intent_not_recorded")
    assert h.sent("place") == [] and result.filled == 0
    await h.close()


async def test_a_broker_rejection_stops_the_parent_with_its_reason():
    h = Harness(rows=[(0, "299.95", "300.05", 50)])  # 40 × 300 × 100 is more than the sim's cash
    await h.start()
    result = await h.run(parent(40))
    assert result.status is ExecutionStatus.REJECTED and result.reason == "insufficient_funds"
    await h.close()


async def test_the_throttle_keeps_40_messages_per_second_of_virtual_time():
    h = Harness(rows=[(0, "2.90", "3.10", 50)])  # nothing fills: every parent keeps repricing
    await h.start()
    parents = [ParentOrder("0dte", f"sig-{i}", C, "BUY", 1) for i in range(90)]
    tasks = [asyncio.create_task(h.executor.execute(p)) for p in parents]
    await drive(h.clock, asyncio.gather(*tasks), limit_s=120)
    times = sorted(t for k, _, t in h.log if k in ("place", "modify", "cancel"))
    assert len(times) > 200
    assert all(b - a >= timedelta(seconds=1) for a, b in zip(times, times[40:]))
    await h.close()


async def test_cancelling_the_parent_pulls_the_working_child():
    h = Harness(rows=[(0, "2.90", "3.10", 50)])
    await h.start()
    task = asyncio.create_task(h.executor.execute(parent(10)))
    await advance(h.clock, 3, step_s=0.05)
    task.cancel()
    await advance(h.clock, 1, step_s=0.05)
    assert task.cancelled() and len(h.sent("cancel")) == 1
    assert await h.sim.open_orders() == []
    await h.close()


async def test_late_and_foreign_events_are_ignored():
    h = Harness()
    from market.types import OrderUpdate
    h.executor.on_order_update(OrderUpdate(999, "x", OrderStatus.FILLED, 1, 0, D(1), T0))  # not ours: no error
    assert h.executor.working_order_ids == []


@pytest.mark.parametrize("bad, code", [
    (dict(quantity=0), "bad_quantity"), (dict(side="HOLD"), "bad_side"), (dict(kind="maybe"), "bad_kind"),
    (dict(source_id=""), "bad_order_ref"), (dict(profile="a:b"), "bad_order_ref"),
])
async def test_bad_parents_are_refused_with_a_code(bad, code):
    h = Harness()
    fields = dict(profile="0dte", source_id="s", contract=C, side="BUY", quantity=1, kind="entry") | bad
    with pytest.raises(ExecutionError) as err:
        await h.executor.execute(ParentOrder(**fields))
    assert err.value.code == code


def _rounder(underlying):
    return lambda p, d: round_to_tick(underlying, p, d)


def test_child_limit_walk_band_and_far_touch():
    cfg = settings("0dte").execution
    r = _rounder("SPY")
    walk = [child_limit("BUY", D("2.90"), D("3.10"), k, cfg, r) for k in range(5)]
    assert walk == [(D("3.00"), False), (D("3.05"), False), (D("3.09"), True), (D("3.09"), True), (D("3.09"), True)]
    sell = [child_limit("SELL", D("2.95"), D("3.05"), k, cfg, r)[0] for k in range(4)]
    assert sell == [D("3.00"), D("2.98"), D("2.95"), D("2.95")]  # rounds up (passive), stops at the bid
    assert child_limit("SELL", D("2.80"), D("3.20"), 0, cfg, r, cross=True) == (D("2.80"), False)
    # nickel ticks for a stock option above $3: passive rounding keeps the band
    assert child_limit("BUY", D("9.55"), D("10.55"), 2, cfg, _rounder("AAPL")) == (D("10.35"), True)  # band 10.3515
