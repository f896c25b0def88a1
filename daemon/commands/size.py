"""`tradingd size`: what the sizer would do for one signal, with the whole breakdown (SPEC §7).

A what-if: checks that need live data the command does not have (quote age, liquidity, greeks)
are shown as skipped. Exit 0 whenever it answered, accepted or refused; exit 2 for bad input.
Under --json money is a JSON number whenever its text is exact, else a string (see Decision.to_record).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.loader import ConfigError, load_settings
from config.models import Settings
from daemon.cli import UsageError
from daemon.commands.legs import add_leg_argument, parse_legs
from daemon.events_calendar import CalendarError, load_calendar
from daemon import format as fmt
from market.clock import LiveClock
from risk.capital import capital_base
from risk.decision import Decision
from risk.events import NO_EVENTS, EventView
from risk.numbers import MAX_MAGNITUDE, InvalidInput, to_decimal
from risk.request import SizingRequest, parse_correlations, parse_open_positions
from risk.signal import FUNDAMENTAL_FIELDS, STRATEGIES, SignalRejected, parse_signal
from risk.sizing import evaluate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("size", help="what the sizer would do for a signal, with the breakdown")
    p.add_argument("--profile", required=True, help="profile name (0dte, 7dte) or a path to a TOML file")
    p.add_argument("--underlying", required=True)
    p.add_argument("--confidence", required=True, help="signal confidence in [0, 1]")
    p.add_argument("--price", help="option limit price per share (a combo: given by its --leg prices)")
    p.add_argument("--vix", help="current VIX")
    p.add_argument("--vix-open", help="VIX at the session open (for the VIX spike cap)")
    p.add_argument("--strategy", default="directional", help=f"one of {', '.join(STRATEGIES)}")
    p.add_argument("--direction", default="bullish", help="bullish or bearish")
    p.add_argument("--equity", help="capital base to size against (default: the profile's)")
    p.add_argument("--buying-power", help="buying power the broker reports")
    p.add_argument("--breaker-level", type=int, default=0, help="account breaker level 0-4")
    p.add_argument("--open-positions", metavar="FILE", help='JSON list of {"underlying", "contracts", "price"}')
    p.add_argument("--correlations", metavar="FILE", help="JSON object of objects: symbol -> symbol -> rho")
    p.add_argument("--fundamentals", metavar="FILE", help=f"JSON object with any of {', '.join(FUNDAMENTAL_FIELDS)}")
    p.add_argument("--calendar", action="store_true",
                   help="apply the event calendar now (macro day, blackout, earnings before --expiry; SPEC §10.1)")
    p.add_argument("--expiry", help="the option's expiry YYYY-MM-DD (with --calendar: does it span earnings?)")
    add_leg_argument(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = _settings(args.profile)
    now = LiveClock().now()
    raw_signal: dict[str, Any] = {
        "id": "size-what-if", "profile": settings.profile.name, "underlying": _symbol(args.underlying),
        "direction": args.direction, "strategy": args.strategy,
        "confidence": _number(args.confidence, "--confidence", "invalid_confidence"),
        "created_at": now, **_fundamentals(args.fundamentals),
    }
    try:
        signal = parse_signal(raw_signal, settings, now)
    except SignalRejected as exc:
        raise UsageError(exc.message, exc.reason_code) from None
    legs = None
    if args.leg:  # SPEC §9: a combo is sized on its maximum loss per unit (its value: market.combo)
        expiry = date.fromisoformat(args.expiry) if args.expiry else now.date()
        legs = parse_legs(args.leg, args.strategy, signal.underlying, expiry, settings.profile.contract_multiplier)
        if args.price is not None:
            raise UsageError("--price and --leg: a combo's price comes from its legs", "invalid_price")
        price = legs.value
    elif args.price is None:
        raise UsageError("--price is required (or --leg for a combo)", "invalid_price")
    else:
        price = _number(args.price, "--price", "invalid_price")
    if price <= 0:
        raise UsageError(f"--price must be positive, got {args.price}", "invalid_price")
    try:
        request = SizingRequest(
            signal=signal, price=price, capital_base=_base(args.equity, settings), now=now,
            vix=_optional(args.vix, "--vix", "invalid_vix", minimum=Decimal(0)),
            vix_session_open=_optional(args.vix_open, "--vix-open", "invalid_vix", minimum=Decimal(0)),
            open_positions=parse_open_positions(_read_json(args.open_positions, [])),
            correlations=parse_correlations(_read_json(args.correlations, {})),
            buying_power=_optional(args.buying_power, "--buying-power", "invalid_buying_power"),
            breaker_level=args.breaker_level, what_if=True, events=_events(args, settings, signal.underlying, now),
        )
    except InvalidInput as exc:
        raise UsageError(exc.message, exc.code) from None
    decision = evaluate(request, settings)
    if decision.checks and decision.checks[0].name == "inputs":  # the sizer could not size it: bad input
        raise UsageError(decision.message, decision.reason or "bad_input")
    if args.json:
        record = fmt.present_decision(decision.to_record(numbers=True), numbers=True)
        if legs is not None:
            record["combo"] = legs.record()
        print(json.dumps(record))
    else:
        if legs is not None:
            print("\n".join(legs.lines()))
        print(render(decision, signal.confidence, price))
    return 0


def _events(args: argparse.Namespace, settings: Settings, underlying: str, now: Any) -> EventView:
    """Off unless asked: a what-if's numbers do not depend on the day it is run."""
    expiry = None
    if args.expiry is not None:
        try:
            expiry = date.fromisoformat(args.expiry)
        except ValueError:
            raise UsageError(f"--expiry must be YYYY-MM-DD, got {args.expiry!r}", "invalid_expiry") from None
    if not args.calendar:
        return NO_EVENTS
    try:
        return load_calendar(settings.regime.events).view(now, underlying, expiry)
    except CalendarError as exc:
        raise UsageError(exc.message, exc.code) from None


