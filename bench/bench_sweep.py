"""Sweep throughput: the same grid with 2 local worker processes vs 1 (issue 15: >= 1.8x).

One run = the acceptance test's sweep (tests/daemon/sweep: the 12-cell 7dte grid over the whole
bundled week, with the two sizing baselines: 14 replays), swept twice from an empty cache: once by
`LocalRunner(1)`, once by `LocalRunner(2)`. The figure is wall(1 worker) / wall(2 workers) over the
whole `run_sweep` (data load, cell validation, pool start, replays, collection), so the planner's
serial part counts against the speed-up as it does for a user. Both sweeps must give the same cells,
or the run is invalid. Each sweep runs in a fresh process (as `tradingd sweep` does), so neither
inherits modules or caches the other warmed. On a machine shared with other work the 2-worker sweep
competes for the second core: the note gives the cores the workers got and the load average.
Usage: python bench/bench_sweep.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Sample  # noqa: E402

NAME = "sweep_throughput_2_vs_1_workers"
ROOT = Path(__file__).resolve().parents[1]

# One sweep in a process of its own, as `tradingd sweep --workers N` runs it; prints wall time, the
# workers' CPU seconds and every cell's figures as JSON. Timed from the first import of the sweep.
_ONE_SWEEP = """
import json, resource, sys, time
from tests.daemon.sweep.conftest import GRID_12  # the acceptance test's grid (imports pytest: not timed)
began, planner = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
from daemon.logging import configure_logging
configure_logging(False, level="ERROR", stream=sys.stderr)
from daemon.sweep.cache import ResultCache
from daemon.sweep.grid import parse_grid
from daemon.sweep.plan import SweepOptions, run_sweep
from daemon.sweep.runners import LocalRunner
workers, cache = int(sys.argv[1]), sys.argv[2]
result = run_sweep(SweepOptions("7dte", parse_grid(GRID_12)), LocalRunner(workers), ResultCache(cache))
wall = time.perf_counter() - began
usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, shut down and reaped by now
me = resource.getrusage(resource.RUSAGE_SELF)
planner = me.ru_utime + me.ru_stime - planner.ru_utime - planner.ru_stime
assert result.stats.replayed == result.stats.jobs and not result.stats.failed, result.stats
cells = [result.full[c.index].get("figures") for c in result.cells]
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "planner": planner, "jobs": result.stats.jobs,
                  "cells": cells, "baselines": {k: v.get("figures") for k, v in result.baselines.items()}},
                 sort_keys=True, default=str))
"""


def _sweep(workers: int, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _ONE_SWEEP, str(workers), str(root / f"cache-{workers}")],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def figures() -> list[Sample]:
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        one = _sweep(1, Path(tmp))
        two = _sweep(2, Path(tmp))
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    same = one["cells"] == two["cells"] and one["baselines"] == two["baselines"]
    # cores the workers actually got (their CPU seconds per wall second): on an idle machine ~1 and ~2;
    # when the 2-worker sweep gets ~1, the machine had no second core to give, whatever the code does
    note = (f"12 cells + 2 baselines x the bundled week ({one['jobs']} replays): 1 worker {one['wall']:.1f} s, "
            f"2 workers {two['wall']:.1f} s; cores the workers got {one['cpu'] / one['wall']:.2f} vs "
            f"{two['cpu'] / two['wall']:.2f}; {cpus} CPUs, load average {load:.1f} (shared machine); CPU s planner + "
            f"workers: {one['planner']:.1f} + {one['cpu']:.1f} vs {two['planner']:.1f} + {two['cpu']:.1f}")
    return [Sample(NAME, one["wall"] / two["wall"], "x", ">=", 1.8, note, valid=same and cpus >= 2)]


if __name__ == "__main__":
    for s in figures():
        print(f"{s.name}: {s.value:.2f}{s.unit} ({s.note})")
