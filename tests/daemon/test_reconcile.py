"""daemon.reconcile with a real store and the IB broker on the fake gateway: adopt by orderRef, block the
unknown, find never-sent intents, apply fills made while disconnected exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

from broker.ib import ConnectionState
from market.types import OrderStatus
from daemon.reconcile import NEVER_SENT, POSITION_MISMATCH, UNKNOWN_POSITION, reconcile, reconciler
from daemon.store import Store
from tests.broker.test_ib_support import Recorder, connected, gateway, order, spy_call

PROFILE, PREFIX = "0dte", "tradingd"


async def _reconcile(broker, store: Store, kind: str = "startup"):
    return await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now(), kind=kind)


async def _filled(gw, rec: Recorder, req, broker) -> None:
    await broker.place(req)
    await rec.wait_for(lambda: any(u.order_id == req.order_id and u.status is OrderStatus.FILLED for u in rec.updates))
    await rec.wait_for(lambda: any(f.order_id == req.order_id for f in rec.fills))


class _Daemon(Recorder):
    """A stand-in for the daemon's broker listener: live fills applied to the store (exactly once by exec id),
    as the live shell's journal writes the core's `apply_fill` records. No daemon is needed: these tests are
    of `daemon.reconcile` against the gateway."""

    def __init__(self, store: Store):
        super().__init__()
        self.store = store
        self.applied: list[asyncio.Task] = []

    def on_fill(self, fill):  # type: ignore[no-untyped-def]
        super().on_fill(fill)
        self.applied.append(asyncio.ensure_future(self.store.apply_fill(fill)))

    async def settle(self) -> None:
        await asyncio.gather(*self.applied)


async def test_fills_made_while_disconnected_are_applied_exactly_once(store: Store):
    async with gateway() as gw, connected(gw, start=False) as (broker, _):
        engine = _Daemon(store)
        broker.set_listener(engine)
        reports = []
        broker.set_reconciler(reconciler(broker, store, profile=PROFILE, prefix=PREFIX, now=broker.clock.now,
                                         on_report=reports.append))
        await broker.start()
        assert [r.kind for r in reports] == ["startup"] and reports[0].clean
        position = await store.open_position(spy_call(), broker.clock.now(), signal_id=None)
        entry = order(1, qty=2, limit="2.60")
        await store.write_intent(entry, broker.clock.now(), position_id=position.id)
        await _filled(gw, engine, entry, broker)
        gw.auto_fill = False
        exit_ = order(2, qty=2, side="SELL", limit="2.70", ref="tradingd:0dte:exit-1:1")
        await store.write_intent(exit_, broker.clock.now(), position_id=position.id)
        await broker.place(exit_)
        await engine.wait_for(lambda: engine.updates_for(2))
        await engine.settle()

        await gw.stop()  # the daemon loses the gateway; the market keeps trading
        await engine.wait_for(lambda: broker.state is ConnectionState.DISCONNECTED)
        away = await gw.fill(2, 1, "2.70")
        await gw.start()
        await engine.wait_for(lambda: len(reports) == 2 and broker.state is ConnectionState.READY, timeout=10)

        after = reports[1]
        assert after.kind == "reconnect" and after.fills_applied == (away.exec_id,)
        assert after.matched_orders == (2,) and after.clean
        assert (await store.get_position(position.id)).open_qty == 1
        again = await _reconcile(broker, store, kind="reconnect")
        assert again.fills_applied == () and again.fills_known >= 1  # asked again (inclusive since), applied never
        await gw.fill(2, 1, "2.70")  # the rest fills live after the reconnect
        await engine.wait_for(lambda: len(engine.fills) == 2)
        await engine.settle()
        closed = await store.get_position(position.id)
        assert closed.open_qty == 0 and closed.status == "closed"
        assert len(await store.list_fills()) == 3


async def test_broker_position_with_our_order_ref_is_adopted(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        await _filled(gw, rec, order(5, qty=3, limit="2.60"), broker)  # the store never heard of it
        report = await _reconcile(broker, store)
        [adopted] = report.adopted
        assert (adopted.contract_key, adopted.quantity, adopted.order_refs) == (
            spy_call().key, 3, ("tradingd:0dte:sig-5:1",))
        [pos] = await store.load_open_positions()
        assert (pos.id, pos.open_qty, pos.contract_key) == (adopted.position_id, 3, spy_call().key)
        assert report.fills_applied and not report.blocked
        assert (await _reconcile(broker, store)).adopted == ()  # known now


async def test_a_resting_stop_with_our_order_ref_is_enough_to_adopt(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        await _filled(gw, rec, order(5, qty=2, limit="2.60", ref="manual-entry"), broker)
        stop = order(6, qty=2, side="SELL", order_type="STP", limit=None, stop="1.95", tif="GTC",
                     ref="tradingd:0dte:stop-9:1")
        await broker.place(stop)
        await rec.wait_for(lambda: rec.updates_for(6))
        report = await _reconcile(broker, store)
        assert [a.order_refs for a in report.adopted] == [("tradingd:0dte:stop-9:1",)]
        assert report.orphan_orders == (6,) and report.highest_order_id == 6
        assert await store.highest_order_id() == 6


async def test_a_position_not_ours_is_reported_and_blocks_its_underlying_until_acknowledged(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        await _filled(gw, rec, order(5, qty=2, limit="2.60", ref="someone-else"), broker)
        report = await _reconcile(broker, store)
        assert [u.contract_key for u in report.unknown_positions] == [spy_call().key]
        assert report.blocked == ("SPY",) and report.fills_foreign == 1 and not report.clean
        assert await store.load_open_positions() == []
        [blocked] = await store.blocked_underlyings()
        assert (blocked.underlying, blocked.reason) == ("SPY", UNKNOWN_POSITION)
        await store.ack_underlying("SPY", who="ops", at=broker.clock.now())
        await _reconcile(broker, store, kind="reconnect")
        assert await store.blocked_underlyings() == []  # the same discrepancy stays acknowledged


async def test_quantity_mismatch_is_reported_and_blocks(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        position = await store.open_position(spy_call(), broker.clock.now(), quantity=5, entry_price=Decimal("2.6"))
        entry = order(5, qty=2, limit="2.60")
        await store.write_intent(entry, broker.clock.now(), position_id=position.id)
        await _filled(gw, rec, entry, broker)
        report = await _reconcile(broker, store)  # the store had 5 and gets the 2 bought: 7 against 2
        [mismatch] = report.mismatches
        assert (mismatch.store_quantity, mismatch.broker_quantity) == (7, 2)
        assert [b.reason for b in await store.blocked_underlyings()] == [POSITION_MISMATCH]


async def test_an_intent_never_sent_is_found_and_not_resent(store: Store):
    async with gateway() as gw, connected(gw) as (broker, _):
        lost = order(9, qty=2, limit="2.55")
        await store.write_intent(lost, broker.clock.now())  # crash before placeOrder
        on_reconnect = await _reconcile(broker, store, kind="reconnect")
        assert on_reconnect.never_sent == ()  # the engine may be about to send it
        report = await _reconcile(broker, store)
        assert report.never_sent == (9,) and not report.clean
        intent = await store.find_intent(9)
        assert intent.state == "cancelled"
        [record] = await store.list_orders()
        assert (record.order_id, record.status, record.reason) == (9, OrderStatus.CANCELLED.value, NEVER_SENT)
        await asyncio.sleep(0.05)
        assert gw.orders == {}
        assert (await _reconcile(broker, store)).never_sent == ()


async def test_an_order_sent_but_never_acknowledged_is_matched_by_id_and_order_ref(store: Store):
    async with gateway() as gw, connected(gw) as (broker, rec):
        gw.auto_fill = False
        sent = order(10, qty=2, limit="2.55")
        await store.write_intent(sent, broker.clock.now())
        await broker.place(sent)  # crash before mark_intent_sent
        await rec.wait_for(lambda: rec.updates_for(10))
        other = replace(order(11, qty=1, limit="2.50"), order_ref="tradingd:0dte:sig-x:3")
        await store.write_intent(replace(other, order_id=12), broker.clock.now())  # same ref, id differs
        await broker.place(other)
        await rec.wait_for(lambda: rec.updates_for(11))
        report = await _reconcile(broker, store)
        assert set(report.matched_orders) == {10, 12} and report.never_sent == ()
        assert (await store.find_intent(10)).state == "working"
        assert report.highest_order_id == 12


async def test_an_expired_option_the_core_settled_is_not_adopted_back_nor_a_mismatch(store: Store):
    """Room expiry: after the expiry's close the core has settled the position (closed in the store); the
    broker may still list the option until its overnight processing: it is not adopted again. And a
    stored position the broker settled while the daemon was away is no mismatch: the core settles it."""
    from datetime import datetime, time, timedelta

    from market.session import EXCHANGE_TZ
    from tests.broker.test_ib_support import EXPIRY

    after = datetime.combine(EXPIRY + timedelta(days=1), time(9, 0), tzinfo=EXCHANGE_TZ)
    async with gateway() as gw, connected(gw) as (broker, rec):
        await _filled(gw, rec, order(5, qty=3, limit="2.60"), broker)  # ours by orderRef, but expired
        report = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=after)
        assert report.adopted == () and not report.blocked and await store.load_open_positions() == []
        # before its expiry the same position is adopted (the test above): the expiry is what differs
        report = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX,
                                 now=datetime.combine(EXPIRY, time(15, 0), tzinfo=EXCHANGE_TZ))
        assert len(report.adopted) == 1
    opened = await store.open_position(spy_call(Decimal(480)), after, quantity=1, entry_price=Decimal("1.00"))
    async with gateway() as gw, connected(gw) as (broker, rec):
        report = await reconcile(broker, store, profile=PROFILE, prefix=PREFIX, now=after)
        assert report.mismatches == () and not report.blocked, report
    assert opened.open_qty == 1
