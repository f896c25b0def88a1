"""IBBroker quotes and chains over the fake gateway: fields, receive time, staleness codes, the line budget, pacing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker.base import BrokerError
from tests.broker.test_ib_support import EXPIRY, connected, gateway, spy_call

OPTION = spy_call().key


def _req_id(gw, symbol: str, sec_type: str) -> int:
    session = gw.sessions[0]
    return next(rid for rid, sub in session.market_data.items()
                if sub.contract.symbol == symbol and sub.contract.sec_type == sec_type)


async def test_option_quote_carries_sizes_open_interest_greeks_and_receive_time():
    async with gateway() as gw, connected(gw) as (broker, rec):
        before = broker.clock.now()
        await broker.subscribe([OPTION, "SPY", "VIX"])
        q = await rec.wait_for(lambda: rec.last_quote(OPTION))
        assert (q.bid, q.ask, q.bid_size, q.ask_size) == (Decimal("2.5"), Decimal("2.6"), 20, 20)
        assert q.open_interest == 1200 and q.delta == Decimal("0.5") and q.gamma == Decimal("0.04")
        assert q.iv == Decimal("0.18") and q.usable
        assert before <= q.received_at <= broker.clock.now()
        assert (await rec.wait_for(lambda: rec.last_quote("VIX"))).last == Decimal("18.5")
        spy = await rec.wait_for(lambda: rec.last_quote("SPY"))
        assert (spy.bid, spy.ask) == (Decimal("470"), Decimal("470.02"))


async def test_chain_lists_expiries_and_strikes():
    async with gateway() as gw, connected(gw) as (broker, _):
        chain = await broker.chain("SPY")
        assert chain.expiries == (EXPIRY,)
        assert chain.strikes == (Decimal(468), Decimal(470), Decimal(472))
        assert chain.multiplier == 100
        assert (await broker.load_chains(["SPY", "NOPE"])).keys() == {"SPY"}


@pytest.mark.parametrize("code", [354, 10197])
async def test_per_request_stale_codes_mark_that_quote_unusable_until_a_fresh_tick(code):
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.subscribe([OPTION, "SPY"])
        await rec.wait_for(lambda: rec.last_quote(OPTION) and rec.last_quote("SPY"))
        await gw.send_error(_req_id(gw, "SPY", "OPT"), code)
        stale = await rec.wait_for(lambda: not rec.last_quote(OPTION).usable and rec.last_quote(OPTION))
        assert stale.bid == Decimal("2.5")  # same prices, same receive time: only marked
        assert rec.last_quote("SPY").usable
        gw.market.set_option("SPY", EXPIRY, 470, "C", "2.55", "2.65", open_interest=1200)
        fresh = await rec.wait_for(lambda: rec.last_quote(OPTION).usable and rec.last_quote(OPTION))
        assert fresh.bid == Decimal("2.55")


async def test_farm_broken_2103_marks_every_quote_unusable():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await broker.subscribe([OPTION, "SPY"])
        await rec.wait_for(lambda: rec.last_quote(OPTION) and rec.last_quote("SPY"))
        await gw.send_error(-1, 2103)
        await rec.wait_for(lambda: not rec.last_quote(OPTION).usable and not rec.last_quote("SPY").usable)


async def test_unknown_contract_and_line_budget_are_refused():
    async with gateway() as gw, connected(gw, broker__ib__market_data_lines=2) as (broker, _):
        await broker.subscribe(["SPY 20300118 C 999"])  # IB knows no such contract: logged, nothing streams
        assert broker.subscriptions == ()
        with pytest.raises(BrokerError) as err:
            await broker.subscribe(["NOT A KEY"])
        assert err.value.code == "bad_key"
        await broker.subscribe(["SPY", OPTION])
        with pytest.raises(BrokerError) as err:
            await broker.subscribe(["VIX"])
        assert err.value.code == "market_data_lines"
        await broker.unsubscribe([OPTION])
        await broker.subscribe(["VIX"])


async def test_snapshot_returns_a_fresh_quote():
    async with gateway() as gw, connected(gw) as (broker, _):
        q = await broker.snapshot(OPTION)
        assert (q.bid, q.ask) == (Decimal("2.5"), Decimal("2.6"))


async def test_outgoing_messages_stay_within_the_pacing_limit():
    async with gateway(max_messages_per_second=22) as gw, connected(gw, execution__max_messages_per_s=20) as (broker, _):
        strikes = range(400, 420)
        gw.market.add_chain("SPY", [EXPIRY], strikes)
        await broker.subscribe([spy_call(Decimal(s)).key for s in strikes])
        assert gw.pacing_violations == 0
        assert broker.throttle.sent >= 2 * len(strikes)  # qualify + subscribe each, all paced


# --- issue 9: a snapshot that ends in an error is a failure, never the streamed price restamped ---

async def _streaming_spy(broker, rec):
    await broker.subscribe(["SPY"])
    return await rec.wait_for(lambda: (q := rec.last_quote("SPY")) and q.usable and q)


def _refuse_spy_live(gw) -> None:
    gw.market.entitle("SPY", live=False, delayed=False)


def _competing_session(gw) -> None:
    gw.competing_live_session = True


def _paper_without_api_subscription(gw) -> None:
    gw.paper_data_codes["SPY"] = 10089


def _paper_part_not_subscribed(gw) -> None:
    gw.paper_data_codes["SPY"] = 10090  # the last price still comes, bid and ask do not


@pytest.mark.parametrize(("refuse", "code"), [(_refuse_spy_live, "354"), (_competing_session, "10197"),
                                              (_paper_without_api_subscription, "10089"),
                                              (_paper_part_not_subscribed, "10090")])
async def test_a_snapshot_ending_in_an_error_fails_instead_of_restamping_the_streamed_quote(refuse, code):
    async with gateway() as gw, connected(gw) as (broker, rec):
        streamed = await _streaming_spy(broker, rec)
        refuse(gw)
        with pytest.raises(BrokerError) as err:
            await broker.snapshot("SPY")
        assert err.value.code == code
        assert rec.last_quote("SPY") == streamed  # the stream's quote is not restamped as fresh


async def test_a_snapshot_refused_with_101_fails_and_alerts_naming_the_key():
    alerts: list = []
    async with gateway(max_market_data_lines=2) as gw, connected(gw, alerts=alerts) as (broker, rec):
        await _streaming_spy(broker, rec)
        await broker.subscribe(["VIX"])  # the account's two lines are taken
        with pytest.raises(BrokerError) as err:
            await broker.snapshot("SPY")
        assert err.value.code == "101"
        assert [(k, d["key"], d["code"]) for k, d in alerts] == [("ib_market_data_lines", "SPY", 101)]


async def test_a_good_snapshot_is_fresh_and_does_not_touch_the_stream():
    async with gateway() as gw, connected(gw) as (broker, rec):
        await _streaming_spy(broker, rec)
        gw.market.set_stock("SPY", "471.00", "471.02", last="471.01")
        await rec.wait_for(lambda: rec.last_quote("SPY").bid == Decimal("471"))
        snap = await broker.snapshot("SPY")
        assert (snap.bid, snap.ask, snap.usable, snap.delayed) == (Decimal("471"), Decimal("471.02"), True, False)


async def test_lines_are_per_account_the_101st_is_refused_with_an_alert_naming_the_key():
    """Two profiles on one account share its lines: the second one's stream past the budget gets 101."""
    alerts: list = []
    async with gateway(max_market_data_lines=2) as gw, \
            connected(gw, broker__ib__client_id=7) as (first, rec1), \
            connected(gw, alerts=alerts, broker__ib__client_id=8) as (second, rec2):
        gw.market.set_stock("QQQ", "400.00", "400.02")
        await first.subscribe(["SPY"])
        await second.subscribe(["VIX"])
        await rec2.wait_for(lambda: rec2.last_quote("VIX"))
        await second.subscribe(["QQQ"])  # the account's third line
        await rec2.wait_for(lambda: alerts)
        assert [(k, d["key"], d["code"]) for k, d in alerts] == [("ib_market_data_lines", "QQQ", 101)]
        assert "QQQ" not in second.subscriptions  # a refused line is not counted as streaming
        assert rec2.last_quote("QQQ") is None


