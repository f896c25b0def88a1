"""`tradingd sweep --profile P --grid GRID.toml [--data DIR] [--from D --to D] [--signals FILE|reference]
[--walk-forward TRAIN:TEST] [--objective sharpe|return|return_dd|pnl|win_rate] [--min-trades N] --report DIR
[--workers N | --cluster ADDRESS] [--cache DIR] [--json]`: many deterministic replays over a grid of
config overrides, ranked, with walk-forward tests and a report (docs/sweep.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from daemon.cli import UsageError
from daemon.commands.replay import _day


def register(sub: argparse._SubParsersAction) -> None:
    from daemon.sweep.objective import OBJECTIVES

    p = sub.add_parser("sweep", help="many replays over a grid of config overrides, walk-forward tests, a report")
    p.add_argument("--profile", required=True, help="profile name (0dte, 7dte) or a path to a TOML file")
    p.add_argument("--grid", required=True, metavar="GRID.toml", help="axes of config overrides (docs/sweep.md)")
    p.add_argument("--data", default="bundled", help="as `tradingd replay --data`; workers read the same path")
    p.add_argument("--from", dest="start", type=_day, help="first session (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", type=_day, help="last session (YYYY-MM-DD)")
    p.add_argument("--signals", default="reference", metavar="reference|FILE")
    p.add_argument("--walk-forward", metavar="TRAIN:TEST", help="rolling folds of TRAIN then TEST sessions")
    p.add_argument("--objective", default="sharpe", choices=sorted(OBJECTIVES), help="what ranks the cells")
    p.add_argument("--min-trades", type=int, default=1, metavar="N", help="closed trades a cell needs to be ranked")
    p.add_argument("--report", required=True, metavar="DIR", help="folder for cells.csv, report.html, sweep.json")
    p.add_argument("--cache", metavar="DIR", help="result cache (default: DIR/cache under --report)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per CPU)")
    where.add_argument("--cluster", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--connect-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler (default 30)")
    p.add_argument("--broker", default="sim", help="only 'sim': a sweep never touches a live broker")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


class _Bar:
    """A progress line on a terminal (stderr); silent otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, stats: object, total: int) -> None:
        if not self.tty:
            return
        done = stats.cached + stats.replayed + stats.failed  # type: ignore[attr-defined]
        frac = min(done / max(total, 1), 1.0)
        filled = int(frac * 30)
        lost = f", {stats.workers_lost} worker loss(es)" if stats.workers_lost else ""  # type: ignore[attr-defined]
        sys.stderr.write(f"\rsweep [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} replays "
                         f"({stats.cached} cached{lost}) {time.monotonic() - self.started:,.0f} s ")  # type: ignore[attr-defined]
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def run(args: argparse.Namespace) -> int:
    from config.loader import ConfigError
    from daemon.backtest.readers import DataError
    from daemon.backtest.run import ReplayDataError
    from daemon.bars import BarDataError
    from daemon.logging import configure_logging
    from daemon.signals.jsonl import SignalFileError
    from daemon.sweep.cache import ResultCache
    from daemon.sweep.grid import GridError, load_grid
    from daemon.sweep.plan import SweepOptions, run_sweep
    from daemon.sweep.report import write_report
    from daemon.sweep.runners import DaskRunner, LocalRunner, WorkersLost
    from daemon.sweep.walkforward import WalkForwardError, parse_spec

    if args.broker != "sim":
        raise UsageError(f"--broker {args.broker}: a sweep replays on the sim venue only; it never touches a live "
                         "broker or store", "sweep_live_refused")
    if args.start and args.end and args.start > args.end:
        raise UsageError("--from must not be after --to", "bad_window")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1", "bad_workers")
    if args.min_trades < 0:
        raise UsageError("--min-trades must not be negative", "bad_min_trades")
    configure_logging(False, level="ERROR", stream=sys.stderr)
    runner = None
    try:
        grid = load_grid(args.grid)
        walk = parse_spec(args.walk_forward) if args.walk_forward else None
        options = SweepOptions(args.profile, grid, args.data, (args.start, args.end), args.signals, walk,
                               args.objective, args.min_trades)
        out = Path(args.report)
        cache = ResultCache(Path(args.cache) if args.cache else out / "cache")
        if args.cluster:
            try:
                runner = DaskRunner(args.cluster, timeout=f"{args.connect_timeout}s")
            except ImportError:
                raise UsageError("--cluster needs Dask: pip install 'tradingd[cluster]'", "dask_missing") from None
            except OSError as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {args.cluster}: {exc}", "cluster_unreachable") from None
        else:
            runner = LocalRunner(args.workers)
        bar = _Bar()
        try:
            result = run_sweep(options, runner, cache, progress=bar)
        finally:
            bar.done()
    except (GridError, WalkForwardError, DataError, BarDataError, SignalFileError, ReplayDataError) as exc:
        raise UsageError(str(exc), exc.code) from None
    except ConfigError as exc:
        raise UsageError(str(exc), "config_invalid") from None
    except WorkersLost as exc:
        raise UsageError(str(exc), "workers_lost") from None
    finally:
        if runner is not None:
            runner.close()
    write_report(result, out)
    stats = result.stats
    best = result.cells[result.ranking[0]] if result.ranking else None
    summary = {"report": str(out), "cells": len(result.cells), "run": stats.as_dict(),
               "best": None if best is None else {"cell": best.name, "params": best.label(),
                                                  "figures": result.full[best.index].get("figures")},
               "walk_forward_efficiency": result.wfe, "walk_forward_warning": result.wf_warning}
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(f"sweep {args.profile}: {len(result.cells)} cells, {stats.jobs} replays ({stats.cached} from the cache, "
              f"{stats.replayed} run, {stats.failed} failed) on {stats.runner}")
        if best is not None:
            f = result.full[best.index].get("figures") or {}
            print(f"best ({result.obj.label}): {best.name} {best.label()}: trades {f.get('trades')}, return "
                  f"{f.get('total_return_pct')}%, max drawdown {f.get('max_drawdown_pct')}%, Sharpe {f.get('sharpe')}")
        if result.wf_warning:
            print(f"walk-forward warning: {result.wf_warning}")
        print(f"report: {out / 'report.html'}")
    return 1 if stats.failed else 0
