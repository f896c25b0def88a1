"""The shell around the Core: operators and the API talk to the core through `CoreControl`.

The core is synchronous and owned by one driver (the replay loop's thread, or the live
shell's event loop). `CoreControl` implements `daemon.control.EngineControl` by handing each
signal or operator command to that driver as an event stamped with the driver's time, and
awaiting the answer; status and positions are read as they are (cheap, non-blocking).

`Inbox` is the hand-over for a driver on another thread (the replay): the API's coroutine
puts (event factory, future) in a thread-safe queue; the driver takes them between its
own events (`drain_inbox`), handles them on the core and resolves the futures on the
caller's loop once the answer is known (a signal waiting for quotes answers later).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
from collections.abc import Callable
from datetime import datetime
from typing import Any

from daemon.control import HTTP_NOT_ACCEPTING, ControlError, JsonDict, SignalOutcome
from daemon.core.core import Core
from daemon.core.events import OperatorCommand, SignalEvent

EventFactory = Callable[[datetime], Any]


class Inbox:
    """Events for a core driven on another thread (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[EventFactory, asyncio.Future[Any], asyncio.AbstractEventLoop]] = (
            queue.SimpleQueue())
        self._waiting: dict[int, tuple[asyncio.Future[Any], asyncio.AbstractEventLoop]] = {}
        self._tickets = itertools.count(1)
        self.closed = False

    def ticket(self) -> int:
        return next(self._tickets)

    async def submit(self, factory: EventFactory) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((factory, future, loop))
        return await future

    def empty(self) -> bool:
        return self._queue.empty()

    def drain(self, core: Core, now: datetime) -> bool:
        """Handle what was submitted (driver's thread); True when something was."""
        handled = False
        while not self._queue.empty():
            factory, future, loop = self._queue.get_nowait()
            handled = True
            event = factory(now)
            result = core.handle(event)
            if isinstance(event, SignalEvent) and result is None and event.ticket is not None:
                self._waiting[event.ticket] = (future, loop)
            else:
                loop.call_soon_threadsafe(_resolve, future, result)
        return handled

    def answer(self, core: Core) -> None:
        """Resolve the signals the core has decided since (driver's thread)."""
        if not core.answers:
            return
        answers, core.answers = core.answers, []
        for ticket, outcome in answers:
            waiting = self._waiting.pop(ticket, None) if ticket is not None else None
            if waiting is not None:
                future, loop = waiting
                loop.call_soon_threadsafe(_resolve, future, outcome)

    def close(self) -> None:
        """The driver stopped: everything still waiting is answered 'not accepting'."""
        self.closed = True
        stopped = SignalOutcome(False, "not_accepting", HTTP_NOT_ACCEPTING, message="the replay has ended")
        for future, loop in self._waiting.values():
            loop.call_soon_threadsafe(_resolve, future, stopped)
        self._waiting.clear()
        while not self._queue.empty():
            _, future, loop = self._queue.get_nowait()
            loop.call_soon_threadsafe(_resolve, future, stopped)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class CoreControl:
    """`EngineControl` over a Core driven through an `Inbox`."""

    def __init__(self, core: Core, inbox: Inbox, now: Callable[[], datetime],
                 extra: Callable[[], JsonDict] | None = None):
        self.core = core
        self.inbox = inbox
        self.now = now
        self.extra = extra

    async def submit_signal(self, raw: JsonDict, source: str) -> SignalOutcome:
        if self.inbox.closed:
            return SignalOutcome(False, "not_accepting", HTTP_NOT_ACCEPTING, message="the engine is not running")
        ticket = self.inbox.ticket()
        result = await self.inbox.submit(lambda at: SignalEvent(raw, source, at, ticket))
        if not isinstance(result, SignalOutcome):
            return SignalOutcome(False, "internal_error", 500, message="internal error while deciding the signal")
        return result

    def status(self) -> JsonDict:
        for _ in range(3):  # read while the driver runs: a dict may change size under the reader
            try:
                status = self.core.status(self.now())
                break
            except RuntimeError:
                continue
        else:
            status = {"profile": self.core.profile}
        status["accepting_signals"] = not self.inbox.closed and self.core.connected
        if self.extra is not None:
            status.update(self.extra())
        return status

    def positions(self) -> list[JsonDict]:
        for _ in range(3):
            try:
                return self.core.positions()
            except RuntimeError:
                continue
        return []

    async def _command(self, action: str, actor: str, **args: str) -> JsonDict:
        if self.inbox.closed:
            raise ControlError("not_running", "the engine is not running", 503)
        answer = await self.inbox.submit(lambda at: OperatorCommand(action, actor, at, args))
        if not answer.get("ok"):
            raise ControlError(answer.get("error", "refused"), answer.get("message", ""),
                               404 if answer.get("error") == "not_blocked" else 409)
        return answer

    async def halt(self, reason: str, actor: str) -> JsonDict:
        return await self._command("halt", actor, reason=reason)

    async def resume(self, actor: str) -> JsonDict:
        return await self._command("resume", actor)

    async def flatten(self, reason: str, actor: str) -> JsonDict:
        return await self._command("flatten", actor, reason=reason)

    async def acknowledge(self, underlying: str, actor: str) -> JsonDict:
        return await self._command("ack", actor, underlying=underlying)
