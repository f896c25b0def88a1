"""Replay throughput on the 1-second stream (issue 8: >= 300,000 quote events/s, both profiles,
5 positions open throughout, every exit rule evaluated on every quote of their options).

The daemon's replay (`daemon.replay.Replay`: the synchronous core, Working, the sim venue, the
option model, the scheduler's timers, and the store sink writing to a fresh SQLite store, as
`tradingd run --replay` wires it) is fed `bench.stream.one_second_stream` instead of the
7-quotes-per-bar path: every bar of all 7 symbols becomes its 60 one-second quotes (bid/ask =
price -/+ 0.01; VIX as an index value), then the bar itself, in time order (816,420 quotes).

Positions: a top-up signal source (instead of the reference breakout) looks every ~2 s of the stream
(every SAMPLE_EVERY-th event) and asks for as many new positions as are missing of 5 (held or being
entered; each its own signal id, on SPY and QQQ in turn), so 5 are held from the first seconds of each
session on and a closed position is replaced within seconds, not at the next bar; the profile's position caps are raised to 5 (5 per
underlying: the 0dte week has bars for SPY and QQQ only) and the portfolio greek limits (which
5 at-the-money positions exceed) are raised so they may be. The exit rules are the
profile's own, unchanged: they fire, positions close, and the source opens new ones.
The figure is stream quotes / wall second of `Replay.run` (setup and the stream's construction
outside). "Throughout" is checked, not assumed: the share of stream quotes inside regular hours
that saw 5 positions held is reported, and below 90 % the figure is marked not met.
Runs in a fresh process per profile. Usage: python bench/bench_stream_replay.py [profile] [--json]
[--no-store] [--digest] [--cprofile=FILE] [--db=FILE]. `--no-store` hands the records to a sink that drops them (`NullSink`):
the store's cost out, the core's per-quote path alone (room hotpath's figure; `make bench` keeps the store).
`--digest` (implies no store) hashes every record instead (`DigestSink`): the same digest from two trees
is the proof that a speed change left every record as it was. `--cprofile=FILE` writes a cProfile of `Replay.run` (in CPU time) to FILE.
`--db=FILE` writes the store to FILE (a new file) and keeps it, for bench/dump_store.py's "same rows" proof.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Sample  # noqa: E402

PROFILES = ("0dte", "7dte")
TARGET = 300_000
POSITIONS = 5
SAMPLE_EVERY = 16
ENTRY_GRACE = timedelta(seconds=10)  # the top-up counts an entry with nothing filled as a position this long
THROUGHOUT = 0.90  # share of in-session stream quotes that must see 5 positions held
# Room for 5 positions: the position caps (10 x 5: a 0dte option the close-out could not sell stays booked), the portfolio greek limits 5 at-the-money options exceed, and
# the account breakers (a source that reopens every closed position all day pays the spread hundreds of
# times a session and would halt entries by noon; the breakers' checks still run on every mark).
OVERRIDES = {"sizing.max_positions": 10 * POSITIONS, "sizing.max_positions_per_underlying": 10 * POSITIONS,
             "gate.max_abs_delta": 10**6, "gate.max_gamma": 10**6,
             "breakers.levels": [{"level": i, "name": f"bench_{i}", "loss_pct": f"0.9{5 + i}"} for i in range(1, 5)],
             # 5 bets must fit the account together, and keep fitting after hundreds of round trips a session
             # (each pays the spread and commissions): a large account and bets of $5-15k, as in the profiles
             "capital.account_size": 10_000_000,
             "sizing.min_bet_pct": "0.0005", "sizing.min_bet_floor": 0, "sizing.max_bet_pct": "0.0015",
             "sizing.max_exposure_pct": "0.95", "sizing.max_exposure_pct_moderate": None,
             "sizing.max_exposure_pct_high": None, "sizing.per_underlying_alloc_pct": None,
             "regime.greeks.max_abs_vega": None, "regime.greeks.max_abs_theta": None}


class NullSink:
    """A sink that keeps nothing: the replay's records are made (the core still builds every Persist) and
    dropped, so the figure is the core's per-quote path without the store."""

    catching_up = False
    seq = 0
    changes = ()

    def append(self, op: str, payload: dict[str, Any]) -> None:
        self.seq += 1

    def may_send(self, durable: bool) -> bool:
        return True

    def take_changes(self) -> list[tuple[bool, str | None]]:
        return []

    def flush(self) -> None:
        pass


