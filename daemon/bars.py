"""Recorded bars for replay: Alpha Vantage CSV files (the bundled eqker week and alike).

Format: `datetime,open,high,low,close,volume`, rows NEWEST FIRST, 1-minute timestamps in
US/Eastern labelled at the bar's END (09:31 covers 09:30-09:31), daily rows dated only.
Files are `<SYMBOL>_1min.csv[.gz]` and `<SYMBOL>_daily.csv[.gz]` in one folder.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from config.errors import ReasonError
from market.clock import EXCHANGE_TZ

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "bundled" / "eqker"
MINUTE_BAR = timedelta(minutes=1)


class BarDataError(ReasonError):
    """A data folder or file that cannot be replayed. `code` is a stable reason code."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar. `end` is when it closed (exchange time); `start` when it opened."""

    symbol: str
    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True, slots=True)
class DailyBar:
    symbol: str
    day: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


def resolve_data_dir(spec: str | Path) -> Path:
    """`bundled` is the embedded default; anything else is a folder path."""
    path = BUNDLED if str(spec) == "bundled" else Path(spec)
    if not path.is_dir():
        raise BarDataError("replay_data_missing", f"no replay data folder at {path}")
    return path


def available_symbols(folder: Path) -> set[str]:
    return {p.name.split("_1min")[0] for p in folder.glob("*_1min.csv*")}


def load_minute_bars(folder: Path, symbol: str) -> list[Bar]:
    """Oldest first."""
    path, rows = _read(folder, f"{symbol}_1min")
    bars = []
    for line_no, row in rows:
        end = _timestamp(row, line_no, symbol)
        o, h, low, c = (_price(row, k, line_no, symbol) for k in ("open", "high", "low", "close"))
        _consistent(o, h, low, c, path, line_no)
        bars.append(Bar(symbol, end - MINUTE_BAR, end, o, h, low, c, _volume(row, line_no, symbol)))
    bars.sort(key=lambda b: b.end)
    return bars


def load_daily_bars(folder: Path, symbol: str) -> list[DailyBar]:
    """Oldest first; empty when the folder has no daily file for the symbol."""
    try:
        path, rows = _read(folder, f"{symbol}_daily")
    except BarDataError as exc:
        if exc.code == "replay_file_missing":
            return []
        raise
    bars = []
    for line_no, row in rows:
        day = _timestamp(row, line_no, symbol).date()
        o, h, low, c = (_price(row, k, line_no, symbol) for k in ("open", "high", "low", "close"))
        _consistent(o, h, low, c, path, line_no)
        bars.append(DailyBar(symbol, day, o, h, low, c, _volume(row, line_no, symbol)))
    bars.sort(key=lambda b: b.day)
    return bars


def _read(folder: Path, stem: str) -> tuple[Path, list[tuple[int, dict[str, str]]]]:
    for suffix in (".csv.gz", ".csv"):
        path = folder / f"{stem}{suffix}"
        if path.exists():
            raw = gzip.decompress(path.read_bytes()) if suffix.endswith(".gz") else path.read_bytes()
            reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
            missing = {"datetime", "open", "high", "low", "close", "volume"} - set(reader.fieldnames or ())
            if missing:
                raise BarDataError("replay_file_invalid", f"{path}: missing columns {sorted(missing)}")
            return path, [(i + 2, row) for i, row in enumerate(reader)]
    raise BarDataError("replay_file_missing", f"no {stem}.csv[.gz] in {folder}")


def _consistent(o: Decimal, h: Decimal, low: Decimal, c: Decimal, path: Path, line_no: int) -> None:
    """SPEC §4.4: a bar with high < low, or open/close outside [low, high], is refused with file and line."""
    if h < low:
        raise BarDataError("replay_bar_invalid", f"{path} line {line_no}: high {h} < low {low}")
    for name, value in (("open", o), ("close", c)):
        if not low <= value <= h:
            raise BarDataError("replay_bar_invalid",
                               f"{path} line {line_no}: {name} {value} outside [low {low}, high {h}]")


def _timestamp(row: dict[str, str], line_no: int, symbol: str) -> datetime:
    text = (row.get("datetime") or "").strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BarDataError("replay_file_invalid", f"{symbol} line {line_no}: bad datetime {text!r}") from None
    return parsed.replace(tzinfo=EXCHANGE_TZ) if parsed.tzinfo is None else parsed.astimezone(EXCHANGE_TZ)


def _price(row: dict[str, str], key: str, line_no: int, symbol: str) -> Decimal:
    try:
        value = Decimal((row.get(key) or "").strip())
    except InvalidOperation:
        raise BarDataError("replay_file_invalid", f"{symbol} line {line_no}: bad {key} {row.get(key)!r}") from None
    if not value.is_finite() or value <= 0:
        raise BarDataError("replay_file_invalid", f"{symbol} line {line_no}: {key} must be a positive price")
    return value


def _volume(row: dict[str, str], line_no: int, symbol: str) -> int:
    try:
        return max(0, int(Decimal((row.get("volume") or "0").strip())))
    except InvalidOperation:
        raise BarDataError("replay_file_invalid", f"{symbol} line {line_no}: bad volume") from None
