"""Readers for every recorded format in the data (../shared/data/market/SOURCES.md), each into one
normalized in-memory form: `daemon.bars.Bar` / `DailyBar` for prices, `market.types.Quote` for
recorded option quotes, `ChainRow` for end-of-day option chains.

Every row is validated; a bad one is refused with `DataError` naming the file and line (SPEC §4.4):
a price that is not a positive finite number, a bar with high < low or open/close outside
[low, high], a row with the wrong number of columns, a time that does not parse.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from broker.recorded import RecordedDataError, read_open_interest, read_quotes
from config.errors import ReasonError
from daemon.bars import Bar, DailyBar
from market.clock import EXCHANGE_TZ
from market.types import Quote

LEAN_SCALE = Decimal(10000)
CHICAGO = ZoneInfo("America/Chicago")
MINUTE = timedelta(minutes=1)
FIVE_MINUTES = timedelta(minutes=5)


class DataError(ReasonError, ValueError):
    """A recorded file or row that cannot be read. `code` is a stable reason code; the message names file and line."""


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One contract of an end-of-day option chain (Lean universe or Yahoo)."""

    underlying: str
    day: date
    expiry: date
    strike: Decimal
    right: str  # "C" | "P"
    bid: Decimal | None
    ask: Decimal | None
    close: Decimal | None
    volume: int
    open_interest: int
    iv: Decimal | None
    delta: Decimal | None = None
    gamma: Decimal | None = None
    vega: Decimal | None = None
    theta: Decimal | None = None


# ---------------------------------------------------------------------------------------- helpers

def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError("unreadable_file", f"{path}: {exc}") from None
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def _zip_members(path: Path) -> list[tuple[str, str]]:
    try:
        with zipfile.ZipFile(path) as archive:
            return [(n, archive.read(n).decode("utf-8-sig")) for n in sorted(archive.namelist())]
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError("unreadable_file", f"{path}: {exc}") from None


def _num(text: str, where: str, what: str, *, scale: Decimal | None = None, positive: bool = True,
         optional: bool = False) -> Decimal | None:
    text = text.strip()
    if not text and optional:
        return None
    value = _finite(text, where, what)
    if scale is not None:
        value = value / scale
    if positive and value <= 0:
        raise DataError("bad_row", f"{where}: {what} {text!r} must be positive")
    if not positive and value < 0:
        raise DataError("bad_row", f"{where}: {what} {text!r} must not be negative")
    return value


def _int(text: str, where: str, what: str) -> int:
    value = _num(text or "0", where, what, positive=False)
    assert value is not None
    return int(value)


def checked_bar(symbol: str, start: datetime, length: timedelta, o: Decimal, h: Decimal, low: Decimal,
                c: Decimal, volume: int, where: str) -> Bar:
    """A bar whose prices are consistent, or DataError (SPEC §4.4: refused with file and line)."""
    if h < low:
        raise DataError("bad_bar", f"{where}: high {h} < low {low}")
    if not (low <= o <= h and low <= c <= h):
        raise DataError("bad_bar", f"{where}: open {o} / close {c} outside [low {low}, high {h}]")
    return Bar(symbol, start, start + length, o, h, low, c, volume)


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if row and any(cell.strip() for cell in row):
            yield line, row


Refusals = list[DataError] | None  # None: the first bad row raises; a list: bad rows are kept there and skipped


def _refuse(exc: DataError, refusals: Refusals) -> None:
    """A bad row: raise (strict) or record it and go on (the rest of the file is still good data)."""
    if refusals is None:
        raise exc
    refusals.append(exc)


# ---------------------------------------------------------------------------------------- Lean

