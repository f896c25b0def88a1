"""How many sizing decisions per second `risk.sizing.evaluate` makes (both profiles), and how long
one decision takes (`figures`: gate + sizer + the decision record, per signal, p50 and p99).

A deterministic mix of requests: confidence across the tiers, VIX calm to panicky, books of
0-4 open positions with correlations, breaker levels 0-2 and a few refusals. A figure, not a test.
Usage: python bench/bench_sizing.py [decisions] [--json]
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.per_profile import PROFILES, main  # noqa: E402
from bench.results import Sample, percentile  # noqa: E402
from config.loader import load_settings  # noqa: E402
from config.models import Settings  # noqa: E402
from risk.request import OpenPositionView, SizingRequest, parse_correlations  # noqa: E402
from risk.signal import parse_signal  # noqa: E402
from risk.sizing import evaluate  # noqa: E402

NOW = datetime(2019, 2, 12, 10, 30, tzinfo=ZoneInfo("America/New_York"))
SEED = 20190212
VARIANTS = 500  # distinct requests, cycled: building them is not what is timed


def requests(settings: Settings, rng: random.Random) -> list[SizingRequest]:
    symbols = list(settings.profile.underlyings)
    base = settings.capital.account_size
    out = []
    for i in range(VARIANTS):
        underlying = rng.choice(symbols)
        raw = {"id": f"b-{i}", "profile": settings.profile.name, "underlying": underlying,
               "direction": rng.choice(("bullish", "bearish")), "strategy": "directional",
               "confidence": round(rng.uniform(0.55, 1.0), 3), "created_at": NOW.isoformat()}
        book = tuple(OpenPositionView(rng.choice(symbols), rng.randint(1, 40), Decimal(rng.randint(100, 900)) / 100)
                     for _ in range(rng.randint(0, 4)))
        # The daemon validates its correlation table once per refresh (a CorrelationTable), not per signal.
        corr = parse_correlations({a: {b: Decimal(rng.randint(-20, 95)) / 100 for b in symbols if b != a}
                                   for a in symbols})
        out.append(SizingRequest(
            signal=parse_signal(raw, settings, NOW), price=Decimal(rng.randint(50, 1200)) / 100, capital_base=base,
            now=NOW, vix=Decimal(rng.randint(110, 450)) / 10, vix_session_open=Decimal(18), open_positions=book,
            correlations=corr, buying_power=base, breaker_level=rng.choice((0, 0, 0, 1, 2)),
            quote_age_s=Decimal(rng.randint(0, 12)), vix_quote_age_s=Decimal(1), liquidity_ok=rng.random() > 0.05,
            option_delta=Decimal(rng.randint(5, 60)) / 100, option_gamma=Decimal(rng.randint(1, 30)) / 1000,
            portfolio_delta=Decimal(rng.randint(-3000, 3000)), portfolio_gamma=Decimal(rng.randint(0, 1500)),
            # the SPEC 10.4 greeks the daemon passes (without them every request is refused greeks_limit)
            option_vega=Decimal(rng.randint(1, 40)) / 100, option_theta=-Decimal(rng.randint(1, 80)) / 100,
            portfolio_vega=Decimal(rng.randint(0, 1500)), portfolio_theta=-Decimal(rng.randint(0, 3000))))
    return out


def run(decisions: int) -> dict[str, Any]:
    out: dict[str, Any] = {"decisions": decisions}
    rng = random.Random(SEED)
    for profile in PROFILES:
        settings = load_settings(profile, env={})
        batch = requests(settings, rng)
        accepted = 0
        wall = time.perf_counter()
        for i in range(decisions):
            accepted += evaluate(batch[i % VARIANTS], settings).accepted
        wall = time.perf_counter() - wall
        out[profile] = {"wall_s": round(wall, 3), "decisions_per_s": round(decisions / wall),
                        "us_per_decision": round(wall / decisions * 1e6, 1), "accepted_pct": round(100 * accepted / decisions, 1)}
    return out


def figures(decisions: int = 20_000) -> list[Sample]:
    """Issue 8's sizing figure: each decision timed alone (gate + sizer + `to_record()`, what the
    daemon stores), p50 <= 50 us and p99 <= 200 us per profile."""
    out = []
    rng = random.Random(SEED)
    for profile in PROFILES:
        settings = load_settings(profile, env={})
        batch = requests(settings, rng)
        for request in batch[:50]:  # warm: first-call imports and caches are not a decision's cost
            evaluate(request, settings).to_record()
        timer = time.perf_counter_ns
        took = []
        for i in range(decisions):
            request = batch[i % VARIANTS]
            began = timer()
            evaluate(request, settings).to_record()
            took.append(timer() - began)
        took.sort()
        out.append(Sample(f"sizing_decision_p50_{profile}", percentile(took, 50) / 1000, "us", "<=", 50))
        out.append(Sample(f"sizing_decision_p99_{profile}", percentile(took, 99) / 1000, "us", "<=", 200))
    return out


if __name__ == "__main__":
    main(run, 20_000)
