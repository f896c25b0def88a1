"""The store's own cost on the replay's record stream: the stream bench's sink calls (every `append` and
`may_send`, in order) captured once, then fed through `CoreSink` (the journal, its writer thread, the ops)
into a fresh SQLite store, with nothing else running in the process. What the store costs per record, on
both threads, without the core's per-quote path around it (room store7).

Usage: python bench/bench_core_sink.py PROFILE [--calls=FILE] [--db=FILE] [--cprofile=DIR]
- the calls are captured from `bench/bench_stream_replay.py`'s replay into FILE (default
  `$TMPDIR/tradingd-sink-calls-PROFILE.pickle`) when FILE does not exist yet, then reused;
- prints {cpu_s (process, both threads), writer_cpu_s, driver_cpu_s, wall_s, records, transactions, us_per_record};
- `--cprofile=DIR` writes DIR/driver.prof and DIR/writer.prof (cProfile in each thread's CPU time: it inflates
  every call ~3x, read it for shares, not for totals).
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def capture(profile: str, path: Path) -> None:
    """Run the stream replay with a sink that records every call (no store), and pickle the calls."""
    import bench.bench_stream_replay as stream

    calls: list[tuple[Any, ...]] = []

    class Recording(stream.DigestSink):
        def append(self, op: str, payload: dict[str, Any]) -> None:
            self.seq += 1
            calls.append(("append", op, payload))

        def may_send(self, durable: bool) -> bool:
            calls.append(("may_send", durable))
            return True

    stream.DigestSink = Recording  # type: ignore[misc]  # measure() builds its --digest sink by this name
    stream.measure(profile, store=False, digest=True)
    with path.open("wb") as f:
        pickle.dump(calls, f, protocol=pickle.HIGHEST_PROTOCOL)


def feed(profile: str, calls: list[tuple[Any, ...]], db: Path, cprofile: Path | None) -> dict[str, Any]:
    import logging

    from daemon.logging import configure_logging
    from daemon.store import Store
    from daemon.store.core_sink import CoreSink

    configure_logging(json_logs=True, level="INFO", stream=open(os.devnull, "w"))  # noqa: SIM115
    logging.disable(logging.CRITICAL)
    store = Store(profile, f"sqlite:///{db}")
    asyncio.run(store.upgrade())
    sink = CoreSink(store)
    sink.claim(f"bench-stream-{profile}")
    transactions = [0]
    run_batch = store.run_batch

    def counted(ops: list[Any]) -> list[Any]:
        transactions[0] += 1
        return run_batch(ops)

    store.run_batch = counted  # type: ignore[method-assign]
    profiles: dict[str, Any] = {}
    writer: list[threading.Thread] = []

    def on_writer() -> None:
        writer.append(threading.current_thread())
        if cprofile is not None:
            import cProfile

            profiles["writer"] = cProfile.Profile(time.thread_time)
            profiles["writer"].enable()

    store.enqueue(on_writer)
    sink.flush()
    time.sleep(0.1)
    if cprofile is not None:
        import cProfile

        profiles["driver"] = cProfile.Profile(time.thread_time)
        profiles["driver"].enable()
    clock = time.pthread_getcpuclockid(writer[0].ident)  # type: ignore[arg-type]
    cpu, wall, driver, writer_cpu = time.process_time(), time.perf_counter(), time.thread_time(), time.clock_gettime(clock)
    for call in calls:
        if call[0] == "append":
            sink.append(call[1], call[2])
        else:
            sink.may_send(call[1])
    sink.flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    driver, writer_cpu = time.thread_time() - driver, time.clock_gettime(clock) - writer_cpu
    if cprofile is not None:
        profiles["driver"].disable()
        done = threading.Event()
        store.enqueue(lambda: (profiles["writer"].disable(), done.set()))
        done.wait()
        cprofile.mkdir(parents=True, exist_ok=True)
        for name, prof in profiles.items():
            prof.dump_stats(str(cprofile / f"{name}.prof"))
    asyncio.run(store.close())
    return {"profile": profile, "cpu_s": round(cpu, 3), "writer_cpu_s": round(writer_cpu, 3),
            "driver_cpu_s": round(driver, 3), "wall_s": round(wall, 3), "records": sink.seq,
            "transactions": transactions[0], "us_per_record": round(cpu / max(1, sink.seq) * 1e6, 1)}


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    options = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    profile = args[0] if args else "0dte"
    calls_path = Path(options.get("calls") or Path(tempfile.gettempdir()) / f"tradingd-sink-calls-{profile}.pickle")
    if not calls_path.exists():
        capture(profile, calls_path)
    with calls_path.open("rb") as f:
        calls = pickle.load(f)  # noqa: S301 - our own capture
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(options["db"]) if "db" in options else Path(tmp) / "sink.db"
        result = feed(profile, calls, db, Path(options["cprofile"]) if "cprofile" in options else None)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
