"""Outgoing message pacing (SPEC §4.2, §6.1) for async senders: never more than `max_per_s` messages
in any one second.

The bucket itself is `broker.pacing.Pacer` (one token, refilled every 1 / max_per_s: see there why
not a full second of burst); this wraps it for callers that await their turn on the injected
clock, first come first served. Time is the clock's, so replays pace identically.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from broker.pacing import Pacer
from market.clock import Clock


class Throttle:
    def __init__(self, clock: Clock, max_per_s: int):
        self._clock = clock
        self._pacer = Pacer(max_per_s)  # raises ValueError unless max_per_s is a positive integer
        self._lock = asyncio.Lock()  # waiters are served in arrival order

    @property
    def gap(self) -> timedelta:
        return self._pacer.gap

    @property
    def sent(self) -> int:
        return self._pacer.sent

    async def acquire(self) -> None:
        """Wait for the token, then count one message as sent now."""
        async with self._lock:
            now = self._clock.now()
            while not self._pacer.take(now):
                await self._clock.sleep((self._pacer.next_free(now) - now).total_seconds())
                now = self._clock.now()
