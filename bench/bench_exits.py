"""How many exit evaluations per second `exits.evaluate` makes (both profiles), and how long one
takes (`figures`: one position, one quote, p50 per profile).

Positions ride seeded random premium paths through a session, one evaluation every 10 s of
quotes, the state carried from one look to the next and closes applied as if filled (a closed
position is replaced by a fresh one), so every rule gets its turn. A figure, not a test.
Usage: python bench/bench_exits.py [evaluations] [--json]
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.per_profile import PROFILES, main  # noqa: E402
from bench.results import Sample, percentile  # noqa: E402
from config.loader import load_settings  # noqa: E402
from config.models import Settings  # noqa: E402
from exits import (EXCHANGE_TZ, ExitAction, ExitPosition, ExitState, MarketSnapshot, SessionTimes,  # noqa: E402
                   evaluate, new_state)

SEED = 20190212
STEP = timedelta(seconds=10)
DAYS = {"0dte": date(2019, 2, 12), "7dte": date(2019, 2, 11)}  # 7dte: Monday, expiring Friday the 15th
EXPIRY = {"0dte": date(2019, 2, 12), "7dte": date(2019, 2, 15)}
UNDERLYING = {"0dte": "SPY", "7dte": "AAPL"}


def _at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=EXCHANGE_TZ)


def _looks(profile: str, evaluations: int) -> list[tuple[datetime, MarketSnapshot]]:
    """The seeded premium path, drawn before any clock starts: only the evaluations are timed."""
    rng = random.Random(SEED)
    day = DAYS[profile]
    session = SessionTimes(day, _at(day, 9, 30), _at(day, 16, 0))
    looks = []
    now, price = _at(day, 9, 45), 3.0
    for _ in range(evaluations):
        price = max(0.05, price * (1 + rng.gauss(0, 0.01)))
        looks.append((now, MarketSnapshot(Decimal(f"{price:.2f}"), session, Decimal("190.0"), Decimal("16.5"))))
        now += STEP
        if now >= session.close:
            now = _at(day, 9, 45)
    return looks


Look = Callable[[ExitPosition, ExitState, MarketSnapshot, datetime], tuple[tuple[ExitAction, ...], ExitState]]


def ride(profile: str, settings: Settings, looks: list[tuple[datetime, MarketSnapshot]], look: Look) -> int:
    """Carry a position along the looks: `look` evaluates each one, closes are applied as fills and a
    closed position is replaced by a fresh one. Returns how many positions were opened."""
    positions = 0
    position: ExitPosition | None = None
    for when, market in looks:
        if position is None or position.open_quantity == 0 or when < position.entry_time:
            entry = market.option_price or Decimal(3)
            position = ExitPosition(entry, when, 20, 20, EXPIRY[profile], UNDERLYING[profile], profile)  # type: ignore[arg-type]
            state = new_state(position, settings)
            positions += 1
        fired, state = look(position, state, market, when)
        sold = sum(a.quantity for a in fired if a.kind in ("close", "partial_close"))
        if sold:
            position = replace(position, open_quantity=max(0, position.open_quantity - sold))
    return positions


def figures(evaluations: int = 50_000) -> list[Sample]:
    """Issue 8's exit figure: one position, one quote, each `exits.evaluate` timed alone, p50 <= 15 us
    per profile (the same seeded walk as `run`, so every rule gets its turn)."""
    out = []
    for profile in PROFILES:
        settings = load_settings(profile, env={})
        looks = _looks(profile, evaluations)
        timer = time.perf_counter_ns
        took = []

        def timed(position: ExitPosition, state: ExitState, market: MarketSnapshot, when: datetime,
                  settings: Settings = settings) -> tuple[tuple[ExitAction, ...], ExitState]:
            began = timer()
            result = evaluate(position, state, market, when, settings)
            took.append(timer() - began)
            return result

        ride(profile, settings, looks, timed)
        took.sort()
        out.append(Sample(f"exit_evaluation_p50_{profile}", percentile(took, 50) / 1000, "us", "<=", 15))
    return out


def run(evaluations: int) -> dict[str, Any]:
    out: dict[str, Any] = {"evaluations": evaluations}
    for profile in PROFILES:
        settings = load_settings(profile, env={})
        looks = _looks(profile, evaluations)
        fired_counts: list[int] = []

        def counted(position: ExitPosition, state: ExitState, market: MarketSnapshot, when: datetime,
                    settings: Settings = settings) -> tuple[tuple[ExitAction, ...], ExitState]:
            fired, state = evaluate(position, state, market, when, settings)
            fired_counts.append(len(fired))
            return fired, state

        wall = time.perf_counter()
        positions = ride(profile, settings, looks, counted)
        wall = time.perf_counter() - wall
        actions = sum(fired_counts)
        out[profile] = {"wall_s": round(wall, 3), "evaluations_per_s": round(evaluations / wall),
                        "us_per_evaluation": round(wall / evaluations * 1e6, 1), "positions": positions,
                        "actions": actions}
    return out


if __name__ == "__main__":
    main(run, 50_000)
