"""sd_notify over a real AF_UNIX datagram socket (path and abstract namespace)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import notify as sd


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_status_stopping_reach_the_socket(listener: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = listener
    assert sd.ready("accepting signals", env)
    assert received(sock) == "READY=1\nSTATUS=accepting signals"
    assert sd.status("reconciling\n3 positions", env)
    assert received(sock) == "STATUS=reconciling 3 positions"
    assert sd.stopping(env)
    assert received(sock) == "STOPPING=1"


def test_abstract_namespace() -> None:
    name = f"tradingd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert sd.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert received(sock) == "WATCHDOG=1"
    finally:
        sock.close()


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_without_a_usable_socket_it_is_a_no_op(value: str) -> None:
    assert sd.notify("READY=1", {"NOTIFY_SOCKET": value} if value else {}) is False


def test_a_dead_socket_never_raises(tmp_path: Path) -> None:
    assert sd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


@pytest.mark.parametrize(("env", "expected"), [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_sec(env: dict[str, str], expected: float | None) -> None:
    assert sd.watchdog_interval_s(env) == expected


async def test_watchdog_pings_only_while_healthy(listener: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = listener
    sock.setblocking(False)
    health = iter([True, False, True])
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await sd.watchdog_loop(7.5, lambda: next(health), env, sleep=fake_sleep)
    pings = []
    while True:
        try:
            pings.append(sock.recv(64).decode())
        except BlockingIOError:
            break
    assert pings == ["WATCHDOG=1", "WATCHDOG=1"]  # the unhealthy turn sent nothing
    assert sleeps == [7.5, 7.5, 7.5]


async def test_watchdog_health_check_that_raises_counts_as_unhealthy(
        listener: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = listener
    sock.setblocking(False)

    def broken() -> bool:
        raise RuntimeError("engine gone")

    async def once(_: float) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await sd.watchdog_loop(1.0, broken, env, sleep=once)
    with pytest.raises(BlockingIOError):
        sock.recv(64)


async def test_start_watchdog_only_under_systemd(listener: tuple[socket.socket, dict[str, str]]) -> None:
    sock, env = listener
    sock.setblocking(False)
    assert sd.start_watchdog(env={}) is None
    assert sd.start_watchdog(env=env) is None  # socket but no WatchdogSec
    task = sd.start_watchdog(env={**env, "WATCHDOG_USEC": "60000000"})
    assert task is not None
    try:
        assert await asyncio.get_running_loop().sock_recv(sock, 64) == b"WATCHDOG=1"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