class DigestSink(NullSink):
    """A sink that keeps one SHA-256 of every record (op, then its payload as sorted-key JSON): two
    replays with the same digest wrote the same records in the same order. The proof a speed change
    needs that it changed no trade, no exit and no record (`--digest`)."""

    def __init__(self) -> None:
        import hashlib

        self.hash = hashlib.sha256()

    def append(self, op: str, payload: dict[str, Any]) -> None:
        self.seq += 1
        self.hash.update(op.encode())
        self.hash.update(json.dumps(payload, sort_keys=True, default=str).encode())


def stream_events(folder: Path, index_symbols: frozenset[str]) -> list[tuple[datetime, int, int, Any]]:
    """The 1-second stream as the replay's events (quotes, then the bar they complete), materialized."""
    from bench.stream import SECONDS_PER_BAR, SPREAD_HALF, second_prices
    from daemon.bars import available_symbols, load_minute_bars
    from daemon.replay import _BAR, _QUOTE
    from market.types import Quote

    offsets = [timedelta(seconds=i) for i in range(SECONDS_PER_BAR)]
    seq = itertools.count()

    def per_symbol(symbol: str) -> Iterator[tuple[datetime, int, int, Any]]:
        index = symbol in index_symbols
        for bar in load_minute_bars(folder, symbol):
            for offset, price in zip(offsets, second_prices(bar.open, bar.close), strict=True):
                at = bar.start + offset
                yield at, _QUOTE, next(seq), (
                    Quote(key=symbol, bid=None, ask=None, last=price, received_at=at) if index else
                    Quote(key=symbol, bid=price - SPREAD_HALF, ask=price + SPREAD_HALF, last=price,
                          received_at=at, bid_size=100, ask_size=100))
            yield bar.end, _BAR, next(seq), bar

    streams = [per_symbol(s) for s in sorted(available_symbols(folder))]
    return list(heapq.merge(*streams, key=lambda e: (e[0], e[1], e[2])))


