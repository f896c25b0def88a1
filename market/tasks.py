"""Background tasks held until they end, each failure logged with a reason code.

One helper for the live shell, its effects lane and the IB session (broker/ may not import daemon/,
so it sits in this leaf package). An unheld task may be collected mid-run; an unlogged failure is
only an "exception was never retrieved" line at exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Tasks(set[asyncio.Task[Any]]):
    """The running tasks (a set: iterate, cancel, gather them); `spawn` adds one, its end removes it."""

    def __init__(self, log: Any, event: str = "task_failed"):
        super().__init__()
        self._log = log
        self._event = event

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """`name` defaults to the coroutine's qualified name: the failure line says which job broke."""
        task = asyncio.get_running_loop().create_task(coro, name=name or getattr(coro, "__qualname__", None))
        self.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._log.error(self._event, code="task_failed", task=task.get_name(), error=repr(exc), exc_info=exc)

    # a set of tasks compares and hashes by identity: two holders are never "equal"
    __eq__ = object.__eq__  # type: ignore[assignment]
    __hash__ = object.__hash__  # type: ignore[assignment]