async def test_uneven_chains_have_their_strikes_per_expiry_and_each_qualifies():
    from datetime import date, timedelta

    from market.types import OptionContract

    today = date.today()
    weekly, monthly = today + timedelta(days=2), today + timedelta(days=6)
    async with gateway() as gw, connected(gw) as (broker, _):
        gw.market.add_chain("SPY", [weekly], [Decimal(469), Decimal(470)])
        gw.market.add_chain("SPY", [monthly], [Decimal(465), Decimal(470), Decimal(475)])
        chain = (await broker.load_chains(["SPY"]))["SPY"]
        assert chain.strikes_for(weekly) == (Decimal(469), Decimal(470))
        assert chain.strikes_for(monthly) == (Decimal(465), Decimal(470), Decimal(475))
        assert Decimal(465) in chain.strikes  # the union IB's option parameters give
        for expiry in (weekly, monthly):
            for strike in chain.strikes_for(expiry):  # every listed strike is a real contract
                await broker.subscribe([OptionContract("SPY", expiry, strike, "C").key])
        with pytest.raises(BrokerError):  # what the union would have offered for the weekly is not listed
            await broker.snapshot(OptionContract("SPY", weekly, Decimal(465), "C").key)


async def test_a_pre_open_job_loads_the_chains_again_each_session():
    from datetime import date as _date

    from market import calendar
    from market.clock import EXCHANGE_TZ, VirtualClock
    from daemon.scheduler import VirtualScheduler, build_jobs
    from tests.daemon.test_scheduler import Recorder, _t

    class WithChains(Recorder):
        async def refresh_chains(self, at):  # type: ignore[no-untyped-def]
            self.calls.append(("chain_refresh", at))

    from config.loader import load_settings

    rec, day = WithChains(), _date(2019, 2, 11)
    clock = VirtualClock(_t(day, 0, 0))
    scheduler = VirtualScheduler(build_jobs(load_settings("7dte", env={}), calendar.session_for, rec), clock)
    await scheduler.run_until(_t(_date(2019, 2, 12), 23, 0))
    fired = [t for n, t in rec.calls if n == "chain_refresh"]
    assert fired == [_t(day, 8, 45), _t(_date(2019, 2, 12), 8, 45)]  # before each open
    assert all(t.tzinfo == EXCHANGE_TZ for t in fired)


