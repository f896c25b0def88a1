"""READY before the start-up chain refresh (room tick): a broker whose chains are fetched ahead of time
(IB, `Broker.loads_chains`) no longer holds the shell's start for them, and a signal taken while they
are still loading waits for them instead of being refused for want of a chain.

The sim here declares `loads_chains` and hands its listing chains over only when the test says so.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from broker.listings import option_chain
from tests.daemon.test_live import DAY, START, Shifted, Sim, shell, signal


class SlowChains(Sim):
    loads_chains = True
    release: asyncio.Event

    async def load_chains(self, underlyings: Any) -> dict[str, Any]:
        await self.release.wait()
        return {u: option_chain(u, DAY, Decimal("470") if u == "SPY" else Decimal("400"), 100) for u in underlyings}


async def test_start_does_not_wait_for_the_chains_and_a_signal_waits_for_them(tmp_path: Path) -> None:
    SlowChains.release = asyncio.Event()  # before the shell starts: its start-up refresh waits on it
    clock = Shifted(START)
    async with shell(tmp_path, clock, broker_class=SlowChains) as (live, sim, market):
        assert live.phase == "RUNNING" and not live.chains.cache  # started, chains still loading
        pending = asyncio.ensure_future(live.submit_signal(signal("chains-1", clock), "test"))
        await asyncio.sleep(0.3)
        assert not pending.done()  # waiting for the chains, not refused for want of one
        SlowChains.release.set()
        outcome = await asyncio.wait_for(pending, 30)
        assert outcome.accepted, outcome
        assert live.chains.cache and outcome.decision["contracts"] > 0
