"""`tradingd replay --profile P [--data DIR|bundled|spxw|goog|spx5|spy1] [--signals FILE|reference] [--from D --to D]
[--sizing new|current|both] [--scenario NAME] --report DIR [--json]`: a backtest or stress test on
recorded data, on the same deterministic core as the daemon, with the report of SPEC §8."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from daemon.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="backtest / stress test on recorded data, with a report (SPEC §8)")
    p.add_argument("--profile", required=True, help="profile name (0dte, 7dte) or a path to a TOML file")
    p.add_argument("--data", default="bundled",
                   help="'bundled' (default: the embedded week); from ../shared/data/market: 'spxw' or 'goog' (recorded "
                        "Lean option quotes), 'spx5' (SPX/VIX/VIX1D 5-minute bars), 'spy1' (SPY 1-minute 2024); or a "
                        "folder of <SYMBOL>_1min.csv files")
    p.add_argument("--signals", default="reference", metavar="reference|FILE",
                   help="'reference' (default: the demonstration breakout) or a JSONL signal file")
    p.add_argument("--from", dest="start", type=_day, help="first session (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", type=_day, help="last session (YYYY-MM-DD)")
    p.add_argument("--sizing", choices=("new", "current", "both"), default="both",
                   help="the profile's sizing, the seeds' pre-change sizing, or both side by side (default)")
    p.add_argument("--scenario", help="a stress scenario (see `daemon.backtest.scenarios.SCENARIOS`)")
    p.add_argument("--report", required=True, metavar="DIR", help="folder for report.json, report.html, equity.png")
    p.add_argument("--json", action="store_true", help="print the §8 figures as JSON")
    p.set_defaults(func=run)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class _Bar:
    """A progress line with events/s on a terminal (stderr); silent otherwise (a pipe, a file, CI logs)."""

    def __init__(self, total: int, label: str):
        self.total = max(total, 1)
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last: tuple[int, float] | None = None

    def __call__(self, n: int, elapsed: float) -> None:
        self.last = (n, elapsed)
        if self.tty:
            self._draw(n, elapsed, min(n / self.total, 1.0))

    def _draw(self, n: int, elapsed: float, frac: float) -> None:
        filled = int(frac * 30)
        rate = n / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {frac:4.0%} "
                         f"{n:,} events {rate:,.0f} events/s")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            if self.last is not None:  # the total was an estimate: at the end, all of it is done
                self._draw(*self.last, 1.0)
            sys.stderr.write("\n")


def run(args: argparse.Namespace) -> int:
    from config.loader import ConfigError
    from daemon.backtest.data import load_dataset
    from daemon.backtest.readers import DataError
    from daemon.backtest.report import write_report
    from daemon.backtest.run import ReplayDataError, replay_settings, run_replay
    from daemon.backtest.scenarios import SCENARIOS
    from daemon.bars import BarDataError
    from daemon.feed import DEFAULT_TICKS_PER_BAR
    from daemon.logging import configure_logging
    from daemon.signals.jsonl import SignalFileError

    if args.start and args.end and args.start > args.end:
        raise UsageError("--from must not be after --to", "bad_window")
    if args.scenario is not None and args.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r}; one of {', '.join(sorted(SCENARIOS))}", "bad_scenario")
    configure_logging(False, level="ERROR", stream=sys.stderr)
    sizings = ["new", "current"] if args.sizing == "both" else [args.sizing]
    try:
        data = load_dataset(args.data)
        results = []
        for sizing in sizings:
            settings = replay_settings(args.profile, data, sizing)
            windowed = data.window(args.start, args.end)  # the estimate covers what will be replayed
            total = sum(len(b) for b in windowed.bars.values()) * (DEFAULT_TICKS_PER_BAR + 1) + len(windowed.option_quotes)
            bar = _Bar(total, f"{settings.profile.name} {sizing}")
            results.append(run_replay(settings, data, args.signals, (args.start, args.end), sizing, args.scenario,
                                      progress=bar))
            bar.done()
    except (DataError, BarDataError, SignalFileError, ReplayDataError) as exc:
        raise UsageError(str(exc), exc.code) from None
    except ConfigError as exc:
        raise UsageError(str(exc), "config_invalid") from None
    except ValueError as exc:
        raise UsageError(str(exc), "replay_invalid") from None
    out = Path(args.report)
    meta = {"window": [None if args.start is None else args.start.isoformat(),
                       None if args.end is None else args.end.isoformat()],
            "signals": args.signals if args.signals == "reference" else Path(args.signals).name}
    document = write_report(results, out, meta)
    for r in results:
        print(f"replay {r.profile} {r.sizing}: {r.counts['events']:,} events in {r.wall_s:.2f} s = "
              f"{r.events_per_s:,.0f} events/s", file=sys.stderr)
    if args.json:
        print(json.dumps({"report": str(out), "figures": {s: run["figures"] for s, run in document["runs"].items()}},
                         sort_keys=True))
    else:
        for sizing, run_doc in document["runs"].items():
            f = run_doc["figures"]
            print(f"{document['profile']} {sizing}: trades {f['trades']}, win rate {f['win_rate_pct']}%, "
                  f"P&L {f['total_pnl']}, max drawdown {f['max_drawdown_pct']}%, breaker events {f['breaker_events']}")
        print(f"report: {out / 'report.html'}")
    return 0
