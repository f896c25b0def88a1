"""`tradingd run --profile P [--broker ib|sim] [--replay DATA --speed N] [--signals reference|FILE]
[--db URL] [--api-port N] [--json-logs]`: the daemon.

Without `--replay` it trades live (IB Gateway, or the sim on live quotes) until SIGTERM. With
`--replay bundled` (the embedded real week of 2019-02-11..15) or `--replay DIR` it runs the
same engine on a virtual clock over recorded bars, as fast as the data allows (`--speed 0`)
or N × real time, and prints a per-day summary at the end.
"""

from __future__ import annotations

import argparse
import os

from daemon.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the daemon (live, or a replay on a virtual clock)")
    p.add_argument("--profile", required=True, help="profile name (0dte, 7dte) or a path to a TOML file")
    p.add_argument("--broker", choices=("ib", "sim"), help="broker (default: the profile's broker.kind)")
    p.add_argument("--replay", metavar="DATA",
                   help="replay recorded 1-minute bars: 'bundled' (the embedded default) or a folder")
    p.add_argument("--speed", type=float, default=0.0,
                   help="replay speed: 0 = as fast as possible (default), N = N × real time")
    p.add_argument("--signals", metavar="reference|FILE",
                   help="'reference' (a demonstration opening-range breakout) or a JSONL file of signals")
    p.add_argument("--db", metavar="URL", help="database URL (default: the profile's; a replay uses a fresh one)")
    p.add_argument("--api-port", type=int, help="HTTP API port (0: any free port)")
    p.add_argument("--json-logs", action="store_true", default=None,
                   help="only JSON lines on stdout (the default whenever stdout is not a terminal)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                   default=os.environ.get("TRADINGD_LOG_LEVEL", "info").lower(),
                   help="debug adds each child order, reprice and simulated fill (default: $TRADINGD_LOG_LEVEL or info)")
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    p.add_argument("--json", action="store_true",
                   help="print only the end-of-replay summary, as JSON, on stdout (logs go to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from daemon.app import App, RunError, RunOptions, quote_source_problem
    from daemon.bars import BarDataError
    from daemon.signals.jsonl import SignalFileError

    if args.speed < 0:
        raise UsageError("--speed must be >= 0 (0: as fast as possible)", "bad_speed")
    if args.api_port is not None and not 0 <= args.api_port < 65536:
        raise UsageError("--api-port must be within 0-65535", "bad_port")
    if args.replay is None and args.speed:
        raise UsageError("--speed applies to --replay only", "usage")
    # JSON when asked, under systemd (journald), or whenever the log stream is not a terminal
    # (`daemon.logging.use_json` decides at start, on the stream the logs really go to).
    json_logs = True if args.json_logs else None
    options = RunOptions(profile=args.profile, broker=args.broker, replay=args.replay, speed=args.speed,
                         signals=args.signals, db=args.db, api_port=args.api_port, json_logs=json_logs,
                         api=not args.no_api, summary_json=args.json, log_level=args.log_level)
    import asyncio

    try:
        refusal = quote_source_problem(options)
        if refusal is not None:
            raise RunError("sim_needs_quote_source", refusal)
        app = App(options)
        return asyncio.run(app.run())
    except (RunError, BarDataError, SignalFileError) as exc:
        raise UsageError(str(exc), exc.code) from None
