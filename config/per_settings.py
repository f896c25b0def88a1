"""`per_settings`: compute something from a Settings object once, not on every call.

Settings are frozen (every model is `Frozen`, pydantic refuses assignment), so anything derived only
from one Settings object stays true for that object's life. The memo is keyed by identity (a model's
hash would walk every field) and holds the settings themselves, so an id cannot be reused while its
entry lives; a process has a handful of Settings at most (one per profile, a few in tests).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_MAX_ENTRIES = 16  # more than any process holds at once; past it the memo starts over


def per_settings(build: Callable[[Any], T]) -> Callable[[Any], T]:
    memo: dict[int, tuple[object, T]] = {}

    @functools.wraps(build)
    def cached(settings: Any) -> T:
        entry = memo.get(id(settings))
        if entry is not None and entry[0] is settings:
            return entry[1]
        if len(memo) >= _MAX_ENTRIES:
            memo.clear()
        value = build(settings)
        memo[id(settings)] = (settings, value)
        return value

    return cached
