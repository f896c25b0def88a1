"""The volatility regime over the real CBOE VIX history (../shared, tests only; skipped without it).

Each day is classified from its close and its percentile among the 252 sessions before it, as the
daemon does from its cached VIX history."""

from __future__ import annotations

import csv
import gzip
from datetime import date, datetime
from decimal import Decimal

import pytest

from risk.regime import VolatilityView, classify, history_percentile
from tests.conftest import SHARED_DATA
from tests.risk.builders import settings

CFG = settings("7dte").regime.volatility
VIX_FILE = SHARED_DATA / "market" / "vix_dashboard" / "data" / "VIX_History.csv.gz"


@pytest.fixture(scope="module")
def history() -> list[tuple[date, Decimal]]:
    if not VIX_FILE.is_file():
        pytest.skip(f"CBOE VIX history not found at {VIX_FILE} (only CI and developer machines have it)")
    with gzip.open(VIX_FILE, "rt") as handle:
        return [(datetime.strptime(r["DATE"], "%m/%d/%Y").date(), Decimal(r["CLOSE"])) for r in csv.DictReader(handle)]


def regime_on(history, day: date):
    i = next(n for n, (d, _) in enumerate(history) if d == day)
    vix = history[i][1]
    pct = history_percentile(vix, [v for _, v in history[:i]], CFG)
    return classify(vix, VolatilityView(vix_percentile=pct), CFG), pct


@pytest.mark.parametrize("day, name", [
    (date(2008, 10, 24), "stressed"),  # VIX 79.13 in the crash of 2008
    (date(2020, 3, 16), "stressed"),  # VIX 82.69, its record close
    (date(2024, 8, 5), "stressed"),  # VIX 38.57 on the yen carry unwind
    (date(2017, 11, 3), "calm"),  # VIX 9.14, the calm of 2017
    (date(2019, 2, 12), "normal"),  # VIX 15.43: the bundled replay week
])
def test_known_days_of_the_vix_history_get_their_regime(history, day, name):
    result, _ = regime_on(history, day)
    assert result.name == name, result.note()


def test_a_vix_below_its_level_threshold_is_stressed_by_its_percentile_alone(history):
    # 2018-02-02: VIX 17.31, the highest close of the calm year before it (the eve of "Volmageddon")
    result, pct = regime_on(history, date(2018, 2, 2))
    assert dict(history)[date(2018, 2, 2)] == Decimal("17.31") and pct == 1
    assert result.name == "stressed" and result.why == ("VIX percentile 1.00 > 0.9",)


def test_stressed_days_are_rare(history):
    """Over 2000-2025, the default thresholds call a minority of days stressed and a minority calm."""
    closes = [v for _, v in history]
    days = range(next(i for i, (d, _) in enumerate(history) if d.year == 2000), len(history))
    names = [classify(closes[i], VolatilityView(vix_percentile=history_percentile(closes[i], closes[:i], CFG)),
                      CFG).name for i in days]
    share = {n: names.count(n) / len(names) for n in ("calm", "normal", "stressed")}
    assert 0.05 < share["stressed"] < 0.25 and 0.05 < share["calm"] < 0.4 and share["normal"] > 0.4
