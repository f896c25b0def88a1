"""Start to ready with a store holding a year of 5-minute checkpoints (issue 8: <= 3 s).

A SQLite store is migrated and filled with one checkpoint every 5 minutes of every regular
session of a year of XNYS sessions (2025: ~19,700 rows, what the daemon's checkpoint job writes),
then `tradingd run --profile 0dte --broker ib --db <that store> --api-port 0` is started as a
real process, live (a LiveClock, as under systemd), against our TWS-protocol fake gateway
(`tests/fakegw`, on an ephemeral port in a thread of this process: `--broker sim` without a
quote source is refused, and a replay would claim the store), with NOTIFY_SOCKET pointing at a
datagram socket of ours: "ready" is the moment its READY=1 arrives, what systemd waits for (after
the imports, the calendar, the store's migrations, the broker connection and start-up
reconciliation, and the HTTP API). Then it is stopped with SIGTERM.
Usage: python bench/bench_start.py [starts] [--json]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Sample  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TRADINGD = Path(sys.executable).parent / "tradingd"
YEAR = 2025
READY_TIMEOUT_S = 60


def fill_store(path: Path, profile: str = "0dte") -> int:
    """Migrate a fresh store at `path` and write a year of 5-minute checkpoints; returns the rows."""
    from sqlalchemy import insert

    from daemon.store import Store
    from daemon.store.models import CheckpointRow
    from market import calendar

    url = f"sqlite:///{path}"

    async def migrate() -> None:
        store = Store(profile, url)
        await store.upgrade()
        await store.close()

    asyncio.run(migrate())
    rows = []
    day = date(YEAR, 1, 1)
    equity = Decimal("100000")
    while day.year == YEAR:
        session = calendar.session_for(day)
        if session is not None:
            at = session.open
            while at <= session.close:
                rows.append({"profile": profile, "at": at, "equity": equity, "session_pnl": Decimal("12.50"),
                             "drawdown": Decimal("0.0125"), "exposure": Decimal("4200"), "open_positions": 2,
                             "greeks": {"delta": "35.5", "gamma": "2.1"}, "breaker_level": 0, "state": "ACTIVE"})
                at += timedelta(minutes=5)
        day += timedelta(days=1)
    from daemon.store.database import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(CheckpointRow), rows[start:start + 5000])
    engine.dispose()
    return len(rows)


@contextmanager
def fake_gateway() -> Iterator[int]:
    """The fake IB Gateway serving on an ephemeral port from its own event loop thread; yields the port."""
    from tests.fakegw import FakeGateway

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fakegw", daemon=True)
    thread.start()
    gw = FakeGateway()
    asyncio.run_coroutine_threadsafe(gw.start(), loop).result(timeout=30)
    gw.market.set_stock("SPY", "470.00", "470.02")
    gw.market.set_stock("QQQ", "400.00", "400.02")
    gw.market.set_stock("IWM", "200.00", "200.02")
    gw.market.set_index("VIX", "18.5")
    # listed chains, as a real gateway answers the start-up's chain requests (without them each fails)
    from datetime import date as day

    from market.session import EXCHANGE_TZ

    today = datetime.now(EXCHANGE_TZ).date()
    expiries = [today + timedelta(days=d) for d in range(0, 8)]
    for symbol, center in (("SPY", 470), ("QQQ", 400), ("IWM", 200)):
        gw.market.add_chain(symbol, [e for e in expiries if isinstance(e, day)], range(center - 10, center + 11))
    gw.account_values(net_liquidation="200000", buying_power="800000", cash="200000")
    try:
        yield gw.port
    finally:
        asyncio.run_coroutine_threadsafe(gw.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def start_to_ready(db: Path, state_dir: Path, port: int) -> float:
    """Seconds from spawning the daemon to its READY=1 (systemd's notion of started)."""
    sock_path = state_dir / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(READY_TIMEOUT_S)
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "TRADINGD_DAEMON__STATE_DIR": str(state_dir),
               "TRADINGD_BROKER__IB__PORT": str(port), "TRADINGD_BROKER__IB__CLIENT_ID": "43"}
        env.pop("WATCHDOG_USEC", None)
        began = time.perf_counter()
        proc = subprocess.Popen([str(TRADINGD), "run", "--profile", "0dte", "--broker", "ib", "--db", f"sqlite:///{db}",
                                 "--api-port", "0"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            while True:
                message = sock.recv(4096).decode(errors="replace")
                if "READY=1" in message.split("\n"):
                    return time.perf_counter() - began
        except TimeoutError:
            proc.kill()
            raise RuntimeError(f"no READY=1 within {READY_TIMEOUT_S} s: {proc.stderr.read()[-2000:]!r}") from None  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            sock_path.unlink(missing_ok=True)


def compile_tree() -> None:
    """Byte-compile tradingd's own packages first, as an installed daemon has them (pip compiles on
    install): with PYTHONDONTWRITEBYTECODE set (as here) every start would otherwise compile ~300
    modules from source, ~1 s that no systemd start of an installed daemon pays."""
    import compileall

    for package in ("broker", "config", "daemon", "exits", "market", "risk"):
        compileall.compile_dir(str(REPO / package), quiet=1)


def figures(starts: int = 1) -> list[Sample]:
    """One bench run: a fresh year-of-checkpoints store, `starts` starts (their median)."""
    compile_tree()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "year.db"
        rows = fill_store(db)
        with fake_gateway() as port:
            times = sorted(start_to_ready(db, Path(tmp), port) for _ in range(starts))
    note = f"{rows} checkpoints ({YEAR}); ready = READY=1 on NOTIFY_SOCKET; live, --broker ib on the fake gateway, SQLite"
    return [Sample("start_to_ready_year_of_checkpoints", times[len(times) // 2], "s", "<=", 3, note)]


if __name__ == "__main__":
    out = figures(int(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else 1)
    if "--json" in sys.argv:
        print(json.dumps([s.__dict__ for s in out]))
    else:
        for s in out:
            print(f"{s.name}: {s.value:.3f} {s.unit} ({s.note})")
