"""A live sim started again after an expiry settlement (SPEC §6.3): its paper account, rebuilt from the
store, holds neither the settled contract nor the cash it had before the settlement.

Three runs of the live shell over the sim on one store, each on a clock moved to its moment: a 0dte call
bought on Wednesday 15:30; Thursday before the open the daemon starts again with it still held (expired,
unsold) and settles it at the session open from SPY's last price, in the money; then it starts again.
The third run's account must equal the second's after the settlement (the venue's own arithmetic).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from market.session import EXCHANGE_TZ
from tests.daemon.test_live import Shifted, entered, shell
from tests.daemon.test_store_journal import wait_for

BOUGHT = datetime(2024, 3, 6, 15, 30, tzinfo=EXCHANGE_TZ)
BEFORE_OPEN = datetime(2024, 3, 7, 9, 29, 57, tzinfo=EXCHANGE_TZ)  # the settlement comes with the 09:30 open
AFTER = datetime(2024, 3, 7, 9, 45, tzinfo=EXCHANGE_TZ)
SETTLE_SPY = Decimal("473.00")


async def test_a_restart_after_a_settlement_keeps_the_settled_account(tmp_path: Path) -> None:
    clock = Shifted(BOUGHT)
    async with shell(tmp_path, clock) as (live, sim, _):
        contracts = await entered(live, "to-expire", clock)
        (position,) = list(live.core.book)
        contract = position.contract
        bought_cash = sim.venue.cash
    assert contract.expiry == BOUGHT.date() and contract.right == "C" and contract.strike < SETTLE_SPY

    clock = Shifted(BEFORE_OPEN)
    async with shell(tmp_path, clock) as (live, sim, market):
        market.spy = SETTLE_SPY
        assert [p.contract.key for p in sim.venue.positions()] == [contract.key]  # still held: it expired unsold
        await wait_for(lambda: not list(live.core.book), timeout=30)  # settled at the open
        await live.settle()
        await live.flush_journal()
        settled_cash = sim.venue.cash
        assert not sim.venue.positions()
        intrinsic = (SETTLE_SPY - contract.strike) * contracts * contract.multiplier
        assert settled_cash == bought_cash + intrinsic  # the venue's own settlement, in the money

    clock = Shifted(AFTER)
    async with shell(tmp_path, clock) as (live, sim, _):
        await live.settle()
        assert not sim.venue.positions(), sim.venue.positions()  # the settled contract did not come back
        assert sim.venue.cash == settled_cash  # nor the cash from before its settlement
        assert not [o for o in sim.venue.open_orders() if o.request.contract.key == contract.key]
        report = live.last_reconcile
        assert report is not None and not report.blocked and not report.adopted, report
