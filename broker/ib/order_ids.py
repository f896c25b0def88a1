"""One order-id sequence per IB account, shared by every profile trading it (SPEC §6.1).

IB refuses an id lower than one it has already seen on the account (103, duplicate order id),
whichever client used it. Two daemons (0dte and 7dte) on one account therefore take turns: a
daemon holds the account's turn from the moment it picks an id until that order was placed or
given up, and picks the id above every id seen at the gateway (reqIds, asked while holding the
turn, and every openOrder/orderStatus/execution from any client). The turn is an exclusive
`flock` on a file named after the gateway and account, so it holds between processes on one
host (the documented setup: both profiles as systemd instances next to one gateway). A turn
held longer than `max_hold_s` (a sender that died between id and place) is given back, so one
stuck daemon can never stop the other's exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
from pathlib import Path

import structlog

log = structlog.get_logger("broker.ib")

POLL_S = 0.002  # how often a waiting daemon tries the lock again (turns last milliseconds)


def lock_path(directory: str, host: str, port: int, account: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{host}-{port}-{account}")
    return Path(directory) / f"tradingd-ib-order-ids-{safe}.lock"


class AccountTurn:
    def __init__(self, path: Path, *, max_hold_s: float, max_wait_s: float):
        """Waits and hold limits are wall time on purpose: the other holder is another process."""
        self.path = path
        self._max_hold_s = max_hold_s
        self._max_wait_s = max_wait_s
        self._fd: int | None = None
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    async def acquire(self) -> bool:
        """Take the account's turn; False (logged) when it could not be had within `max_wait_s`:
        the caller goes on without it rather than hold an exit back."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if loop.time() >= deadline:
                    os.close(fd)
                    log.warning("ib_order_id_turn_timeout", path=str(self.path), waited_s=self._max_wait_s)
                    return False
                await asyncio.sleep(POLL_S)
        self._fd = fd
        self._expiry = loop.call_later(self._max_hold_s, self._expired)
        return True

    def release(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _expired(self) -> None:
        log.warning("ib_order_id_turn_expired", path=str(self.path), held_s=self._max_hold_s)
        self._expiry = None
        self.release()
