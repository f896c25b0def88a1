"""The core with a combo position (SPEC §9): the time rules and the close-out act on the whole combo,
with one SELL parent of the combo (the fake execution stands in for Working)."""

from dataclasses import replace
from datetime import datetime
from decimal import Decimal as D

from daemon.core.core import Core
from daemon.core.events import QuoteEvent
from daemon.core.ledger import new_position
from daemon.core.timers import Timers
from daemon.scheduler import job_specs
from exits.closeout import zero_dte_closeout_at
from market import calendar
from market.combo import Combo
from market.types import ComboLeg, OptionContract
from tests.daemon.core.fakes import DAY, FakeChains, FakeExecution, at, option, persists, settings_for, underlying, vix

CALL = OptionContract("SPY", DAY, D(450), "C")
PUT = OptionContract("SPY", DAY, D(450), "P")
STRADDLE = Combo("volatility", "straddle", (ComboLeg(CALL, "BUY"), ComboLeg(PUT, "BUY")))


def held_core(start: datetime) -> tuple[Core, FakeExecution]:
    settings = settings_for("0dte")
    execution = FakeExecution()
    zero = settings.exits.zero_dte
    closeout = (lambda s: zero_dte_closeout_at(s, zero)) if zero is not None else None  # as daemon/app.py and replay
    timers = Timers(job_specs(settings, calendar.session_for, closeout), calendar.session_for, start)
    core = Core(settings, execution=execution, chains=FakeChains(), timers=timers, sessions=calendar.session_for,
                sessions_between=calendar.sessions_between)
    record = replace(new_position(1, CALL, at(14, 50), "v1"), contract_key=STRADDLE.key, entry_price=D("2.40"),
                     original_qty=10, open_qty=10)
    core.restore(positions=[record], combos={1: STRADDLE.to_record()}, highest={"position": 1})
    core.start(start)
    core.take_effects()
    return core, execution


def test_the_0dte_close_out_sells_the_whole_combo_as_one_parent():
    core, execution = held_core(at(15, 40))
    position = core.book.get(1)
    assert position is not None and position.combo == STRADDLE
    when = at(15, 42)  # the close-out starts at 15:43, two parent timeouts before flat-by 15:45
    for quote in (underlying("SPY", "450", when), vix("18", when), option(CALL.key, "1.25", when, "0.5"),
                  option(PUT.key, "1.20", when, "-0.5")):
        core.handle(QuoteEvent(quote))
    assert position.mark == D("2.45")  # the combined legs' mid
    assert execution.started == []
    core.advance(at(15, 43))
    [parent] = execution.started
    assert parent.combo == STRADDLE and parent.side == "SELL" and parent.quantity == 10 and parent.kind == "exit"
    events = [p.payload for p in persists(core.take_effects(), "record_exit_event")]
    assert [(e["kind"], e["quantity"]) for e in events] == [("close", 10)]
    assert "closeout" in events[0]["rule"]


def test_a_combo_places_no_protective_stop_at_the_broker():
    core, execution = held_core(at(10, 0))
    assert core.stops.resting == {}
