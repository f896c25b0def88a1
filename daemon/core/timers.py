"""The core's timers: the scheduler's own job definitions (APScheduler triggers), fired as TimerEvents.

Live and in replay alike the core reads `earliest` and is `advance`d to it: the next fire time
comes from the SAME trigger objects `daemon.scheduler.job_specs` builds for the live
scheduler, so the 15:45 close-out, the checkpoints and the session open fire at the same
moments in both modes. Cron jobs marked `sessions_only` are skipped on exchange holidays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

from daemon.core.events import TimerEvent
from daemon.scheduler import JobSpec
from market.session import EXCHANGE_TZ, SessionTimes

SessionLookup = Callable[[date], SessionTimes | None]


class Timers:
    def __init__(self, specs: Sequence[JobSpec], sessions: SessionLookup, start: datetime):
        self.specs = list(specs)
        self.sessions = sessions
        self._next: list[datetime | None] = [s.trigger.get_next_fire_time(None, start) for s in self.specs]
        # the next fire time (None: no job fires again), read before every replayed event: kept, not computed.
        # Changed only by `due`.
        self.earliest = _min(self._next)

    def due(self, now: datetime) -> list[TimerEvent]:
        """Every fire at or before `now`, in time order (ties in job-list order), each at its own time;
        a job that is due several times (a long gap) fires each time, as the virtual scheduler did."""
        fired: list[TimerEvent] = []
        while self.earliest is not None and self.earliest <= now:
            when = self.earliest
            index = self._next.index(when)
            spec = self.specs[index]
            self._next[index] = spec.trigger.get_next_fire_time(when, when)
            self.earliest = _min(self._next)
            if spec.sessions_only and self.sessions(when.astimezone(EXCHANGE_TZ).date()) is None:
                continue
            fired.append(TimerEvent(spec.name, when))
        return fired


def _min(values: list[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
