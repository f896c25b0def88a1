"""Backtests on recorded data: readers, the replay API (`run_replay`), the §8 figures, the report.

    from daemon.backtest import load_dataset, run_replay, figures
    data = load_dataset("bundled")
    result = run_replay(settings, data, signals="reference")
    table = figures(result)

Everything here is deterministic and holds no global state, so worker processes (`tradingd sweep`)
can call it freely. See docs/decisions/replay.md.
"""

from daemon.backtest.data import MarketData, load_dataset
from daemon.backtest.figures import figures
from daemon.backtest.run import ReplayResult, run_replay, sizing_overlay

__all__ = ["MarketData", "ReplayResult", "figures", "load_dataset", "run_replay", "sizing_overlay"]
