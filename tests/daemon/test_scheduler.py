"""The job definitions and their firing on the virtual clock."""

from __future__ import annotations

from datetime import date, datetime, time

from config.loader import load_settings
from market import calendar
from market.clock import EXCHANGE_TZ, VirtualClock
from daemon.scheduler import SessionTrigger, VirtualScheduler, build_jobs
from exits.closeout import zero_dte_closeout_at


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    async def checkpoint(self, at: datetime) -> None:
        self.calls.append(("checkpoint", at))

    async def session_open(self, at: datetime) -> None:
        self.calls.append(("session_open", at))

    async def closeout(self, at: datetime) -> None:
        self.calls.append(("closeout", at))

    async def refresh_correlations(self, at: datetime) -> None:
        self.calls.append(("correlation_refresh", at))

    async def daily_report(self, at: datetime) -> None:
        self.calls.append(("daily_report", at))


def _t(d: date, hh: int, mm: int) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=EXCHANGE_TZ)


def _jobs(rec: Recorder):  # type: ignore[no-untyped-def]
    settings = load_settings("0dte", env={})
    zero = settings.exits.zero_dte
    return build_jobs(settings, calendar.session_for, rec, closeout_at=lambda s: zero_dte_closeout_at(s, zero))


async def test_a_session_fires_every_job_in_time_order() -> None:
    day = date(2019, 2, 11)
    rec = Recorder()
    clock = VirtualClock(_t(day, 0, 0))
    scheduler = VirtualScheduler(_jobs(rec), clock)
    await scheduler.run_until(_t(day, 23, 0))
    names = [n for n, _ in rec.calls]
    times = [t for _, t in rec.calls]
    assert times == sorted(times)
    assert ("session_open", _t(day, 9, 30)) in rec.calls
    assert ("closeout", _t(day, 15, 43)) in rec.calls  # flat by 15:45: it starts two parent timeouts (120 s) early
    assert ("correlation_refresh", _t(day, 9, 0)) in rec.calls
    assert ("daily_report", _t(day, 16, 15)) in rec.calls
    checkpoints = [t for n, t in rec.calls if n == "checkpoint"]
    assert checkpoints[0] == _t(day, 4, 0) and all(t.minute % 5 == 0 for t in checkpoints)
    assert names.index("session_open") < names.index("closeout")
    assert clock.now() == _t(day, 19, 55)  # the last job of the day


async def test_half_day_closeout_and_holidays_come_from_the_calendar() -> None:
    rec = Recorder()
    clock = VirtualClock(_t(date(2019, 7, 3), 0, 0))  # a half day (13:00 close), then July 4th
    scheduler = VirtualScheduler(_jobs(rec), clock)
    await scheduler.run_until(_t(date(2019, 7, 5), 0, 0))
    assert ("closeout", _t(date(2019, 7, 3), 12, 43)) in rec.calls  # flat by 12:45, 15 min before the 13:00 close
    assert not [t for _, t in rec.calls if t.date() == date(2019, 7, 4)], "nothing fires on a holiday"
    assert ("daily_report", _t(date(2019, 7, 3), 16, 15)) in rec.calls


def test_session_trigger_skips_weekends() -> None:
    trigger = SessionTrigger(calendar.session_for, lambda s: s.open, "open")
    friday_close = _t(date(2019, 2, 15), 16, 0)
    assert trigger.get_next_fire_time(None, friday_close) == _t(date(2019, 2, 19), 9, 30)  # Monday was a holiday
