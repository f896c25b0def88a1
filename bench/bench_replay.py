"""How fast a full replay runs: the `make run` path (0dte, sim broker, the bundled week, speed 0,
reference signals) through `daemon.app.App`, on a fresh database in a temporary folder.

Prints wall time, bars/s, quotes/s (the recorded underlying and VIX quotes, and the modelled option
quotes) and the process's peak RSS. A figure, not a test.
Usage: python bench/bench_replay.py [profile] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.app import App, RunOptions  # noqa: E402


def run(profile: str) -> dict[str, Any]:
    """`make run` as `tradingd run --replay bundled` does it: the core in the replay loop (`daemon.replay`)."""
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(profile=profile, broker="sim", replay="bundled", speed=0.0, signals="reference",
                             db=f"sqlite:///{Path(tmp) / 'bench.db'}", api_port=0)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            app = App(options, out=sink)
            wall = time.perf_counter()
            cpu = time.process_time()
            code = asyncio.run(app.run())
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
    assert app._replay_loop is not None, "a replay runs the core's replay loop"
    stats = app._replay_loop.stats
    return {
        "profile": profile, "exit_code": code, "sessions": len(app._replay_loop.reports), "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2), "bars": stats.bars, "bars_per_s": round(stats.bars / wall),
        "feed_quotes": stats.quotes, "feed_quotes_per_s": round(stats.quotes / wall),
        "option_quotes": stats.option_quotes, "quote_events_per_s": round(stats.events_per_s),
        "signals": stats.signals, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = run(args[0] if args else "0dte")
    if "--json" in sys.argv:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>18}: {value}")
    sys.exit(out["exit_code"])
