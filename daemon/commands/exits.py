"""`tradingd exits`: the exit actions a price path triggers (SPEC §7), through the same policy
the daemon runs, with the state carried from quote to quote and closes assumed filled."""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from config.loader import load_settings
from config.models import Settings
from market import calendar
from daemon.cli import UsageError
from daemon.commands.legs import add_leg_argument, parse_legs
from exits.combo import credit_initial_state, credit_take_profit
from exits.context import ExitContext, remaining
from market.combo import Combo
from daemon import format as fmt
from market.clock import EXCHANGE_TZ
from exits import ExitAction, ExitInputError, ExitPosition, MarketSnapshot, evaluate, new_state
from risk.numbers import MAX_MAGNITUDE

FRIDAY = 4
_Day = TypeVar("_Day", date, datetime)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exits", help="replay a price path through the exit rules and print the actions")
    p.add_argument("--profile", required=True, help="profile name (0dte, 7dte) or a path to a TOML file")
    p.add_argument("--entry", help="entry premium per share, e.g. 10.00 (a combo: given by its --leg prices)")
    p.add_argument("--strategy", default="directional", choices=("directional", "neutral", "volatility"),
                   help="the signal's strategy; neutral and volatility are combos given by --leg (SPEC §9)")
    add_leg_argument(p)
    p.add_argument("--contracts", default="1", help="contracts bought (default 1)")
    p.add_argument("--entry-time", required=True, help="ISO datetime of the entry; naive = America/New_York")
    p.add_argument("--quotes", required=True, help="CSV with header time,price[,underlying]; a combo's price is its "
                                                   "net per share (negative for a credit)")
    p.add_argument("--expiry", help="expiry date (default: 0dte the entry date; 7dte the Friday nearest target DTE)")
    p.add_argument("--underlying", help="underlying symbol (default: the profile's first)")
    p.add_argument("--right", choices=("C", "P"), default="C", help="call or put (default C)")
    p.add_argument("--vix", help="VIX level for the whole path")
    p.add_argument("--earnings", help="next earnings date (7dte thresholds tighten when it is before expiry)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class QuoteRow:
    line: int
    time: datetime
    price: Decimal | None
    underlying: Decimal | None


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.profile)
    if args.leg and args.entry is not None:
        raise UsageError("--entry and --leg: a combo's entry comes from its legs' prices")
    if not args.leg and args.entry is None:
        raise UsageError("--entry is required (or --leg for a combo)")
    entry = _positive_decimal(args.entry, "--entry") if args.entry is not None else Decimal(0)
    contracts = _contracts(args.contracts)
    entry_time = _in_calendar(_exchange_time(args.entry_time, "--entry-time"), "--entry-time")
    underlying = _underlying(args.underlying, settings)
    vix = None if args.vix is None else _positive_decimal(args.vix, "--vix")
    earnings = None if args.earnings is None else _date(args.earnings, "--earnings")
    expiry = _in_calendar(_date(args.expiry, "--expiry"), "--expiry") if args.expiry \
        else default_expiry(settings, entry_time.date())
    if expiry < entry_time.date():
        raise UsageError(f"--expiry {expiry} is before the entry date {entry_time.date()}")
    legs = None
    if args.leg:  # SPEC §9: the whole combo, in its value space (market.combo): entry = its max loss
        legs = parse_legs(args.leg, args.strategy, underlying, expiry, settings.profile.contract_multiplier)
        entry = legs.value
    rows = read_quotes(Path(args.quotes), entry_time, signed=legs is not None)
    if legs is not None:
        floor = Decimal("0.01")  # value 0 is the maximum loss: every stop is below it already
        rows = [replace(r, price=None if r.price is None else max(floor, legs.combo.value(r.price))) for r in rows]
    try:
        position = ExitPosition(entry, entry_time, contracts, contracts, expiry, underlying,
                                settings.profile.name, args.right,
                                adverse_gap="" if legs is None else legs.combo.adverse_gap)  # type: ignore[arg-type]
        results = replay(position, rows, settings, vix, earnings, None if legs is None else legs.combo)
    except ExitInputError as exc:
        raise UsageError(str(exc), exc.code) from None
    except calendar.CalendarRangeError as exc:
        raise UsageError(str(exc), exc.code) from None
    if args.json:
        records = [_record(when, action) for when, action in results]
        print(json.dumps(records if legs is None else {"combo": legs.record(), "actions": records}, indent=2))
    else:
        if legs is not None:
            print("\n".join(legs.lines()))
        _print_table(results)
    return 0


