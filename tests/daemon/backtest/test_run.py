"""The replay API and the report: deterministic, recomputable from its fills, recorded fills win."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from broker.selection import choose_expiry
from daemon.backtest import figures, load_dataset, run_replay
from daemon.backtest.report import dumps, report_document, write_report
from daemon.backtest.run import ReplayResult, replay_settings


@pytest.fixture(scope="module")
def bundled():
    return load_dataset("bundled")


@pytest.fixture(scope="module")
def week_7dte(bundled) -> ReplayResult:
    return run_replay(replay_settings("7dte", bundled), bundled, "reference")


def test_two_identical_replays_give_byte_identical_report_json(bundled, tmp_path: Path) -> None:
    window = (date(2019, 2, 13), date(2019, 2, 14))
    texts = []
    for n in range(2):
        result = run_replay(replay_settings("0dte", bundled), bundled, "reference", window)
        assert result.trades  # something happened, so the comparison means something
        write_report([result], tmp_path / str(n), {"window": ["2019-02-13", "2019-02-14"]})
        texts.append((tmp_path / str(n) / "report.json").read_bytes())
    assert texts[0] == texts[1]


def test_pnl_drawdown_and_win_rate_recomputed_from_the_fills_table(week_7dte: ReplayResult) -> None:
    doc = json.loads(dumps(report_document([week_7dte], {})))
    run = doc["runs"]["new"]
    fills = run["fills"]
    assert len(fills) >= 10
    # Independently: cash flows per position from the fills alone.
    cash: dict[int, Decimal] = defaultdict(Decimal)
    held: dict[int, int] = defaultdict(int)
    last: dict[int, str] = {}
    for f in fills:
        amount = Decimal(f["price"]) * f["quantity"] * f["multiplier"]
        cash[f["position_id"]] += (-amount if f["side"] == "BUY" else amount) - Decimal(f["commission"])
        held[f["position_id"]] += f["quantity"] if f["side"] == "BUY" else -f["quantity"]
        last[f["position_id"]] = max(last.get(f["position_id"], ""), f["at"])
    closed = {p: cash[p] for p in cash if held[p] == 0}
    total = sum(closed.values(), Decimal(0))
    assert Decimal(run["figures"]["total_pnl"]) == total.quantize(Decimal("0.01"))
    wins = sum(1 for v in closed.values() if v > 0)
    assert Decimal(run["figures"]["win_rate_pct"]) == (Decimal(wins) / len(closed) * 100).quantize(Decimal("0.01"))
    assert run["figures"]["trades"] == len(closed)
    equity = peak = Decimal(doc["runs"]["new"]["start_capital"])
    worst = Decimal(0)
    for p in sorted(closed, key=lambda p: (last[p], p)):
        equity += closed[p]
        peak = max(peak, equity)
        worst = max(worst, (peak - equity) / peak)
    assert Decimal(run["figures"]["max_drawdown_pct"]) == (worst * 100).quantize(Decimal("0.01"))
    assert worst > 0  # the week has losing trades: a drawdown that can be wrong


def test_the_report_holds_the_table_days_breakers_and_trades(week_7dte: ReplayResult, tmp_path: Path) -> None:
    doc = write_report([week_7dte], tmp_path)
    for name in ("report.json", "report.html", "equity.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "report.html").read_text()
    assert "Max drawdown %" in page and "seeds&#x27; projection" not in page
    assert "30-40%" in page  # the seeds' 7dte new-sizing drawdown, beside ours
    assert page.count("<details>") == len(week_7dte.trades)
    assert "http://" not in page and "https://" not in page  # self-contained
    assert [d["day"] for d in doc["runs"]["new"]["days"]] == [f"2019-02-1{d}" for d in range(1, 6)]
    assert week_7dte.breaker_events and "breaker events" in page


def test_current_sizing_is_the_seeds_pre_change_numbers(bundled) -> None:
    from risk.capital import bet_limits  # the function the sizer uses

    zero = replay_settings("0dte", bundled, "current")
    limits = bet_limits(zero.capital.account_size, zero.sizing)
    assert (limits.min_bet, limits.max_bet) == (Decimal("1000.00"), Decimal("5000.00"))
    seven = replay_settings("7dte", bundled, "current")
    assert seven.sizing.min_bet_pct == Decimal("0.02") and seven.sizing.max_bet_pct == Decimal("0.15")
    assert seven.sizing.min_bet_floor == 0


def test_7dte_expiry_window_is_4_to_11_days_nearest_7_tie_to_later(bundled) -> None:
    cfg = replay_settings("7dte", bundled).profile.expiry
    fridays = [date(2019, 2, 15), date(2019, 2, 22), date(2019, 3, 1)]
    assert choose_expiry(fridays, date(2019, 2, 11), cfg) == date(2019, 2, 15)  # Mon: 4 days
    assert choose_expiry(fridays, date(2019, 2, 12), cfg) == date(2019, 2, 22)  # Tue: 10 days (3 is too near)
    assert choose_expiry(fridays, date(2019, 2, 11) - (date(2019, 2, 12) - date(2019, 2, 11)) * 3, cfg) == date(
        2019, 2, 15)  # Fri 02-08: 7 days
    assert choose_expiry([date(2019, 2, 18), date(2019, 2, 20)], date(2019, 2, 12), cfg) == date(2019, 2, 20)  # tie


def test_no_7dte_signal_is_refused_no_expiry_on_the_bundled_week(week_7dte: ReplayResult) -> None:
    assert not [d for d in week_7dte.decisions if d["reason"] == "no_expiry"]


def test_spxw_replay_fills_at_the_recorded_bid_and_ask(shared_market: Path, tmp_path: Path) -> None:
    data = load_dataset("spxw", shared_market)
    result = run_replay(replay_settings("0dte", data), data, "reference")
    assert result.fills, "the SPXW week trades at least once"
    recorded = {(q.key, q.received_at.isoformat()): q for q in data.option_quotes}
    for f in result.fills:
        # The last recorded quote at or before the fill.
        quotes = [q for (k, at), q in recorded.items() if k == f["contract"] and at <= f["at"]]
        quote = max(quotes, key=lambda q: q.received_at)
        assert Decimal(f["price"]) == (quote.ask if f["side"] == "BUY" else quote.bid)
    assert result.counts["option_quotes_modelled"] == 0  # the model priced nothing
    assert all(f["contract"].startswith("SPX ") for f in result.fills)
    write_report([result], tmp_path)
    assert (tmp_path / "report.html").exists()


def test_goog_chain_replay_runs_on_the_half_day(shared_market: Path, tmp_path: Path) -> None:
    data = load_dataset("goog", shared_market)
    assert data.days() == [date(2015, 12, 24)]
    signals = tmp_path / "goog.jsonl"
    signals.write_text(json.dumps({"at": "2015-12-24T10:30:00-05:00", "signal": {
        "id": "goog-1", "profile": "7dte", "underlying": "GOOG", "direction": "bullish", "strategy": "directional",
        "confidence": 0.8, "created_at": "2015-12-24T10:30:00-05:00"}}) + "\n")
    result = run_replay(replay_settings("7dte", data), data, str(signals))
    write_report([result], tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.json", "report.html", "equity.png"}
    [decision] = result.decisions
    assert decision["accepted"], decision["breakdown"].get("message")
    assert result.fills and result.counts["option_quotes_modelled"] == 0
    assert all(f["contract"].split(" ")[1] == "20151231" for f in result.fills)  # the 7-day weekly


def test_figures_are_the_section_8_table(week_7dte: ReplayResult) -> None:
    table = figures(week_7dte)
    for key in ("trades", "win_rate_pct", "avg_win_pct", "avg_loss_pct", "annualized_return_pct", "max_drawdown_pct",
                "sharpe", "worst_day", "breaker_events", "avg_slippage"):
        assert key in table
    assert table["breaker_events"] == len(week_7dte.breaker_events)


def test_spx_is_traded_only_where_the_profile_enables_index_options(shared_market: Path) -> None:
    from daemon.backtest.run import ReplayDataError

    data = load_dataset("spxw", shared_market)
    assert "SPX" in replay_settings("0dte", data).profile.underlyings
    with pytest.raises(ReplayDataError) as err:
        replay_settings("0dte", data, overrides={"profile.index_underlyings": []})
    assert err.value.code == "index_not_enabled"


def test_the_equity_chart_plots_equity_against_time(week_7dte: ReplayResult) -> None:
    from datetime import datetime

    import matplotlib.dates as mdates
    from matplotlib import pyplot as plt

    from daemon.backtest.figures import equity_curve
    from daemon.backtest.report import equity_figure
    from market.clock import EXCHANGE_TZ

    closed = sorted((t for t in week_7dte.trades if t["closed"]), key=lambda t: (t["closed_at"], t["position_id"]))
    assert len(closed) >= 2
    fig = equity_figure([week_7dte])
    try:
        (line,) = fig.axes[0].get_lines()
        xs, ys = list(line.get_xdata()), [float(y) for y in line.get_ydata()]
        # x is time: the first session's open, then each closed trade's close time, in order
        assert xs[0] == datetime(2019, 2, 11, 9, 30, tzinfo=EXCHANGE_TZ)
        assert xs[1:] == [datetime.fromisoformat(t["closed_at"]) for t in closed]
        assert xs == sorted(xs)
        assert ys == [float(e) for _, e in equity_curve(week_7dte)]
        assert isinstance(fig.axes[0].xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
        assert "time" in fig.axes[0].get_xlabel()
    finally:
        plt.close(fig)
