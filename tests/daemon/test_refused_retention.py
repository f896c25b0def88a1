"""Part 8: refused signals are kept for a configurable retention, then pruned by a daily job."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from config.loader import load_settings
from daemon.scheduler import VirtualScheduler, build_jobs
from market import calendar
from market.clock import EXCHANGE_TZ, VirtualClock

NOW = datetime(2019, 3, 20, 3, 30, tzinfo=EXCHANGE_TZ)


async def _signal(store, sid: str, at: datetime, accepted: bool | None) -> None:  # type: ignore[no-untyped-def]
    await store.record_signal(sid, {"id": sid}, at)
    if accepted is not None:
        await store.record_decision(signal_id=sid, at=at, accepted=accepted, reason=None if accepted else "liquidity",
                                    contracts=1 if accepted else 0, notional=Decimal(0), multiplier=Decimal(1),
                                    breakdown={})


async def test_prune_keeps_accepted_and_recent_refusals(store) -> None:  # type: ignore[no-untyped-def]
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=2)
    await _signal(store, "old-refused", old, False)
    await _signal(store, "old-accepted", old, True)
    await _signal(store, "new-refused", recent, False)
    await _signal(store, "old-undecided", old, None)  # a crash mid-decision: not a refusal, kept
    for at in (old, recent):  # malformed bodies: refused decisions of no stored signal
        await store.record_decision(signal_id=None, at=at, accepted=False, reason="malformed_json", contracts=0,
                                    notional=Decimal(0), multiplier=Decimal(0), breakdown={})
    deleted = await store.prune_refused_signals(NOW - timedelta(days=30))
    assert deleted == {"signals": 1, "decisions": 2}
    assert await store.get_signal("old-refused") is None
    assert await store.get_signal("old-accepted") is not None and await store.get_signal("new-refused") is not None
    assert await store.get_signal("old-undecided") is not None
    left = await store.recent_decisions(limit=100)
    assert sorted((d.signal_id or "-", d.accepted) for d in left) == [("-", False), ("new-refused", False),
                                                                       ("old-accepted", True)]
    assert await store.prune_refused_signals(NOW - timedelta(days=30)) == {"signals": 0, "decisions": 0}


class _Handlers:
    def __init__(self) -> None:
        self.pruned: list[datetime] = []

    async def checkpoint(self, at: datetime) -> None: ...
    async def session_open(self, at: datetime) -> None: ...
    async def closeout(self, at: datetime) -> None: ...
    async def refresh_correlations(self, at: datetime) -> None: ...
    async def daily_report(self, at: datetime) -> None: ...

    async def prune_refused(self, at: datetime) -> None:
        self.pruned.append(at)


async def test_the_prune_job_fires_daily_at_its_configured_time() -> None:
    settings = load_settings("0dte", env={"TRADINGD_DAEMON__STORE__PRUNE_AT": "04:10:00"})
    assert settings.daemon.store.refused_retention_days == 30
    handlers = _Handlers()
    day = date(2019, 2, 11)
    clock = VirtualClock(datetime.combine(day, time(0), tzinfo=EXCHANGE_TZ))
    scheduler = VirtualScheduler(build_jobs(settings, calendar.session_for, handlers), clock)
    await scheduler.run_until(datetime.combine(day + timedelta(days=1), time(23), tzinfo=EXCHANGE_TZ))
    assert handlers.pruned == [datetime.combine(day + timedelta(days=k), time(4, 10), tzinfo=EXCHANGE_TZ)
                               for k in range(2)]
