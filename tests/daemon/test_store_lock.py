"""One daemon per store (SPEC §6.2): the lock itself, on SQLite and PostgreSQL.

The refusal of a second `tradingd run` as a real process is in test_storage_faults.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.store import StoreError
from daemon.store.lock import STORE_LOCKED, StoreLock


def test_a_second_lock_on_the_same_state_is_refused_with_the_reason(store_url: str) -> None:
    first = StoreLock(store_url, "0dte").acquire()
    try:
        with pytest.raises(StoreError) as err:
            StoreLock(store_url, "0dte").acquire()
        assert err.value.code == STORE_LOCKED and "another tradingd" in str(err.value)
        StoreLock(store_url, "7dte").acquire().release()  # another profile is another daemon
    finally:
        first.release()
    StoreLock(store_url, "0dte").acquire().release()  # released: the next one may start


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tradingd-0dte.db'}"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from daemon.store.lock import StoreLock; "
        f"StoreLock({url!r}, '0dte').acquire(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError) as err:
            StoreLock(url, "0dte").acquire()
        assert f"pid {holder.pid}" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    StoreLock(url, "0dte").acquire().release()  # SIGKILL leaves no stale lock


@pytest.mark.postgres
def test_a_lock_whose_postgres_session_died_is_taken_again(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: a SQLite lock lives in the kernel, not in a session")
    from sqlalchemy import create_engine, text

    lock = StoreLock(store_url, "0dte").acquire()
    try:
        pid = lock._pg.execute(text("SELECT pg_backend_pid()")).scalar()  # noqa: SLF001 - the session to kill
        admin = create_engine(store_url)
        with admin.begin() as connection:  # the server restarting ends the session, and the lock with it
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        StoreLock(store_url, "0dte").acquire().release()  # free now: another daemon could take it
        assert lock.reacquire()
        with pytest.raises(StoreError):
            StoreLock(store_url, "0dte").acquire()
    finally:
        lock.release()


def test_a_live_daemon_on_a_locked_store_refuses_before_it_touches_the_broker(tmp_path: Path) -> None:
    """The live path (`--broker ib`): while another process holds the store's lock, `tradingd run` exits 2
    with `store_locked` and never opens a connection to the gateway (a listening socket counts them)."""
    import os
    import socket
    import threading

    url = f"sqlite:///{tmp_path / 'tradingd-0dte.db'}"
    gateway = socket.socket()
    gateway.bind(("127.0.0.1", 0))
    gateway.listen(8)
    gateway.settimeout(0.2)
    touched: list[object] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                touched.append(gateway.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    env = {**os.environ, "TRADINGD_DAEMON__STATE_DIR": str(tmp_path / "state"),
           "TRADINGD_BROKER__IB__PORT": str(gateway.getsockname()[1]), "TRADINGD_BROKER__IB__CONNECT_TIMEOUT_S": "2"}
    env.pop("JOURNAL_STREAM", None)
    tradingd = Path(sys.executable).parent / "tradingd"
    command = [str(tradingd), "run", "--profile", "0dte", "--broker", "ib", "--db", url, "--no-api"]
    try:
        with StoreLock(url, "0dte"):
            refused = subprocess.run(command, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True,
                                     text=True, timeout=120)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert STORE_LOCKED in refused.stdout + refused.stderr
        assert touched == [], "the refused daemon connected to the gateway"
        # The same command with the lock free does reach the gateway (so the socket above would have seen it).
        started = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[2], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                if touched:
                    break
                threading.Event().wait(0.1)
            assert touched, "a free daemon never connected: this test could not see a refusal"
        finally:
            started.kill()
            started.wait()
    finally:
        done.set()
        gateway.close()
        for connection in touched:
            connection.close()  # type: ignore[attr-defined]
