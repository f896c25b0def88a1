"""Part 8 end to end: `tradingd run --replay DIR --signals FILE` over a day whose 10:29 SPY bar is
multiplied by ten (the probe that found the daemon sizing and sending an order on it)."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.bars import BUNDLED

DAY = "2019-02-11"
SPIKED = "2019-02-11 10:29:00"


def _day_file(symbol: str, folder: Path, spike: str | None = None) -> None:
    lines = gzip.decompress((BUNDLED / f"{symbol}_1min.csv.gz").read_bytes()).decode().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        if not line.startswith(DAY):
            continue
        if line.startswith(spike or "-"):
            stamp, *prices, volume = line.split(",")
            line = ",".join([stamp, *(f"{float(p) * 10:.2f}" for p in prices), volume])
        out.append(line)
    (folder / f"{symbol}_1min.csv").write_text("\n".join(out) + "\n")


def _run(tmp_path: Path, spike: str | None) -> tuple[list[tuple[str, int, str | None]], int]:
    data = tmp_path / "data"
    data.mkdir()
    _day_file("SPY", data, spike)
    _day_file("VIX", data)
    signals = tmp_path / "signals.jsonl"
    signals.write_text(json.dumps({"id": "spike-1", "profile": "0dte", "underlying": "SPY", "direction": "bearish",
                                   "strategy": "directional", "confidence": 0.91,
                                   "created_at": "2019-02-11T10:28:40-05:00"}) + "\n")
    state = tmp_path / "state"
    env = {**os.environ, "TRADINGD_DAEMON__STATE_DIR": str(state)}
    env.pop("JOURNAL_STREAM", None)
    tradingd = Path(sys.executable).parent / "tradingd"
    done = subprocess.run([str(tradingd), "run", "--profile", "0dte", "--broker", "sim", "--replay", str(data),
                           "--speed", "0", "--signals", str(signals), "--no-api"],
                          env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    with sqlite3.connect(state / "replay-0dte.db") as db:
        decisions = db.execute("SELECT signal_id, accepted, reason FROM decisions").fetchall()
        orders = db.execute("SELECT COUNT(*) FROM order_intents").fetchone()[0]
    return decisions, orders


@pytest.mark.timeout(300)
def test_a_replay_with_a_x10_bar_sends_no_order(tmp_path: Path) -> None:
    decisions, orders = _run(tmp_path, SPIKED)
    assert decisions == [("spike-1", 0, "bad_market_data")]
    assert orders == 0


@pytest.mark.timeout(300)
def test_the_same_replay_without_the_spike_trades(tmp_path: Path) -> None:
    """The control: the same signal on clean data is accepted and sent, so the refusal above is the data's."""
    decisions, orders = _run(tmp_path, None)
    assert decisions == [("spike-1", 1, None)]
    assert orders > 0
