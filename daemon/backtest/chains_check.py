"""The 7dte option model and the sim's listing rules against real end-of-day chains (SPEC §4.3, issue 10).

The 7dte replays have no recorded intraday option quotes for the Mag7: the sim lists chains by rule
(`broker.listings`) and prices them with the model (`broker.pricing.atm_vol`: realized vol × 1.1
where daily bars are known, else VIX × the underlying's multiple). Two checks on every EOD chain
we hold — the Yahoo Mag7 snapshots of 2025-11-24..12-05 (taken ~15:30 ET) and the Lean EOD
universes (AAPL 2014-06 and 2015-12, GOOG 2015-12, SPY 2023-12..2024-01), whose IVs are given:

- chains (Yahoo: complete chains; the Lean sample universes are filtered and miss listed expiries):
  the expiry our 7dte selection picks from the listing rules (4–11 days, nearest 7) is listed in
  the real chain, and so is the money strike our rules put next to spot;
- IV: our model's at-the-money σ for that expiry against the chain's at-the-money IV. Yahoo: the
  mean of the call's and the put's IV at the strike nearest spot. Lean: the universe's IV column
  does not reprice its own closes (tests/broker/test_surface.py), so the IV is solved from the
  closes of the contracts that traded that day (`broker.surface.build_surface`, as the regime does).

Spot is the Lean universe's underlying close, or, for Yahoo (no underlying column), put-call parity
S = C − P + K on the mids of the 3 strikes nearest the money of the chosen expiry (median).
VIX is CBOE's daily close (vix_dashboard, tests-only). Results feed `docs/validation.md`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from broker.listings import listed_expiries, listed_strikes
from broker.pricing import atm_vol, realized_vol
from broker.selection import choose_expiry
from config.models import Settings
from daemon.backtest.readers import ChainRow, DataError, cboe_vix_daily, lean_universe, yahoo_chain

# Yahoo's GOOG is Alphabet's class C; the profile trades GOOGL (same company, same vol).
MODEL_NAME = {"GOOG": "GOOGL"}
LEAN_UNIVERSES = ("aapl", "goog", "spy")


@dataclass(frozen=True)
class ChainDay:
    source: str  # "yahoo" | "lean"
    underlying: str
    day: date
    spot: Decimal | None
    rows: tuple[ChainRow, ...]


@dataclass(frozen=True)
class ChainCheck:
    source: str
    underlying: str
    day: date
    spot: float
    expiry: date | None  # ours (listing rules + 7dte selection)
    expiry_listed: bool
    money_strike: Decimal | None  # ours, next to spot
    strike_listed: bool
    recorded_iv: float | None  # the chain's ATM IV at our expiry
    model_iv: float | None
    vol_source: str  # "realized" | "vix"

    @property
    def iv_ratio(self) -> float | None:
        if self.recorded_iv is None or self.model_iv is None or self.recorded_iv <= 0:
            return None
        return self.model_iv / self.recorded_iv


def yahoo_days(root: Path) -> list[ChainDay]:
    out = []
    for path in sorted((root / "vraptunovich_stock" / "csv_out").glob("*/*/*/*/*.csv*")):
        y, m, d, symbol = path.parts[-5:-1]
        day = date(int(y), int(m), int(d))
        rows = tuple(yahoo_chain(path, symbol, day, refusals=[]))
        out.append(ChainDay("yahoo", symbol, day, None, rows))
    return out


def lean_days(root: Path) -> list[ChainDay]:
    out = []
    base = root / "quantconnect_lean" / "Data" / "option" / "usa" / "universes"
    for name in LEAN_UNIVERSES:
        for path in sorted((base / name).glob("*.csv*")):
            under, rows = lean_universe(path, name.upper(), refusals=[])
            day = rows[0].day if rows else None
            if under is None or day is None:
                continue
            out.append(ChainDay("lean", name.upper(), day, under.close, tuple(rows)))
    return out


def parity_spot(rows: tuple[ChainRow, ...], expiry: date) -> Decimal | None:
    """Median of C − P + K over the 3 strikes quoted both ways nearest the money (mids)."""
    calls = {r.strike: r for r in rows if r.expiry == expiry and r.right == "C" and _mid(r) is not None}
    puts = {r.strike: r for r in rows if r.expiry == expiry and r.right == "P" and _mid(r) is not None}
    both = sorted(set(calls) & set(puts), key=lambda k: abs(_mid(calls[k]) - _mid(puts[k])))  # type: ignore[operator]
    values = [_mid(calls[k]) - _mid(puts[k]) + k for k in both[:3]]  # type: ignore[operator]
    return Decimal(statistics.median(values)) if values else None


def _mid(row: ChainRow) -> Decimal | None:
    if row.bid is not None and row.ask is not None and row.ask > 0 and row.bid > 0:
        return (row.bid + row.ask) / 2
    return None


def atm_iv(rows: tuple[ChainRow, ...], expiry: date, spot: Decimal) -> float | None:
    """The mean of the call's and the put's IV at the strike nearest spot (either alone if one is missing)."""
    at = [r for r in rows if r.expiry == expiry and r.iv is not None and r.iv > Decimal("0.01")]
    if not at:
        return None
    strike = min({r.strike for r in at}, key=lambda k: abs(k - spot))
    ivs = [float(r.iv) for r in at if r.strike == strike]  # type: ignore[arg-type]
    return sum(ivs) / len(ivs)


def solved_atm_iv(chain: ChainDay, expiry: date, spot: Decimal, rate: float) -> float | None:
    """ATM IV solved from the EOD closes of the contracts that traded (a zero-volume close is stale)."""
    from broker.listings import session_close
    from broker.surface import build_surface
    from market.types import OptionContract, Quote

    at = session_close(chain.day)
    traded = []
    for r in chain.rows:
        if r.expiry == expiry and r.close is not None and r.close > 0 and r.volume > 0:
            contract = OptionContract(chain.underlying, r.expiry, r.strike, r.right)  # type: ignore[arg-type]
            traded.append((contract, Quote(contract.key, r.close, r.close, None, at)))
    found = {e.expiry: e.atm_iv for e in build_surface(chain.underlying, traded, spot, at, rate).expiries}
    return found.get(expiry)


def check(chain: ChainDay, settings: Settings, vix: dict[date, Decimal],
          closes: dict[str, list[tuple[date, Decimal]]]) -> ChainCheck | None:
    expiries = sorted({r.expiry for r in chain.rows})
    ours = choose_expiry(listed_expiries(chain.underlying, chain.day), chain.day, settings.profile.expiry)
    spot = chain.spot
    if spot is None:
        # Yahoo: parity on the real chain's own 7dte expiry (ours if listed, else the real choice)
        real = ours if ours in expiries else choose_expiry(expiries, chain.day, settings.profile.expiry)
        spot = None if real is None else parity_spot(chain.rows, real)
    if spot is None or spot <= 0:
        return None
    strikes = {r.strike for r in chain.rows if r.expiry == ours}
    money = min(listed_strikes(chain.underlying, spot, 2), key=lambda k: abs(k - spot))
    model_cfg = settings.broker.sim.model
    name = MODEL_NAME.get(chain.underlying, chain.underlying)
    known = [(d, c) for d, c in closes.get(chain.underlying, []) if d < chain.day]
    # only a history that reaches the day (the replay's own daily bars would): none is VIX × multiple
    recent = bool(known) and (chain.day - known[-1][0]).days <= 7
    realized = realized_vol([c for _, c in known], model_cfg.realized_window) if recent else None
    level = vix.get(chain.day)
    model = atm_vol(name, None if level is None else float(level), model_cfg, realized)
    used = "realized" if realized is not None and name not in model_cfg.vix_only else "vix"
    recorded = None
    if ours is not None and ours in expiries:
        recorded = atm_iv(chain.rows, ours, spot) if chain.source == "yahoo" else solved_atm_iv(
            chain, ours, spot, float(model_cfg.risk_free_rate))
    return ChainCheck(chain.source, chain.underlying, chain.day, float(spot), ours, ours in expiries, money,
                      money in strikes, recorded, model, used)


def run_checks(root: Path, settings: Settings) -> list[ChainCheck]:
    """Every EOD chain we hold, checked (see the module docstring)."""
    vix_path = root / "vix_dashboard" / "data" / "VIX_History.csv.gz"
    if not vix_path.exists():
        raise DataError("replay_data_missing", f"no {vix_path}")
    vix = {b.day: b.close for b in cboe_vix_daily(vix_path, refusals=[])}
    closes = _lean_closes(root)
    found = [check(c, settings, vix, closes) for c in [*yahoo_days(root), *lean_days(root)]]
    return [c for c in found if c is not None]


def _lean_closes(root: Path) -> dict[str, list[tuple[date, Decimal]]]:
    from daemon.backtest.data import _lean_daily

    out = {}
    for name in LEAN_UNIVERSES:
        path = root / "quantconnect_lean" / "Data" / "equity" / "usa" / "daily" / f"{name}.zip"
        if path.exists():
            out[name.upper()] = [(b.day, b.close) for b in _lean_daily(path, name.upper(), [])]
    return out


def summary(checks: list[ChainCheck]) -> dict[str, Any]:
    """Per source and vol source: chain checks passed, and the model's ATM IV error (median |model/recorded − 1|)."""
    out: dict[str, Any] = {}
    for source in sorted({c.source for c in checks}):
        mine = [c for c in checks if c.source == source]
        ratios = [c.iv_ratio for c in mine if c.iv_ratio is not None]
        out[source] = {
            "chains": len(mine),
            "expiry_listed": sum(c.expiry_listed for c in mine),
            "strike_listed": sum(c.strike_listed for c in mine),
            "iv_points": len(ratios),
            "median_abs_iv_error": None if not ratios else round(statistics.median(abs(r - 1) for r in ratios), 4),
            "median_iv_ratio": None if not ratios else round(statistics.median(ratios), 4),
            "by_vol_source": {v: round(statistics.median(abs(c.iv_ratio - 1) for c in mine  # type: ignore[operator]
                                                         if c.vol_source == v and c.iv_ratio is not None), 4)
                              for v in sorted({c.vol_source for c in mine if c.iv_ratio is not None})},
        }
    return out
