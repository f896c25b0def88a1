"""The exit goes out before the quotes queued behind its trigger are handled (room tick2, issue 8).

The driver handles the queued events in one batch; the effect lane only runs when the driver yields. A
trigger followed in the same batch by other quotes used to wait for the core to handle all of them
(~0.1 ms each) before its exit reached the broker: the tail of tick-to-order at 400 quotes/s. Now the
driver yields one loop turn right after an event that queued an order.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from broker.quotes import QuoteBook
from broker.sim import SimBroker, stored_account_state
from config.loader import load_settings
from daemon.live import LiveShell
from daemon.store import Store
from market.types import Fill, OptionContract, OrderRequest, Quote
from tests.daemon.test_live import START, Shifted

DAY = date(2024, 3, 6)


def _record_quotes(live: LiveShell, trail: list[str]) -> None:
    """Each quote's key, as the core handles it."""
    handle = live.core.quote
    live.core.quote = lambda q: (trail.append(q.key), handle(q))[-1]  # type: ignore[method-assign]


async def test_an_exit_is_sent_before_the_quotes_queued_after_its_trigger_are_handled(tmp_path: Path) -> None:
    clock = Shifted(START)
    settings = load_settings("0dte", env={})
    store = Store("0dte", f"sqlite:///{tmp_path / 'send.db'}")
    await store.upgrade()
    contract = OptionContract("SPY", DAY, Decimal("465"), "C")
    opened = clock.now() - timedelta(minutes=5)
    position = await store.open_position(contract, opened, signal_id="held")
    ref = "tradingd:0dte:held"
    await store.write_intent(OrderRequest(1, f"{ref}:1", contract, "BUY", 10, "LMT", Decimal("3.00")), opened,
                             parent_ref=ref, position_id=position.id)
    await store.apply_fill(Fill("held", 1, f"{ref}:1", contract, "BUY", 10, Decimal("3.00"), opened),
                           position_id=position.id)
    book = QuoteBook()
    stamp = [clock.now()]

    def quote(key: str, mid: Decimal) -> Quote:
        stamp[0] = max(clock.now(), stamp[0] + timedelta(microseconds=1))
        return Quote(key, mid - Decimal("0.01"), mid + Decimal("0.01"), None, stamp[0], bid_size=100, ask_size=100,
                     open_interest=1000, delta=Decimal("0.5"), gamma=Decimal("0.04"), iv=Decimal("0.2"))

    underlyings = {"SPY": Decimal("470.00"), "QQQ": Decimal("400.00"), "IWM": Decimal("200.00"), "VIX": Decimal("18.50")}
    for key, mid in underlyings.items():
        book.update(quote(key, mid))
    book.update(quote(contract.key, Decimal("3.00")))
    trail: list[str] = []

    class Sim(SimBroker):
        async def place(self, order: OrderRequest) -> None:
            if order.side == "SELL" and order.order_type == "LMT":
                trail.append("exit sent")
            await super().place(order)

    broker = Sim(book, clock, settings, prior=lambda: stored_account_state(store, settings, clock.now()))
    live = LiveShell(settings, clock, store, broker, book)
    _record_quotes(live, trail)
    await live.start()
    try:
        await live.settle()
        trail.clear()
        book.update(quote(contract.key, Decimal("3.20")))  # past the +5 % take-profit tier: an exit
        for key, mid in underlyings.items():  # queued behind it, in the same batch of the driver
            book.update(quote(key, mid + Decimal("0.01")))
        for _ in range(200):
            if "exit sent" in trail and len(trail) >= 6:
                break
            await asyncio.sleep(0.005)
        assert trail[:2] == [contract.key, "exit sent"], trail
        assert trail[2:] == list(underlyings), trail  # then the rest, in order, none dropped
    finally:
        await live.stop()
        await store.close()
