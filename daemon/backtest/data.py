"""One normalized in-memory form for every replay data set (`MarketData`), and the data sets by name.

    load_dataset("bundled")      the embedded eqker week 2019-02-11..15 (Alpha Vantage 1-minute bars)
    load_dataset("spxw")         Lean SPXW same-day quotes 2021-01-04..08 with SPX index bars (recorded fills)
    load_dataset("goog")         Lean GOOG full chain 2015-12-24 (a half day) with GOOG minute bars
    load_dataset("spy1")         SPY 1-minute bars 2024-02-20..05-17 (tradingfsd_gpt Polygon file, tests-only),
                                 regular hours; VIX the CBOE daily open held flat (tests-only)
    load_dataset("spx5")         SPX, VIX and VIX1D 5-minute bars 2025-08-11..2026-02-13 (tradingfsd_gpt,
                                 tests-only): SPXW same-day options modelled at σ = VIX1D (SPEC §4.3)
    load_dataset("/some/folder") a folder of `<SYMBOL>_1min.csv[.gz]` (+ `_daily`) files

The Lean sets live under the shared market data (`market_root()`: $TRADINGD_MARKET_DATA or
../shared/data/market). Where an underlying has no recorded minute bars on a day (SPX on
2021-01-05..08), its price is read off the recorded option quotes by put-call parity
(S = C − P + K at each strike quoted both ways, averaged; same-day expiry first): real prices,
labelled `derived` in the data's notes. VIX for those days is the CBOE daily history's open,
held flat through the session (intraday VIX was not recorded then); the notes say so.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from daemon.backtest.readers import DataError, cboe_vix_daily, lean_minute_bars, lean_option_quotes
from daemon.bars import (Bar, DailyBar, available_symbols, load_daily_bars, load_minute_bars,
                         resolve_data_dir)
from market.clock import EXCHANGE_TZ
from market.types import Quote

REPO = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)
_CENT = Decimal("0.01")


def market_root() -> Path | None:
    """The shared recorded market data (tests-only sources included), or None where it is absent."""
    env = os.environ.get("TRADINGD_MARKET_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data" / "market"]:
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class MarketData:
    """Everything a replay reads, normalized: minute bars per symbol (underlyings and VIX), daily bars,
    recorded option quotes (which win over the model), and where it all came from."""

    name: str
    bars: dict[str, list[Bar]]
    daily: dict[str, list[DailyBar]] = field(default_factory=dict)
    option_quotes: list[Quote] = field(default_factory=list)
    index_symbols: frozenset[str] = frozenset({"VIX"})
    files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()  # rows refused by the readers, file and line

    @property
    def underlyings(self) -> list[str]:
        return sorted(s for s in self.bars if s not in ("VIX", "VIX1D"))

    def days(self) -> list[date]:
        found = {b.start.astimezone(EXCHANGE_TZ).date() for bars in self.bars.values() for b in bars}
        return sorted(found)

    def closes_before(self, day: date) -> dict[str, list[Decimal]]:
        return {s: [b.close for b in bars if b.day < day] for s, bars in self.daily.items() if bars}

    def digest(self) -> str:
        """What identifies the data (for run ids and the report): every input file's bytes."""
        h = hashlib.sha256(self.name.encode())
        for path in sorted(self.files):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()

    def window(self, start: date | None, end: date | None) -> MarketData:
        """Only the sessions within [start, end] (daily bars are kept: they are what was known before)."""
        if start is None and end is None:
            return self

        def keep(at: datetime) -> bool:
            d = at.astimezone(EXCHANGE_TZ).date()
            return (start is None or d >= start) and (end is None or d <= end)

        bars = {s: [b for b in series if keep(b.start)] for s, series in self.bars.items()}
        quotes = [q for q in self.option_quotes if keep(q.received_at)]
        return replace(self, bars={s: b for s, b in bars.items() if b}, option_quotes=quotes)


SHARED_SETS = ("spxw", "goog", "spx5", "spy1")