def lean_minute_bars(path: Path, symbol: str, *, index: bool = False, refusals: Refusals = None) -> list[Bar]:
    """Lean minute trade bars (`ms, o, h, l, c, volume`) or quote bars (`ms, bid o/h/l/c, size,
    ask o/h/l/c, size`, read as mid bars) of one day. Equity prices ×10000; index bars are not
    scaled and stamped America/Chicago. Bars are labelled at their start in the file."""
    day_text = path.name[:8]
    try:
        day = datetime.strptime(day_text, "%Y%m%d").date()
    except ValueError:
        raise DataError("bad_file_name", f"{path}: the name does not start with yyyymmdd") from None
    zone = CHICAGO if index else EXCHANGE_TZ
    scale = None if index else LEAN_SCALE
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    bars: list[Bar] = []
    for name, text in _zip_members(path):
        for line, row in _rows(text):
            where = f"{path}:{name}:{line}"
            try:
                if len(row) == 6:
                    o, h, low, c = (_num(row[i], where, f, scale=scale) for i, f in
                                    ((1, "open"), (2, "high"), (3, "low"), (4, "close")))
                    volume = _int(row[5], where, "volume")
                elif len(row) == 11:
                    bid = [_num(row[i], where, "bid", scale=scale) for i in (1, 2, 3, 4)]
                    ask = [_num(row[i], where, "ask", scale=scale) for i in (6, 7, 8, 9)]
                    o, c = ((bid[0] + ask[0]) / 2, (bid[3] + ask[3]) / 2)  # type: ignore[operator]
                    h, low = max(o, c, (bid[1] + ask[1]) / 2), min(o, c, (bid[2] + ask[2]) / 2)  # type: ignore[operator]
                    volume = 0
                else:
                    raise DataError("bad_row", f"{where}: {len(row)} columns, not 6 (trade) or 11 (quote)")
                start = (midnight + timedelta(milliseconds=_int(row[0], where, "time"))).astimezone(EXCHANGE_TZ)
                bars.append(checked_bar(symbol, start, MINUTE, o, h, low, c, volume, where))  # type: ignore[arg-type]
            except DataError as exc:
                _refuse(exc, refusals)
    bars.sort(key=lambda b: b.end)
    return bars


def lean_option_quotes(path: Path, *, underlying: str | None = None, open_interest: Path | None = None) -> list[Quote]:
    """Recorded option quotes (bid, ask, sizes) of a Lean minute quote zip, in time order, each stamped
    when its bar closed. `underlying` renames the root (SPXW options trade on the SPX index)."""
    try:
        oi = read_open_interest(open_interest) if open_interest is not None and open_interest.exists() else None
        quotes = read_quotes(path, oi)
    except RecordedDataError as exc:
        raise DataError(exc.code, f"{path}: {exc}") from None
    for q in quotes:
        for price in (q.bid, q.ask):
            if price is not None and (not price.is_finite() or price < 0):
                raise DataError("bad_row", f"{path}: {q.key} at {q.received_at:%H:%M}: price {price}")
    if underlying is None:
        return quotes
    import dataclasses

    out = []
    for q in quotes:
        _, rest = q.key.split(" ", 1)
        out.append(dataclasses.replace(q, key=f"{underlying} {rest}"))
    return out


