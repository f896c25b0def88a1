"""Replay throughput on the 1-second stream (issue 8: >= 300,000 quote events/s, both profiles,
5 positions open throughout, every exit rule evaluated on every quote of their options).

Today's engine (`daemon.engine.Engine` through `daemon.app.App`, the `make run` wiring: sim
broker, fresh SQLite store, reference signals, speed 0) is fed `bench.stream.one_second_stream`
instead of its 7-quotes-per-bar path: each bar's 60 one-second quotes (bid/ask = price -/+ 0.01;
VIX as an index value), then the bar itself (for the signal source), in time order. The figure is
stream quotes / wall second of the whole replay (scheduler jobs, signals, orders, fills, store
writes and every modelled option quote included). The positions are the ones the reference
signals open: the "5 positions open throughout" condition is checked (quotes seen with >= 5 held)
and the figure is marked not met when it does not hold, whatever its value.
Runs in a fresh process per profile. Usage: python bench/bench_stream_replay.py [profile] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Sample  # noqa: E402

PROFILES = ("0dte", "7dte")
TARGET = 300_000
POSITIONS = 5


def measure(profile: str) -> dict[str, Any]:
    from bench.stream import SECONDS_PER_BAR, SPREAD_HALF, second_prices
    from daemon.app import App, RunOptions
    from daemon.bars import Bar, available_symbols, load_minute_bars
    from daemon.engine import Engine
    from daemon.feed import _BAR, _QUOTE, ReplayFeed
    from market.types import Quote

    offsets = [timedelta(seconds=i) for i in range(SECONDS_PER_BAR)]
    held = {"quotes": 0, "with_all": 0, "max": 0}

    class StreamFeed(ReplayFeed):
        def _symbol_events(self, symbol: str, bars: Sequence[Bar], seq: Iterator[int]) -> Iterator[tuple[Any, ...]]:
            index = symbol in self.index_symbols
            for bar in bars:
                for offset, price in zip(offsets, second_prices(bar.open, bar.close), strict=True):
                    at = bar.start + offset
                    quote = (Quote(key=symbol, bid=None, ask=None, last=price, received_at=at) if index else
                             Quote(key=symbol, bid=price - SPREAD_HALF, ask=price + SPREAD_HALF, last=price,
                                   received_at=at, bid_size=100, ask_size=100))
                    yield at, _QUOTE, next(seq), quote
                yield bar.end, _BAR, next(seq), bar

    class StreamApp(App):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            # The stream is all 7 symbols of the week: those the profile does not trade are quotes too.
            assert self.replay is not None
            for symbol in sorted(available_symbols(self.replay.folder) - set(self.replay.bars)):
                self.replay.bars[symbol] = load_minute_bars(self.replay.folder, symbol)

        def build(self) -> Engine:
            engine = super().build()

            def count(quote: Quote) -> None:
                if " " in quote.key:  # an option's quote: not a stream quote
                    return
                n = len(engine.book.held())
                held["quotes"] += 1
                held["with_all"] += n >= POSITIONS
                held["max"] = max(held["max"], n)

            engine.quotes.add_listener(count)
            return engine

    import daemon.app as app_module

    app_module.ReplayFeed = StreamFeed  # type: ignore[misc,assignment]  # the App builds its feed by this name
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRADINGD_DAEMON__STATE_DIR"] = tmp
        options = RunOptions(profile=profile, broker="sim", replay="bundled", speed=0.0, signals="reference",
                             api=False)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            app = StreamApp(options, out=sink)
            wall = time.perf_counter()
            code = asyncio.run(app.run())
            wall = time.perf_counter() - wall
    assert app.feed is not None
    stats = app.feed.stats
    return {"profile": profile, "exit_code": code, "wall_s": wall, "stream_quotes": stats.quotes,
            "quotes_per_s": stats.quotes / wall, "held_max": held["max"],
            "share_with_5_held": held["with_all"] / max(1, held["quotes"])}


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
        throughout = result["share_with_5_held"] >= 0.999
        note = (f"today's engine (App + ReplayFeed on the 1-s stream), {result['stream_quotes']} quotes in "
                f"{result['wall_s']:.1f} s; at most {result['held_max']} positions held, >= {POSITIONS} on "
                f"{100 * result['share_with_5_held']:.1f}% of quotes")
        out.append(Sample(name, result["quotes_per_s"], "quotes/s", ">=", TARGET, note, valid=throughout))
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--json" in sys.argv:
        result = measure(args[0] if args else "0dte")
        print(json.dumps(result))
        sys.exit(result["exit_code"])
    for s in figures():
        print(f"{s.name}: {s.value} {s.unit} ({s.note})")