def replay(position: ExitPosition, rows: list[QuoteRow], settings: Settings,
           vix: Decimal | None, earnings: date | None, combo: Combo | None = None) -> list[tuple[datetime, ExitAction]]:
    """Run the policy over the path; closes reduce the open quantity as if filled at once. A credit
    combo adds its credit stop and take-profit (exits.combo), as the daemon's exit desk does."""
    credit = combo is not None and combo.credit
    state = new_state(position, settings)
    if credit:
        assert combo is not None
        state = credit_initial_state(position.entry_price, combo.value_offset, settings.multileg)
    closes = _CloseTracker()
    out: list[tuple[datetime, ExitAction]] = []
    for row in rows:
        session = calendar.session_for(row.time.date())
        market = MarketSnapshot(row.price, session, row.underlying, vix, earnings, closes.previous(row.time))
        closes.observe(row.time, session, row.underlying)
        actions, state = evaluate(position, state, market, row.time, settings)
        if credit and remaining(position, state) > 0:
            assert combo is not None
            more, state = credit_take_profit(ExitContext(position, market, row.time), state, combo.value_offset,
                                             settings.multileg)
            actions = actions + more
        sold = sum(a.quantity for a in actions if a.kind in ("close", "partial_close"))
        position = replace(position, open_quantity=position.open_quantity - sold)
        out.extend((row.time, a) for a in actions)
    return out


class _CloseTracker:
    """The underlying's last regular-hours value of each session in the path stands in for its close."""

    def __init__(self) -> None:
        self._session: calendar.SessionTimes | None = None
        self._last: Decimal | None = None
        self._close: Decimal | None = None

    def previous(self, when: datetime) -> Decimal | None:
        if self._session is not None and when >= self._session.close:
            return self._last
        return self._close

    def observe(self, when: datetime, session: calendar.SessionTimes | None, underlying: Decimal | None) -> None:
        if underlying is None or session is None or not session.contains(when):
            return
        if self._session is not None and self._session.day != session.day:
            self._close = self._last
        self._session, self._last = session, underlying


def default_expiry(settings: Settings, entry_day: date) -> date:
    """0 DTE: the entry day. Otherwise the Friday nearest `target_dte` calendar days out,
    moved to the session before it when that Friday is a holiday (weeklies expire Thursday)."""
    target = settings.profile.expiry.target_dte
    if target == 0:
        return entry_day
    aim = entry_day + timedelta(days=target)
    offset = (FRIDAY - aim.weekday()) % 7
    friday = aim + timedelta(days=offset) if offset <= 3 else aim - timedelta(days=7 - offset)
    if friday <= entry_day:
        friday += timedelta(days=7)
    return friday if calendar.is_session(friday) else calendar.previous_session(friday)


