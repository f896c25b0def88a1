"""The live effect lane (`daemon.live_effects.Effects`): the core's effects carried out in order over a
real journal and store, with a recording broker.

- an entry's intent is committed before its order reaches the broker; the "sending" line waits for it;
- an entry whose intent cannot be committed is not sent, and the core hears `store_unavailable`;
- an exit or a stop goes out while the store cannot write: its intent stays journaled, written later;
- a broker refusal is recorded as a rejected order and handed back to the core;
- a position the store numbered differently is followed in every later record.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

from broker.base import BrokerError
from daemon.core.effects import LogLine, Persist, PlaceOrder
from daemon.core.events import OrderRefusedEvent
from daemon.live_effects import Effects
from daemon.store import Store
from daemon.store.journal import Journal
from market.clock import EXCHANGE_TZ
from market.types import OrderRequest
from tests.daemon.test_store_journal import CONTRACT, FAST, Faulty, wait_for

T0 = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


class Recorder:
    """A broker that records what it is handed, and what the store held at that moment."""

    shares_order_ids = False

    def __init__(self, store: Store, refuse: set[int] | None = None):
        self.store = store
        self.refuse = refuse or set()
        self.placed: list[tuple[int, bool]] = []  # (order id, its intent was in the store when it arrived)

    async def place(self, order: OrderRequest) -> None:
        if order.order_id in self.refuse:
            raise BrokerError("201", "order rejected by the venue")
        self.placed.append((order.order_id, await self.store.find_intent(order.order_id) is not None))

    async def modify(self, order: OrderRequest) -> None: ...
    async def cancel(self, order_id: int) -> None: ...
    async def subscribe(self, keys: list[str]) -> None: ...
    async def unsubscribe(self, keys: list[str]) -> None: ...


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append((event, fields))


def lane(store: Store, broker: Recorder) -> tuple[Effects, Journal, list[Any], Log]:
    journal = Journal(store, FAST)
    journal.notify_with(asyncio.get_running_loop().call_soon_threadsafe)
    back: list[Any] = []
    log = Log()
    effects = Effects(broker, journal, log=log, metrics=None, report=back.append, now=lambda: T0,  # type: ignore[arg-type]
                      durable_timeout_s=FAST.durable_timeout_s, on_quote=lambda q: None,
                      modify_refused=lambda *a: None)
    effects.start()
    return effects, journal, back, log


def order(order_id: int, side: str = "BUY", ref: str = "tradingd:0dte:sig-1") -> OrderRequest:
    return OrderRequest(order_id, f"{ref}:1", CONTRACT, side, 5, "LMT", Decimal("1.00"))  # type: ignore[arg-type]


def intent(request: OrderRequest, position_id: int | None) -> Persist:
    return Persist("write_intent", {"request": request, "at": T0, "parent_ref": request.order_ref.rsplit(":", 1)[0],
                                    "position_id": position_id})


async def test_an_entry_reaches_the_broker_only_after_its_intent_and_its_sending_line_waits_for_it(store: Store):
    broker = Recorder(store)
    effects, journal, back, log = lane(store, broker)
    try:
        opened = Persist("open_position", {"contract": CONTRACT, "opened_at": T0, "signal_id": "sig-1",
                                           "position_id": 1})
        request = order(7)
        effects.carry_out([opened, intent(request, 1), LogLine("debug", "order", {"status": "sending"}),
                           PlaceOrder(request, durable=True)])
        assert log.lines == []  # the sending line waits for the intent's commit
        await effects.idle()
        assert broker.placed == [(7, True)]
        assert log.lines == [("order", {"status": "sending"})]
        stored = await store.find_intent(7)
        assert stored is not None and stored.position_id == 1 and back == []
    finally:
        await effects.stop()
        journal.close()


async def test_the_lane_is_busy_from_carry_out_until_everything_is_carried_out(store: Store):
    """`busy` (what the shell's `settle` and `busy` read): True as soon as effects are handed over, before the
    lane has run; False once the order is at the broker."""
    broker = Recorder(store)
    effects, journal, _, _ = lane(store, broker)
    try:
        assert not effects.busy
        request = order(11, side="SELL", ref="tradingd:0dte:x2")
        effects.carry_out([intent(request, None), PlaceOrder(request)])
        assert effects.busy and broker.placed == []
        await effects.idle()
        assert not effects.busy and [order_id for order_id, _ in broker.placed] == [11]
    finally:
        await effects.stop()
        journal.close()


async def test_an_entry_whose_intent_cannot_be_committed_is_not_sent_and_the_core_hears_why(store: Store):
    faulty = Faulty(store)
    broker = Recorder(store)
    effects, journal, back, _ = lane(store, broker)
    try:
        faulty.broken = True
        journal.append("set_meta", key="k", value="v")  # the store fails a write: the journal says unavailable
        await wait_for(lambda: not journal.available)
        request = order(8)
        effects.carry_out([intent(request, None), PlaceOrder(request, durable=True)])
        await effects.idle()
        assert broker.placed == []
        assert back == [OrderRefusedEvent(8, "store_unavailable", T0)]
    finally:
        faulty.broken = False
        await effects.stop()
        journal.close()


async def test_an_exit_goes_out_while_the_store_cannot_write_and_its_intent_is_written_later(store: Store):
    faulty = Faulty(store)
    broker = Recorder(store)
    effects, journal, back, _ = lane(store, broker)
    try:
        faulty.broken = True
        journal.append("set_meta", key="k", value="v")
        await wait_for(lambda: not journal.available)
        request = order(9, side="SELL", ref="tradingd:0dte:x1")
        effects.carry_out([intent(request, None), PlaceOrder(request)])
        await effects.idle()
        assert broker.placed == [(9, False)] and back == []  # sent without waiting for the store
        faulty.broken = False
        await wait_for(lambda: journal.available and journal.pending == 0)
        assert await store.find_intent(9) is not None  # nothing lost: written when the store came back
    finally:
        faulty.broken = False
        await effects.stop()
        journal.close()


async def test_a_refused_order_is_recorded_rejected_and_handed_back(store: Store):
    broker = Recorder(store, refuse={10})
    effects, journal, back, _ = lane(store, broker)
    try:
        request = order(10, side="SELL", ref="tradingd:0dte:x2")
        effects.carry_out([intent(request, None), PlaceOrder(request)])
        await effects.idle()
        assert back == [OrderRefusedEvent(10, "201", T0)]
        await wait_for(lambda: journal.pending == 0)
        stored = await store.find_intent(10)
        assert stored is not None and stored.state == "rejected"
    finally:
        await effects.stop()
        journal.close()


async def test_a_position_the_store_numbered_differently_is_followed_in_later_records(store: Store):
    other = Store("7dte", store.url)  # another profile on the same database takes position id 1 first
    await other.open_position(CONTRACT, T0, signal_id="other")
    await other.close()
    broker = Recorder(store)
    effects, journal, _, log = lane(store, broker)
    try:
        request = order(11)
        effects.carry_out([Persist("open_position", {"contract": CONTRACT, "opened_at": T0, "signal_id": "sig-2",
                                                     "position_id": 1}),
                           intent(request, 1), PlaceOrder(request, durable=True)])
        await effects.idle()
        assert effects.ids == {1: 2}
        stored = await store.find_intent(11)
        assert stored is not None and stored.position_id == 2
        assert any(event == "position_renumbered" for event, _ in log.lines)
    finally:
        await effects.stop()
        journal.close()
