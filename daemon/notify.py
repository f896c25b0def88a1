"""systemd's sd_notify protocol, without libsystemd: datagrams to $NOTIFY_SOCKET.

The engine sends READY=1 once it is reconciled and accepting signals, STATUS=<text> as its
state changes, STOPPING=1 when it shuts down; `watchdog_loop` sends WATCHDOG=1 at half
of WatchdogSec while the event loop turns and the engine says it is healthy, so systemd
restarts a daemon whose loop is stuck. Outside systemd (no NOTIFY_SOCKET) every call is a
cheap no-op returning False.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

from daemon.logging import get_logger

log = get_logger("daemon.notify")

Sleep = Callable[[float], Awaitable[None]]


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):  # abstract namespace: a leading NUL byte instead of '@'
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock and anything else: not for us


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one notification (e.g. "READY=1", "STATUS=reconciling", "WATCHDOG=1").

    Returns True when sent. Never raises: a lost notification must not stop trading
    (systemd's own timeouts catch a daemon that never gets READY out).
    """
    env = os.environ if env is None else env
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
        return True
    except OSError as exc:
        log.warning("sd_notify_failed", state=state.split("=", 1)[0], error=str(exc))
        return False


def ready(status: str | None = None, env: Mapping[str, str] | None = None) -> bool:
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""), env)


def status(text: str, env: Mapping[str, str] | None = None) -> bool:
    # One line: a newline would start another assignment.
    return notify("STATUS=" + " ".join(text.split()), env)


def stopping(env: Mapping[str, str] | None = None) -> bool:
    return notify("STOPPING=1", env)


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of WatchdogSec (systemd's advice), or None when the watchdog is off or for another pid."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1_000_000 / 2


async def watchdog_loop(interval_s: float, healthy: Callable[[], bool] | None = None,
                        env: Mapping[str, str] | None = None, sleep: Sleep = asyncio.sleep) -> None:
    """Ping WATCHDOG=1 every `interval_s` while `healthy()` says so; runs until cancelled.

    A blocked event loop never reaches the ping, and an unhealthy engine skips it, so
    systemd kills and restarts the unit. Wall time on purpose (`asyncio.sleep`, not the
    engine's clock): the watchdog watches this process, not the market.
    """
    was_healthy = True
    while True:
        try:
            ok = healthy() if healthy is not None else True
        except Exception as exc:
            log.warning("watchdog_health_check_failed", error=f"{type(exc).__name__}: {exc}")
            ok = False
        if ok:
            notify("WATCHDOG=1", env)
        elif was_healthy:
            log.error("watchdog_withheld", reason="engine reports unhealthy")
        was_healthy = ok
        await sleep(interval_s)


def start_watchdog(healthy: Callable[[], bool] | None = None,
                   env: Mapping[str, str] | None = None) -> asyncio.Task[None] | None:
    """Start `watchdog_loop` when systemd asked for a watchdog; None otherwise. Cancel on shutdown."""
    interval = watchdog_interval_s(env)
    if interval is None or not (os.environ if env is None else env).get("NOTIFY_SOCKET"):
        return None
    return asyncio.get_running_loop().create_task(watchdog_loop(interval, healthy, env), name="sd-watchdog")
