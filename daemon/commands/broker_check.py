"""`tradingd broker check [--profile P] [--host H] [--port P] [--client-id N] [--json]`.

Connects to TWS / IB Gateway as the daemon would and prints the server version, the account
(paper or live), its base currency (a warning when it is not the configured one), net
liquidation, buying power, and whether market data for the profile's underlyings and VIX
is live, delayed or missing. Exits 1 with one clear line when it cannot connect or the
account would be refused (the same paper check as `run`), 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from broker.base import BrokerError
from config.models import Settings

DEFAULT_PROFILE = "0dte"
EXIT_REFUSED = 1


@dataclass
class CheckResult:
    server_version: int | None
    account: str
    paper: bool
    currency: str
    net_liquidation: str
    buying_power: str
    market_data: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def register(sub: argparse._SubParsersAction) -> None:
    broker = sub.add_parser("broker", help="broker commands")
    broker_sub = broker.add_subparsers(dest="broker_command", metavar="SUBCOMMAND", parser_class=type(broker))
    check = broker_sub.add_parser("check", help="connect to TWS / IB Gateway and report what the daemon would see")
    check.add_argument("--profile", help="profile name (0dte, 7dte) or a TOML path (default: $TRADINGD_PROFILE or 0dte)")
    check.add_argument("--host", help="gateway host (default: the profile's broker.ib.host)")
    check.add_argument("--port", type=int, help="gateway port (default: the profile's broker.ib.port)")
    check.add_argument("--client-id", type=int, help="API client id (default: the profile's broker.ib.client_id)")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from config.loader import load_settings
    from daemon.cli import UsageError
    from daemon.logging import configure_logging

    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError("--port must be within 1-65535", "bad_port")
    if args.client_id is not None and args.client_id < 0:
        raise UsageError("--client-id must be >= 0", "bad_client_id")
    settings = load_settings(args.profile or os.environ.get("TRADINGD_PROFILE") or DEFAULT_PROFILE)
    updates = {k: v for k, v in (("host", args.host), ("port", args.port), ("client_id", args.client_id))
               if v is not None}
    configure_logging(json_logs=False, level="WARNING", stream=sys.stderr)
    try:
        result = asyncio.run(check(settings, updates))
    except BrokerError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "code": exc.code}))
        print(f"tradingd: broker check failed: {_explain(exc, settings, updates)}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        print(json.dumps(result.__dict__, indent=2))
    else:
        _print(result)
    return 0


async def check(settings: Settings, ib_updates: dict[str, Any]) -> CheckResult:
    from broker.ib import IBBroker

    cfg = settings.broker.ib.model_copy(update=ib_updates)
    broker = IBBroker(settings, ib_config=cfg)
    try:
        await broker.start()
        snap = await broker.account()
        keys = [*settings.profile.underlyings, settings.profile.vix_symbol]
        market_data = await broker.market_data_status(keys)
    finally:
        await broker.stop()
    warnings = []
    if snap.currency != cfg.currency:
        warnings.append(f"base currency is {snap.currency}, not {cfg.currency}: sizing and P&L assume {cfg.currency}")
    missing = [k for k, v in market_data.items() if v != "live"]
    if missing:
        warnings.append(f"no live market data for {', '.join(missing)}: entries will refuse stale or delayed quotes")
    return CheckResult(server_version=snap.server_version, account=snap.account_id, paper=snap.paper,
                       currency=snap.currency, net_liquidation=str(snap.net_liquidation),
                       buying_power=str(snap.buying_power), market_data=market_data, warnings=warnings)


def _explain(exc: BrokerError, settings: Settings, updates: dict[str, Any]) -> str:
    cfg = settings.broker.ib.model_copy(update=updates)
    if exc.code in ("connect_failed", "326", "timeout"):
        return (f"{exc} (is IB Gateway / TWS running with the API enabled on {cfg.host}:{cfg.port}? "
                "paper gateway 4002, live gateway 4001, TWS 7497 / 7496)")
    return str(exc)


def _print(r: CheckResult) -> None:
    print(f"server version   {r.server_version}")
    print(f"account          {r.account} ({'paper' if r.paper else 'LIVE'})")
    print(f"base currency    {r.currency}")
    print(f"net liquidation  {r.net_liquidation}")
    print(f"buying power     {r.buying_power}")
    for key, state in r.market_data.items():
        print(f"market data      {key:<6} {state}")
    for warning in r.warnings:
        print(f"warning: {warning}")
