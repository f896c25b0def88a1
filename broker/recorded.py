"""Recorded option quotes from Lean minute zips, replayed as they are (never modelled).

Lean format (market/SOURCES.md): one CSV per contract named
`{date}_{root}_minute_quote_{style}_{call|put}_{strike×10000}_{yyyymmdd expiry}.csv`, rows
`ms_since_midnight, bid o/h/l/c, last bid size, ask o/h/l/c, last ask size`, option prices
×10000, times America/New_York bar starts. A bar's closing quote is only known when the
bar ends, so each Quote is stamped at bar start + one minute: a replay never sees the future.
Open interest files (`..._openinterest_...`, rows `ms, open_interest`) fill `open_interest`.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from market.types import OptionContract, Quote
from config.errors import ReasonError
from market.clock import EXCHANGE_TZ

PRICE_SCALE = Decimal(10000)
BAR = timedelta(minutes=1)
_NAME = re.compile(
    r"^(?P<date>\d{8})_(?P<root>[a-z0-9]+)_minute_(?P<kind>quote|openinterest)_(?P<style>american|european)"
    r"_(?P<right>call|put)_(?P<strike>\d+)_(?P<expiry>\d{8})\.csv$")


class RecordedDataError(ReasonError, ValueError):
    """`code` is a stable reason code."""


def _parse_name(name: str) -> tuple[date, str, OptionContract]:
    m = _NAME.match(Path(name).name)
    if m is None:
        raise RecordedDataError("bad_file_name", f"{name!r} is not a Lean minute option file")
    day = datetime.strptime(m["date"], "%Y%m%d").date()
    contract = OptionContract(m["root"].upper(), datetime.strptime(m["expiry"], "%Y%m%d").date(),
                              Decimal(m["strike"]) / PRICE_SCALE, "C" if m["right"] == "call" else "P")
    return day, m["kind"], contract


def _price(text: str) -> Decimal | None:
    text = text.strip()
    return None if not text else Decimal(text) / PRICE_SCALE


def _size(text: str) -> int:
    text = text.strip()
    return int(Decimal(text)) if text else 0


def _members(path: Path, kind: str) -> Iterator[tuple[date, OptionContract, str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise RecordedDataError("unreadable_file", f"{path}: {exc}") from None
    with archive:
        for name in sorted(archive.namelist()):
            day, file_kind, contract = _parse_name(name)
            if file_kind == kind:
                yield day, contract, archive.read(name).decode()


def read_open_interest(path: Path) -> dict[str, int]:
    """OptionContract.key -> the day's (last) open interest."""
    found: dict[str, int] = {}
    for _, contract, text in _members(path, "openinterest"):
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        if rows:
            found[contract.key] = _size(rows[-1][1])
    return found


def read_quotes(path: Path, open_interest: dict[str, int] | None = None) -> list[Quote]:
    """Every minute quote in a Lean option quote zip, in time order (ties by contract key)."""
    quotes: list[Quote] = []
    for day, contract, text in _members(path, "quote"):
        midnight = datetime.combine(day, time(0), tzinfo=EXCHANGE_TZ)
        oi = (open_interest or {}).get(contract.key)
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row:
                continue
            if len(row) != 11:
                raise RecordedDataError("bad_row", f"{path.name}:{contract.key} line {line}: {len(row)} columns, not 11")
            quotes.append(Quote(
                key=contract.key, bid=_price(row[4]), ask=_price(row[9]), last=None,
                received_at=midnight + timedelta(milliseconds=int(row[0])) + BAR,
                bid_size=_size(row[5]), ask_size=_size(row[10]), open_interest=oi))
    quotes.sort(key=lambda q: (q.received_at, q.key))
    return quotes
