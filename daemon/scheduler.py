"""The daemon's timed jobs (SPEC §6): one set of definitions, fired live or on the virtual clock.

Jobs are APScheduler 3 triggers in America/New_York plus a coroutine that receives the
scheduled fire time. Live, the shell's core asks the same triggers for its timers
(`daemon.core.timers.Timers` over `job_specs`) on the injected clock; no APScheduler scheduler
reads the wall clock. In replay, `VirtualScheduler` asks the SAME trigger objects for their next
fire time given the virtual now and fires due jobs in time order as the feed advances the clock.

Times that depend on the session (the 0dte close-out on half days) come from the exchange
calendar through `SessionTrigger`, a trigger that fires once per session at a time computed
from that session's hours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from config.models import Settings
from market.clock import EXCHANGE_TZ, VirtualClock
from daemon.logging import get_logger
from market.session import SessionTimes

log = get_logger("tradingd.scheduler")

JobFunc = Callable[[datetime], Awaitable[None]]
# Checkpoints run from the pre-market to the end of the post-market on weekdays: outside
# regular hours they watch for overnight gaps (SPEC §5.3) on what underlying quotes exist.
CHECKPOINT_HOURS = "4-19"
WEEKDAYS = "mon-fri"
# How far ahead SessionTrigger looks for the next session (covers the longest market closures).
_SEARCH_DAYS = 14


# The session on a day, None when the exchange is closed (`market.calendar.session_for`).
SessionLookup = Callable[[date], SessionTimes | None]


class JobHandlers(Protocol):
    """What the jobs call; the engine implements it. Each receives the scheduled fire time."""

    async def checkpoint(self, at: datetime) -> None: ...
    async def session_open(self, at: datetime) -> None: ...
    async def closeout(self, at: datetime) -> None: ...
    async def refresh_correlations(self, at: datetime) -> None: ...
    async def daily_report(self, at: datetime) -> None: ...


class SessionTrigger(BaseTrigger):
    """Fires once per exchange session at `when(session)` (None: not on that session)."""

    def __init__(self, sessions: SessionLookup, when: Callable[[SessionTimes], datetime | None], label: str):
        self.sessions = sessions
        self.when = when
        self.label = label

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = now if previous_fire_time is None else max(now, previous_fire_time + timedelta(microseconds=1))
        start = start.astimezone(EXCHANGE_TZ)
        for offset in range(_SEARCH_DAYS):
            session = self.sessions(start.date() + timedelta(days=offset))
            if session is None:
                continue
            fire = self.when(session)
            if fire is not None and fire >= start:
                return fire
        return None

    def __str__(self) -> str:
        return f"session[{self.label}]"

    def __repr__(self) -> str:
        return f"<SessionTrigger {self.label}>"


@dataclass(frozen=True)
class Job:
    name: str
    trigger: BaseTrigger
    func: JobFunc


@dataclass(frozen=True)
class JobSpec:
    """One job's name and trigger; `sessions_only`: a cron trigger that must skip exchange holidays."""

    name: str
    trigger: BaseTrigger
    sessions_only: bool = False


def job_specs(settings: Settings, sessions: SessionLookup,
              closeout_at: Callable[[SessionTimes], datetime | None] | None = None, *,
              chains: bool = False) -> list[JobSpec]:
    """The job definitions without their handlers: the live scheduler and the core's timers share them.
    At equal fire times the earlier job in this list runs first: the open before the checkpoint."""
    schedule = settings.daemon.schedule
    specs = [
        JobSpec("session_open", SessionTrigger(sessions, lambda s: s.open, "open")),
        JobSpec("checkpoint", CronTrigger(minute=f"*/{schedule.checkpoint_minutes}", hour=CHECKPOINT_HOURS,
                                          day_of_week=WEEKDAYS, timezone=EXCHANGE_TZ), sessions_only=True),
        JobSpec("correlation_refresh", _daily(schedule.correlation_refresh), sessions_only=True),
        JobSpec("daily_report", SessionTrigger(sessions, lambda s: _after_close(s, schedule.daily_report), "report")),
    ]
    if closeout_at is not None:
        specs.append(JobSpec("closeout", SessionTrigger(sessions, closeout_at, "closeout")))
    settle_after = timedelta(minutes=schedule.expiry_settlement_after_close_min)  # SPEC §6.3 (room expiry)
    specs.append(JobSpec("expiry_settlement", SessionTrigger(sessions, lambda s: s.close + settle_after, "expiry")))
    specs.append(JobSpec("prune_refused", _daily(settings.daemon.store.prune_at)))  # Part 8: refused-signal retention
    if chains:  # a broker with option chains to load before the open (IB, SPEC 6.1)
        specs.append(JobSpec("chain_refresh", _daily(schedule.chain_refresh), sessions_only=True))
    return specs


