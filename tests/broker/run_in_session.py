"""`tradingd run` (daemon.cli) as a real process whose live clock reads a session's time: 11:00 ET of the
latest full exchange session on or before today (a weekend or holiday runs on the last session day).

The IB crash and restart tests run the real daemon against the fake gateway on a live clock. The daemon
decides everything on its injected clock (the close-out, the `closeout_window` refusal of 0dte entries,
the take-profit tiers of regular hours, the checkpoints), so the child moves that clock, and only it,
into a session; the test gives the fake gateway the same clock (`gateway_clock`), so executions are
stamped on it too, as IB's are on the real time. Timers and sleeps stay real (the moved clock runs at
the wall clock's rate).
Usage: python -m tests.broker.run_in_session run --profile 0dte --broker ib ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from market import clock as market_clock
from market.session import EXCHANGE_TZ

IN_SESSION = time(11, 0)
# One offset for the test process and every daemon it starts (inherited through the environment), so the
# signals' created_at, the gateway's clock and the daemon's clock agree. A test that starts a daemon at
# another time of day hands the child its own offset (`offset_env`).
ENV = "TRADINGD_TEST_SESSION_OFFSET_S"
FULL_DAY_CLOSE = time(16, 0)


def session_day(today: date | None = None) -> date:
    """The latest full session (closing 16:00 ET) on or before `today` (the exchange date now)."""
    from market import calendar

    day = today or datetime.now(EXCHANGE_TZ).date()
    for _ in range(30):
        session = calendar.session_for(day)
        if session is not None and session.close.astimezone(EXCHANGE_TZ).time() == FULL_DAY_CLOSE:
            return day
        day -= timedelta(days=1)
    raise RuntimeError(f"no full session in the 30 days before {today}")


def offset_to(at: time) -> timedelta:
    """The offset that moves the wall clock to `at` ET of `session_day()`."""
    now = datetime.now(EXCHANGE_TZ)
    return datetime.combine(session_day(now.date()), at, tzinfo=EXCHANGE_TZ) - now


def offset_env(delta: timedelta) -> dict[str, str]:
    """The environment entry that starts a daemon with its clock moved by `delta`."""
    return {ENV: str(delta.total_seconds())}


def offset() -> timedelta:
    raw = os.environ.get(ENV)
    if raw is None:
        raw = str(offset_to(IN_SESSION).total_seconds())
        os.environ[ENV] = raw
    return timedelta(seconds=float(raw))


def session_now() -> datetime:
    """The time the daemons started by `python -m tests.broker.run_in_session` read."""
    return datetime.now(EXCHANGE_TZ) + offset()


def gateway_clock(delta: timedelta | None = None) -> Callable[[], datetime]:
    """The fake gateway's clock on the daemon's moved time (`FakeGateway(clock=...)`)."""
    shift = offset() if delta is None else delta
    return lambda: datetime.now(EXCHANGE_TZ) + shift


offset()  # set at import: the test module imports this before it starts any daemon


def main() -> int:
    real_now = market_clock.LiveClock.now
    shift = offset()
    market_clock.LiveClock.now = lambda self: real_now(self) + shift  # type: ignore[method-assign]
    from daemon.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
