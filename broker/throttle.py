"""Outgoing message pacing (SPEC §4.2, §6.1): never more than `max_per_s` messages in any one second.

A token bucket that holds a single token, refilled every 1 / max_per_s: messages leave evenly
spaced, so any one-second span holds at most `max_per_s` of them. A bucket with a full
second of burst would send `max_per_s` at once and as many again a second later; the
gateway, counting by arrival with a little network jitter, would see the two bursts in one
window and refuse (IB error 100). Time is the injected clock's, so replays pace identically.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta

from market.clock import Clock


class Throttle:
    def __init__(self, clock: Clock, max_per_s: int):
        if isinstance(max_per_s, bool) or not isinstance(max_per_s, int) or max_per_s <= 0:
            raise ValueError(f"throttle: max_per_s must be a positive integer, got {max_per_s!r}")
        self._clock = clock
        # rounded up to the microsecond (the clock's resolution): never a hair faster than the limit
        self._gap = timedelta(microseconds=math.ceil(1_000_000 / max_per_s))
        self._next: datetime | None = None  # when the token is back
        self._lock = asyncio.Lock()  # waiters are served in arrival order
        self.sent = 0

    @property
    def gap(self) -> timedelta:
        return self._gap

    async def acquire(self) -> None:
        """Wait for the token, then count one message as sent now."""
        async with self._lock:
            now = self._clock.now()
            while self._next is not None and now < self._next:
                await self._clock.sleep((self._next - now).total_seconds())
                now = self._clock.now()
            self._next = now + self._gap
            self.sent += 1
