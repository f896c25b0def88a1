"""A JSONL file of signals, replayed at their times (`tradingd run --signals FILE`).

Each line is one JSON object, either a bare signal (submitted at its `created_at`) or an
envelope `{"at": <ISO time>, "signal": {...}}` (submitted at `at`; the signal itself goes to
the engine unchanged, so its content may be anything and is judged there). Blank lines and
lines starting with `#` are skipped. A line that is not a JSON object or has no usable time
cannot be placed on the timeline: the whole file is refused with the line number, before
the run starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from config.errors import ReasonError
from market.clock import EXCHANGE_TZ


class SignalFileError(ReasonError):
    """`code` is a stable reason code."""


@dataclass(frozen=True, slots=True)
class TimedSignal:
    at: datetime
    raw: Any
    line_no: int


def load_signal_file(path: str | Path) -> list[TimedSignal]:
    """Time-ordered (stable for equal times: file order)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SignalFileError("signal_file_unreadable", f"cannot read {path}: {exc}") from None
    timed = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        timed.append(_parse_line(stripped, line_no, path))
    return sorted(timed, key=lambda t: t.at)


def _parse_line(line: str, line_no: int, path: Path) -> TimedSignal:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SignalFileError("signal_file_invalid", f"{path}:{line_no}: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise SignalFileError("signal_file_invalid", f"{path}:{line_no}: each line must be a JSON object")
    if "at" in obj and "signal" in obj:
        return TimedSignal(_time(obj["at"], line_no, path), obj["signal"], line_no)
    return TimedSignal(_time(obj.get("created_at"), line_no, path), obj, line_no)


def _time(value: Any, line_no: int, path: Path) -> datetime:
    if not isinstance(value, str):
        raise SignalFileError("signal_file_invalid", f"{path}:{line_no}: needs `at` or `created_at` as an ISO time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SignalFileError("signal_file_invalid", f"{path}:{line_no}: bad time {value!r}") from None
    # A time without a zone is read as exchange time, the zone every replayed file is in.
    return parsed.replace(tzinfo=EXCHANGE_TZ) if parsed.tzinfo is None else parsed.astimezone(EXCHANGE_TZ)