def lean_universe(path: Path, underlying: str, refusals: Refusals = None) -> tuple[Bar | None, list[ChainRow]]:
    """A Lean EOD option universe: the underlying's day bar (first data row) and every contract with IV and greeks."""
    try:
        day = datetime.strptime(path.name[:8], "%Y%m%d").date()
    except ValueError:
        raise DataError("bad_file_name", f"{path}: the name is not yyyymmdd.csv") from None
    rows: list[ChainRow] = []
    under: Bar | None = None
    for line, row in _rows(_text(path)):
        if row[0].startswith("#"):
            continue
        where = f"{path}:{line}"
        try:
            if len(row) != 15:
                raise DataError("bad_row", f"{where}: {len(row)} columns, not 15")
            if not row[0].strip():
                o, h, low, c = (_num(row[i], where, f) for i, f in ((3, "open"), (4, "high"), (5, "low"), (6, "close")))
                start = datetime.combine(day, time(9, 30), tzinfo=EXCHANGE_TZ)
                under = checked_bar(underlying, start, timedelta(hours=6, minutes=30), o, h, low, c,  # type: ignore[arg-type]
                                    _int(row[7], where, "volume"), where)
                continue
            right = row[2].strip().upper()
            if right not in ("C", "P", "CALL", "PUT", "0", "1"):
                raise DataError("bad_row", f"{where}: right {row[2]!r}")
            right = "C" if right in ("C", "CALL", "0") else "P"
            try:
                expiry = datetime.strptime(row[0].strip(), "%Y%m%d").date()
            except ValueError:
                raise DataError("bad_row", f"{where}: expiry {row[0]!r}") from None
            greeks = [_num(row[i], where, name, positive=False, optional=True) if name in ("iv",)
                      else _signed(row[i], where, name) for i, name in ((10, "delta"), (11, "gamma"), (12, "vega"),
                                                                          (13, "theta"))]
            rows.append(ChainRow(underlying, day, expiry, _num(row[1], where, "strike"), right,  # type: ignore[arg-type]
                                 None, None, _num(row[6], where, "close", positive=False), _int(row[7], where, "volume"),
                                 _int(row[8], where, "open_interest"),
                                 _num(row[9], where, "implied_volatility", positive=False), *greeks))
        except DataError as exc:
            _refuse(exc, refusals)
    return under, rows


def _signed(text: str, where: str, what: str) -> Decimal | None:
    text = text.strip()
    return _finite(text, where, what) if text else None


def _finite(text: str, where: str, what: str) -> Decimal:
    """`text` as a finite Decimal, or the row refused with file and line."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DataError("bad_row", f"{where}: {what} {text!r} is not a number") from None
    if not value.is_finite():
        raise DataError("bad_row", f"{where}: {what} {text!r} is not finite")
    return value


# ---------------------------------------------------------------------------------------- daily and EOD

def cboe_vix_daily(path: Path, symbol: str = "VIX", refusals: Refusals = None) -> list[DailyBar]:
    """CBOE's VIX_History.csv (`DATE (MM/DD/YYYY), OPEN, HIGH, LOW, CLOSE`)."""
    bars = []
    for line, row in _rows(_text(path)):
        if line == 1:
            if [c.strip().upper() for c in row] != ["DATE", "OPEN", "HIGH", "LOW", "CLOSE"]:
                raise DataError("bad_header", f"{path}:1: header {row}, not DATE,OPEN,HIGH,LOW,CLOSE")
            continue
        where = f"{path}:{line}"
        try:
            if len(row) != 5:
                raise DataError("bad_row", f"{where}: {len(row)} columns, not 5")
            try:
                day = datetime.strptime(row[0].strip(), "%m/%d/%Y").date()
            except ValueError:
                raise DataError("bad_row", f"{where}: date {row[0]!r} is not MM/DD/YYYY") from None
            o, h, low, c = (_num(row[i], where, f) for i, f in ((1, "open"), (2, "high"), (3, "low"), (4, "close")))
            start = datetime.combine(day, time(9, 30), tzinfo=EXCHANGE_TZ)
            bar = checked_bar(symbol, start, timedelta(hours=6, minutes=30), o, h, low, c, 0, where)  # type: ignore[arg-type]
            bars.append(DailyBar(symbol, day, bar.open, bar.high, bar.low, bar.close, 0))
        except DataError as exc:
            _refuse(exc, refusals)
    return bars


YAHOO_COLUMNS = ["contractSymbol", "type", "expiration", "strike", "lastTradeDate", "lastTradeDateEDT", "lastPrice",
                 "bid", "ask", "change", "percentChange", "volume", "openInterest", "impliedVolatility", "inTheMoney",
                 "contractSize", "currency"]