def _settings(profile: str) -> Settings:
    try:
        return load_settings(profile)
    except ConfigError as exc:
        code = "unknown_profile" if any(key == "profile" for key, _ in exc.problems) else "config_invalid"
        raise UsageError(str(exc), code) from None


def _number(text: str, flag: str, code: str) -> Decimal:
    value = to_decimal(text, allow_str=True)
    if value is None:
        raise UsageError(f"{flag} must be a finite number of at most {MAX_MAGNITUDE} in size, got {text!r}", code)
    return value


def _optional(text: str | None, flag: str, code: str, minimum: Decimal | None = None) -> Decimal | None:
    if text is None:
        return None
    value = _number(text, flag, code)
    if minimum is not None and value < minimum:
        raise UsageError(f"{flag} must be at least {minimum}, got {text}", code)
    return value


def _base(equity: str | None, settings: Settings) -> Decimal:
    if equity is not None:
        value = _number(equity, "--equity", "invalid_capital_base")
        if value <= 0:
            raise UsageError(f"--equity must be positive, got {equity}", "invalid_capital_base")
        return value
    try:
        return capital_base(settings.capital)
    except InvalidInput as exc:
        raise UsageError(f"{exc.message}: give --equity", exc.code) from None


def _read_json(path: str | None, default: Any) -> Any:
    if path is None:
        return default
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}",
                         "invalid_file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}", "invalid_file") from None


def _fundamentals(path: str | None) -> dict[str, Any]:
    data = _read_json(path, {})
    if not isinstance(data, dict) or not set(data) <= set(FUNDAMENTAL_FIELDS):
        raise UsageError(f"{path} must be an object with only {', '.join(FUNDAMENTAL_FIELDS)}", "invalid_file")
    return data


def render(d: Decision, confidence: Decimal, price: Decimal) -> str:
    """The human breakdown: verdict, size, multiplier, caps, every gate check."""
    verdict = "ACCEPTED" if d.accepted else f"REFUSED: {d.reason} ({d.message})"
    m = fmt.money
    lines = [
        f"{d.profile} {d.underlying}: confidence {fmt.ratio(confidence)}, price {fmt.price(price)} "
        f"(contract value {m(d.contract_value)})",
        f"decision     {verdict}",
        f"contracts    {d.contracts}  notional {m(d.notional)}",
        f"bets         min {m(d.min_bet)}  max {m(d.max_bet)}  (capital base {m(d.capital_base)}; "
        f"minimum = {d.min_contracts} contracts)",
        f"multiplier   {fmt.ratio(d.multiplier)}  (raw {fmt.ratio(d.raw_multiplier)})",
        "  factors    " + _pairs(d.factors, fmt.ratio),
        "  caps       " + _pairs(d.multiplier_caps, fmt.ratio),
        "cap limits   " + _pairs(d.cap_limits, m) + "  (money still allowed)",
    ]
    lines.append("bound by     " + ("; ".join(
        f"{c.name} ({c.kind}, limit {fmt.ratio(c.limit) if c.kind == 'multiplier' else m(c.limit)}): "
        f"{c.contracts_before} -> {c.contracts_after} contracts"
        for c in d.caps) or "nothing"))
    lines.append("checks")
    lines += [f"  {c.status:<4}  {c.name:<28} {c.detail}".rstrip() for c in d.checks]
    if d.notes:
        lines.append("notes        " + _pairs(d.notes, fmt.note))
    return "\n".join(lines)


def _pairs(values: Any, render: Any = str) -> str:
    return ", ".join(f"{k} {render(v)}" for k, v in values.items()) or "none"


def _symbol(text: str) -> str:
    """An operator may type `aapl`: ASCII letters are upper-cased here (never anything else; `ſpy`
    stays as typed and the signal rules refuse it)."""
    return text.strip().upper() if text.isascii() else text
