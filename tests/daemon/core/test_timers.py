"""The core's timers fire the scheduler's own job definitions at the same moments as the virtual scheduler."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta

from daemon.core.timers import Timers
from daemon.scheduler import VirtualScheduler, build_jobs, job_specs
from exits.closeout import zero_dte_closeout_at
from market import calendar
from market.clock import VirtualClock
from market.session import EXCHANGE_TZ
from tests.daemon.core.fakes import settings_for


class Handlers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        async def call(at: datetime) -> None:
            self.calls.append((name, at))

        return call


def test_timers_fire_what_the_virtual_scheduler_fires_over_a_week_with_a_holiday() -> None:
    settings = settings_for("0dte")
    zero = settings.exits.zero_dte
    def closeout(session):  # type: ignore[no-untyped-def]
        return zero_dte_closeout_at(session, zero)

    start = datetime.combine(date(2026, 11, 23), time(0), tzinfo=EXCHANGE_TZ)  # Thanksgiving week
    end = start + timedelta(days=7)
    # the handlers answer every name, so the live jobs include IB's pre-open chain refresh: the timers too
    timers = Timers(job_specs(settings, calendar.session_for, closeout, chains=True), calendar.session_for, start)
    fired = [(e.name, e.at) for e in timers.due(end)]
    clock = VirtualClock(start)
    handlers = Handlers()
    scheduler = VirtualScheduler(build_jobs(settings, calendar.session_for, handlers, closeout_at=closeout), clock)
    asyncio.run(scheduler.run_until(end))
    names = {"refresh_correlations": "correlation_refresh", "refresh_chains": "chain_refresh",
             "settle_expired": "expiry_settlement"}
    assert ("expiry_settlement", datetime(2026, 11, 27, 13, 5, tzinfo=EXCHANGE_TZ)) in fired  # the half day's close + 5 min
    assert fired == [(names.get(n, n), t) for n, t in handlers.calls]
    assert not any(t.date() == date(2026, 11, 26) for n, t in fired if n != "prune_refused")  # Thanksgiving
    # the close-out starts one parent timeout (60 s) before its deadline: flat by 15:45, and by 12:45 on
    # the half day after Thanksgiving (15 minutes before the 13:00 close); the job and the timer agree
    closeouts = [t for n, t in fired if n == "closeout"]
    assert datetime(2026, 11, 27, 12, 43, tzinfo=EXCHANGE_TZ) in closeouts
    assert datetime(2026, 11, 23, 15, 43, tzinfo=EXCHANGE_TZ) in closeouts and len(closeouts) == 4
    assert timers.earliest is not None and timers.earliest > end


def test_equal_fire_times_keep_the_job_list_order() -> None:
    settings = settings_for("0dte")
    start = datetime(2026, 11, 30, 9, 0, tzinfo=EXCHANGE_TZ)
    timers = Timers(job_specs(settings, calendar.session_for), calendar.session_for, start)
    fired = timers.due(datetime(2026, 11, 30, 9, 30, tzinfo=EXCHANGE_TZ))
    at_open = [e.name for e in fired if e.at.time() == time(9, 30)]
    assert at_open == ["session_open", "checkpoint"]
