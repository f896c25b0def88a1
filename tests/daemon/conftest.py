"""Store fixtures, parametrized over SQLite (a temporary file) and PostgreSQL.

PostgreSQL is `TRADINGD_TEST_PG_URL` or postgresql+psycopg://postgres@127.0.0.1:5432/test;
when it cannot be reached those cases skip with the reason. Each PostgreSQL test gets its
own schema (through the connection's search_path), dropped afterwards, so parallel and
repeated runs never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from daemon.store import Store
from tests.daemon.test_engine_harness import Rig

PG_URL = os.environ.get("TRADINGD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROFILE = "0dte"


@cache
def _pg_unreachable_reason() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: skip, saying why
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {make_url(PG_URL).render_as_string(hide_password=True)} unreachable: {first}"
    return None


def _pg_schema_url() -> Iterator[str]:
    reason = _pg_unreachable_reason()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An empty database: a SQLite file under tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'tradingd-test.db'}"
    else:
        yield from _pg_schema_url()


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens stores on the test's database (several may be opened: a restart is a new Store); closes leftovers."""
    opened: list[Store] = []

    def opener() -> Store:
        store = Store(PROFILE, store_url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store._engine.dispose()  # the test closes what it awaits; this only releases connections


@pytest.fixture
async def store(open_store: Callable[[], Store]) -> AsyncIterator[Store]:
    """A migrated, open store."""
    s = open_store()
    await s.upgrade()
    yield s
    await s.close()


@pytest.fixture
async def rig(tmp_path) -> AsyncIterator[Rig]:  # type: ignore[no-untyped-def]
    """The 0dte profile on SPY's bundled bars, started at midnight of DAY1 (a module may define its own)."""
    started = Rig(tmp_path, "0dte", ["SPY"])
    await started.start()
    yield started
    await started.close()


# The engine-rig tests that also run on the live shell over the core (`daemon.live.LiveShell`): each runs
# twice, `rig_kind` engine and shell. The rest still need the old engine's internals (docs/decisions/shell.md).
SHELL_READY: dict[str, frozenset[str]] = {
    "test_engine_resilience": frozenset({"test_a_scheduled_job_that_fails_is_logged_with_its_name_and_a_reason_code"}),
    "test_engine_signals": frozenset({
        "test_every_bad_signal_is_refused_with_its_reason_and_stored",
        "test_a_duplicate_id_is_refused_and_answers_the_first_decision",
        "test_vix_above_the_entry_limit_refuses_0dte_entries", "test_no_signals_before_the_engine_runs"}),
    "test_engine_store_faults": frozenset({
        "test_exits_go_on_while_the_store_is_away_and_every_record_reaches_it_after",
        "test_the_store_metrics_follow_the_status",
        "test_a_reconnect_while_the_store_is_away_is_reconciled_when_it_returns"}),
    "test_regime_wiring": frozenset({
        "test_an_fomc_day_caps_the_0dte_bet_refuses_the_blackout_and_scales_the_targets",
        "test_the_checkpoint_builds_the_surface_and_the_regime_and_shows_them_in_status"}),
    "test_bad_market_data_engine": frozenset({
        "test_confidence_below_threshold_is_answered_before_any_quote_exists",
        "test_the_same_replay_without_the_spike_trades"}),
    "test_signals_doc": frozenset({"test_real_requests_answer_what_the_doc_says"}),
    "test_lifecycle": frozenset({"test_0dte_lifecycle_through_the_api", "test_7dte_lifecycle_through_the_api",
                                 "test_operator_halt_refuses_entries_and_is_recorded"}),
    "test_operator_page": frozenset({"test_the_page_needs_the_read_token_and_never_shows_a_token"}),
    "test_api_bad_signals": frozenset({"test_bad_signals_over_http_get_4xx_with_reason_and_are_stored"}),
    "test_engine_wiring": frozenset({
        "test_an_entry_rests_its_hard_stop_at_the_broker_and_the_stop_goes_when_the_position_closes",
        "test_a_stop_filled_at_the_broker_closes_the_position_once_and_the_engine_sells_nothing",
        "test_start_up_blocks_an_unknown_broker_position_until_acknowledged",
        "test_start_up_adopts_a_position_its_orderref_proves_and_gives_it_a_stop_of_its_own",
        "test_an_intent_never_sent_is_marked_with_its_reason_at_start_up",
        "test_a_reconnect_reconciles_once_and_refuses_entries_until_ready",
        "test_quotes_that_arrive_while_the_candidates_are_subscribed_are_not_from_the_future",
        "test_a_send_the_broker_refuses_is_recorded_rejected_with_its_reason_at_once",
        "test_a_stale_vix_refuses_0dte_entries_as_stale_market_data"}),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if metafunc.function.__name__ in SHELL_READY.get(module, ()):
        metafunc.fixturenames.append("rig_kind")
        metafunc.parametrize("rig_kind", ["engine", "shell"])


@pytest.fixture(autouse=True)
def _rig_kind(request: pytest.FixtureRequest) -> Any:
    """The kind of daemon the engine rig builds in this test (see SHELL_READY)."""
    from tests.daemon import test_engine_harness as harness

    callspec = getattr(request.node, "callspec", None)
    harness.DEFAULT_KIND = callspec.params.get("rig_kind", "shell") if callspec is not None else os.environ.get("RIG_KIND", "shell")
    yield
    harness.DEFAULT_KIND = "shell"
