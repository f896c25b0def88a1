"""structlog, configured once: JSON lines for journald, one clean line per event on a terminal.

JSON lines carry `timestamp` (UTC, ISO), `exchange_time` (America/New_York, ISO; the
replay clock's time when one is given), `level`, `event` and the ids bound to the
context: profile, signal_id, order_id, order_ref, position_id. Bind them with
`bind_ids(...)` (context variables, so they follow the task that handles a signal)
or `log.bind(...)`.

`level` is the log level: name a breaker's level `breaker_level`.

Standard-library loggers (aiohttp, apscheduler, ib_async) go through the same
renderer, so journald sees one format.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog

from market.clock import EXCHANGE_TZ, Clock

ID_KEYS = ("profile", "signal_id", "order_id", "order_ref", "position_id")

# Events the console renderer gives a fixed shape: the keys shown first, in this order.
CONSOLE_LAYOUT: dict[str, tuple[str, ...]] = {
    "decision": ("underlying", "accepted", "reason", "direction", "contracts", "multiplier", "bet"),
    "order": ("underlying", "side", "contracts", "limit", "status"),
    "fill": ("underlying", "side", "contracts", "price", "mid", "slippage"),
    "exit": ("underlying", "rule", "contracts", "price", "pnl_pct", "mark_pnl_pct"),
    "breaker": ("breaker_level", "name", "session_pnl", "trading_state"),
}

_LEVEL_STYLE = {"debug": "DBG", "info": "INF", "warning": "WRN", "error": "ERR", "critical": "CRT",
                "exception": "ERR"}


def use_json(flag: bool | None = None, stream: TextIO | None = None,
             env: Mapping[str, str] | None = None) -> bool:
    """The flag wins; else journald (JOURNAL_STREAM set) or a non-terminal stdout gets JSON."""
    if flag is not None:
        return flag
    env = os.environ if env is None else env
    if env.get("JOURNAL_STREAM"):
        return True
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


class _Timestamps:
    """Adds `timestamp` (UTC) and `exchange_time`. A replay clock moves exchange time only."""

    def __init__(self, clock: Clock | None = None, now: Callable[[], datetime] | None = None):
        self.clock = clock
        self._now = now or (lambda: datetime.now(UTC))

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        wall = self._now().astimezone(UTC)
        exchange = self.clock.now() if self.clock is not None else wall
        event_dict.setdefault("timestamp", wall.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        event_dict.setdefault("exchange_time", exchange.astimezone(EXCHANGE_TZ).isoformat(timespec="milliseconds"))
        return event_dict


def _jsonable(obj: Any) -> Any:
    """Decimals and datetimes as strings, the rest via str(): a log line never fails to render."""
    if isinstance(obj, datetime):
        return obj.isoformat()
    return str(obj)


class ConsoleLine:
    """`HH:MM:SS.mmm LVL event  key=value ... [ids]`: one line per event, fixed key order for
    decisions, orders, fills, exits and breaker events; a traceback follows on its own lines."""

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
        ev = dict(event_dict)
        ev.pop("timestamp", None)
        exchange = str(ev.pop("exchange_time", ""))
        clock = exchange[11:23] if len(exchange) >= 23 else exchange
        level = _LEVEL_STYLE.get(str(ev.pop("level", "info")), "INF")
        event = str(ev.pop("event", ""))
        ev.pop("logger", None)
        exc = ev.pop("exception", None)
        ids = {k: ev.pop(k) for k in ID_KEYS if k in ev}
        ev = {k: v for k, v in ev.items() if v is not None}
        first = [k for k in CONSOLE_LAYOUT.get(event, ()) if k in ev]
        fields = [f"{k}={_fmt(ev.pop(k))}" for k in first]
        fields += [f"{k}={_fmt(v)}" for k, v in sorted(ev.items())]
        if ids:
            fields.append("[" + " ".join(f"{k}={_fmt(v)}" for k, v in ids.items()) + "]")
        line = f"{clock} {level} {event:<10} " + " ".join(fields)
        line = line.rstrip()
        if exc:
            line += "\n" + str(exc)
        return line


_LEAD = ("timestamp", "exchange_time", "level", "event", *ID_KEYS)


def _lead_keys(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """Time, level, event and ids first: a JSON line reads left to right like the console one."""
    ordered = {k: event_dict[k] for k in _LEAD if k in event_dict}
    ordered.update((k, v) for k, v in event_dict.items() if k not in ordered)
    return ordered


def _fmt(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=_jsonable, separators=(",", ":"))
    elif isinstance(value, str | int | float | bool | type(None)):
        text = str(value)
    else:
        text = _jsonable(value)
    return f'"{text}"' if " " in text else text


def configure_logging(json_logs: bool | None = None, level: str = "INFO", stream: TextIO | None = None,
                      clock: Clock | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Configure structlog and the stdlib root logger once for the process.

    `json_logs`: True/False forces a renderer; None chooses with `use_json`.
    `clock`: the engine's clock, so replay logs show virtual exchange time.
    Returns whether JSON was chosen. Calling again reconfigures (tests, replay after live).
    """
    stream = sys.stdout if stream is None else stream
    as_json = use_json(json_logs, stream, env)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _Timestamps(clock),
    ]
    renderer: list[Any] = ([_lead_keys, structlog.processors.JSONRenderer(default=_jsonable)]
                           if as_json else [ConsoleLine()])
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if as_json else _exc_text,
            *renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_tradingd", False):
            root.removeHandler(old)
    handler._tradingd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    # APScheduler tells every run of every job at info ("Running job ... executed successfully"):
    # every 5 minutes, for nothing. Its warnings (a missed run) still come through.
    logging.getLogger("apscheduler").setLevel(max(numeric, logging.WARNING))
    return as_json


def _exc_text(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        event_dict["exception"] = structlog.processors.format_exc_info(
            _logger, _name, {"exc_info": exc_info}).get("exception", "")
    return event_dict


def get_logger(name: str | None = None, **ids: Any) -> Any:
    return structlog.get_logger(name).bind(**ids) if ids else structlog.get_logger(name)


@contextmanager
def bind_ids(**ids: Any) -> Iterator[None]:
    """Bind ids (profile, signal_id, order_id, order_ref, position_id) to every log line
    emitted inside the block by this task; None values are left out."""
    present = {k: v for k, v in ids.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield
