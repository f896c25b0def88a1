"""A replay of one session on the sim (Replay: the core, Working, SimVenue, the option model), with
a scripted underlying path and signals, for the multi-leg lifecycle tests (SPEC §9)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from config.loader import load_settings
from config.models import Settings
from daemon.replay import _QUOTE, _SIGNAL, Replay
from daemon.signals.jsonl import TimedSignal
from market.session import EXCHANGE_TZ
from market.types import Quote

DAY = date(2026, 11, 30)  # a Monday session


def at(hour: int, minute: int, second: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=EXCHANGE_TZ)


class ListSink:
    """Every Persist record the core emits, in order."""

    catching_up = False
    changes = ()  # a list never becomes unavailable (daemon.replay.ReplaySink)

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.seq = 0

    def append(self, op: str, payload: dict[str, Any]) -> None:
        self.records.append((op, payload))
        self.seq += 1

    def may_send(self, durable: bool) -> bool:
        return True

    def take_changes(self) -> list[tuple[bool, str | None]]:
        return []

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [p for op, p in self.records if op == name]


def signal(sid: str, strategy: str, when: datetime, profile: str = "0dte", underlying: str = "SPY",
           confidence: float = 0.75, direction: str = "bullish") -> TimedSignal:
    return TimedSignal(when, {"id": sid, "profile": profile, "underlying": underlying, "direction": direction,
                              "strategy": strategy, "confidence": confidence, "created_at": when.isoformat(),
                              "ttl_s": 120}, 0)


def run_session(signals: list[TimedSignal], path: Callable[[datetime], Decimal], *, profile: str = "0dte",
                underlying: str = "SPY", vix: Decimal = Decimal("18"), step_s: int = 5,
                start: datetime | None = None, end: datetime | None = None,
                settings: Settings | None = None, others: dict[str, Callable[[datetime], Decimal]] | None = None,
                coarse_after_s: int | None = None, coarse_step_s: int = 60,
                sink: Any = None) -> tuple[Replay, Any]:
    """Quotes every `step_s` (and, `coarse_after_s` after the last signal, every `coarse_step_s` while
    no order works, so a week replays quickly) from `start` to `end`, inside regular hours only."""
    settings = settings or load_settings(profile)
    start = start or at(9, 30)
    end = end or at(16, 0)
    sink = sink if sink is not None else ListSink()
    replay = Replay(settings, start - timedelta(minutes=1), sink=sink, log_effects=False)
    seq = itertools.count()
    events: list[tuple[datetime, int, int, Any]] = []
    paths = {underlying: path, **(others or {})}
    last_signal = max((s.at for s in signals), default=start)
    t = start
    while t <= end:
        if time(9, 30) <= t.timetz().replace(tzinfo=None) <= time(16, 0):
            for key, mid in [*((k, p(t)) for k, p in paths.items()), (settings.profile.vix_symbol, vix)]:
                events.append((t, _QUOTE, next(seq), Quote(key, mid - Decimal("0.01"), mid + Decimal("0.01"), mid, t,
                                                           bid_size=100, ask_size=100)))
        coarse = coarse_after_s is not None and t > last_signal + timedelta(seconds=coarse_after_s)
        t += timedelta(seconds=coarse_step_s if coarse else step_s)
    events.extend((s.at, _SIGNAL, next(seq), s) for s in signals)
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    replay.run(events, until=end + timedelta(minutes=1))
    return replay, sink
