"""The option model against recorded same-day quotes (SPEC §4.3): fit the same-day VIX ratio, then
measure the model's error on the recorded mids by hour and strike distance.

Points: every recorded same-day quote (expiry = the session) with a two-sided market, strike within
±1 % of spot, before the close; spot is the underlying's last price then (SPX index bars, or put-call
parity where none were recorded), VIX the session's level as the data has it.

- Fit: the median, over the points, of (IV implied by the recorded mid, time in calendar minutes to
  the 16:00 close) / (VIX / 100). Rounded to 0.05. That is `broker.sim.model.same_day_vix_ratio`.
- Error: |model mid − recorded mid| / recorded mid, the model being exactly the sim's
  (`broker.pricing.model_quote` with `same_day_vol`: skew, tick rounding, the 60 s floor).
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from broker.listings import session_close
from broker.pricing import SECONDS_PER_YEAR, atm_vol, model_quote, same_day_vol
from config.models import OptionModelConfig
from daemon.backtest.data import MarketData, implied_vol
from market.types import OptionContract

DISTANCE_BUCKETS = ((0.0, 0.0025, "0-0.25%"), (0.0025, 0.005, "0.25-0.5%"), (0.005, 0.0100001, "0.5-1%"))


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    key: str
    spot: float
    strike: float
    right: str
    years: float
    mid: float
    vix: float
    vix1d: float | None

    @property
    def distance(self) -> float:
        return abs(self.strike / self.spot - 1)


def _series(data: MarketData, symbol: str) -> tuple[list[datetime], list[float]]:
    bars = data.bars.get(symbol, [])
    return [b.end for b in bars], [float(b.close) for b in bars]


def _last(series: tuple[list[datetime], list[float]], at: datetime) -> float | None:
    i = bisect.bisect_right(series[0], at) - 1
    return None if i < 0 else series[1][i]


def same_day_points(data: MarketData, underlying: str, within: float = 0.01) -> list[Point]:
    spot_s, vix_s, vix1d_s = _series(data, underlying), _series(data, "VIX"), _series(data, "VIX1D")
    points = []
    for q in data.option_quotes:
        name, expiry, right, strike = q.key.split(" ")
        day = q.received_at.date()
        if name != underlying or expiry != f"{day:%Y%m%d}" or q.bid is None or q.ask is None or q.bid <= 0 \
                or q.ask <= q.bid:
            continue
        close = session_close(day)
        if q.received_at >= close:
            continue
        spot, vix = _last(spot_s, q.received_at), _last(vix_s, q.received_at)
        if spot is None or vix is None:
            continue
        k = float(strike)
        if abs(k / spot - 1) > within:
            continue
        years = (close - q.received_at).total_seconds() / SECONDS_PER_YEAR
        points.append(Point(q.received_at, q.key, spot, k, right, years, float((q.bid + q.ask) / 2), vix,
                            _last(vix1d_s, q.received_at)))
    return points


def fit_same_day_ratio(points: list[Point]) -> Decimal:
    ratios = []
    for p in points:
        iv = implied_vol(p.mid, p.spot, p.strike, p.years, p.right)
        if iv is not None:
            ratios.append(iv / (p.vix / 100))
    if not ratios:
        raise ValueError("no point with an implied vol to fit")
    median = Decimal(repr(statistics.median(ratios)))
    return ((median * 20).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) / 20).quantize(Decimal("0.01"))


def model_mid(p: Point, underlying: str, cfg: OptionModelConfig) -> float:
    atm = atm_vol(underlying, p.vix, cfg)
    assert atm is not None
    vol = same_day_vol(atm, p.vix1d, cfg)
    day = p.at.date()
    contract = OptionContract(underlying, day, Decimal(repr(p.strike)), p.right)  # type: ignore[arg-type]
    q = model_quote(contract, Decimal(repr(p.spot)), vol, p.at, session_close(day), p.at, cfg)
    assert q.bid is not None and q.ask is not None
    return float((q.bid + q.ask) / 2)


def model_errors(points: list[Point], underlying: str, cfg: OptionModelConfig) -> dict[str, Any]:
    """Median absolute relative error, pooled and by hour × strike distance (with counts)."""
    pooled: list[float] = []
    cells: dict[tuple[int, str], list[float]] = defaultdict(list)
    by_hour: dict[int, list[float]] = defaultdict(list)
    for p in points:
        err = abs(model_mid(p, underlying, cfg) - p.mid) / p.mid
        pooled.append(err)
        by_hour[p.at.hour].append(err)
        label = next(name for lo, hi, name in DISTANCE_BUCKETS if lo <= p.distance < hi)
        cells[(p.at.hour, label)].append(err)
    return {
        "points": len(pooled),
        "median_abs_error": statistics.median(pooled) if pooled else None,
        "by_hour": {h: (len(v), statistics.median(v)) for h, v in sorted(by_hour.items())},
        "by_hour_distance": {k: (len(v), statistics.median(v)) for k, v in sorted(cells.items())},
    }


def markdown_table(errors: dict[str, Any], title: str) -> str:
    labels = [name for _, _, name in DISTANCE_BUCKETS]
    lines = [f"**{title}** — median |model − recorded| / recorded mid (points in brackets); pooled "
             f"{errors['median_abs_error'] * 100:.1f} % over {errors['points']} points.", "",
             "| hour (ET) | all | " + " | ".join(f"strike {x} from spot" for x in labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for hour, (n, med) in errors["by_hour"].items():
        cells = []
        for label in labels:
            found = errors["by_hour_distance"].get((hour, label))
            cells.append("—" if found is None else f"{found[1] * 100:.1f} % ({found[0]})")
        lines.append(f"| {hour:02d}:00 | {med * 100:.1f} % ({n}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)