async def test_profiles_on_one_account_share_its_line_budget_before_ib_has_to_say_101():
    alerts: list = []
    async with gateway() as gw, \
            connected(gw, broker__ib__client_id=7, broker__ib__market_data_lines=3) as (first, rec1), \
            connected(gw, alerts=alerts, broker__ib__client_id=8, broker__ib__market_data_lines=3) as (second, _):
        gw.market.set_stock("QQQ", "400.00", "400.02")
        gw.market.set_stock("IWM", "200.00", "200.02")
        await first.subscribe(["SPY", "VIX"])
        await second.subscribe(["QQQ"])  # the account's third line
        with pytest.raises(BrokerError) as err:
            await second.subscribe(["IWM"])
        assert err.value.code == "market_data_lines" and "other profiles" in str(err.value)
        assert [(k, d["key"]) for k, d in alerts] == [("ib_market_data_lines", "IWM")]
        with pytest.raises(BrokerError):  # a snapshot needs a line too
            await second.snapshot("IWM")
        await first.unsubscribe(["VIX"])  # a line comes free for the other profile
        await second.subscribe(["IWM"])
        assert second.subscriptions == ("QQQ", "IWM")
        assert not [e for e in gw.errors_sent if e[2] == 101]


async def test_delayed_data_on_paper_when_allowed_is_usable_and_labelled_delayed():
    async with gateway() as gw, connected(gw, broker__ib__delayed_data_on_paper=True) as (broker, rec):
        gw.market.entitle("SPY", live=False, delayed=True)
        await broker.subscribe(["SPY", "VIX"])
        spy = await rec.wait_for(lambda: rec.last_quote("SPY"))
        vix = await rec.wait_for(lambda: rec.last_quote("VIX"))
        assert (spy.usable, spy.delayed) == (True, True)
        assert (vix.usable, vix.delayed) == (True, False)  # subscribed: IB serves it live


async def test_delayed_data_is_never_usable_without_the_setting_or_on_a_live_account():
    async with gateway() as gw, connected(gw) as (broker, rec):  # paper, setting off
        gw.market.entitle("SPY", live=False, delayed=True)
        await broker.subscribe(["SPY"])
        await rec.wait_for(lambda: any(e[2] == 354 for e in gw.errors_sent))
        assert rec.last_quote("SPY") is None  # asked live: refused, nothing delayed offered
    async with gateway(account="U7654321") as gw, connected(
            gw, broker__ib__delayed_data_on_paper=True, broker__ib__live=True,
            broker__ib__account="U7654321") as (broker, rec):
        gw.market.entitle("SPY", live=False, delayed=True)
        await broker.subscribe(["SPY"])
        await rec.wait_for(lambda: any(e[2] == 354 for e in gw.errors_sent))
        assert rec.last_quote("SPY") is None and not broker._md.delayed_ok
