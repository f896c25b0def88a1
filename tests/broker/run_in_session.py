"""`tradingd run` (daemon.cli) as a real process whose live clock reads 11:00 ET of today's exchange date.

The IB crash and restart tests run the real daemon against the fake gateway on the live clock. Since
0dte entries are refused from the close-out's start (`closeout_window`, SPEC §5.1/§6.3), a test run
after 15:43 ET would have its entries refused; so the child moves the live clock, and only it, into
the session (the fake gateway's chains list today's expiry either way). Timers and sleeps stay real.
Usage: python -m tests.broker.run_in_session run --profile 0dte --broker ib ...
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, time, timedelta

from market import clock as market_clock
from market.session import EXCHANGE_TZ

IN_SESSION = time(11, 0)
# One offset for the test process and every daemon it starts (inherited through the environment), so the
# signals' created_at and the daemon's clock agree.
ENV = "TRADINGD_TEST_SESSION_OFFSET_S"


def offset() -> timedelta:
    raw = os.environ.get(ENV)
    if raw is None:
        now = datetime.now(EXCHANGE_TZ)
        raw = str((datetime.combine(now.date(), IN_SESSION, tzinfo=EXCHANGE_TZ) - now).total_seconds())
        os.environ[ENV] = raw
    return timedelta(seconds=float(raw))


def session_now() -> datetime:
    """The time the daemons started by `python -m tests.broker.run_in_session` read."""
    return datetime.now(EXCHANGE_TZ) + offset()


offset()  # set at import: the test module imports this before it starts any daemon


def main() -> int:
    real_now = market_clock.LiveClock.now
    shift = offset()
    market_clock.LiveClock.now = lambda self: real_now(self) + shift  # type: ignore[method-assign]
    from daemon.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
