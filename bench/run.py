"""`make bench`: every figure of issue 8's table, each the median of >= 3 runs on this machine;
prints a table and writes bench/results.json (a list of {name, value, unit, target, met}).

It never fails `make test` and is never part of it; its exit code is 0 whether or not the
targets are met (`met` says that), non-zero only when the bench itself breaks.
Usage: python -m bench.run [--runs N] [--only NAME[,NAME]] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_exits, bench_rss, bench_sizing, bench_start, bench_stream_replay, bench_tick  # noqa: E402
from bench import bench_sweep  # noqa: E402
from bench.results import RUNS, Sample, combine, table, write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
CHEAP = {"sizing", "exits"}
CHEAP_RUNS = 5

# name -> one run of that bench (each returns its figures' samples for that run)
BENCHES: dict[str, Callable[[], list[Sample]]] = {
    "replay": bench_stream_replay.figures,
    "sizing": bench_sizing.figures,
    "exits": bench_exits.figures,
    "tick_to_order": bench_tick.figures,
    "rss": bench_rss.figures,
    "start": bench_start.figures,
    "sweep": bench_sweep.figures,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs per figure (at least {RUNS})")
    parser.add_argument("--only", help="comma-separated benches: " + ", ".join(BENCHES))
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    if args.runs < RUNS:
        parser.error(f"each figure is the median of at least {RUNS} runs")
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {unknown}; known: {', '.join(BENCHES)}")
    runs: list[list[Sample]] = []
    for name in names:
        # The in-process latency benches take seconds: more runs make their median robust to a
        # neighbour's burst on this shared machine (a p99 is otherwise the scheduler's 4 ms slice).
        count = max(args.runs, CHEAP_RUNS) if name in CHEAP else args.runs
        for i in range(count):
            began = time.perf_counter()
            print(f"== {name} run {i + 1}/{count}", end="", flush=True)
            runs.append(BENCHES[name]())
            print(f" ({time.perf_counter() - began:.1f} s)", flush=True)
    figures = combine(runs)
    if args.only and args.out.exists():  # a partial run updates its own figures and keeps the others
        fresh = {f.name for f in figures}
        kept = [row for row in json.loads(args.out.read_text()) if row.get("name") not in fresh]
        write_json(figures, args.out, keep=kept)
    else:
        write_json(figures, args.out)
    load = os.getloadavg()
    print()
    print(table(figures))
    print(f"\nload average during the bench: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} CPUs, shared); written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
