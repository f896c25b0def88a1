"""Storage faults (SPEC §6.2, issue 8 "Storage faults"), with the daemon as a real process.

Two 0dte positions of one replayed session: a call at 10:29 whose exits run through the morning,
and a put at 15:00 (loss alert, half-close, the close-out at 15:43 to be flat by 15:45). From 15:01
until after the close-out the store cannot write: its tmpfs is full, or its file system is read-only,
or its PostgreSQL is stopped.
In each case:
- every exit, the close-out included, happens at the same virtual time as in the fault-free run;
- the probe signal at 15:15 is refused `store_unavailable` (a good day refuses it for its confidence);
- /healthz answers 503 with the reason while the fault lasts;
- once the store is back, it holds exactly the rows of the fault-free run, table by table, but for
  the probe's own signal and decision.

Why the read-only case does not call `mount -o remount,ro`: Linux refuses to remount a file
system read-only while any file on it is open for writing (EBUSY), and the daemon always holds
its database open; the kernel only turns such a file system read-only on its own (ext4's
errors=remount-ro), for good. So the test makes the store's directory read-only where the daemon
meets it, at its write calls: a shim (LD_PRELOAD) answers EROFS to every write under that
directory while a flag file exists, as a read-only file system does.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from daemon.store import StoreError
from daemon.store.lock import StoreLock
from tests.daemon.storage_faults import (
    FAULT_FROM,
    FAULT_UNTIL,
    PROBE_AT,
    SPEED,
    Daemon,
    PrivatePostgres,
    build_read_only_shim,
    exits,
    fill_disk,
    mount_tmpfs,
    one_day_data,
    probe_reason,
    run_args,
    table_rows,
    umount,
    virtual,
    without_probe,
)

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
CLOSEOUT = "15:43:00"  # flat by 15:45: the close-out starts two parent timeouts (120 s) before (SPEC §5.1)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return one_day_data(tmp_path_factory.mktemp("faults") / "data")


@pytest.fixture(scope="module")
def fault_free(replay: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """The same session without a fault: the rows every faulty run must end with."""
    data, signals = replay
    folder = tmp_path_factory.mktemp("fault-free")
    url = f"sqlite:///{folder / 'store.db'}"
    daemon = Daemon(run_args(data, signals, url, speed=0, api=False), folder / "state").start()
    assert daemon.finish() == 0, daemon.output()
    rows = table_rows(url)
    assert probe_reason(rows) == "confidence_below_threshold"
    fired = exits(rows)
    assert any(rule == "closeout" and at.endswith(f"T{CLOSEOUT}-05:00") for rule, _, _, at in fired), fired
    assert len([e for e in fired if e[3] > FAULT_FROM.isoformat()]) >= 3, fired  # exits inside the fault window
    return rows


def assert_locked_again(daemon: Daemon, url: str) -> None:
    """The server's restart ended the session holding the daemon's advisory lock: it takes it again."""
    deadline = time.monotonic() + 10
    while "store_lock_held" not in "".join(daemon.lines):
        assert time.monotonic() < deadline, "the daemon did not take its lock again\n" + daemon.output()
        time.sleep(0.02)
    assert daemon.proc is not None
    if daemon.proc.poll() is None:  # still running: a second daemon would be refused
        try:
            StoreLock(url, "0dte").acquire().release()
        except StoreError as exc:
            assert exc.code == "store_locked"
        else:
            assert daemon.proc.poll() is not None, "the lock was free while the daemon ran\n" + daemon.output()


def run_through_fault(daemon: Daemon, *, break_store: Callable[[], None], mend_store: Callable[[], None],
                      after_mend: Callable[[], None] | None = None) -> None:
    """Start `daemon`; once its position is open break the store, check what must hold while it is
    broken, mend it after the close-out, and let the session run to its end."""
    daemon.start()
    daemon.wait_api()
    daemon.wait_until(lambda s: s["open_positions"] >= 1 and virtual(s) >= FAULT_FROM, "the open position")
    break_store()
    try:
        status = daemon.wait_until(lambda s: s["store"]["available"] is False, "the store to be found unavailable")
        assert virtual(status) < PROBE_AT, "found too late for the probe"
        code, health = daemon.get("/healthz")
        assert code == 503 and health["reason"] == "store_unavailable" and health["message"], health
        metrics = daemon.text("/metrics")  # what the TradingdStoreUnavailable alert reads
        assert re.search(r'^tradingd_store_available\{[^}]*\} 0\.0$', metrics, re.M), metrics[-2000:]
        assert status["open_positions"] >= 1
        daemon.wait_until(lambda s: virtual(s) >= FAULT_UNTIL, "the close-out")
        code, health = daemon.get("/healthz")
        assert code == 503, health  # still away: nothing was written behind the fault's back
    finally:
        mend_store()
    daemon.wait_until(lambda s: s["store"]["available"] is True and s["store"]["pending"] == 0,
                      "the journal to be flushed")
    if after_mend is not None:
        after_mend()
    assert daemon.finish() == 0, daemon.output()
    out = "".join(daemon.lines)
    assert "store_unavailable" in out and "store_available" in out


def assert_same_store(faulty_url: str, fault_free: dict[str, list[Any]]) -> None:
    rows = table_rows(faulty_url)
    assert probe_reason(rows) == "store_unavailable"
    assert exits(rows) == exits(fault_free)  # every exit at the same virtual time, the close-out too
    faulty, good = without_probe(rows), without_probe(fault_free)
    for table in good:
        assert faulty[table] == good[table], f"table {table} differs"


# ---------------------------------------------------------------------------- SQLite on a disk that fills

def test_a_full_disk_mid_session_disarms_nothing_and_loses_nothing(replay: tuple[Path, Path], tmp_path: Path,
                                                                    fault_free: dict[str, list[Any]]) -> None:
    data, signals = replay
    disk = tmp_path / "disk"
    why = mount_tmpfs(disk, "8m")
    if why is not None:
        pytest.skip(f"cannot mount a tmpfs for the full-disk case: {why}")
    daemon = Daemon(run_args(data, signals, f"sqlite:///{disk / 'store.db'}", speed=SPEED), tmp_path / "state")
    filler: list[Path] = []
    try:
        run_through_fault(daemon, break_store=lambda: filler.append(fill_disk(disk)),
                          mend_store=lambda: [f.unlink() for f in filler if f.exists()])
        assert "database or disk is full" in "".join(daemon.lines)
        assert_same_store(f"sqlite:///{disk / 'store.db'}", fault_free)
    finally:
        daemon.kill()
        umount(disk)


# ---------------------------------------------------------------------------- SQLite on a read-only file system

def test_a_read_only_store_mid_session_disarms_nothing_and_loses_nothing(replay: tuple[Path, Path], tmp_path: Path,
                                                                        fault_free: dict[str, list[Any]]) -> None:
    data, signals = replay
    shim = build_read_only_shim(tmp_path)
    if isinstance(shim, str):
        pytest.skip(shim)
    disk, flag = tmp_path / "disk", tmp_path / "read-only"
    disk.mkdir()
    daemon = Daemon(run_args(data, signals, f"sqlite:///{disk / 'store.db'}", speed=SPEED), tmp_path / "state",
                    extra_env={"LD_PRELOAD": str(shim), "ROFS_DIR": str(disk.resolve()), "ROFS_FLAG": str(flag)})
    try:
        run_through_fault(daemon, break_store=flag.touch, mend_store=lambda: flag.unlink(missing_ok=True))
        assert "disk I/O error" in "".join(daemon.lines) or "readonly" in "".join(daemon.lines)
        assert_same_store(f"sqlite:///{disk / 'store.db'}", fault_free)
    finally:
        daemon.kill()


# ---------------------------------------------------------------------------- PostgreSQL stopped mid-session

@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    folder = Path(tempfile.mkdtemp(prefix="tradingd-pg-"))  # outside pytest's 0700 tree: postgres must enter it
    os.chmod(folder, 0o755)
    server = PrivatePostgres(folder / "pg")
    why = server.init()
    if why is not None:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot start a private PostgreSQL: {why}")
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_stopped_mid_session_disarms_nothing_and_loses_nothing(replay: tuple[Path, Path], tmp_path: Path,
                                                                        fault_free: dict[str, list[Any]],
                                                                        private_postgres: PrivatePostgres) -> None:
    data, signals = replay
    daemon = Daemon(run_args(data, signals, private_postgres.url, speed=SPEED), tmp_path / "state")
    try:
        run_through_fault(daemon, break_store=private_postgres.stop, mend_store=private_postgres.start,
                          after_mend=lambda: assert_locked_again(daemon, private_postgres.url))
        assert_same_store(private_postgres.url, fault_free)
    finally:
        daemon.kill()


# ---------------------------------------------------------------------------- one daemon per store

def test_a_second_daemon_on_the_same_store_refuses_before_it_touches_the_broker(
        replay: tuple[Path, Path], tmp_path: Path, store_url: str) -> None:
    data, signals = replay
    first = Daemon(run_args(data, signals, store_url, speed=SPEED), tmp_path / "state").start()
    try:
        first.wait_api()
        second = Daemon(run_args(data, signals, store_url, speed=0, api=False), tmp_path / "state2").start()
        assert second.finish(timeout=60) == 2
        time.sleep(0.1)  # the reader thread has the last line
        out = "".join(second.lines)
        assert "store_locked" in out and "another tradingd" in out, out
        for touched in ("broker_connection", "engine_started", "api_listening"):
            assert touched not in out, out
        assert first.proc is not None and first.proc.poll() is None  # the first one runs on, untouched
    finally:
        first.kill()
