"""The injected clock. Live and replay run the same engine; only this (with the feed and broker) differs.

All times are timezone-aware in America/New_York, the exchange's zone.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import datetime, timedelta
from typing import Protocol

from market.session import EXCHANGE_TZ


class Clock(Protocol):
    wall: bool  # its sleep follows the wall clock (a live shell may time with the loop's own timers)

    def now(self) -> datetime:
        """Exchange-local, timezone-aware."""

    async def sleep(self, seconds: float) -> None: ...

    async def turns(self) -> None:
        """Let the work the last event started run to its next wait: one loop turn on the live clock,
        the settling rounds of a virtual one (declared here, not sniffed by its callers)."""


class LiveClock:
    wall = True

    def now(self) -> datetime:
        return datetime.now(EXCHANGE_TZ)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def turns(self) -> None:
        await asyncio.sleep(0)


class VirtualClock:
    """Time moves only when the replay feed calls `advance_to`.

    `sleep` parks the caller until virtual time reaches its deadline; `advance_to` wakes
    sleepers in deadline order, setting `now` to each deadline before waking it, and lets
    the loop run the woken tasks (and anything they schedule at or before the target)
    before moving on.
    """

    wall = False

    def __init__(self, start: datetime, settle_rounds: int = 8):
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        self._now = start.astimezone(EXCHANGE_TZ)
        self._timers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._settle_rounds = settle_rounds

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + timedelta(seconds=seconds), next(self._seq), fut))
        await fut

    async def turns(self) -> None:
        await VirtualClock.settle(self)

    async def settle(self) -> None:
        """Give woken tasks a few loop turns to run to their next await."""
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    async def advance_to(self, target: datetime) -> None:
        target = target.astimezone(EXCHANGE_TZ)
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            when, _, fut = heapq.heappop(self._timers)
            if when > self._now:
                self._now = when
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        if target > self._now:
            self._now = target
        await self.settle()

    @property
    def pending_timers(self) -> int:
        return sum(1 for _, _, f in self._timers if not f.done())