def load_dataset(spec: str, root: Path | None = None) -> MarketData:
    if spec in SHARED_SETS:
        root = root or market_root()
        if root is None:
            raise DataError("replay_data_missing", f"data set {spec!r} reads ../shared/data/market "
                                                   "(or $TRADINGD_MARKET_DATA), which is absent")
        return {"spxw": load_spxw, "goog": load_goog, "spx5": load_spx5, "spy1": load_spy1}[spec](root)
    return load_minute_folder(spec)


def load_minute_folder(spec: str) -> MarketData:
    folder = resolve_data_dir(spec)
    have = sorted(available_symbols(folder))
    if not have:
        raise DataError("replay_no_underlyings", f"{folder} has no <SYMBOL>_1min.csv[.gz] files")
    bars = {s: load_minute_bars(folder, s) for s in have}
    daily = {s: load_daily_bars(folder, s) for s in have if s != "VIX"}
    files = tuple(sorted(p for p in folder.iterdir() if p.is_file() and ".csv" in p.name))
    return MarketData("bundled" if spec == "bundled" else folder.name, bars, daily, files=files)


def _lean(root: Path) -> Path:
    lean = root / "quantconnect_lean" / "Data"
    if not lean.is_dir():
        raise DataError("replay_data_missing", f"no Lean data under {root}")
    return lean


def _vix_daily(root: Path, refused: list[DataError]) -> list[DailyBar]:
    path = root / "vix_dashboard" / "data" / "VIX_History.csv.gz"
    return cboe_vix_daily(path, refusals=refused) if path.exists() else []


def flat_session_bars(symbol: str, day: date, value: Decimal, close_at: time = time(16, 0)) -> list[Bar]:
    """A value known once a day (VIX's daily open), held through the session as minute bars."""
    start = datetime.combine(day, time(9, 30), tzinfo=EXCHANGE_TZ)
    end = datetime.combine(day, close_at, tzinfo=EXCHANGE_TZ)
    out = []
    at = start
    while at < end:
        out.append(Bar(symbol, at, at + MINUTE, value, value, value, value, 0))
        at += MINUTE
    return out