def yahoo_chain(path: Path, underlying: str, day: date, refusals: Refusals = None) -> list[ChainRow]:
    """A Yahoo (yfinance) EOD option chain snapshot (the vraptunovich_stock files)."""
    rows = []
    for line, row in _rows(_text(path)):
        if line == 1:
            if row != YAHOO_COLUMNS:
                raise DataError("bad_header", f"{path}:1: unexpected header")
            continue
        where = f"{path}:{line}"
        try:
            if len(row) != len(YAHOO_COLUMNS):
                raise DataError("bad_row", f"{where}: {len(row)} columns, not {len(YAHOO_COLUMNS)}")
            kind = row[1].strip().lower()
            if kind not in ("call", "put"):
                raise DataError("bad_row", f"{where}: type {row[1]!r}")
            try:
                expiry = date.fromisoformat(row[2].strip())
            except ValueError:
                raise DataError("bad_row", f"{where}: expiration {row[2]!r}") from None
            bid = _num(row[7], where, "bid", positive=False, optional=True)
            ask = _num(row[8], where, "ask", positive=False, optional=True)
            if bid is not None and ask is not None and ask > 0 and bid > ask:
                raise DataError("bad_row", f"{where}: bid {bid} > ask {ask}")
            rows.append(ChainRow(underlying, day, expiry, _num(row[3], where, "strike"), "C" if kind == "call" else "P",  # type: ignore[arg-type]
                                 bid, ask, _num(row[6], where, "lastPrice", positive=False, optional=True),
                                 _int(row[11] or "0", where, "volume"), _int(row[12] or "0", where, "openInterest"),
                                 _num(row[13], where, "impliedVolatility", positive=False, optional=True)))
        except DataError as exc:
            _refuse(exc, refusals)
    return rows


# ---------------------------------------------------------------------------------------- tradingfsd

def tradingview_bars(path: Path, symbol: str, length: timedelta = FIVE_MINUTES, refusals: Refusals = None) -> list[Bar]:
    """TradingView export (`time` unix seconds UTC at bar start, `open, high, low, close, Volume`):
    the 5-minute SPX, VIX and VIX1D files."""
    bars = []
    for line, row in _rows(_text(path)):
        if line == 1:
            if [c.strip().lower() for c in row[:5]] != ["time", "open", "high", "low", "close"]:
                raise DataError("bad_header", f"{path}:1: header {row[:5]}, not time,open,high,low,close")
            continue
        where = f"{path}:{line}"
        try:
            if len(row) < 5:
                raise DataError("bad_row", f"{where}: {len(row)} columns, not 5 or more")
            seconds = _int(row[0], where, "time")
            start = datetime.fromtimestamp(seconds, tz=timezone.utc).astimezone(EXCHANGE_TZ)
            o, h, low, c = (_num(row[i], where, f) for i, f in ((1, "open"), (2, "high"), (3, "low"), (4, "close")))
            bars.append(checked_bar(symbol, start, length, o, h, low, c, 0, where))  # type: ignore[arg-type]
        except DataError as exc:
            _refuse(exc, refusals)
    bars.sort(key=lambda b: b.end)
    return bars


def polygon_minute_bars(path: Path, symbol: str, refusals: Refusals = None) -> list[Bar]:
    """Polygon aggregates (`datetime` ISO with ET offset at bar start, `open, high, low, close, volume,
    vwap, transactions`): the 1-minute SPY file, pre- and post-market included."""
    bars = []
    for line, row in _rows(_text(path)):
        if line == 1:
            if [c.strip() for c in row[:6]] != ["datetime", "open", "high", "low", "close", "volume"]:
                raise DataError("bad_header", f"{path}:1: header {row[:6]}")
            continue
        where = f"{path}:{line}"
        try:
            if len(row) < 6:
                raise DataError("bad_row", f"{where}: {len(row)} columns, not 6 or more")
            try:
                start = datetime.fromisoformat(row[0].strip()).astimezone(EXCHANGE_TZ)
            except ValueError:
                raise DataError("bad_row", f"{where}: datetime {row[0]!r}") from None
            o, h, low, c = (_num(row[i], where, f) for i, f in ((1, "open"), (2, "high"), (3, "low"), (4, "close")))
            bars.append(checked_bar(symbol, start, MINUTE, o, h, low, c,  # type: ignore[arg-type]
                                    _int(row[5], where, "volume"), where))
        except DataError as exc:
            _refuse(exc, refusals)
    bars.sort(key=lambda b: b.end)
    return bars
