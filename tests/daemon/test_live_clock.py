"""The live shell decides on its injected clock alone (issue 8): a process whose live clock is moved to
the end of a session closes its 0dte position out on that clock, and an event stamped by another clock
(IB's execution times, a gateway running ahead) never moves the core's timers past it.

A shell reading the wall clock for any of these would close out at the wall clock's 15:45 (hours away,
or never on a weekend) or at once: both tests fail then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from daemon.core.events import OrderUpdateEvent
from daemon.store import Store
from market.session import EXCHANGE_TZ
from market.types import OrderStatus, OrderUpdate
from tests.daemon.test_live import Shifted, shell, signal
from tests.daemon.test_store_journal import wait_for

LATE = datetime(2024, 3, 6, 15, 44, 40, tzinfo=EXCHANGE_TZ)  # 20 s before the 0dte flat-by time
FLAT_BY = datetime(2024, 3, 6, 15, 45, tzinfo=EXCHANGE_TZ)
LEAD = timedelta(seconds=5)  # the close-out starts 5 s before FLAT_BY (its own rule, a short lead)


async def test_the_close_out_runs_on_a_clock_moved_to_the_end_of_the_session(tmp_path: Path) -> None:
    clock = Shifted(LATE)
    async with shell(tmp_path, clock, **{"exits.zero_dte.closeout_lead_s": str(LEAD.total_seconds())}) as (
            live, sim, _):
        outcome = await live.submit_signal(signal("late", clock), "test")
        assert outcome.accepted, outcome  # 15:44:40 on the moved clock: before the close-out's start
        contracts = outcome.decision["contracts"]
        await wait_for(lambda: sum(p.record.original_qty for p in live.core.book) == contracts, timeout=15)
        position_id = next(iter(live.core.book)).id
        await wait_for(lambda: not list(live.core.book), timeout=30)  # flat: the close-out ran
        await live.settle()
        assert clock.now() < FLAT_BY + timedelta(seconds=15)  # it ran on the moved clock, not hours later
        store: Store = live.store
        await live.flush_journal()
        events = await store.list_exit_events(position_id)
        closeouts = [e for e in events if e.rule == "closeout"]
        assert closeouts, [(e.rule, e.at) for e in events]
        started = min(e.at for e in closeouts).astimezone(EXCHANGE_TZ)
        assert FLAT_BY - LEAD <= started <= FLAT_BY, started
        sells = [f for f in await store.list_fills(limit=1000) if f.side == "SELL"]
        assert sum(f.quantity for f in sells) == contracts
        assert max(f.at for f in sells).astimezone(EXCHANGE_TZ) <= FLAT_BY  # flat BY 15:45 of the moved clock


async def test_an_event_stamped_ahead_of_the_clock_does_not_fire_the_core_timers(tmp_path: Path) -> None:
    clock = Shifted(datetime(2024, 3, 6, 15, 40, tzinfo=EXCHANGE_TZ))
    async with shell(tmp_path, clock) as (live, _, _):
        await live.settle()
        ahead = clock.now() + timedelta(hours=1)  # a broker's clock an hour ahead of ours
        live._push(OrderUpdateEvent(OrderUpdate(987_654, "elsewhere", OrderStatus.SUBMITTED, 0, 1, None, ahead)))
        await live.settle()
        # the close-out (15:43), the settlement (16:05) and the 16:00-16:40 checkpoints are not due on this clock
        assert live.core.latest is None or live.core.latest <= clock.now(), live.core.latest
        due = live.core.next_timer_at()
        assert due is not None and due <= datetime(2024, 3, 6, 15, 45, tzinfo=EXCHANGE_TZ), due