def parity_spot(quotes: Sequence[Quote], day: date) -> dict[datetime, Decimal]:
    """The underlying's price at each recorded minute from put-call parity: S = C − P + K per strike
    quoted both ways (mids), averaged; the nearest expiry on or after `day` only (least carry)."""
    by_minute: dict[datetime, dict[tuple[str, str], dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    expiries = sorted({q.key.split(" ")[1] for q in quotes if q.key.split(" ")[1] >= f"{day:%Y%m%d}"})
    if not expiries:
        return {}
    nearest = expiries[0]
    for q in quotes:
        _, expiry, right, strike = q.key.split(" ")
        if expiry != nearest or q.bid is None or q.ask is None or q.bid <= 0 or q.ask < q.bid:
            continue
        by_minute[q.received_at][(expiry, strike)][right] = (q.bid + q.ask) / 2
    spot = {}
    for at, strikes in by_minute.items():
        values = [m["C"] - m["P"] + Decimal(k) for (_, k), m in strikes.items() if "C" in m and "P" in m]
        if values:
            spot[at] = (sum(values) / len(values)).quantize(_CENT)
    return spot


def bars_from_points(symbol: str, points: dict[datetime, Decimal]) -> list[Bar]:
    """Minute bars ending at each point, opening at the previous point's value."""
    out = []
    previous: Decimal | None = None
    for at in sorted(points):
        value = points[at]
        o = previous if previous is not None else value
        out.append(Bar(symbol, at - MINUTE, at, o, max(o, value), min(o, value), value, 0))
        previous = value
    return out


def load_spxw(root: Path) -> MarketData:
    lean = _lean(root)
    refused: list[DataError] = []
    folder = lean / "indexoption" / "usa" / "minute" / "spxw"
    quotes: list[Quote] = []
    bars: dict[str, list[Bar]] = {"SPX": [], "VIX": []}
    files: list[Path] = []
    notes = ["SPXW same-day minute quotes (QuantConnect Lean sample data, Apache-2.0): fills at the recorded bid/ask"]
    vix = {b.day: b for b in _vix_daily(root, refused)}
    for path in sorted(folder.glob("2021010?_quote_european.zip")):
        day = datetime.strptime(path.name[:8], "%Y%m%d").date()
        day_quotes = lean_option_quotes(path, underlying="SPX")
        quotes.extend(day_quotes)
        files.append(path)
        spx = lean / "index" / "usa" / "minute" / "spx" / f"{path.name[:8]}_trade.zip"
        if spx.exists():
            bars["SPX"].extend(lean_minute_bars(spx, "SPX", index=True, refusals=refused))
            files.append(spx)
        else:
            bars["SPX"].extend(bars_from_points("SPX", parity_spot(day_quotes, day)))
            notes.append(f"SPX {day}: no recorded index bars; spot derived from the SPXW quotes by put-call parity")
        if day in vix:
            bars["VIX"].extend(flat_session_bars("VIX", day, vix[day].open))
            notes.append(f"VIX {day}: CBOE daily open {vix[day].open.normalize()} held through the session")
    if not quotes:
        raise DataError("replay_data_missing", f"no SPXW quote zips in {folder}")
    quotes.sort(key=lambda q: (q.received_at, q.key))
    quotes = with_greeks(quotes, bars["SPX"])
    notes.append("recorded quotes near the money carry the delta and gamma of the IV implied by their mid")
    return MarketData("spxw", {k: v for k, v in bars.items() if v}, {}, quotes, frozenset({"SPX", "VIX"}),
                      tuple(files), tuple(notes), tuple(str(e) for e in refused))


def load_goog(root: Path) -> MarketData:
    lean = _lean(root)
    refused: list[DataError] = []
    opt = lean / "option" / "usa" / "minute" / "goog"
    quotes_zip, oi_zip = opt / "20151224_quote_american.zip", opt / "20151224_openinterest_american.zip"
    trade = lean / "equity" / "usa" / "minute" / "goog" / "20151224_trade.zip"
    for path in (quotes_zip, trade):
        if not path.exists():
            raise DataError("replay_data_missing", f"no {path}")
    goog = [b for b in lean_minute_bars(trade, "GOOG", refusals=refused) if b.start.time() >= time(9, 30)]
    quotes = with_greeks(lean_option_quotes(quotes_zip, open_interest=oi_zip), goog)
    bars = {"GOOG": goog}
    notes = ["GOOG full chain 2015-12-24 (a half day, closed 13:00), QuantConnect Lean sample data (Apache-2.0): "
             "fills at the recorded bid/ask",
             "recorded quotes near the money carry the delta and gamma of the IV implied by their mid"]
    vix = {b.day: b for b in _vix_daily(root, refused)}
    day = date(2015, 12, 24)
    if day in vix:
        bars["VIX"] = flat_session_bars("VIX", day, vix[day].open, close_at=time(13, 0))
        notes.append(f"VIX {day}: CBOE daily open {vix[day].open.normalize()} held through the session")
    daily_zip = lean / "equity" / "usa" / "daily" / "goog.zip"
    daily: dict[str, list[DailyBar]] = {}
    files = [quotes_zip, trade]
    if daily_zip.exists():
        daily["GOOG"] = _lean_daily(daily_zip, "GOOG", refused)
        files.append(daily_zip)
    return MarketData("goog", bars, daily, quotes, frozenset({"VIX"}), tuple(files), tuple(notes),
                      tuple(str(e) for e in refused))


SPX5_FILES = {"SPX": "SP_SPX, 5 (1).csv.gz", "VIX": "TVC_VIX, 5 (1).csv.gz", "VIX1D": "CBOE_DLY_VIX1D, 5 (1).csv.gz"}


def load_spx5(root: Path) -> MarketData:
    """The tradingfsd_gpt TradingView exports: SPX, VIX and VIX1D 5-minute bars. Only the sessions all
    three cover (2025-08-11..2026-02-13) and regular hours (VIX's extended-hours bars are dropped).
    No option was recorded: SPXW same-day options are modelled, at σ = VIX1D where it is known
    (`broker.pricing.same_day_vol`), the calibration SPEC §4.3 asks for where the data has VIX1D."""
    from daemon.backtest.readers import tradingview_bars

    folder = root / "tradingfsd_gpt" / "data"
    refused: list[DataError] = []
    series: dict[str, list[Bar]] = {}
    files = []
    for symbol, name in SPX5_FILES.items():
        path = folder / name
        if not path.exists():
            raise DataError("replay_data_missing", f"no {path}")
        files.append(path)
        series[symbol] = [b for b in tradingview_bars(path, symbol, refusals=refused)
                          if time(9, 30) <= b.start.astimezone(EXCHANGE_TZ).time() < time(16, 0)]
    common = set.intersection(*({b.start.astimezone(EXCHANGE_TZ).date() for b in bars} for bars in series.values()))
    bars = {s: [b for b in bars if b.start.astimezone(EXCHANGE_TZ).date() in common] for s, bars in series.items()}
    daily = {"SPX": _daily_from(bars["SPX"])}
    notes = ("SPX, VIX and VIX1D 5-minute bars (tradingfsd_gpt TradingView exports; tests only, not bundled), "
             "regular hours of the sessions all three cover",
             "no option quotes were recorded: SPXW same-day options are modelled at σ = VIX1D (SPEC §4.3)")
    return MarketData("spx5", bars, daily, [], frozenset({"SPX", "VIX", "VIX1D"}), tuple(files), notes,
                      tuple(str(e) for e in refused))


def load_spy1(root: Path) -> MarketData:
    """The tradingfsd_gpt Polygon SPY 1-minute file, regular hours only (pre- and post-market bars are
    dropped: the options trade 09:30-16:00); VIX is CBOE's daily open held flat (no intraday VIX)."""
    from daemon.backtest.readers import polygon_minute_bars

    path = root / "tradingfsd_gpt" / "data" / "SPY_1min.csv.gz"
    if not path.exists():
        raise DataError("replay_data_missing", f"no {path}")
    refused: list[DataError] = []
    spy = [b for b in polygon_minute_bars(path, "SPY", refusals=refused)
           if time(9, 30) <= b.start.astimezone(EXCHANGE_TZ).time() < time(16, 0)]
    vix = {b.day: b for b in _vix_daily(root, refused)}
    bars: dict[str, list[Bar]] = {"SPY": spy, "VIX": []}
    days = sorted({b.start.astimezone(EXCHANGE_TZ).date() for b in spy})
    for day in days:
        if day in vix:
            bars["VIX"].extend(flat_session_bars("VIX", day, vix[day].open))
    notes = ("SPY 1-minute bars 2024-02-20..05-17 (tradingfsd_gpt Polygon export; tests only, not bundled), "
             "regular hours", "VIX: CBOE's daily open held flat through each session (no intraday VIX in the data)")
    return MarketData("spy1", {k: v for k, v in bars.items() if v}, {"SPY": _daily_from(spy)}, [],
                      frozenset({"VIX"}), (path,), notes, tuple(str(e) for e in refused))


def _daily_from(bars: Sequence[Bar]) -> list[DailyBar]:
    """Daily bars from intraday ones (the correlation refresh reads the closes before each day)."""
    by_day: dict[date, list[Bar]] = defaultdict(list)
    for b in bars:
        by_day[b.start.astimezone(EXCHANGE_TZ).date()].append(b)
    return [DailyBar(bs[0].symbol, d, bs[0].open, max(b.high for b in bs), min(b.low for b in bs), bs[-1].close, 0)
            for d, bs in sorted(by_day.items())]


def _lean_daily(path: Path, symbol: str, refused: list[DataError]) -> list[DailyBar]:
    """Lean daily equity zip (`yyyyMMdd HH:mm, o, h, l, c, volume`, ×10000, raw)."""
    import csv
    import io
    import zipfile

    from daemon.backtest.readers import LEAN_SCALE, checked_bar

    out = []
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            for line, row in enumerate(csv.reader(io.StringIO(archive.read(name).decode())), start=1):
                if not row:
                    continue
                where = f"{path}:{name}:{line}"
                try:
                    day = datetime.strptime(row[0].strip(), "%Y%m%d %H:%M").date()
                    o, h, low, c = (Decimal(row[i]) / LEAN_SCALE for i in (1, 2, 3, 4))
                    start = datetime.combine(day, time(9, 30), tzinfo=EXCHANGE_TZ)
                    bar = checked_bar(symbol, start, timedelta(hours=6, minutes=30), o, h, low, c, 0, where)
                    out.append(DailyBar(symbol, day, bar.open, bar.high, bar.low, bar.close, int(row[5])))
                except (ValueError, ArithmeticError, IndexError, DataError) as exc:
                    refused.append(exc if isinstance(exc, DataError) else DataError("bad_row", f"{where}: {exc}"))
    return out


def combined(datasets: Iterable[MarketData]) -> list[MarketData]:
    return list(datasets)


def implied_vol(price: float, spot: float, strike: float, years: float, right: str, rate: float = 0.0) -> float | None:
    """Black-Scholes implied vol by bisection, or None when the price is outside the no-arbitrage band."""
    from broker.pricing import black_scholes

    if years <= 0 or price <= 0:
        return None
    intrinsic = max(spot - strike, 0.0) if right == "C" else max(strike - spot, 0.0)
    if price <= intrinsic or price >= (spot if right == "C" else strike):
        return None
    lo, hi = 1e-4, 8.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if black_scholes(spot, strike, years, rate, mid, right).price > price:  # type: ignore[arg-type]
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def with_greeks(quotes: Sequence[Quote], bars: Sequence[Bar], *, moneyness: float = 0.10,
                max_days: int = 12) -> list[Quote]:
    """Recorded quotes carry no greeks; the risk gate needs delta and gamma. Each quote near the money
    (strike within `moneyness` of spot, expiry within `max_days`) gets the IV implied by its mid at the
    underlying's last price then, and that IV's delta and gamma; the others are left as recorded."""
    import bisect

    from broker.listings import ListingError, session_close
    from broker.pricing import SECONDS_PER_YEAR, black_scholes

    ends = [b.end for b in bars]
    closes = [float(b.close) for b in bars]
    expiries: dict[str, datetime | None] = {}
    out = []
    for q in quotes:
        i = bisect.bisect_right(ends, q.received_at) - 1
        mid = q.mid
        if i < 0 or mid is None or mid <= 0:
            out.append(q)
            continue
        spot = closes[i]
        _, expiry, right, strike_text = q.key.split(" ")
        strike = float(strike_text)
        if expiry not in expiries:
            try:
                expiries[expiry] = session_close(datetime.strptime(expiry, "%Y%m%d").date())
            except ListingError:
                expiries[expiry] = None
        expires_at = expiries[expiry]
        if expires_at is None or abs(strike / spot - 1) > moneyness or (expires_at - q.received_at).days > max_days:
            out.append(q)
            continue
        years = (expires_at - q.received_at).total_seconds() / SECONDS_PER_YEAR
        vol = implied_vol(float(mid), spot, strike, years, right)
        if vol is None:
            out.append(q)
            continue
        g = black_scholes(spot, strike, years, 0.0, vol, right)  # type: ignore[arg-type]
        out.append(replace(q, iv=Decimal(f"{vol:.6f}"), delta=Decimal(f"{g.delta:.6f}"), gamma=Decimal(f"{g.gamma:.8f}")))
    return out
