"""`tradingd broker check [--profile P] [--host H] [--port P] [--client-id N] [--json]`.

A one-shot probe (SPEC §6.1): connects to TWS / IB Gateway as the daemon would (same paper
check, same client-id handling) but runs no heartbeat, reconnect, reconciliation or chain
load, then asks each question on its own: account values, the gateway's time, market data
for the profile's underlyings and VIX (live, delayed, missing or timed_out). It prints all
it learned and a warning for each thing it could not learn; exit 1 when any step failed
(cannot connect: refused, closed or timed out; the account refused; a request unanswered),
0 otherwise (warnings allowed), 2 on bad input. stdout is the report only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from broker.base import BrokerError
from config.models import Settings

DEFAULT_PROFILE = "0dte"
EXIT_FAILED = 1  # could not connect, the account would be refused, or a request went unanswered


@dataclass
class CheckResult:
    """Everything the probe learned; a field it could not learn stays None. `ok` is False when any
    step failed (could not connect, a request unanswered or refused), warnings say which and why."""

    server_version: int | None = None
    account: str | None = None
    paper: bool | None = None
    currency: str | None = None
    net_liquidation: str | None = None
    buying_power: str | None = None
    gateway_time: str | None = None
    market_data: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ok: bool = True
    code: str | None = None  # the reason code of the step that failed first
    error: str | None = None

    def fail(self, exc: BrokerError, what: str) -> None:
        self.ok = False
        if self.code is None:
            self.code, self.error = exc.code, str(exc)
        self.warnings.append(f"{what}: {exc}")


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
    # Every log line (ours and ib_async's "Error 354, reqId ...") goes to stderr: stdout is the report.
    configure_logging(json_logs=False, level="WARNING", stream=sys.stderr)
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)
    result = asyncio.run(check(settings, updates))
    if not result.ok and result.account is None:  # it never got as far as an account: say where it looked
        print(f"tradingd: broker check failed: {_explain(result, settings, updates)}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.__dict__, indent=2))
    else:
        _print(result)
    return 0 if result.ok else EXIT_FAILED


async def check(settings: Settings, ib_updates: dict[str, Any]) -> CheckResult:
    """Probe the gateway once: connect (no heartbeat, no chains), then ask each question on its own,
    so one unanswered request costs its timeout and a warning, not what the others learned."""
    from broker.ib import IBBroker
    from broker.ib.account import is_paper

    cfg = settings.broker.ib.model_copy(update=ib_updates)
    broker = IBBroker(settings, ib_config=cfg)
    result = CheckResult()
    try:
        try:
            await broker.probe()
        except BrokerError as exc:
            result.server_version = broker.server_version
            result.fail(exc, "cannot connect")
            return result
        result.server_version = broker.server_version
        result.account, result.paper = broker.account_id, is_paper(broker.account_id)
        try:
            snap = await broker.account()
        except BrokerError as exc:
            result.fail(exc, "account values")
        else:
            result.currency = snap.currency
            result.net_liquidation, result.buying_power = str(snap.net_liquidation), str(snap.buying_power)
            if snap.currency != cfg.currency:
                result.warnings.append(f"base currency is {snap.currency}, not {cfg.currency}: "
                                       f"sizing and P&L assume {cfg.currency}")
        try:
            result.gateway_time = (await broker.current_time()).isoformat()
        except BrokerError as exc:
            result.fail(exc, "gateway time (reqCurrentTime, the daemon's heartbeat)")
        keys = [*settings.profile.underlyings, settings.profile.vix_symbol]
        try:
            result.market_data = await broker.market_data_status(keys)
        except BrokerError as exc:
            result.fail(exc, "market data")
    finally:
        await broker.stop()
    not_live = [k for k, v in result.market_data.items() if v != "live"]
    if not_live:
        result.warnings.append(f"no live market data for {', '.join(not_live)}: "
                               "entries will refuse stale or delayed quotes")
    timed_out = [k for k, v in result.market_data.items() if v == "timed_out"]
    if timed_out:
        result.fail(BrokerError("timeout", f"no contract details for {', '.join(timed_out)}"),
                    "market data")
    return result


def _explain(result: CheckResult, settings: Settings, updates: dict[str, Any]) -> str:
    from broker.ib.session import CONNECT_FAILURES

    cfg = settings.broker.ib.model_copy(update=updates)
    if result.code in CONNECT_FAILURES or result.code in ("326", "timeout"):
        return (f"{result.error} (is IB Gateway / TWS running with the API enabled on {cfg.host}:{cfg.port}? "
                "paper gateway 4002, live gateway 4001, TWS 7497 / 7496)")
    return str(result.error)


def _print(r: CheckResult) -> None:
    unknown = "(not learned)"
    if r.server_version is not None:
        print(f"server version   {r.server_version}")
    if r.account is not None:
        print(f"account          {r.account} ({'paper' if r.paper else 'LIVE'})")
        print(f"base currency    {r.currency or unknown}")
        print(f"net liquidation  {r.net_liquidation or unknown}")
        print(f"buying power     {r.buying_power or unknown}")
        print(f"gateway time     {r.gateway_time or unknown}")
    for key, state in r.market_data.items():
        print(f"market data      {key:<6} {state}")
    for warning in r.warnings:
        print(f"warning: {warning}")
    print("result           ok" if r.ok else f"result           FAILED ({r.code})")
