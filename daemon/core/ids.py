"""Ids the core hands out itself, so a decision never waits for a database to number it.

Each counter starts after the highest id the store holds (restored at start-up) and only
grows (SPEC §6.1: order ids never reused). Replayed from the same inputs, the same ids come out.
"""

from __future__ import annotations


class Counter:
    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def start_after(self, highest: int) -> None:
        self.last = max(self.last, highest)

    def __call__(self) -> int:
        self.last += 1
        return self.last