def read_quotes(path: Path, entry_time: datetime, signed: bool = False) -> list[QuoteRow]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's BOM is not part of "time"
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            if "time" not in header or "price" not in header:
                raise UsageError(f"{path}: header must have time,price (and optionally underlying), got {','.join(header)}")
            reader.fieldnames = header
            rows = [_row(path, n, raw, "underlying" in header, signed) for n, raw in enumerate(reader, start=2)]
    except FileNotFoundError:
        raise UsageError(f"quotes file not found: {path}", "file_not_found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"cannot read quotes file {path}: {exc}") from None
    if not rows:
        raise UsageError(f"{path}: no quote rows")
    _in_calendar(rows[-1].time, f"{path}:{rows[-1].line} time")
    previous = entry_time
    for row in rows:
        if row.time < previous:
            what = "the entry time" if previous == entry_time else "the row before"
            raise UsageError(f"{path}:{row.line}: time {row.time.isoformat()} is before {what}")
        previous = row.time
    return rows


def _row(path: Path, line: int, raw: dict[str | None, str | None], has_underlying: bool,
         signed: bool = False) -> QuoteRow:
    where = f"{path}:{line}"
    if None in raw:
        raise UsageError(f"{where}: more fields than the header")
    if None in raw.values():  # an empty cell is "no quote"; a missing one is a broken row
        raise UsageError(f"{where}: fewer fields than the header")
    when = _exchange_time(raw.get("time") or "", f"{where} time")
    price_text = (raw.get("price") or "").strip()
    price = (_signed_decimal if signed else _positive_decimal)(price_text, f"{where} price") if price_text else None
    under_text = (raw.get("underlying") or "").strip() if has_underlying else ""
    underlying = _positive_decimal(under_text, f"{where} underlying") if under_text else None
    return QuoteRow(line, when, price, underlying)


def _positive_decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise UsageError(f"{what}: not a number: {text!r}") from None
    if not value.is_finite() or not 0 < value <= MAX_MAGNITUDE:
        raise UsageError(f"{what}: must be a finite number > 0 and at most {MAX_MAGNITUDE}, got {text!r}")
    return value


def _contracts(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--contracts: not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_MAGNITUDE:
        raise UsageError(f"--contracts: must be at least 1 and at most {MAX_MAGNITUDE}, got {value}")
    return value


def _underlying(text: str | None, settings: Settings) -> str:
    if text is None:
        return settings.profile.underlyings[0]
    symbol = text.strip().upper()
    if symbol not in settings.profile.underlyings:
        raise UsageError(f"--underlying {text!r} is not traded by profile {settings.profile.name}; "
                         f"known: {', '.join(settings.profile.underlyings)}", "unknown_underlying")
    return symbol


def _in_calendar(when: _Day, what: str) -> _Day:
    """Within the years the exchange calendar covers: from its first year to a few years past today
    (nothing is listed further out, and the calendar library cannot reach the far future)."""
    last = date.today().year + calendar.YEARS_AHEAD
    if not calendar.FIRST_YEAR <= when.year <= last:
        raise UsageError(f"{what}: {when.isoformat()} is outside the exchange calendar "
                         f"({calendar.FIRST_YEAR} to {last})", calendar.CalendarRangeError.code)
    return when


def _exchange_time(text: str, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{what}: not an ISO datetime: {text!r}") from None
    return when.replace(tzinfo=EXCHANGE_TZ) if when.tzinfo is None else when.astimezone(EXCHANGE_TZ)


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{what}: not an ISO date (YYYY-MM-DD): {text!r}") from None


def _record(when: datetime, action: ExitAction) -> dict[str, object]:
    record = action.to_record()
    return {"time": when.isoformat(), **record, "stop_price": fmt.price(record["stop_price"])}


def _print_table(results: list[tuple[datetime, ExitAction]]) -> None:
    if not results:
        print("no exit actions")
        return
    print(f"{'time':<24}  {'kind':<13}  {'qty':>5}  {'rule':<20}  reason")
    for when, a in results:
        stop = f" [stop {fmt.price(a.stop_price)}]" if a.stop_price is not None else ""
        print(f"{when:%Y-%m-%d %H:%M:%S%z}  {a.kind:<13}  {a.quantity:>5}  {a.rule:<20}  {a.reason}{stop}")


def _signed_decimal(text: str, what: str) -> Decimal:
    """A combo's net price: any finite number (a credit is negative)."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise UsageError(f"{what}: not a number: {text!r}") from None
    if not value.is_finite() or abs(value) > MAX_MAGNITUDE:
        raise UsageError(f"{what}: must be a finite number, got {text!r}")
    return value
