"""daemon.logging: JSON lines with bound ids for journald; one clean console line per event."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
import structlog

from market.clock import EXCHANGE_TZ, VirtualClock
from daemon.logging import ConsoleLine, bind_ids, configure_logging, get_logger, use_json


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tradingd", False):
            root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_mode_choice() -> None:
    assert use_json(True, Tty(), {}) is True
    assert use_json(False, io.StringIO(), {"JOURNAL_STREAM": "8:123"}) is False
    assert use_json(None, Tty(), {"JOURNAL_STREAM": "8:123"}) is True
    assert use_json(None, Tty(), {}) is False
    assert use_json(None, io.StringIO(), {}) is True  # piped: JSON


def test_json_lines_parse_and_carry_bound_ids() -> None:
    out = io.StringIO()
    assert configure_logging(True, stream=out, env={}) is True
    log = get_logger("engine", profile="0dte")
    with bind_ids(signal_id="sig-7", order_id=42, order_ref="tradingd:0dte:sig-7:1", position_id=None):
        log.info("order", underlying="SPY", side="BUY", contracts=3, limit=Decimal("1.25"))
    log.bind(position_id="pos-3").warning("exit", rule="hard_stop")
    first, second = (json.loads(line) for line in lines(out))
    assert first["event"] == "order" and first["level"] == "info"
    assert (first["profile"], first["signal_id"], first["order_id"], first["order_ref"]) == (
        "0dte", "sig-7", 42, "tradingd:0dte:sig-7:1")
    assert "position_id" not in first
    assert first["limit"] == "1.25"
    assert list(first)[:4] == ["timestamp", "exchange_time", "level", "event"]
    assert first["timestamp"].endswith("Z")
    wall = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(first["exchange_time"]) == wall
    assert datetime.fromisoformat(first["exchange_time"]).utcoffset() in {
        datetime(2019, 1, 2, tzinfo=EXCHANGE_TZ).utcoffset(), datetime(2019, 7, 2, tzinfo=EXCHANGE_TZ).utcoffset()}
    assert second["position_id"] == "pos-3" and "signal_id" not in second


def test_replay_clock_sets_exchange_time() -> None:
    out = io.StringIO()
    clock = VirtualClock(datetime(2019, 2, 11, 9, 31, tzinfo=EXCHANGE_TZ))
    configure_logging(True, stream=out, clock=clock, env={})
    get_logger().info("decision", accepted=True)
    record = json.loads(lines(out)[0])
    assert record["exchange_time"] == "2019-02-11T09:31:00.000-05:00"


def test_stdlib_loggers_and_exceptions_become_json() -> None:
    out = io.StringIO()
    configure_logging(True, stream=out, env={})
    logging.getLogger("aiohttp.server").error("bad %s", "thing")
    try:
        raise ValueError("nope")
    except ValueError:
        get_logger().exception("api_internal_error")
    foreign, failed = (json.loads(line) for line in lines(out))
    assert (foreign["event"], foreign["level"], foreign["logger"]) == ("bad thing", "error", "aiohttp.server")
    assert "ValueError: nope" in failed["exception"]


def test_level_filters_and_unknown_level_is_an_error() -> None:
    out = io.StringIO()
    configure_logging(True, level="warning", stream=out, env={})
    get_logger().info("hidden")
    get_logger().warning("shown")
    assert [json.loads(line)["event"] for line in lines(out)] == ["shown"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(True, level="loud", stream=out)


def test_reconfiguring_does_not_duplicate_lines() -> None:
    out = io.StringIO()
    configure_logging(True, stream=out, env={})
    configure_logging(True, stream=out, env={})
    logging.getLogger("x").warning("once")
    assert len(lines(out)) == 1


def test_console_one_clean_line_per_event() -> None:
    out = Tty()
    clock = VirtualClock(datetime(2019, 2, 11, 10, 2, 3, 450000, tzinfo=EXCHANGE_TZ))
    assert configure_logging(None, stream=out, clock=clock, env={}) is False
    log = get_logger(profile="0dte")
    with bind_ids(signal_id="sig-1"):
        log.info("decision", bet=Decimal("12000"), contracts=5, accepted=True, underlying="SPY", reason=None,
                 note="two words")
    log.info("fill", price=Decimal("1.27"), side="BUY", underlying="SPY", contracts=5, mid=Decimal("1.25"))
    log.warning("breaker", breaker_level=2, name="daily limit", session_pnl=Decimal("-6000"))
    decision, fill, breaker = lines(out)
    assert decision == ('10:02:03.450 INF decision   underlying=SPY accepted=True contracts=5 bet=12000 '
                        'note="two words" [profile=0dte signal_id=sig-1]')
    assert fill == "10:02:03.450 INF fill       underlying=SPY side=BUY contracts=5 price=1.27 mid=1.25 [profile=0dte]"
    assert re.match(r'^10:02:03\.450 WRN breaker    breaker_level=2 name="daily limit" session_pnl=-6000 \[profile=0dte\]$',
                    breaker)


def test_console_traceback_follows_the_line() -> None:
    rendered = ConsoleLine()(None, "error", {"event": "boom", "level": "error",
                                             "exchange_time": "2019-02-11T10:00:00.000-05:00",
                                             "exception": "Traceback...\nValueError: x"})
    assert rendered.splitlines() == ["10:00:00.000 ERR boom", "Traceback...", "ValueError: x"]
