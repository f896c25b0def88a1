"""The replay loop and a store that cannot write (SPEC §6.2), in memory: the sink's availability changes
reach the core as `StoreStatusEvent`s (entries refused `store_unavailable`, exits go on), and an entry
whose intent cannot be made durable is never sent. The real faults, with the daemon as a process,
are in test_storage_faults.py."""

from __future__ import annotations

from collections import deque
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pytest

from daemon.app import RunOptions, load_replay, make_settings
from daemon.backtest.run import Collector
from daemon.feed import replay_start
from daemon.replay import Replay, recorded_events
from daemon.signals.jsonl import load_signal_file
from market.clock import EXCHANGE_TZ
from tests.daemon.storage_faults import one_day_data


class Sink(Collector):
    """Memory that can be told to stop and start writing, and to refuse durable intents."""

    def __init__(self, refuse_durable: bool = False):
        super().__init__()
        self.changes: deque[tuple[bool, str | None]] = deque()  # type: ignore[assignment]
        self.refuse_durable = refuse_durable
        self.asked: list[bool] = []

    def may_send(self, durable: bool) -> bool:
        self.asked.append(durable)
        return not (durable and self.refuse_durable)

    def take_changes(self) -> list[tuple[bool, str | None]]:
        out = list(self.changes)
        self.changes.clear()
        return out


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, list[Any]]:
    data, signals = one_day_data(tmp_path_factory.mktemp("replay-store") / "data")
    settings = make_settings(RunOptions(profile="0dte", broker="sim", replay=str(data)))
    return settings, load_replay(str(data), settings), load_signal_file(signals)


def run(day: tuple[Any, Any, list[Any]], sink: Sink, on_event: Any = None) -> Replay:
    settings, recorded, signals = day
    replay = Replay(settings, replay_start(recorded.bars, signals), sink=sink, daily_closes=recorded.closes_before,
                    log_effects=False)
    events = recorded_events(recorded.bars, signals, frozenset({settings.profile.vix_symbol}))
    if on_event is not None:
        events = (on_event(e) or e for e in events)
    last = max(b[-1].end for b in recorded.bars.values()).astimezone(EXCHANGE_TZ).date()
    replay.run(events, datetime.combine(last, time(23, 59), tzinfo=EXCHANGE_TZ))
    return replay


def decisions(sink: Sink) -> dict[str, str | None]:
    return {p["signal_id"]: p["reason"] for op, p in sink.records if op == "record_decision"}


def fills(sink: Sink) -> list[Any]:
    return [p["fill"] for op, p in sink.records if op == "apply_fill"]


def exit_events(sink: Sink) -> list[tuple[Any, ...]]:
    return [(p["rule"], p["kind"], p["quantity"], p["at"]) for op, p in sink.records if op == "record_exit_event"]


def test_a_store_that_stops_writing_stops_entries_and_not_exits(day: tuple[Any, Any, list[Any]]) -> None:
    good = Sink()
    run(day, good)
    assert decisions(good)["probe-1"] == "confidence_below_threshold"
    assert any(rule == "closeout" for rule, *_ in exit_events(good))
    sink = Sink()
    told = {"down": False}

    def fault(event: Any) -> None:  # the store fails at 15:01, the put open, and never comes back
        if not told["down"] and event[0] >= datetime(2019, 2, 11, 15, 1, tzinfo=EXCHANGE_TZ):
            told["down"] = True
            sink.changes.append((False, "OperationalError: database or disk is full"))

    replay = run(day, sink, fault)
    assert replay.core.store_available is False
    assert decisions(sink)["probe-1"] == "store_unavailable"
    assert decisions(sink)["late-1"] == "store_unavailable"
    # every exit (the put's loss alert, half-close and 15:45 close-out inside the fault) and every fill
    # as on the good day, at the same times
    assert exit_events(sink) == exit_events(good)
    assert [(f.order_ref, f.side, f.quantity, f.price, f.at) for f in fills(sink)] == [
        (f.order_ref, f.side, f.quantity, f.price, f.at) for f in fills(good)]


def test_an_entry_whose_intent_is_not_durable_is_never_sent(day: tuple[Any, Any, list[Any]]) -> None:
    sink = Sink(refuse_durable=True)
    replay = run(day, sink)
    assert True in sink.asked
    assert fills(sink) == []  # no entry child reached the venue
    assert replay.core.book.held() == []
