"""The account's market-data lines, shared by every profile trading it (SPEC §6.1).

IB counts lines per account (100 by default), streams and snapshots alike; the 0dte and 7dte daemons on
one account draw from the same budget. Each daemon publishes how many lines it holds in a small JSON file
named after the gateway and account (next to the order-id turn file), under an exclusive `flock`; before
it takes a line it adds what the others hold. An entry of a process that is gone (its pid no longer
runs) counts nothing, so a crashed daemon does not hold lines for ever. IB's own 101 stays the authority
for anything this does not see (another host, TWS windows).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from pathlib import Path

import structlog

log = structlog.get_logger("broker.ib")


def lines_path(directory: str, host: str, port: int, account: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{host}-{port}-{account}")
    return Path(directory) / f"tradingd-ib-lines-{safe}.json"


class AccountLines:
    def __init__(self, path: Path, owner: str):
        self.path = path
        self.owner = owner  # "<pid>:<client id>": unique per connection on this host

    def others(self) -> int:
        """Lines the other live daemons on this account hold now."""
        try:
            return sum(n for key, n in self._update(None).items() if key != self.owner)
        except OSError as exc:  # an unreadable file must not stop quotes: IB's 101 still guards
            log.warning("ib_lines_file_unusable", path=str(self.path), error=str(exc))
            return 0

    def publish(self, lines: int) -> None:
        try:
            self._update(lines)
        except OSError as exc:
            log.warning("ib_lines_file_unusable", path=str(self.path), error=str(exc))

    def _update(self, mine: int | None) -> dict[str, int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r+") as f:
                try:
                    held = {k: int(v) for k, v in json.load(f).items()}
                except (ValueError, AttributeError, TypeError):
                    held = {}
                held = {k: v for k, v in held.items() if _alive(k)}
                if mine is not None:
                    held[self.owner] = mine
                    f.seek(0)
                    f.truncate()
                    json.dump(held, f)
            return held
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _alive(owner: str) -> bool:
    pid = owner.split(":", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
