"""Outgoing message pacing (SPEC §4.2, §6.1) as a pure state machine over injected times.

A token bucket that holds a single token, refilled every 1 / max_per_s: messages leave evenly
spaced, so any one-second span holds at most `max_per_s` of them. A bucket with a full second
of burst would send `max_per_s` at once and as many again a second later; the gateway, counting
by arrival with a little network jitter, would see the two bursts in one window and refuse
(IB error 100). No clock is read here: the caller says what time it is, so replays pace
identically and the synchronous core can ask when the next token is due (`next_free`).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


class Pacer:
    __slots__ = ("_gap", "_next", "sent")

    def __init__(self, max_per_s: int):
        if isinstance(max_per_s, bool) or not isinstance(max_per_s, int) or max_per_s <= 0:
            raise ValueError(f"pacer: max_per_s must be a positive integer, got {max_per_s!r}")
        # rounded up to the microsecond (datetime's resolution): never a hair faster than the limit
        self._gap = timedelta(microseconds=math.ceil(1_000_000 / max_per_s))
        self._next: datetime | None = None  # when the token is back
        self.sent = 0

    @property
    def gap(self) -> timedelta:
        return self._gap

    @property
    def free_at(self) -> datetime | None:
        """When the token is back after the last message (None: nothing was sent yet)."""
        return self._next

    def ready(self, now: datetime) -> bool:
        """The token is here at `now` (nothing is taken)."""
        return self._next is None or now >= self._next

    def take(self, now: datetime) -> bool:
        """Take the token for one message sent at `now`; False (nothing changes) when it is not back yet."""
        if self._next is not None and now < self._next:
            return False
        self._next = now + self._gap
        self.sent += 1
        return True

    def next_free(self, now: datetime) -> datetime:
        """The earliest moment at or after `now` a message may leave."""
        if self._next is None or now >= self._next:
            return now
        return self._next
