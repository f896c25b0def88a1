"""When a disconnect is expected, and how long to wait before the next reconnect. Pure."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, time
from decimal import Decimal

from market.clock import EXCHANGE_TZ

SATURDAY = 5


def in_restart_window(now: datetime, start: time, end: time) -> bool:
    """IB's nightly restart (`start`..`end`, exchange time, may cross midnight) or the weekend."""
    local = now.astimezone(EXCHANGE_TZ)
    if local.weekday() >= SATURDAY:
        return True
    t = local.time()
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def backoff_delays(initial: Decimal, maximum: Decimal, jitter: Decimal,
                   rng: random.Random) -> Iterator[float]:
    """Exponential backoff: initial, 2x, 4x ... capped at maximum, each shortened by up to `jitter` of itself."""
    delay = float(initial)
    cap = float(maximum)
    spread = float(jitter)
    while True:
        yield delay * (1.0 - spread * rng.random())
        delay = min(delay * 2.0, cap)