def build_jobs(settings: Settings, sessions: SessionLookup, handlers: JobHandlers,
               closeout_at: Callable[[SessionTimes], datetime | None] | None = None) -> list[Job]:
    """The job definitions. `closeout_at` gives the per-session 0dte close-out (None: no close-out job)."""

    def on_sessions(func: JobFunc) -> JobFunc:
        """Cron-fired jobs only run on exchange sessions (holidays fall on weekdays too)."""

        async def run(at: datetime) -> None:
            if sessions(at.astimezone(EXCHANGE_TZ).date()) is not None:
                await func(at)

        return run

    funcs: dict[str, JobFunc] = {"session_open": handlers.session_open, "checkpoint": handlers.checkpoint,
                                 "correlation_refresh": handlers.refresh_correlations,
                                 "daily_report": handlers.daily_report, "closeout": handlers.closeout}
    prune = getattr(handlers, "prune_refused", None)  # Part 8: refused-signal retention
    if prune is not None:
        funcs["prune_refused"] = prune
    settle = getattr(handlers, "settle_expired", None)  # SPEC §6.3 (room expiry): the core's; the old engine has none
    if settle is not None:
        funcs["expiry_settlement"] = settle
    refresh_chains = getattr(handlers, "refresh_chains", None)  # a broker with chains to load (IB)
    if refresh_chains is not None:
        funcs["chain_refresh"] = refresh_chains
    return [Job(spec.name, spec.trigger, on_sessions(funcs[spec.name]) if spec.sessions_only else funcs[spec.name])
            for spec in job_specs(settings, sessions, closeout_at, chains=refresh_chains is not None)
            if spec.name in funcs]


def _daily(at: time) -> CronTrigger:
    return CronTrigger(hour=at.hour, minute=at.minute, second=at.second, day_of_week=WEEKDAYS, timezone=EXCHANGE_TZ)


def _after_close(session: SessionTimes, report_time: time) -> datetime:
    """The configured report time, or the session's close on a day that closes later (never before the close)."""
    return max(session.at(report_time), session.close)


async def _run_job(job: Job, at: datetime) -> None:
    try:
        await job.func(at)
    except Exception as exc:  # a failing job must not stop the others, nor the next run of itself
        log.exception("job_failed", code="job_failed", job=job.name, at=at.isoformat(), error=repr(exc))


class VirtualScheduler:
    """Fires the same jobs on a VirtualClock, in time order, as the replay feed advances."""

    def __init__(self, jobs: list[Job], clock: VirtualClock,
                 after_each: Callable[[], Awaitable[Any]] | None = None):
        self.jobs = jobs
        self.clock = clock
        self._after_each = after_each
        now = clock.now()
        self._next: dict[str, datetime | None] = {j.name: j.trigger.get_next_fire_time(None, now) for j in jobs}
        self.fired: list[tuple[str, datetime]] = []

    def next_fire(self) -> tuple[datetime, Job] | None:
        due = [(t, i) for i, j in enumerate(self.jobs) if (t := self._next[j.name]) is not None]
        if not due:
            return None
        when, index = min(due)
        return when, self.jobs[index]

    async def run_until(self, until: datetime) -> None:
        """Fire every job due at or before `until`, each at its own time, in order."""
        while (nxt := self.next_fire()) is not None and nxt[0] <= until:
            when, job = nxt
            if when > self.clock.now():
                await self.clock.advance_to(when)
            self.fired.append((job.name, when))
            await _run_job(job, when)
            self._next[job.name] = job.trigger.get_next_fire_time(when, when)
            if self._after_each is not None:
                await self._after_each()
