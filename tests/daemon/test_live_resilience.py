"""No exception may kill the daemon (SPEC §6): a bug met inside a broker callback, while deciding a
signal, while working an exit or in a scheduled job is logged with a reason code, and the live shell
over the core carries on doing what it is for (the core counts the bad event and goes on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from broker.base import BrokerError
from market.types import Fill, OrderRequest
from market.clock import EXCHANGE_TZ
from daemon.control import HTTP_INTERNAL_ERROR, INTERNAL_ERROR
from daemon.scheduler import Job, _run_job
from tests.daemon.test_live_rig import DAY1, Rig, at


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def test_a_fill_the_executor_chokes_on_is_still_applied_and_never_raises_into_the_broker(rig: Rig):
    await rig.until(at(DAY1, 10, 28))

    def choke(fill: Fill, at: datetime) -> None:
        raise RuntimeError("executor bug")

    rig.engine.working.on_fill = choke  # type: ignore[method-assign]  # the core's execution (broker.working)
    with structlog.testing.capture_logs() as logs:
        outcome = await rig.engine.submit_signal(rig.signal("cb-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
        assert outcome.accepted
        await rig.until(at(DAY1, 10, 29))
    (position,) = rig.engine.book.held()
    assert position.open_qty == outcome.decision["contracts"]
    assert len(await rig.store.list_fills()) >= 1
    failed = _events(logs, "bad_event")
    assert failed and all(e["code"] == "callback_error" and e["broker_event"] == "fill" for e in failed)
    assert rig.engine.core.bad_events == len(failed)


async def test_a_signal_that_meets_a_bug_is_answered_internal_error_and_the_next_one_is_decided(rig: Rig):
    await rig.until(at(DAY1, 10, 28))
    receive = rig.engine.core.entries.receive

    def broken(*args: Any) -> Any:
        raise RuntimeError("desk bug")

    rig.engine.core.entries.receive = broken  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        outcome = await rig.engine.submit_signal(rig.signal("bug-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert (outcome.accepted, outcome.reason, outcome.http_status) == (False, INTERNAL_ERROR, HTTP_INTERNAL_ERROR)
    assert _events(logs, "signal_failed")[0]["code"] == INTERNAL_ERROR
    rig.engine.core.entries.receive = receive  # type: ignore[method-assign]
    again = await rig.engine.submit_signal(rig.signal("bug-2", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert again.accepted, again


async def test_no_option_quotes_to_be_had_is_a_stored_refusal_not_a_crash(rig: Rig):
    await rig.until(at(DAY1, 10, 28))

    async def over_budget(keys: list[str]) -> None:
        raise BrokerError("market_data_lines", "no more market data lines")

    rig.broker.subscribe = over_budget  # type: ignore[method-assign]
    # refused at once, not after the snapshot wait (no clock moves here)
    outcome = await rig.engine.submit_signal(rig.signal("mdl-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert (outcome.accepted, outcome.reason) == (False, "stale_market_data")
    assert (await rig.store.first_decision("mdl-1")).reason == "stale_market_data"  # type: ignore[union-attr]
    assert "market_data_lines" in outcome.decision["selection"]["detail"]


async def test_an_exit_whose_order_breaks_gives_its_contracts_back_and_is_sent_again_later(rig: Rig):
    await rig.until(at(DAY1, 10, 28))
    outcome = await rig.engine.submit_signal(rig.signal("ex-1", "SPY", "bearish", 0.91, rig.clock.now()), "t")
    assert outcome.accepted
    await rig.until(at(DAY1, 10, 29))
    (position,) = rig.engine.book.held()
    place = rig.broker.place

    async def broken(order: OrderRequest) -> None:
        if order.side == "SELL" and order.order_type == "LMT":
            raise RuntimeError("broker bug")
        await place(order)

    rig.broker.place = broken  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        await rig.engine.flatten("test", "tester")
        await rig.until(at(DAY1, 10, 30))
    assert _events(logs, "order_failed")[0]["code"] == "execution_failed"
    assert not _events(logs, "task_failed")
    assert position.pending_exit == 0 and position.closable == position.open_qty > 0
    rig.broker.place = place  # type: ignore[method-assign]
    await rig.engine.flatten("test again", "tester")
    await rig.until(at(DAY1, 10, 33))
    assert not rig.engine.book.held()


async def test_a_scheduled_job_that_fails_is_logged_with_its_name_and_a_reason_code():
    async def broken(at: datetime) -> None:
        raise RuntimeError("job bug")

    when = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)
    with structlog.testing.capture_logs() as logs:
        await _run_job(Job("checkpoint", None, broken), when)  # type: ignore[arg-type]
    (failed,) = _events(logs, "job_failed")
    assert (failed["code"], failed["job"], failed["at"]) == ("job_failed", "checkpoint", when.isoformat())
