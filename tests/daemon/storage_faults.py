"""Helpers for test_storage_faults.py: the daemon as a real process, its store on a disk that can be
made to fail (a small tmpfs that fills, a directory whose writes fail as on a read-only file
system, a PostgreSQL instance of the test's own), and the store compared table by table."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daemon.store.database import make_engine
from daemon.store.models import Base
from market.clock import EXCHANGE_TZ

REPO = Path(__file__).resolve().parents[2]
TRADINGD = Path(sys.executable).parent / "tradingd"
TOKEN = "storage-fault-test-token"
DAY = "2019-02-11"
# Two 0dte positions. A SPY call at 10:29 whose exits run through the morning (tiers 1 and 2, the
# half-close, its stop at 14:48), and a SPY put at 15:00 that is open when the store fails at 15:01:
# its loss alert (15:02), its half-close (15:18) and the 15:45 close-out all fall inside the fault.
# A probe signal at 15:15 that a good day refuses for its confidence (so it adds nothing to a
# fault-free run) and a bad day for the store.
SIGNALS = [
    {"at": f"{DAY}T10:29:00-05:00", "signal": {
        "id": "entry-1", "profile": "0dte", "underlying": "SPY", "direction": "bullish", "strategy": "directional",
        "confidence": 0.7, "created_at": f"{DAY}T10:29:00-05:00"}},
    {"at": f"{DAY}T15:00:00-05:00", "signal": {
        "id": "entry-2", "profile": "0dte", "underlying": "SPY", "direction": "bearish", "strategy": "directional",
        "confidence": 0.7, "created_at": f"{DAY}T15:00:00-05:00"}},
    {"at": f"{DAY}T15:15:00-05:00", "signal": {
        "id": "probe-1", "profile": "0dte", "underlying": "SPY", "direction": "bearish", "strategy": "directional",
        "confidence": 0.5, "created_at": f"{DAY}T15:15:00-05:00"}},
    # After the close (refused alike in every run): it keeps the paced replay running ~7 s of wall time
    # after the fault, so the test sees the daemon recover (flush, lock taken again) while it still runs.
    {"at": f"{DAY}T18:00:00-05:00", "signal": {
        "id": "late-1", "profile": "0dte", "underlying": "SPY", "direction": "bearish", "strategy": "directional",
        "confidence": 0.7, "created_at": f"{DAY}T18:00:00-05:00"}},
]
PROBE = "probe-1"
PROBE_AT = datetime(2019, 2, 11, 15, 15, tzinfo=EXCHANGE_TZ)
FAULT_FROM = datetime(2019, 2, 11, 15, 1, tzinfo=EXCHANGE_TZ)  # the put is open (filled 15:00)
FAULT_UNTIL = datetime(2019, 2, 11, 15, 47, tzinfo=EXCHANGE_TZ)  # after the 15:45 close-out
SPEED = 1000  # virtual seconds per wall second: the session takes ~25 s, the fault ~3 s of it


def one_day_data(folder: Path) -> tuple[Path, Path]:
    """SPY and VIX minute bars of one session (all their daily bars), and the signals file."""
    source = REPO / "data" / "bundled" / "eqker"
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in ("SPY", "VIX"):
        lines = gzip.open(source / f"{symbol}_1min.csv.gz", "rt").read().splitlines()
        (folder / f"{symbol}_1min.csv").write_text("\n".join([lines[0], *(x for x in lines[1:] if x.startswith(DAY))])
                                                   + "\n")
        (folder / f"{symbol}_daily.csv").write_bytes(gzip.open(source / f"{symbol}_daily.csv.gz").read())
    signals = folder.parent / "signals.jsonl"
    signals.write_text("".join(json.dumps(s) + "\n" for s in SIGNALS))
    return folder, signals


@dataclass
class Daemon:
    """`tradingd run` as a process; its log lines collected; its API found from `api_listening`."""

    args: list[str]
    state_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    url: str | None = None
    proc: subprocess.Popen[str] | None = None

    def start(self) -> Daemon:
        env = {**os.environ, "TRADINGD_DAEMON__STATE_DIR": str(self.state_dir), "TRADINGD_API_TOKEN": TOKEN,
               "TRADINGD_DAEMON__API__LIMITS__SIGNALS_PER_S": "1000",
               "TRADINGD_DAEMON__API__LIMITS__SIGNALS_BURST": "1000", "PYTHONUNBUFFERED": "1", **self.extra_env}
        env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen([str(TRADINGD), "run", *self.args], cwd=REPO, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if self.url is None and "api_listening" in line:
                self.url = _api_url(line)

    def wait_api(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while self.url is None:
            assert self.proc is not None and self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, "the API never came up\n" + self.output()
            time.sleep(0.02)
        return self.url

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def text(self, path: str) -> str:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()

    def now(self) -> datetime:
        _, status = self.get("/v1/status")
        return datetime.fromisoformat(status["now"])

    def wait_until(self, condition: Callable[[dict[str, Any]], bool], what: str,
                   timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None and self.proc.poll() is None, f"exited before {what}\n" + self.output()
            try:
                code, status = self.get("/v1/status")
                if code == 200 and condition(status):
                    return status
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n" + self.output()
            time.sleep(0.05)  # under the API's per-token rate (daemon.api.limits); a 429 is "not yet"

    def finish(self, timeout: float = 180) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def output(self) -> str:
        return "".join(self.lines[-80:])


def _api_url(line: str) -> str | None:
    """The URL of an `api_listening` line, in JSON (the default without a terminal) or key=value form."""
    if line.lstrip().startswith("{"):
        try:
            return str(json.loads(line)["url"])
        except (ValueError, KeyError):
            return None
    return line.split("url=")[1].split()[0].strip('"') if "url=" in line else None


def run_args(data: Path, signals: Path, db_url: str, *, speed: float, api: bool = True) -> list[str]:
    return ["--profile", "0dte", "--broker", "sim", "--replay", str(data), "--speed", str(speed), "--signals",
            str(signals), "--db", db_url, *(["--api-port", "0"] if api else ["--no-api"])]


def virtual(status: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(status["now"])


# ---------------------------------------------------------------------------- the store, table by table

def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (every column, through the store's own column types, so SQLite and
    PostgreSQL compare alike), ordered by primary key; alembic's own table left out."""
    engine = make_engine(url)
    rows: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                found = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
                rows[table.name] = [tuple(_plain(v) for v in row) for row in found]
    finally:
        engine.dispose()
    return rows


