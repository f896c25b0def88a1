"""One thread that runs database work in order, so the event loop never waits on a disk or a lock.

A single thread (not a pool) because order matters: an intent must be committed before its
`sent` mark, a fill before the position read that follows it. Callers on the loop await a
future that the thread resolves through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

from daemon.store.errors import StoreError

log = structlog.get_logger("tradingd.store")

_STOP = object()


class Writer:
    def __init__(self, name: str):
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.failed = 0

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the writer thread after everything queued before; return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._put((fn, args, loop, future))
        return await future

    def on_thread(self) -> bool:
        """Whether the caller is this writer's thread."""
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue `fn(*args)` and return at once; failures are logged and counted."""
        self._put((fn, args, None, None))

    async def drain(self) -> None:
        await self.call(_nothing)

    async def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def _put(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed", "store_closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, args, loop, future = item
            try:
                result = fn(*args)
            except Exception as exc:  # every failure goes back to its caller (or the log)
                if future is None:
                    self.failed += 1
                    log.error("store_submit_failed", operation=_name(fn, args), error=f"{type(exc).__name__}: {exc}")
                else:
                    _resolve(loop, future, exc, failed=True)
                continue
            if future is not None:
                _resolve(loop, future, result, failed=False)


def _nothing() -> None:
    return None


def _name(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    target = args[0] if args and callable(args[0]) else fn
    return getattr(target, "__name__", repr(target))


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any, *, failed: bool) -> None:
    def settle() -> None:
        if future.done():  # the awaiting task was cancelled; the work itself is done
            return
        if failed:
            future.set_exception(value)
        else:
            future.set_result(value)

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is gone; nobody is waiting any more
        pass