def measure(profile: str, store: bool = True, cprofile: str | None = None, digest: bool = False,
            db: str | None = None) -> dict[str, Any]:
    from config.loader import load_settings
    from daemon.app import load_replay
    from daemon.replay import _QUOTE, _SIGNAL, Replay, StepClock, StoreSink, _closeout
    from daemon.signals.jsonl import TimedSignal
    from daemon.store import Store
    from market import calendar
    from market.clock import EXCHANGE_TZ

    # Logging as `tradingd run` configures it (JSON lines, info), before any logger is bound: debug
    # lines (each child order) are dropped where they are made, not rendered and thrown away.
    from daemon.logging import configure_logging

    configure_logging(json_logs=True, level="INFO", stream=open(os.devnull, "w"))  # noqa: SIM115
    settings = load_settings(profile, env={}, overrides=OVERRIDES)
    data = load_replay("bundled", settings)
    traded = [s for s in settings.profile.underlyings if s in data.bars]
    events = stream_events(data.folder, frozenset({settings.profile.vix_symbol}))
    quotes = sum(1 for e in events if e[1] == _QUOTE)
    start = datetime.combine(events[0][0].date(), time(0), tzinfo=EXCHANGE_TZ)
    calendar.session_for(start.date())  # the XNYS calendar is built once, before the clock starts
    held = {"in_session": 0, "with_all": 0, "max": 0}
    # each session's trading window: the open to the close, or to the 0dte close-out (all closed by rule)
    closeout = _closeout(settings)
    sessions: dict[date, tuple[datetime, datetime]] = {}
    for day in sorted({e[0].date() for e in events}):
        session = calendar.session_for(day)
        if session is not None:
            end = session.close if closeout is None else min(session.close, closeout(session))
            sessions[day] = (session.open, end)
    replay: Replay | None = None
    counter = itertools.count()

    def live(today: date) -> int:
        """Positions held in options that still trade. A 0dte option the close-out could not sell (a
        bid of 0) stays in the book past its expiry (the core settles no expiries yet): it is no
        longer quoted, so it must not count as one of the 5 whose exits are evaluated."""
        assert replay is not None
        return sum(1 for p in replay.core.book.held() if p.record.expiry >= today)

    def missing(at: datetime) -> int:
        """Positions to ask for: 5 less those held in options that trade today, those being entered (for
        ENTRY_GRACE: an entry with nothing filled by then is not counted on, another is asked for beside
        it) and the signals still waiting for their option quotes."""
        assert replay is not None
        today, young = at.date(), at - ENTRY_GRACE
        return POSITIONS - len(replay.core.pending) - sum(
            1 for p in replay.core.book.positions.values()
            if p.record.expiry >= today and (p.open_qty > 0 or (not p.entry_complete and p.record.entry_time > young)))

    def top_up(at: datetime) -> Iterator[tuple[datetime, int, int, Any]]:
        """A signal for every position missing of the 5, each its own signal id, on the traded underlyings
        in turn, until the profile's close-out (a 0dte strategy opens nothing it must close minutes later)."""
        for _ in range(missing(at)):
            n = next(counter)
            raw = {"id": f"bench-{n}", "profile": profile, "underlying": traded[n % len(traded)],
                   "direction": "bullish" if n % 2 == 0 else "bearish", "strategy": "directional",
                   "confidence": 0.95, "created_at": at.isoformat()}
            yield at, _SIGNAL, -1, TimedSignal(at, raw, n)

    def watched(source: list[tuple[datetime, int, int, Any]]) -> Iterator[tuple[datetime, int, int, Any]]:
        """The events, checking on every SAMPLE_EVERY-th in-session stream quote (every ~2 s of the stream)
        how many positions are held, and topping them up to 5 (sampled: the check's own cost stays out of
        the figure's way; it is still inside it)."""
        assert replay is not None
        for i, event in enumerate(source):
            if event[1] == _QUOTE and i % SAMPLE_EVERY == 0:
                bounds = sessions.get(event[0].date())
                if bounds is not None and bounds[0] <= event[0] < bounds[1]:
                    n = live(event[0].date())
                    held["in_session"] += 1
                    held["with_all"] += n >= POSITIONS
                    if n > held["max"]:
                        held["max"] = n
                    yield from top_up(event[0])
            yield event

    with tempfile.TemporaryDirectory() as tmp:
        use_store = store
        store = Store(profile, f"sqlite:///{Path(db).resolve() if db else Path(tmp) / 'bench.db'}")

        async def upgrade() -> None:
            await store.upgrade()

        if use_store:
            asyncio.run(upgrade())
            sink = StoreSink(store)
            sink.claim(f"bench-stream-{profile}")
        else:
            sink = DigestSink() if digest else NullSink()
        replay = Replay(settings, start, sink=sink, signal_source="bench",
                        daily_closes=data.closes_before, clock=StepClock(start))
        last = events[-1][0].date()
        with open(os.devnull, "w") as sink_out, contextlib.redirect_stdout(sink_out), \
                contextlib.redirect_stderr(sink_out):
            import logging

            logging.disable(logging.CRITICAL)  # the log's cost is not the replay's; its records still are
            profiler = None
            if cprofile:
                import cProfile
                from time import process_time as wallclock_cpu

                profiler = cProfile.Profile(wallclock_cpu)  # CPU time: other rooms' load stays out of the table
                profiler.enable()
            stats = replay.run(watched(events), datetime.combine(last, time(23, 59), tzinfo=EXCHANGE_TZ))
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(cprofile)
            sink.flush()
            logging.disable(logging.NOTSET)

        async def close() -> None:
            await store.close()

        asyncio.run(close())
    return {"profile": profile, "stream_quotes": quotes, "replay_quotes": stats.quotes, "wall_s": stats.wall_s,
            "quotes_per_s": quotes / stats.wall_s, "option_quotes": stats.option_quotes, "fills": stats.fills,
            "signals": stats.signals, "held_max": held["max"],
            "share_with_5_held": held["with_all"] / max(1, held["in_session"]), "store": use_store,
            "cpu_s": stats.cpu_s, "records": stats.records,
            **({"digest": sink.hash.hexdigest()[:16]} if isinstance(sink, DigestSink) else {}), "exit_code": 0}


def figures() -> list[Sample]:
    out = []
    for profile in PROFILES:
        name = f"replay_throughput_{profile}"
        done = subprocess.run([sys.executable, __file__, profile, "--json"], capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            out.append(Sample(name, None, "quotes/s", ">=", TARGET, f"failed: {reason}"))
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        note = (f"daemon.replay.Replay on the 1-s stream: {result['stream_quotes']} quotes, {result['fills']} fills, "
                f"{result['option_quotes']} option quotes; 5 positions held on "
                f"{100 * result['share_with_5_held']:.1f}% of in-session quotes (max {result['held_max']})")
        out.append(Sample(name, result["quotes_per_s"], "quotes/s", ">=", TARGET, note,
                          valid=result["share_with_5_held"] >= THROUGHOUT))
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--json" in sys.argv:
        out = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--cprofile=")]
        keep = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--db=")]
        if keep and Path(keep[0]).exists():
            sys.exit(f"--db={keep[0]}: the file exists; the bench writes a new store")
        digest = "--digest" in sys.argv
        print(json.dumps(measure(args[0] if args else "0dte", store="--no-store" not in sys.argv and not digest,
                                 cprofile=out[0] if out else None, digest=digest, db=keep[0] if keep else None),
                         default=str))
        sys.exit(0)
    for s in figures():
        print(f"{s.name}: {s.value} {s.unit} ({s.note})")
