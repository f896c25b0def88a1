"""The regime desk (SPEC §10: event calendar, volatility surfaces, VIX history) inside the core.

`daemon.regime.RegimeDesk` is written against a host with `settings`, `log`, `quotes`, `book`,
`metrics` and an async `store`. `RegimeHost` is that host made of the core's own pieces: its
log lines and its store writes become effects (the store's `set_meta` completes at once, as a
`Persist`), so the desk's checkpoint runs synchronously (`run_now`). Loading the cached
histories and refreshing the operator's calendar source are I/O: the shell does them.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from config.models import Settings
from daemon.core.effects import Outbox
from daemon.positions import Book
from daemon.regime import RegimeDesk


class _Log:
    def __init__(self, out: Outbox):
        self._out = out

    def __getattr__(self, level: str) -> Any:
        def emit(event: str, **fields: Any) -> None:
            self._out.log("error" if level == "exception" else level, event, **fields)

        return emit


class _Journal:
    """The desk's journal writes (room journal's `append(op, **payload)`) as Persist effects."""

    def __init__(self, out: Outbox):
        self._out = out

    def append(self, op: str, **payload: Any) -> None:
        self._out.persist(op, **payload)


class _Store:
    """The desk's writes as Persist effects (nothing to await)."""

    def __init__(self, out: Outbox):
        self._out = out

    async def set_meta(self, key: str, value: str) -> None:
        self._out.persist("set_meta", key=key, value=value)

    async def get_meta(self, key: str) -> str | None:
        return None


class RegimeHost:
    def __init__(self, settings: Settings, out: Outbox, quotes: Any, book: Book):
        self.settings = settings
        self.log = _Log(out)
        self.quotes = quotes
        self.book = book
        self.metrics = None
        self.store = _Store(out)
        self.journal = _Journal(out)
        self._out = out

    def notify(self, kind: str, text: str) -> None:
        """Tell the operator: a `Notify` effect, which the shell sends (never the core)."""
        self._out.notify(kind, text)


def make_regime(settings: Settings, out: Outbox, quotes: Any, book: Book) -> RegimeDesk:
    return RegimeDesk(RegimeHost(settings, out, quotes, book))


def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (its only awaits are the host's immediate store calls)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a regime step tried to wait inside the core")