_SIM_EXEC_ID = re.compile(r"^SIM-[0-9a-f]+-(\d+(?:-\d+)?)$")  # SIM-<token>-<order id>-<filled so far>


def _plain(value: Any) -> Any:
    if isinstance(value, str) and (match := _SIM_EXEC_ID.match(value)):
        # The sim's exec ids carry a token of the process that made them (unique across restarts,
        # broker/sim.py); what follows it (order id, filled so far) is the run's own. Compared without the token.
        return f"SIM-*-{match.group(1)}"
    if isinstance(value, datetime):
        return value.astimezone(EXCHANGE_TZ).isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def without_probe(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows less what the probe signal itself adds (its signal row and its decision, whose reason
    is the fault's), found by column name."""
    cleaned = dict(rows)
    signal_id = [c.name for c in Base.metadata.tables["signals"].columns].index("id")
    decision_signal = [c.name for c in Base.metadata.tables["decisions"].columns].index("signal_id")
    cleaned["signals"] = [r for r in rows["signals"] if r[signal_id] != PROBE]
    cleaned["decisions"] = [r for r in rows["decisions"] if r[decision_signal] != PROBE]
    return cleaned


def probe_reason(rows: dict[str, list[tuple[Any, ...]]]) -> str | None:
    columns = [c.name for c in Base.metadata.tables["decisions"].columns]
    found = [r for r in rows["decisions"] if r[columns.index("signal_id")] == PROBE]
    return found[0][columns.index("reason")] if found else None


def exits(rows: dict[str, list[tuple[Any, ...]]]) -> list[tuple[str, str, int, str]]:
    columns = [c.name for c in Base.metadata.tables["exit_events"].columns]
    return [(r[columns.index("rule")], r[columns.index("kind")], r[columns.index("quantity")], r[columns.index("at")])
            for r in rows["exit_events"]]


# ---------------------------------------------------------------------------- faults

def fill_disk(directory: Path) -> Path:
    """Write a file until the file system has no byte left."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        try:
            while True:
                f.write(chunk)

        except OSError:
            pass
        try:
            while True:  # the last partial chunk
                f.write(b"\0" * 512)

        except OSError:
            pass
    return filler


READ_ONLY_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* While the file $ROFS_FLAG exists, every write to a file under $ROFS_DIR fails with EROFS,
   as it does once the kernel has turned a file system read-only. */
static int read_only(int fd) {
    const char *flag = getenv("ROFS_FLAG"), *dir = getenv("ROFS_DIR");
    if (!flag || !dir || access(flag, F_OK) != 0) return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strncmp(path, dir, strlen(dir)) == 0;
}

#define WRAP(ret, name, params, args)                                  \
    ret name params {                                                  \
        static ret (*real) params;                                     \
        if (!real) real = (ret (*) params)dlsym(RTLD_NEXT, #name);     \
        if (read_only(fd)) { errno = EROFS; return -1; }               \
        return real args;                                              \
    }

WRAP(ssize_t, write, (int fd, const void *buf, size_t count), (fd, buf, count))
WRAP(ssize_t, pwrite, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off))
WRAP(ssize_t, pwrite64, (int fd, const void *buf, size_t count, off_t off), (fd, buf, count, off))
WRAP(ssize_t, writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt))
WRAP(int, ftruncate, (int fd, off_t len), (fd, len))
WRAP(int, ftruncate64, (int fd, off_t len), (fd, len))
WRAP(int, fallocate, (int fd, int mode, off_t off, off_t len), (fd, mode, off, len))
"""


def build_read_only_shim(folder: Path) -> Path | str:
    """The shim as a shared object, or why it cannot be built."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return "no C compiler to build the read-only shim"
    source, library = folder / "rofs.c", folder / "rofs.so"
    source.write_text(READ_ONLY_SHIM)
    done = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return f"cannot build the read-only shim: {done.stderr.strip()[:200]}"
    return library


def mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` at `where`; None, or why it could not be mounted."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


# ---------------------------------------------------------------------------- a PostgreSQL of the test's own

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivatePostgres:
    """initdb + pg_ctl on a temporary directory and a free port, as the `postgres` user when run as root."""

    folder: Path
    port: int = 0

    def _as_owner(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)

    def init(self) -> str | None:
        """None when ready to start, else why not (then the test skips)."""
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                return f"{tool} not on PATH"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser to start PostgreSQL as postgres"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            os.chmod(self.folder, 0o700)
            parent = self.folder.parent
            os.chmod(parent, 0o755)
        done = self._as_owner("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres",
                              "--no-sync", "-E", "UTF8")
        if done.returncode != 0:
            return f"initdb failed: {done.stderr.strip()[:300]}"
        self.port = free_port()
        return None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        done = self._as_owner("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "log"), "-w",
                              "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off",
                              "start")
        assert done.returncode == 0, done.stderr + (self.folder / "log").read_text()

    def stop(self, mode: str = "fast") -> None:
        self._as_owner("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop")
